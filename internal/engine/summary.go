package engine

// Summary is what a breakdown segment shows of one arm: the observed mean,
// its 95% credible interval and the posterior probability of being best,
// computed as Analyze computes them.
type Summary struct {
	Mean, CILow, CIHigh, PBest float64
}

// Summarize describes arms that carry only units, conversions, sum and sum
// of squares (a breakdown segment's counters): no logged propensities, so
// no anytime-valid test, and, for a continuous metric, the t model (the
// log-normal one needs the log statistics). s must have its defaults
// (Settings.WithDefaults).
func Summarize(m Metric, arms []Arm, s Settings) []Summary {
	cs := make([]counts, len(arms))
	for i, a := range arms {
		cs[i] = counts{n: float64(a.Units), c: float64(a.Conversions), sum: a.Sum, sumSq: a.SumSquares}
	}
	post := posteriors(m, cs, s)
	pbest, _ := bestProbabilities(post)
	means := observedMeans(m, arms)
	var cis [][2]float64
	if m == Binary {
		cis = binaryIntervals(arms, s)
	} else {
		st := make([]valueStats, len(cs))
		for i, c := range cs {
			st[i] = valueStats{n: c.n, sum: c.sum, sumSq: c.sumSq}
		}
		_, cis = continuousPosteriors(st)
	}
	out := make([]Summary, len(arms))
	for i := range arms {
		out[i] = Summary{Mean: means[i], CILow: cis[i][0], CIHigh: cis[i][1], PBest: pbest[i]}
	}
	return out
}
