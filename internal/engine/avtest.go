package engine

import (
	"fmt"
	"math"
)

// Anytime-valid comparisons of arms on adaptively allocated data.
//
// The posterior (P(best), expected loss) allocates traffic; a claim — a
// winner, no difference — must hold however often anyone looks and however
// the allocation followed the data. Sample means do not give that under
// adaptive allocation (a bandit starves an arm right after an unlucky run,
// which freezes its bad estimate), so the claims rest on inverse-propensity
// weighting with the propensity logged with every assignment.
//
// For arms i and j and a centre c, unit u (of any arm) contributes
//
//	X_u = 1{A_u = i}·(y_u − c)/p_u − 1{A_u = j}·(y_u − c)/p_u,
//
// where A_u is the arm u got and p_u the probability it had of getting it,
// fixed before y_u was seen. Whatever the strategy did with the past, as long
// as every arm keeps a positive probability (the weight floor), E[X_u | past]
// = μ_i − μ_j = Δ, so S_t − tΔ with S_t = Σ X_u is a martingale. Its variance
// is estimated by V_t = Σ X_u² (one arm per unit, so the cross term vanishes):
// Σ (y−c)²/p² over the two arms' units. Both are sums of the additive
// statistics of Arm (InvP … Y2InvP2), so replicas merge them by "+=".
//
// The interval is Robbins' normal-mixture boundary (Howard, Ramdas, McAuliffe &
// Sekhon 2021, eq. (14)) with V_t in place of the intrinsic time — the
// asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy &
// Ramdas ("Time-uniform central limit theory and asymptotic confidence
// sequences", 2024) applied to the inverse-propensity increments as in
// Waudby-Smith et al., "Anytime-valid off-policy inference for contextual
// bandits" (2022), and Ham, Imai & Janson, "Design-based confidence sequences"
// (2022):
//
//	|S_t − tΔ| ≤ √( V_t·(1 + 1/r)·(2·ln(1/a) + ln(1 + r)) ),  r = ρ²V_t = Tau2·t,
//
// at level a for all t at once. r = Tau2·t fixes the mixing scale to the
// per-unit variance (Tau2 is in those units, as it was for the mixture SPRT),
// so the boundary is tightest around t ≈ (2·ln(1/a) + ln(2·ln(1/a)+1))/Tau2.
//
// Multiplicity: every claim compares pairs of arms, and which pair matters is
// chosen by the data, so all K(K−1)/2 pairs get level Alpha/(K(K−1)/2)
// (Bonferroni): with probability ≥ 1 − Alpha every pair's interval holds at
// every look, and so does every claim made from them.
//
// The centre c is the pooled mean over all units. Any constant keeps E[X_u]
// = Δ; the pooled mean removes the variance that the random number of units
// per arm would add (with c = 0 the test would be a Horvitz–Thompson one,
// up to twice as wide for rates near ½). Like the plug-in scale, it is
// estimated from the data, which the asymptotic theory allows; the A/A
// simulations of docs/decisions.md check the level where it matters.

// avPair is the anytime-valid comparison of two arms: the estimate of
// Δ = μ_i − μ_j and its simultaneous interval.
type avPair struct {
	Est, Lo, Hi float64
	// LogE is the log of the mixture likelihood ratio of Δ = 0 (an
	// e-value): the test rejects Δ = 0 at level a when LogE ≥ ln(1/a).
	LogE float64
}

// avTests holds the pairwise comparisons of an experiment's arms.
type avTests struct {
	// OK is false when no test can be made yet; Why says why.
	OK  bool
	Why string
	// Pairs is the number of pairs, the Bonferroni divisor.
	Pairs int
	// Level is the per-pair level Alpha/Pairs.
	Level float64
	// Centre is the pooled mean c.
	Centre float64
	// Means are the inverse-propensity estimates of each arm's mean.
	Means []float64
	pair  [][]avPair
	// a and q are each arm's Σ (y−c)/p and its variance estimate, n the
	// number of units and r = Tau2·n: what any contrast of the arms'
	// means needs (contrast).
	a, q []float64
	n, r float64
}

// Pair returns the comparison of arm i with arm j (Δ = μ_i − μ_j).
func (t *avTests) Pair(i, j int) avPair { return t.pair[i][j] }

// PValue returns the always-valid p-value of Δ_ij = 0, multiplied by the
// number of pairs (Bonferroni), at most 1.
func (t *avTests) PValue(i, j int) float64 {
	return math.Min(1, float64(t.Pairs)*math.Exp(-math.Max(0, t.pair[i][j].LogE)))
}

// propensitiesLogged reports whether the arms carry inverse-propensity sums
// for their units: counters written before they existed have none.
func propensitiesLogged(arms []Arm) bool {
	for _, a := range arms {
		if a.Units > 0 && !(a.InvP >= float64(a.Units)) {
			// Σ 1/p ≥ the number of units, since p ≤ 1.
			return false
		}
	}
	return true
}

// newAVTests computes every pair's anytime-valid interval from the test
// arms (Input.TestArms; in.Arms without them).
func newAVTests(in Input, strategy string) *avTests {
	arms := in.testArms()
	k := len(arms)
	s := in.Settings
	t := &avTests{Pairs: k * (k - 1) / 2}
	t.Level = s.Alpha / float64(t.Pairs)
	if strategy == "ucb1" && s.WeightFloor == 0 {
		t.Why = "ucb1 without a weight floor assigns deterministically, so no always-valid comparison exists; set weight_floor above 0"
		return t
	}
	if !propensitiesLogged(arms) {
		t.Why = "the counters carry no logged propensities (data recorded before this version); no always-valid comparison can be made"
		return t
	}
	var n, sum float64
	for _, a := range arms {
		n += float64(a.Units)
		sum += a.Sum
	}
	if n == 0 {
		t.Why = "no units yet"
		return t
	}
	c := sum / n
	t.Centre = c
	// Per arm: A = Σ (y−c)/p and Q = Σ (y−c)²/p².
	// m2 is the pooled second moment of y around c (binary: c(1−c)): what
	// every arm's second moment is when the arms do not differ.
	sumSq := func(a Arm) float64 {
		if in.Metric == Binary {
			return float64(a.Conversions) // y² = y
		}
		return a.SumSquares
	}
	var pooledSq float64
	for _, a := range arms {
		pooledSq += sumSq(a)
	}
	m2 := math.Max(0, pooledSq/n-c*c)
	A := make([]float64, k)
	Q := make([]float64, k)
	t.Means = make([]float64, k)
	for i, a := range arms {
		A[i] = a.YInvP - c*a.InvP
		// The larger of the realised Σ(y−c)²/p² and the predictable
		// m2_arm·Σ1/w: while an arm has a small weight, few of its units carry
		// large weights, and the realised sum, which sees only the units
		// that came, underestimates the variance with high probability
		// (a rare arm with no conversion yet looks certain). The
		// predictable one counts every unit's chance of landing there.
		//
		// The arm's second moment around c is never taken below the pooled
		// one. Its own estimate comes from its own units, and for a binary
		// metric it moves with its mean (Σ(y−c)²/n = c² + ȳ(1−2c)): an arm
		// a bandit starved because it looked bad has few units, a low mean
		// and so a low variance, the very case where its frozen bad luck
		// would then look certain. Under "the arms do not differ" the pooled
		// moment is the right one; under a real difference it overstates a
		// worse arm's by (c − μ)(1−2c), little for the differences that are
		// hard to call, and an arm whose own moment is larger keeps it. The
		// floor also stops an arm with a handful of units (all zero, say)
		// from claiming a tiny variance. Without it, Thompson sampling on
		// two identical arms declared a false winner in 1.6% of runs
		// (ε-greedy 3.1%), with it 0.2% (0.1%): docs/decisions.md.
		armM2 := m2
		if a.Units > 0 {
			armM2 = math.Max(m2, (sumSq(a)-2*c*a.Sum)/float64(a.Units)+c*c)
		}
		Q[i] = math.Max(math.Max(0, a.Y2InvP2-2*c*a.YInvP2+c*c*a.InvP2), armM2*a.InvExpected)
		t.Means[i] = c + A[i]/n
	}
	r := s.Tau2 * n
	t.a, t.q, t.n, t.r = A, Q, n, r
	crit := 2*math.Log(1/t.Level) + math.Log1p(r)
	t.pair = make([][]avPair, k)
	for i := range t.pair {
		t.pair[i] = make([]avPair, k)
	}
	for i := range k {
		for j := range i {
			S := A[i] - A[j]
			V := Q[i] + Q[j]
			est := S / n
			var p avPair
			if V > 0 {
				half := math.Sqrt(V*(1+1/r)*crit) / n
				logE := -0.5*math.Log1p(r) + r*S*S/(2*V*(1+r))
				p = avPair{Est: est, Lo: est - half, Hi: est + half, LogE: logE}
			} else {
				// No variation among the two arms' units (no conversion
				// yet): no evidence either way.
				p = avPair{Est: est, Lo: math.Inf(-1), Hi: math.Inf(1)}
			}
			t.pair[i][j] = p
			t.pair[j][i] = avPair{Est: -p.Est, Lo: -p.Hi, Hi: -p.Lo, LogE: p.LogE}
		}
	}
	t.OK = true
	return t
}

// contrast returns the estimate and the anytime-valid interval, at level
// (two-sided, so each side holds at level/2 or better), of
//
//	μ_i − k·μ_j,
//
// the pairwise interval generalised to a weighted difference: the
// increments X_u = 1{A_u = i}(y−c)/p − k·1{A_u = j}(y−c)/p have mean
// (μ_i − c) − k(μ_j − c) whatever the allocation did, their sum is
// A_i − k·A_j and its variance estimate Q_i + k²·Q_j, and the boundary is
// the same normal mixture. The term (k−1)·c that the centre leaves is
// added with the pooled mean c as a constant: its error, (k−1) times the
// pooled mean's, is small beside the inverse-propensity one for the k near 1
// of a guardrail (k = 1 ± max_degradation). k = 1 is the pairwise interval.
func (t *avTests) contrast(i, j int, k, level float64) (est, lo, hi float64) {
	S := t.a[i] - k*t.a[j]
	V := t.q[i] + k*k*t.q[j]
	est = S/t.n + (1-k)*t.Centre
	if !(V > 0) {
		return est, math.Inf(-1), math.Inf(1)
	}
	half := math.Sqrt(V*(1+1/t.r)*(2*math.Log(1/level)+math.Log1p(t.r))) / t.n
	return est, est - half, est + half
}

// dominant returns the arm whose interval against every other arm lies above
// zero, or −1. At most one arm can be so. Arms marked in stopped (a tripped
// guardrail) can never be it, and need not be beaten: they are out of the
// running, and their comparisons lose their guarantee once they get no
// traffic. With fewer than two arms left there is no comparison to win.
func (t *avTests) dominant(stopped []bool) int {
	live := 0
	for _, s := range stopped {
		if !s {
			live++
		}
	}
	if live < 2 {
		return -1
	}
	for b := range t.pair {
		if stopped[b] {
			continue
		}
		ok := true
		for j := range t.pair {
			if j != b && !stopped[j] && !(t.pair[b][j].Lo > 0) {
				ok = false
				break
			}
		}
		if ok {
			return b
		}
	}
	return -1
}

// equivalent reports whether every arm's interval against arm l lies within
// ±delta.
func (t *avTests) equivalent(l int, delta float64) bool {
	if !(delta > 0) {
		return false
	}
	for j := range t.pair {
		if j != l && !(t.pair[j][l].Lo >= -delta && t.pair[j][l].Hi <= delta) {
			return false
		}
	}
	return true
}

// signedPct formats a relative change as "+12.3%".
func signedPct(x float64) string {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		if x < 0 {
			return "−∞"
		}
		return "+∞"
	}
	s := pct(math.Abs(x))
	if x < 0 {
		return "−" + s
	}
	return "+" + s
}

// relInterval describes the difference of arm i to arm j relative to j's
// observed mean ("+12.0% [+4.1%, +21.3%]"), or in the metric's units when j's
// mean is zero. The point is the observed difference (what the results table
// shows as the lift); the interval is the anytime-valid one. Under fixed
// weights the two estimates coincide; under adaptive allocation the
// inverse-propensity one, unbiased but noisier, only shapes the interval.
func relInterval(t *avTests, i, j int, means []float64) string {
	p, ref := t.pair[i][j], means[j]
	est := means[i] - means[j]
	if ref > 0 {
		return fmt.Sprintf("%s [%s, %s]", signedPct(est/ref), signedPct(p.Lo/ref), signedPct(p.Hi/ref))
	}
	return fmt.Sprintf("%s [%s, %s] (absolute)", num(est), num(p.Lo), num(p.Hi))
}
