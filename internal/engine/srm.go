package engine

import (
	"math"
)

// Sequential sample ratio mismatch test against the logged propensities.
//
// Every unit that comes is assigned arm k with the probability w it had at that
// moment (the plan's weight, logged with the assignment). Arm.Expected adds up w
// over every unit of the experiment and Arm.ExpectedSquares w², so for each arm
//
//	M = Units − Expected            (a martingale: each unit adds 1{k} − w, mean 0)
//	V = Expected − ExpectedSquares  (its predictable variance, Σ w(1 − w))
//
// whatever the strategy does with the weights between units, as long as the logged
// w is the probability the unit was assigned with. A unit lost between the
// assignment and the counters (a crash, a filter, a client that drops a variant),
// or a logged w that is not the real probability, makes M drift.
//
// The increments 1{k} − w lie in [−w, 1 − w]: at most 1 above and 1 below zero. By
// Bennett's inequality, for every λ ≥ 0 both exp(λM − ψ(λ)V) and exp(−λM − ψ(λ)V),
// with ψ(λ) = e^λ − λ − 1, are nonnegative supermartingales (the process is
// sub-Poisson with scale 1 in both directions; Howard, Ramdas, McAuliffe & Sekhon,
// "Time-uniform, nonparametric, nonasymptotic confidence sequences", 2021, and
// "Time-uniform Chernoff bounds via nonnegative supermartingales", 2020). A mixture
// of them over λ with fixed weights is one too, and so is the average of the two
// directions: srmLogE is that e-process, E_0 = 1. By Ville's inequality
// P(E ever ≥ 1/α) ≤ α with no SRM, however often it is looked at.
//
// The mixture (srmGrid) puts 90% of its weight on a half-normal over λ with scale
// 1/16, discretised (a normal mixture of precision ρ = 256, in the Gaussian limit),
// which makes the boundary tightest around V ≈ 2,000–10,000: where a loss of a few
// percent of one arm's units can be seen at all (5% of one arm's units lost drifts M
// by about 0.05·V, against a noise of √V; see docs/decisions.md). The other 10%
// sits on λ from 0.5 to 3, so that a gross mismatch (an arm that receives nothing)
// alerts within a few dozen units. At level 0.001 with two arms an alert needs
// |M| ≥ 4.5 √V at V = 1,000, 4.3 √V at V = 5,000, 4.4 √V at 25,000 and 4.7 √V at
// 10⁶ (one fixed-horizon look would need 3.3 √V).
//
// Several arms: each arm's e-value is compared with K/α (Bonferroni), except with
// two arms, whose statistics are the same martingale up to its sign (the weights
// add up to 1): one test, at α.

// srmNode is one λ of the mixture, its log weight and ψ(λ) = e^λ − λ − 1.
type srmNode struct{ lambda, logW, psi float64 }

// srmGrid is the mixing distribution over λ; its weights add up to at most 1.
// The half-normal part is cut into cells with a constant ratio of 1.1 between
// their ends, from 1e-7 (so that the test keeps its power at any V up to 1e12)
// to 6 scales, each cell's mass (2(Φ(hi/s) − Φ(lo/s))) put on its geometric
// midpoint: a λ within 5% of any λ in the range, which costs at most
// z²·0.05²/2 ≈ 0.02 of log e-value against the continuous mixture.
var srmGrid = func() []srmNode {
	const (
		scale = 1.0 / 16 // of the half-normal part
		tail  = 0.1      // weight of the large-λ part
		ratio = 1.1
	)
	var g []srmNode
	for lo := 1e-7; lo < 6*scale; lo *= ratio {
		hi := lo * ratio
		mass := math.Erf(hi/scale/math.Sqrt2) - math.Erf(lo/scale/math.Sqrt2)
		g = append(g, srmNode{lambda: math.Sqrt(lo * hi), logW: math.Log((1 - tail) * mass)})
	}
	large := []float64{0.5, 0.75, 1, 1.5, 2, 3}
	for _, l := range large {
		g = append(g, srmNode{lambda: l, logW: math.Log(tail / float64(len(large)))})
	}
	for i := range g {
		g[i].psi = math.Expm1(g[i].lambda) - g[i].lambda
	}
	return g
}()

// srmLogE returns the log of the two-sided mixture e-value of a martingale m with
// predictable variance v: ½ Σ_j w_j [exp(λ_j m − ψ(λ_j) v) + exp(−λ_j m − ψ(λ_j) v)].
func srmLogE(m, v float64) float64 {
	v = max(v, 0)
	// Log-sum-exp in one pass: sum is Σ exp(t − hi) over the terms so far.
	hi, sum := math.Inf(-1), 0.0
	for _, n := range srmGrid {
		for _, t := range [2]float64{n.logW + n.lambda*m - n.psi*v, n.logW - n.lambda*m - n.psi*v} {
			if t > hi {
				sum = sum*math.Exp(hi-t) + 1
				hi = t
			} else {
				sum += math.Exp(t - hi)
			}
		}
	}
	return hi + math.Log(sum) - math.Ln2
}

// SequentialSRM tests the arms' assignment counts against their logged
// propensities (Expected, ExpectedSquares) with the anytime-valid test above, at
// level alpha (SRMAlertP in the results). PValue is an always-valid p-value: with
// no mismatch, the chance that it is ever at or below alpha, however often it is
// computed while units come, is at most alpha, for every strategy and any
// movement of the weights. Alert is PValue ≤ alpha. Arms that carry no logged
// propensities (old data: Expected all zero) give a nil PValue and no alert.
//
// Units and Expected must count the same units: every unit in Units has added its
// weights to every arm's Expected, so that Σ Units = Σ Expected. An experiment with
// units from before the propensities were logged must pass only the units counted
// since, or it will show those units as a mismatch.
func SequentialSRM(arms []Arm, alpha float64) SRM {
	var total float64
	for _, a := range arms {
		total += a.Expected
	}
	if len(arms) < 2 || !(total > 0) {
		return SRM{}
	}
	tests := float64(len(arms))
	if len(arms) == 2 && mirrored(arms[0], arms[1]) {
		tests = 1
	}
	best := math.Inf(-1)
	for _, a := range arms[:int(tests)] {
		m := float64(a.Units) - a.Expected
		v := a.Expected - a.ExpectedSquares
		best = max(best, srmLogE(m, v))
	}
	p := math.Exp(min(0, math.Log(tests)-best))
	return SRM{PValue: &p, Alert: p <= alpha}
}

// mirrored reports whether two arms' SRM martingales are the same up to the sign,
// as they are when the two weights add up to 1 for every unit: one test covers
// both.
func mirrored(a, b Arm) bool {
	m := float64(a.Units) - a.Expected + float64(b.Units) - b.Expected
	v := (a.Expected - a.ExpectedSquares) - (b.Expected - b.ExpectedSquares)
	tol := 1e-6 * (1 + a.Expected + b.Expected)
	return math.Abs(m) <= tol && math.Abs(v) <= tol
}
