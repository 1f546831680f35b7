package engine

import (
	"math"
	"time"
)

// Late outcomes (design.md, "Outcomes arrive late").
//
// A send is a trial from the moment it is made, but its open or click is
// learnt minutes to days later. Counting every send as a trial counts the
// sends whose outcome has not had time to arrive as failures, so whatever
// received the most recent traffic looks worse than it is, and a wave
// allocator swings away from the best variant right after giving it a wave.
//
// The model (in the spirit of Chapelle, "Modeling delayed feedback in
// display advertising", KDD 2014, and of Vernade, Cappé & Perchet,
// "Stochastic bandit models for delayed conversions", UAI 2017): a send
// earns the objective with probability p, and if it does, the server learns
// of it D after the send, D drawn from a delay distribution F shared by the
// variants and capped by the attribution window. A send of age a has then
// been observed to earn the objective with probability p·F(a), so the
// sufficient statistics of p are the successes and the *matured* trials
// Σ F(age of each send): a send too young to have clicked contributes
// (almost) nothing, neither a success nor a failure. With F ≡ 1 this is the
// raw count.
//
// F is estimated without a parametric form from a histogram of the observed
// delays, kept per send slot (DelayEdges), by the reverse-time hazard
// estimator for right-truncated delays (Lagakos, Barraj & De Gruttola,
// "Nonparametric analysis of truncated survival data, with application to
// AIDS", Biometrika 1988; the same problem as reporting delays there): the
// delays of a send of age a are observed only up to a, so the ratio
// F(e_k)/F(e_{k+1}) is estimated from the slots old enough to have shown
// every delay up to e_{k+1}, as the share of their delays ≤ e_{k+1} that are
// ≤ e_k, and F is the product of these ratios from the top. Beyond the
// horizon nothing is used: F is relative to it, which estimates p_h =
// P(the outcome arrives within the horizon) for every variant alike, so
// comparisons between variants stay fair, and the horizon grows to the
// window as the campaign ages. A send older than the horizon counts as a
// whole trial; in the funnels' models (EstimateDelays; campaigns and
// experiments count every outcome, EstimateDelaysLongest), with the
// successes that arrived within the horizon
// (withinHorizon, from its delay histogram): counting also those after the
// horizon biased the variants with old sends upward, by up to the mass of F
// in the next (doubling) bucket, and swung a funnel's weights each time the
// horizon moved (docs/funnels.md). The successes left out count again once
// the horizon passes them. The horizon is the point, among those with a
// delay observed, at which the pooled rate is estimated most precisely
// (DelayModel.precision): the longest one rests F on the few slots old
// enough to show it. With no delay observed yet, F ≡ 1.
//
// The delay that matters is the one until the server learns of the outcome,
// not the one until it happened: a sender that reports a wave's clicks only
// after sending the next wave makes those clicks arrive late whatever their
// own time. So the histogram records the delay from the send to the receipt
// of the event that first moved the objective's counter.

// DelayEdges are the upper edges of the buckets of the delay histogram kept
// per send slot: log-spaced (each about twice the previous), the last bucket
// (from 96h) unbounded. A campaign's window caps them: the buckets at or
// beyond the window merge into one that ends at the window.
var DelayEdges = [...]time.Duration{5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
	4 * time.Hour, 8 * time.Hour, 16 * time.Hour, 24 * time.Hour, 48 * time.Hour, 96 * time.Hour}

// DelayBuckets is the number of buckets of a delay histogram.
const DelayBuckets = len(DelayEdges) + 1

// DelayBucket returns the bucket of a delay: the first whose upper edge is
// above it.
func DelayBucket(d time.Duration) int {
	for i, e := range DelayEdges {
		if d < e {
			return i
		}
	}
	return len(DelayEdges)
}

// DelayModel is an estimated delay distribution F: the probability that the
// outcome of a send that earns the objective within the window has been
// received by a given age of the send.
type DelayModel struct {
	// Window is the attribution window: a send older than it is mature.
	Window time.Duration `json:"window"`
	// Horizon is the age up to which F is estimated (F is relative to it;
	// with cut, only outcomes within it count); 0 when no delay has been
	// observed, and F ≡ 1.
	Horizon time.Duration `json:"horizon"`
	// cut says whether MatureSlots counts only the outcomes that arrived
	// within the horizon (withinHorizon): EstimateDelays' models do,
	// EstimateDelaysLongest's count every outcome that has arrived.
	cut bool
	// Events is the number of observed delays the estimate rests on: those
	// of the slots old enough to show delays up to the horizon.
	Events int64 `json:"events"`
	// Points are the ages at which F is known and CDF its values there,
	// increasing to 1 at the horizon.
	Points []time.Duration `json:"points"`
	CDF    []float64       `json:"cdf"`
	// ratios[j] (j ≥ 1) is the estimated ratio CDF[j−1]/CDF[j] and
	// ratioVar[j] its variance (binomial, from the delays it rests on): the
	// error of F that precision and TrialsVariance carry into the counts.
	ratios, ratioVar []float64
}

// delayPoints returns the ages at which F is estimated under a window: the
// edges below it, then the window; and, per histogram bucket, the point
// index it is merged into.
func delayPoints(window time.Duration) ([]time.Duration, [DelayBuckets]int) {
	var pts []time.Duration
	for _, e := range DelayEdges {
		if window > 0 && e >= window {
			break
		}
		pts = append(pts, e)
	}
	if window > 0 {
		pts = append(pts, window)
	} else {
		pts = append(pts, time.Duration(math.MaxInt64))
	}
	var at [DelayBuckets]int
	for b := range at {
		at[b] = min(b, len(pts)-1)
	}
	return pts, at
}

// EstimateDelays estimates F at now from the slots' delay histograms (see
// the comment at the top of this file). A slot's sends are all at least
// now − slot.Last old, so the slot shows every delay up to that age.
func EstimateDelays(slots []CampaignSlot, now time.Time, window time.Duration) DelayModel {
	return estimateDelays(slots, now, window, false)
}

// EstimateDelaysLongest is EstimateDelays with the longest horizon that has
// a delay observed (as first built) and no cut at the horizon: every outcome
// that has arrived counts. For the callers whose counts people read as
// "what has arrived": experiments with a conversion window, whose
// inverse-propensity sums are kept whole, and campaigns, whose results would
// otherwise show a subject with ten clicks of ten sends at a rate of 0 until
// its sends passed the next edge (TestCampaignSplitThenWinner). Without the
// cut a shorter horizon would bias the variants with the earlier traffic
// upward more, so they keep the longest. For campaigns the cut bought little
// (24-hour scenario, 400 runs, with the pooled prior: 2 collapses and 652.2
// clicks with it, 4 and 654.6 without; docs/campaigns.md); for funnels it
// is what stopped the swings (docs/funnels.md).
func EstimateDelaysLongest(slots []CampaignSlot, now time.Time, window time.Duration) DelayModel {
	return estimateDelays(slots, now, window, true)
}

func estimateDelays(slots []CampaignSlot, now time.Time, window time.Duration, longest bool) DelayModel {
	pts, at := delayPoints(window)
	k := len(pts)
	// below[j] and upto[j]: over the slots mature to pts[j], the delays in
	// point buckets < j and ≤ j.
	below, upto := make([]float64, k), make([]float64, k)
	for _, s := range slots {
		last := s.Last
		if last.IsZero() {
			last = s.Start
		}
		age := now.Sub(last)
		hist := make([]float64, k)
		seen := false
		for b, n := range s.Delays {
			if n > 0 {
				hist[at[b]] += float64(n)
				seen = true
			}
		}
		if !seen {
			continue
		}
		cum := 0.0
		for j := range k {
			if age < pts[j] {
				break
			}
			below[j] += cum
			cum += hist[j]
			upto[j] += cum
		}
	}
	// The ratios F(pts[j−1])/F(pts[j]) and the variance of each, binomial,
	// r(1 − r)/n, with half an event below so that a ratio of 0 on a few
	// delays is not taken as certain (0 of 3 below: a standard error of
	// 0.24, not 0); a ratio of 1 adds none, so a longer horizon that adds
	// no outcome ties with the shorter and is kept. A ratio on no delay at
	// all is unknown: variance ¼.
	r, vr := make([]float64, k), make([]float64, k)
	for j := 1; j < k; j++ {
		if n := upto[j]; n > 0 {
			r[j] = below[j] / n
			vr[j] = (below[j] + 0.5) * (n - below[j]) / (n * n * n)
		} else {
			vr[j] = 0.25
		}
	}
	m := DelayModel{Window: window}
	best := 0.0
	for h := k - 1; h >= 0; h-- {
		if upto[h] == 0 {
			continue
		}
		c := DelayModel{Window: window, Horizon: pts[h], Events: int64(upto[h]), Points: pts[:h+1], CDF: make([]float64, h+1), cut: !longest, ratios: r[:h+1], ratioVar: vr[:h+1]}
		c.CDF[h] = 1
		for j := h; j > 0; j-- {
			c.CDF[j-1] = c.CDF[j] * r[j]
		}
		if longest {
			return c
		}
		if p := c.precision(slots, now); p > best || m.Points == nil {
			m, best = c, p
		}
	}
	return m
}

// precision returns the precision (the inverse of the relative variance,
// by the delta method) of the pooled rate the model estimates from the
// slots: successes within the horizon S over matured trials D, the first
// Poisson (relative variance 1/S), the second carrying the error of the
// estimated ratios of F (ratioVar), which the trials younger than a ratio's
// point depend on.
//
// Why the horizon is chosen by it. Any horizon gives an unbiased comparison
// of the variants (the outcomes after it are left out, withinHorizon), so
// the choice is one of variance only: a longer horizon counts more outcomes
// but rests F(horizon)/F(shorter ages) on the few slots old enough to show
// it. Taking the longest horizon with any delay observed (as first built)
// made F rest on one or two events each time the oldest slot crossed an
// edge, and the matured counts jumped by half: measured, it swung a funnel's
// weights from 0.99 to 0.49 and back within two hours (docs/funnels.md).
func (m DelayModel) precision(slots []CampaignSlot, now time.Time) float64 {
	dep, succ, trials := m.dependence(slots, now)
	if succ <= 0 || trials <= 0 {
		return 0
	}
	return 1 / (1/succ + m.varianceOf(dep)/(trials*trials))
}

// TrialsVariance returns the variance, by the delta method, that the error
// of the estimated F gives the matured trials MatureSlots counts from the
// slots (0 without a model). The ratios of F are estimated from a few dozen
// delays in a step's or campaign's first hours, when a young arm's matured
// trials can be off by half; a posterior given those trials as if they were
// counted would be that much too sure (FunnelArm.MaturedVariance).
func (m DelayModel) TrialsVariance(slots []CampaignSlot, now time.Time) float64 {
	dep, _, _ := m.dependence(slots, now)
	return m.varianceOf(dep)
}

// varianceOf returns Σᵢ depᵢ²·var(rᵢ): the ratios are estimated from
// disjoint sets of delays, so their errors are taken as independent.
func (m DelayModel) varianceOf(dep []float64) float64 {
	var v float64
	for i := 1; i < len(dep) && i < len(m.ratioVar); i++ {
		v += dep[i] * dep[i] * m.ratioVar[i]
	}
	return v
}

// dependence returns, for each ratio rᵢ (i ≥ 1) of F, the derivative of the
// slots' matured trials with respect to it, and the successes within the
// horizon and the matured trials MatureSlots counts (undiscounted).
//
// The derivative, not the relative error times the trials: a ratio
// estimated as 0 (no delay below a point among the few slots old enough)
// makes F 0 at every younger age, and those slots then count their
// successes as their only trials (a rate of 1); relative errors would
// count none of them as depending on it and call that estimate exact,
// and it was chosen, giving a funnel arm 331 successes in 360 matured
// units where the truth was 46% (docs/funnels.md).
func (m DelayModel) dependence(slots []CampaignSlot, now time.Time) (dep []float64, succ, trials float64) {
	h := len(m.Points) - 1
	if h < 0 {
		return nil, 0, 0
	}
	// above(l, i) is CDF[l] without the factor rᵢ: ∂CDF[l]/∂rᵢ for i > l.
	above := func(l, i int) float64 {
		p := 1.0
		for x := l + 1; x <= h; x++ {
			if x != i {
				p *= m.ratios[x]
			}
		}
		return p
	}
	dep = make([]float64, h+1)
	for _, s := range slots {
		mean := s.Mean
		if mean.IsZero() {
			mean = s.Start
		}
		age := now.Sub(mean)
		w := m.withinHorizon(s)
		succ += w * s.Successes
		trials += max(s.Trials*m.Matured(age), w*s.Successes)
		if age >= m.Horizon || age <= 0 || (m.Window > 0 && age >= m.Window) {
			continue
		}
		j := 0
		for j < h && age >= m.Points[j] {
			j++
		}
		// F(age) = (1−t)·CDF[j−1] + t·CDF[j] (CDF[−1] = 0), CDF[l] the
		// product of the ratios above l.
		lo := time.Duration(0)
		if j >= 1 {
			lo = m.Points[j-1]
		}
		t := float64(age-lo) / float64(m.Points[j]-lo)
		for i := j + 1; i <= h; i++ {
			d := t * above(j, i)
			if j >= 1 {
				d += (1 - t) * above(j-1, i)
			}
			dep[i] += s.Trials * d
		}
		if j >= 1 {
			dep[j] += s.Trials * (1 - t) * m.CDF[j]
		}
	}
	return dep, succ, trials
}

// Matured returns F(age): the probability that the outcome of a send of
// that age that will earn the objective has been received. 1 beyond the
// horizon or the window and when nothing is known; linear between the
// points (a uniform density within a bucket).
func (m DelayModel) Matured(age time.Duration) float64 {
	if len(m.Points) == 0 || age >= m.Horizon || (m.Window > 0 && age >= m.Window) {
		return 1
	}
	if age <= 0 {
		return 0
	}
	lo, flo := time.Duration(0), 0.0
	for j, p := range m.Points {
		if age < p {
			return flo + (m.CDF[j]-flo)*float64(age-lo)/float64(p-lo)
		}
		lo, flo = p, m.CDF[j]
	}
	return 1
}

// Quantile returns the smallest age at which F reaches q (linear between
// the points), or the horizon.
func (m DelayModel) Quantile(q float64) time.Duration {
	lo, flo := time.Duration(0), 0.0
	for j, p := range m.Points {
		if m.CDF[j] >= q {
			if m.CDF[j] == flo {
				return lo
			}
			return lo + time.Duration(float64(p-lo)*(q-flo)/(m.CDF[j]-flo))
		}
		lo, flo = p, m.CDF[j]
	}
	return m.Horizon
}

// withinHorizon returns the share of a slot's outcomes whose delay was
// below the horizon (from its delay histogram; 1 without a horizon short of
// the window, or without delays recorded). F is relative to the horizon: a
// send's matured weight estimates the chance that its outcome arrives
// within the horizon, so only the outcomes that did are its successes. A
// send older than the horizon that also counted the outcomes it showed
// after the horizon would estimate a larger rate than a young one, and the
// variants that got the early traffic would look better than those that
// got the recent traffic, by up to the mass of F between the horizon and
// the next edge, which the doubling buckets make large: measured, this bias
// swung the funnels' allocation (docs/funnels.md). The outcomes left out
// count again once the horizon passes them.
func (m DelayModel) withinHorizon(s CampaignSlot) float64 {
	if !m.cutShort() {
		return 1
	}
	var in, all int64
	for b, n := range s.Delays {
		all += n
		if b < len(DelayEdges) && DelayEdges[b] <= m.Horizon {
			in += n
		}
	}
	if all == 0 {
		return 1
	}
	return float64(in) / float64(all)
}

// cutShort reports whether the model counts only the outcomes within a
// horizon short of the window: then the matured rates are those within the
// horizon (withinHorizon, FunnelStepInput.Horizon).
func (m DelayModel) cutShort() bool {
	return m.cut && len(m.Points) > 0 && !(m.Window > 0 && m.Horizon >= m.Window)
}

// MatureSlots returns the slots' counts with the trials of each slot
// weighed by F at the age of its sends (the slot's mean send time), and, for
// a positive half-life, discounted by that age as DiscountSlots does. A slot
// never counts fewer trials than it has successes. Successes and values are
// what has arrived within the model's horizon of the send (withinHorizon;
// all that has arrived once the horizon is the window, or without a model).
func MatureSlots(slots []CampaignSlot, now time.Time, halfLife time.Duration, m DelayModel) LearnCounts {
	var out LearnCounts
	gamma := DiscountGamma(halfLife)
	for _, s := range slots {
		f := 1.0
		if age := now.Sub(s.Start); age > 0 && gamma < 1 {
			f = math.Pow(gamma, age.Hours())
		}
		mean := s.Mean
		if mean.IsZero() {
			mean = s.Start
		}
		h := m.withinHorizon(s)
		trials := max(s.Trials*m.Matured(now.Sub(mean)), h*s.Successes)
		out.Trials += f * trials
		out.Successes += f * h * s.Successes
		out.Sum += f * h * s.Sum
		out.SumSquares += f * h * s.SumSquares
	}
	out.Successes = min(out.Successes, out.Trials)
	return out
}

// MatureArm returns the arm as the posterior, the decision rule and the
// anytime-valid tests should see it when only trials of its units have had
// time to show their outcome (Σ F(age) over its units, as MatureSlots
// counts them; experiments with a conversion window and funnels use it).
// Counting every unit as a trial would count the units too young to have
// converted as failures, and bias the arm with the most recent traffic
// (under adaptive allocation: the leader) downward.
//
// The unit counts and the inverse-propensity sums over units (Σ1/p, Σ1/p²,
// Σ1/w) are scaled by the matured share trials/Units; the outcome sums are
// kept as they are: what has arrived. Units is rounded and never below the
// units with an outcome. Expected and ExpectedSquares, the units the policy
// meant each arm to get, are kept: the sample ratio test compares raw units
// with them, so it must be given the raw arms (SequentialSRM).
func MatureArm(a Arm, trials float64) Arm {
	if a.Units <= 0 || math.IsNaN(trials) || trials >= float64(a.Units) {
		return a
	}
	n := max(int64(math.Round(trials)), a.Conversions, a.Positive+a.Negative, 0)
	if n >= a.Units {
		return a
	}
	r := float64(n) / float64(a.Units)
	a.Units = n
	a.InvP *= r
	a.InvP2 *= r
	a.InvExpected *= r
	return a
}

// FunnelSlot is one reach-time bucket of one arm of a funnel step: the
// units that reached the step in it (Trials), their completions within the
// window (Successes) and the delays from reaching the step to completing.
type FunnelSlot struct {
	Step, Arm int
	CampaignSlot
}

// MatureFunnel sets the Matured trials of every arm of in from the
// reach-time slots of the last window (the units older than the slots count
// whole): one delay distribution per step, since the time from reaching
// step k to completing the funnel shrinks with k, estimated from every arm's
// slots of the step. A step whose delays have not been observed yet is left
// as it is (every unit a trial, open ones as not converted so far).
func MatureFunnel(in *FunnelInput, slots []FunnelSlot, now time.Time, window time.Duration) {
	perStep := make([][]CampaignSlot, len(in.Steps))
	perArm := make([][][]CampaignSlot, len(in.Steps))
	recent := make([][]float64, len(in.Steps))
	recentConv := make([][]float64, len(in.Steps))
	for k := range in.Steps {
		perArm[k] = make([][]CampaignSlot, len(in.Steps[k].Arms))
		recent[k] = make([]float64, len(in.Steps[k].Arms))
		recentConv[k] = make([]float64, len(in.Steps[k].Arms))
	}
	for _, s := range slots {
		if s.Step < 0 || s.Step >= len(in.Steps) || s.Arm < 0 || s.Arm >= len(in.Steps[s.Step].Arms) {
			continue
		}
		perStep[s.Step] = append(perStep[s.Step], s.CampaignSlot)
		perArm[s.Step][s.Arm] = append(perArm[s.Step][s.Arm], s.CampaignSlot)
		recent[s.Step][s.Arm] += s.Trials
		recentConv[s.Step][s.Arm] += s.Successes
	}
	for k := range in.Steps {
		model := EstimateDelays(perStep[k], now, window)
		if model.Events == 0 {
			continue
		}
		if model.cutShort() {
			in.Steps[k].Horizon = model.Horizon
		}
		for j := range in.Steps[k].Arms {
			a := &in.Steps[k].Arms[j]
			mc := MatureSlots(perArm[k][j], now, 0, model)
			m := float64(a.Units) - recent[k][j] + mc.Trials
			c := max(0, float64(a.Conversions)-recentConv[k][j]+mc.Successes)
			a.Matured, a.MaturedConversions = &m, &c
			a.MaturedVariance = model.TrialsVariance(perArm[k][j], now)
		}
	}
}
