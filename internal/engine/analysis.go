package engine

import (
	"fmt"
	"math"
	"strconv"

	"github.com/samplit/samplit/internal/engine/stats"
)

// Decision states.
const (
	StateCollecting  = "collecting"
	StateWinnerFound = "winner_found"
	// StateNoDifference: every arm is within ± MinEffect (relative) of the
	// leader, with anytime-valid confidence.
	StateNoDifference = "no_difference"
	// StateCompleted is set by the service when a user completes an experiment; the
	// engine never returns it.
	StateCompleted = "completed"
)

// z975 is the 97.5% standard normal quantile, for 95% intervals.
const z975 = 1.959963984540054

// Result is the analysis of an experiment, with the JSON names of the results
// document of the HTTP contract.
type Result struct {
	Strategy   string          `json:"strategy"`
	Metric     Metric          `json:"metric"`
	TotalUnits int64           `json:"total_units"`
	Variants   []VariantResult `json:"variants"`
	// Winner is the declared winner's key, or nil.
	Winner   *string  `json:"winner"`
	Decision Decision `json:"decision"`
	SRM      SRM      `json:"srm"`
}

// VariantResult is one variant's line of a Result.
type VariantResult struct {
	Key         string  `json:"key"`
	Units       int64   `json:"units"`
	Conversions int64   `json:"conversions"`
	Sum         float64 `json:"sum"`
	// Mean is the observed rate (binary) or average value (continuous).
	Mean float64 `json:"mean"`
	// CILow and CIHigh bound the equal-tailed 95% credible interval of the mean.
	CILow  float64 `json:"ci_low"`
	CIHigh float64 `json:"ci_high"`
	// PBest is the posterior probability that this variant is the best.
	PBest float64 `json:"p_best"`
	// ExpectedLoss is E[max_j θ_j − θ_i], what choosing this variant costs on average.
	ExpectedLoss float64 `json:"expected_loss"`
	// Weight is the share of new traffic the variant gets now.
	Weight float64 `json:"weight"`
	// MaturedUnits and LateConversions are set by callers that model late
	// outcomes (an experiment with a conversion window): the units counted
	// as trials, each by the probability that its outcome has arrived
	// (MatureArm), from which Mean, the intervals, PBest and the weights
	// come; and the events that came after their unit's window, stored but
	// never counted. Left out otherwise.
	MaturedUnits    *float64 `json:"matured_units,omitempty"`
	LateConversions *int64   `json:"late_conversions,omitempty"`
	// Lift is mean/mean(control) − 1 with its 95% interval; nil for the control and
	// where undefined (no units, or a control mean of zero).
	Lift       *float64 `json:"lift"`
	LiftCILow  *float64 `json:"lift_ci_low"`
	LiftCIHigh *float64 `json:"lift_ci_high"`
	// PValue is the always-valid p-value of "no difference to the control"
	// (every strategy; nil for the control and while no test can be made),
	// Bonferroni-adjusted for the number of pairs of arms (avtest.go).
	PValue *float64 `json:"p_value"`
	// DiffLow and DiffHigh bound the anytime-valid interval of the difference
	// of means to the control, in the metric's units, simultaneous over every
	// pair of arms at level Alpha — the intervals the decision uses.
	DiffLow  *float64 `json:"diff_ci_low"`
	DiffHigh *float64 `json:"diff_ci_high"`
}

// Decision is the state of the decision rule and a sentence saying why.
type Decision struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
}

// SRM is the sample ratio mismatch check of every strategy (SequentialSRM): the
// assignment counts against the logged propensities, by a test that stays valid
// however often it is checked. PValue is an always-valid p-value, nil when the
// arms carry no logged propensities; Alert is PValue ≤ SRMAlertP.
type SRM struct {
	PValue *float64 `json:"p_value"`
	Alert  bool     `json:"alert"`
}

// SRMPValue returns the χ² goodness-of-fit p-value of observed counts against the
// expected shares weights (which need not be normalised). Categories with zero
// weight are ignored unless they received units, which makes the p-value 0. With
// fewer than two categories or no units the p-value is 1.
func SRMPValue(observed []int64, weights []float64) float64 {
	var n, wsum float64
	for i, o := range observed {
		n += float64(o)
		wsum += weights[i]
	}
	if n == 0 || !(wsum > 0) {
		return 1
	}
	chi2, df := 0.0, -1.0
	for i, o := range observed {
		e := n * weights[i] / wsum
		if e == 0 {
			if o > 0 {
				return 0
			}
			continue
		}
		d := float64(o) - e
		chi2 += d * d / e
		df++
	}
	if df < 1 {
		return 1
	}
	return stats.ChiSquareSurvival(chi2, df)
}

// Analyze computes the results document of an experiment under strategy s.
//
// Means, credible intervals and lifts use the cumulative statistics. P(best),
// expected loss and the decision's posterior thresholds use what the strategy learns
// from (the discounted statistics when Gamma < 1); the anytime-valid tests use the
// cumulative inverse-propensity sums (avtest.go).
func Analyze(s Strategy, in Input) (*Result, error) { return analyze(s, in, false) }

// analyze is Analyze; bayesOnly keeps the posterior decision rule alone, for
// funnel steps, whose counters carry no logged propensities (a funnel step
// winner is a P(best) claim: docs/funnels.md).
func analyze(s Strategy, in Input, bayesOnly bool) (*Result, error) {
	in, err := in.validate()
	if err != nil {
		return nil, err
	}
	plan, err := s.Plan(in)
	if err != nil {
		return nil, err
	}
	res := &Result{Strategy: s.Name(), Metric: in.Metric, Variants: make([]VariantResult, len(in.Arms))}
	cum := make([]counts, len(in.Arms))
	for i, a := range in.Arms {
		cum[i] = armCounts(a)
		res.TotalUnits += a.Units
	}
	post := posteriors(in.Metric, cum, in.Settings)
	learn := post
	if in.Settings.Gamma < 1 {
		learn = posteriors(in.Metric, effectiveCounts(in), in.Settings)
	}
	pbest, loss := bestProbabilities(learn)
	plan.prime(pbest)
	weights := plan.Weights()
	means := observedMeans(in.Metric, in.Arms)
	ci := controlIndex(in.Arms)
	tests := newAVTests(in, s.Name())
	cis := intervals(in.Metric, in.Arms, in.Settings) // docs/engine.md, "Numbers"
	for i := range in.Arms {
		v := describeArm(in, tests, means, cis, ci, i)
		v.PBest, v.ExpectedLoss, v.Weight = pbest[i], loss[i], weights[i]
		res.Variants[i] = v
	}
	res.SRM = SequentialSRM(in.Arms, SRMAlertP)
	if bayesOnly {
		res.Winner, res.Decision = bayesDecision(in, pbest, loss)
		return res, nil
	}
	res.Winner, res.Decision = experimentDecision(in, means, argmax(pbest), tests, func() ([]float64, []float64) { return pbest, loss })
	return res, nil
}

// describeArm is arm i's line of the results without what the posterior
// allocates by (P(best), expected loss, weight): its counts, mean, credible
// interval, lift and anytime-valid comparison with the control ci. The
// primary metric's results and every other metric's (AnalyzeMetric) are
// made by it, so that a metric means the same wherever it is shown.
func describeArm(in Input, tests *avTests, means []float64, cis [][2]float64, ci, i int) VariantResult {
	a := in.Arms[i]
	v := VariantResult{
		Key: a.Key, Units: a.Units, Conversions: a.Conversions, Sum: a.Sum,
		Mean: means[i], CILow: cis[i][0], CIHigh: cis[i][1],
	}
	if in.Metric == Binary {
		v.Sum = float64(a.Conversions)
	}
	if i != ci {
		v.Lift, v.LiftCILow, v.LiftCIHigh = lift(in.Metric, a, in.Arms[ci])
		if tests.OK && a.Units > 0 && in.Arms[ci].Units > 0 {
			p, pr := tests.PValue(i, ci), tests.Pair(i, ci)
			v.PValue = &p
			if !math.IsInf(pr.Lo, 0) && !math.IsInf(pr.Hi, 0) {
				v.DiffLow, v.DiffHigh = &pr.Lo, &pr.Hi
			}
		}
	}
	return v
}

// Decide applies the decision rule of strategy s alone, without the rest of the
// analysis: cheaper, for simulations and for checks after each event. The
// anytime-valid test runs first, and the posterior integral only when the test
// has found a candidate.
func Decide(s Strategy, in Input) (winner *string, d Decision, err error) {
	in, err = in.validate()
	if err != nil {
		return nil, Decision{}, err
	}
	tests := newAVTests(in, s.Name())
	means := observedMeans(in.Metric, in.Arms)
	w, d := experimentDecision(in, means, argmax(means), tests, func() ([]float64, []float64) {
		return bestProbabilities(posteriors(in.Metric, effectiveCounts(in), in.Settings))
	})
	return w, d, nil
}

// burnIn returns a reason if some arm has fewer than MinSamples units.
func burnIn(in Input) (string, bool) {
	low := -1
	for i, a := range in.Arms {
		if !a.Stopped && a.Units < in.Settings.MinSamples && (low < 0 || a.Units < in.Arms[low].Units) {
			low = i
		}
	}
	if low < 0 {
		return "", false
	}
	return fmt.Sprintf("%s has %d of the %d units every variant needs before a decision",
		in.Arms[low].Key, in.Arms[low].Units, in.Settings.MinSamples), true
}

func pct(p float64) string { return strconv.FormatFloat(100*p, 'f', 1, 64) + "%" }

func num(x float64) string { return strconv.FormatFloat(x, 'g', 2, 64) }

// bayesDecision: a winner once every arm has MinSamples units, P(best) ≥ threshold
// and expected loss ≤ LossThreshold.
func bayesDecision(in Input, pbest, loss []float64) (*string, Decision) {
	if why, ok := burnIn(in); ok {
		return nil, Decision{StateCollecting, why}
	}
	b := argmax(pbest)
	key := in.Arms[b].Key
	s := in.Settings
	var claim string
	if len(in.Arms) == 2 {
		claim = fmt.Sprintf("%s beats %s with %s probability", key, in.Arms[1-b].Key, pct(pbest[b]))
	} else {
		claim = fmt.Sprintf("%s is the best of %d variants with %s probability", key, len(in.Arms), pct(pbest[b]))
	}
	switch {
	case pbest[b] < s.DecisionThreshold:
		return nil, Decision{StateCollecting, fmt.Sprintf("no winner yet: %s leads with %s probability of being best; %s required",
			key, pct(pbest[b]), pct(s.DecisionThreshold))}
	case loss[b] > s.LossThreshold:
		return nil, Decision{StateCollecting, fmt.Sprintf("no winner yet: %s, but its expected loss %s is above %s",
			claim, num(loss[b]), num(s.LossThreshold))}
	}
	return &key, Decision{StateWinnerFound, fmt.Sprintf("%s; expected loss %s", claim, num(loss[b]))}
}

// experimentDecision is the decision rule of experiments (docs/decisions.md):
//
//   - winner_found: after MinSamples units per arm, one arm's anytime-valid
//     interval against every other arm lies above zero (avtest.go, simultaneous
//     over all pairs), and, as before, its P(best) reaches DecisionThreshold
//     and its expected loss is at most LossThreshold;
//   - no_difference: every arm's interval against the leader lies within
//     ± MinEffect × the pooled mean;
//   - collecting otherwise, with a sentence saying what is missing.
//
// lead is the arm the sentence calls the leader (the highest P(best) where it
// is known, as the results show it); bayes computes P(best) and expected
// loss, only when a winner is in sight.
func experimentDecision(in Input, means []float64, lead int, tests *avTests, bayes func() (pbest, loss []float64)) (*string, Decision) {
	if why, ok := burnIn(in); ok {
		return nil, Decision{StateCollecting, why}
	}
	if !tests.OK {
		return nil, Decision{StateCollecting, "no decision can be made: " + tests.Why}
	}
	s := in.Settings
	level := pct(1 - s.Alpha)
	ci := controlIndex(in.Arms)
	// ref is the arm a sentence compares arm i with: the control, or for the
	// control the best other arm.
	ref := func(i int) int {
		if i != ci {
			return ci
		}
		r := -1
		for j := range in.Arms {
			if j != i && (r < 0 || tests.Means[j] > tests.Means[r]) {
				r = j
			}
		}
		return r
	}
	vs := func(i int) string {
		j := ref(i)
		return fmt.Sprintf("%s: %s", in.Arms[j].Key, relInterval(tests, i, j, means))
	}
	if b := tests.dominant(stoppedArms(in.Arms)); b >= 0 {
		key := in.Arms[b].Key
		var claim string
		if live := liveArms(in.Arms); live < len(in.Arms) {
			claim = fmt.Sprintf("%s beats every variant that no guardrail stopped (vs %s), always-valid at %s", key, vs(b), level)
		} else if len(in.Arms) == 2 {
			claim = fmt.Sprintf("%s beats %s, always-valid at %s", key, vs(b), level)
		} else {
			claim = fmt.Sprintf("%s beats every other variant (vs %s), always-valid at %s", key, vs(b), level)
		}
		if why := in.Arms[b].Unproven; why != "" {
			return nil, Decision{StateCollecting, fmt.Sprintf("no winner yet: %s, but %s", claim, why)}
		}
		pbest, loss := bayes()
		if live := liveArms(in.Arms); live < len(in.Arms) {
			// P(best) among the arms that may still win: a stopped arm is
			// out of the running, however good its primary metric.
			pbest, loss = liveBayes(in)
		}
		switch {
		case pbest[b] < s.DecisionThreshold:
			return nil, Decision{StateCollecting, fmt.Sprintf("no winner yet: %s, but its probability of being best is %s; %s required",
				claim, pct(pbest[b]), pct(s.DecisionThreshold))}
		case loss[b] > s.LossThreshold:
			return nil, Decision{StateCollecting, fmt.Sprintf("no winner yet: %s, but its expected loss %s is above %s",
				claim, num(loss[b]), num(s.LossThreshold))}
		}
		if beats, sd, source := s.liftPrior(); beats != nil {
			if j, p := priorBeats(in, b, beats); p < s.DecisionThreshold {
				return nil, Decision{StateCollecting, fmt.Sprintf(
					"no winner yet: %s, but with true lifts of about ±%s (%s) the probability that %s beats %s is %s; %s required",
					claim, pct(sd), source, key, in.Arms[j].Key, pct(p), pct(s.DecisionThreshold))}
			}
		}
		return &key, Decision{StateWinnerFound, claim}
	}
	if live := liveArms(in.Arms); live == 1 {
		return nil, Decision{StateCollecting, fmt.Sprintf("no winner: every variant but %s tripped a guardrail; complete the experiment to serve it",
			in.Arms[ci].Key)}
	}
	delta := s.MinEffect * math.Abs(tests.Centre)
	if tests.equivalent(lead, delta) {
		return nil, Decision{StateNoDifference, fmt.Sprintf(
			"no difference: every variant is within ±%s of %s (min_effect, relative to the average %s), always-valid at %s",
			pct(s.MinEffect), in.Arms[lead].Key, num(tests.Centre), level)}
	}
	return nil, Decision{StateCollecting, fmt.Sprintf("no winner yet: %s leads (vs %s); a winner needs its always-valid %s interval above zero against every variant",
		in.Arms[lead].Key, vs(lead), level)}
}

// lift returns mean(v)/mean(c) − 1 with a 95% interval. Binary: the Katz log
// interval of the risk ratio, with 0.5 added to each count when one is zero
// (Haldane–Anscombe). Continuous: the delta method on the ratio of means.
func lift(m Metric, v, c Arm) (l, lo, hi *float64) {
	if v.Units == 0 || c.Units == 0 {
		return nil, nil, nil
	}
	ptr := func(x float64) *float64 {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return &x
	}
	if m == Binary {
		cv, nv, cc, nc := float64(v.Conversions), float64(v.Units), float64(c.Conversions), float64(c.Units)
		if cc > 0 {
			l = ptr(cv/nv/(cc/nc) - 1)
		}
		lr, se := katz(v, c)
		return l, ptr(math.Expm1(lr - z975*se)), ptr(math.Expm1(lr + z975*se))
	}
	r, se, ok := meanRatio(m, v, c)
	if !ok {
		return nil, nil, nil
	}
	return ptr(r - 1), ptr(r - 1 - z975*se), ptr(r - 1 + z975*se)
}

// katz returns the log of the risk ratio of v to c and its standard error
// (Katz), with 0.5 added to each count when one is zero or all
// (Haldane–Anscombe). Both arms must have units.
func katz(v, c Arm) (lr, se float64) {
	cv, nv, cc, nc := float64(v.Conversions), float64(v.Units), float64(c.Conversions), float64(c.Units)
	if cv == 0 || cc == 0 || cv == nv || cc == nc {
		cv, nv, cc, nc = cv+0.5, nv+1, cc+0.5, nc+1
	}
	return math.Log(cv / nv / (cc / nc)), math.Sqrt(1/cv - 1/nv + 1/cc - 1/nc)
}

// meanRatio returns the ratio of v's mean to c's and its standard error by
// the delta method; ok is false without two units each or a positive
// control mean.
func meanRatio(m Metric, v, c Arm) (r, se float64, ok bool) {
	if c.Units < 2 || v.Units < 2 {
		return 0, 0, false
	}
	mv, sv := unitVariance(m, v)
	mc, sc := unitVariance(m, c)
	if !(mc > 0) {
		return 0, 0, false
	}
	r = mv / mc
	return r, math.Sqrt(sv/float64(v.Units)/(mc*mc) + r*r*sc/float64(c.Units)/(mc*mc)), true
}

// priorBeats returns, among the live arms other than b, the one b is least
// sure to beat under a prior on lifts, and that probability. beats gives
// P(θ > 0) for an estimated log ratio lr with standard error se (katz for
// binary metrics; the delta method, on the log scale, for continuous ones).
// A pair whose ratio cannot be estimated counts as a coin toss.
func priorBeats(in Input, b int, beats func(lr, se float64) float64) (arm int, p float64) {
	arm, p = -1, 1
	for j, a := range in.Arms {
		if j == b || a.Stopped {
			continue
		}
		q := 0.5
		if o, ok := LiftObservationOf(in.Metric, in.Arms[b], a); ok {
			q = beats(o.LogLift, o.SE)
		}
		if q < p {
			arm, p = j, q
		}
	}
	return arm, p
}

// normalBeats is P(θ > 0) under a N(0, sd²) prior on the log ratio θ and
// a normal likelihood: the posterior is normal with mean lr·k and variance
// se²·k, k = sd²/(sd² + se²).
func normalBeats(sd float64) func(lr, se float64) float64 {
	return func(lr, se float64) float64 { return stats.NormalCDF(lr * sd / (se * math.Hypot(sd, se))) }
}

// stoppedArms says which arms a guardrail stopped.
func stoppedArms(arms []Arm) []bool {
	out := make([]bool, len(arms))
	for i, a := range arms {
		out[i] = a.Stopped
	}
	return out
}

// liveArms counts the arms no guardrail stopped.
func liveArms(arms []Arm) int {
	n := 0
	for _, a := range arms {
		if !a.Stopped {
			n++
		}
	}
	return n
}

// liveBayes returns P(best) and expected loss among the arms no guardrail
// stopped (0 and +Inf for the stopped ones), from what the strategy learns.
func liveBayes(in Input) (pbest, loss []float64) {
	sub := in
	sub.Arms = nil
	var idx []int
	for i, a := range in.Arms {
		if !a.Stopped {
			sub.Arms = append(sub.Arms, a)
			idx = append(idx, i)
		}
	}
	pb, l := bestProbabilities(posteriors(in.Metric, effectiveCounts(sub), in.Settings))
	pbest, loss = make([]float64, len(in.Arms)), make([]float64, len(in.Arms))
	for i := range loss {
		loss[i] = math.Inf(1)
	}
	for j, i := range idx {
		pbest[i], loss[i] = pb[j], l[j]
	}
	return pbest, loss
}
