package engine

import (
	"fmt"
	"math"
)

// A prior on lifts learned from a team's finished experiments.
//
// Settings.PriorLiftSD fixes the spread of true lifts; it helps only when
// it is near the truth (docs/decisions.md: 0.1 against true effects of 3%
// leaves 9–15% of declared winners wrong). A team that has finished
// experiments has measured that spread already. The model is hierarchical:
// every comparison's true log lift θ is drawn from
//
//	(1 − ε)·N(0, τ²) + ε·N(0, 1)
//
// (most lifts of a typical size τ, a share ε of rare large ones: the
// fixed bug, the redesign), each finished comparison i saw an estimate
// y_i ~ N(θ_i, s_i²), and τ and ε have flat priors on (0, 1] and [0, ½].
// A LiftPrior is their posterior on a grid; a new comparison (lr, se)
// updates it once more with its own marginal likelihood, and P(θ > 0) is
// the mixture, over the grid and the two components, of the normal
// posteriors priorBeats uses for a fixed spread. Uncertainty about τ and ε
// is carried, not plugged in: a short history leaves them wide, and a wide
// prior shrinks little. The second component keeps a lift far outside the
// history declarable: with ε = 0 a history of lifts within ±0.2% would hold
// back a fifteenfold lift at five standard errors as a coin toss.
//
// The likelihood of the history does not depend on when each experiment
// was stopped or how it allocated, so data-dependent stopping and bandit
// allocation do not bias the posterior (the stopping rule factors out of
// the likelihood), although each experiment's own estimate is exaggerated
// when it stopped at a winner.

// MinLiftHistory is the number of finished comparisons below which no
// prior is learned: with fewer, the posterior is the flat priors' shape
// more than the team's.
const MinLiftHistory = 20

// wideLiftSD is the spread of the rare large lifts (on the log scale: a
// ratio of e ≈ 2.7 at one standard deviation).
const wideLiftSD = 1.0

// liftTaus are the grid points of τ, geometric from 1e-4 to 1 (relative
// lifts of ±0.01% to ±100%), liftEps those of ε, and liftLogPrior the log
// of each cell's width under the flat priors (trapezoid weights), cell
// (i, j) at i·len(liftEps) + j.
var liftTaus, liftEps, liftLogPrior = func() ([]float64, []float64, []float64) {
	const nt, ne = 200, 51
	taus, eps := make([]float64, nt), make([]float64, ne)
	for i := range taus {
		taus[i] = 1e-4 * math.Pow(1e4, float64(i)/float64(nt-1))
	}
	for j := range eps {
		eps[j] = 0.5 * float64(j) / float64(ne-1)
	}
	width := func(g []float64, i int) float64 { return (g[min(i+1, len(g)-1)] - g[max(i-1, 0)]) / 2 }
	lp := make([]float64, nt*ne)
	for i := range taus {
		for j := range eps {
			lp[i*ne+j] = math.Log(width(taus, i) * width(eps, j))
		}
	}
	return taus, eps, lp
}()

// LiftObservation is one finished comparison: the estimated log ratio of a
// variant's mean to its control's and its standard error.
type LiftObservation struct {
	LogLift float64
	SE      float64
}

// LiftObservationOf is the comparison of v with c as priorBeats makes it
// (katz for binary metrics, the delta method on the log scale otherwise);
// false when the ratio cannot be estimated.
func LiftObservationOf(m Metric, v, c Arm) (LiftObservation, bool) {
	if v.Units <= 0 || c.Units <= 0 {
		return LiftObservation{}, false
	}
	var lr, se float64
	if m == Binary {
		lr, se = katz(v, c)
	} else {
		r, s, ok := meanRatio(m, v, c)
		if !ok || !(r > 0) {
			return LiftObservation{}, false
		}
		lr, se = math.Log(r), s/r
	}
	if !usable(lr, se) {
		return LiftObservation{}, false
	}
	return LiftObservation{LogLift: lr, SE: se}, true
}

func usable(lr, se float64) bool {
	return se > 0 && !math.IsInf(se, 0) && !math.IsNaN(lr) && !math.IsInf(lr, 0)
}

// LiftPrior is the posterior of τ and ε given a history of comparisons.
type LiftPrior struct {
	// Comparisons is the number of comparisons it was learned from.
	Comparisons int
	// logw is the log posterior weight of each grid cell (unnormalised).
	logw []float64
	// sd is τ's posterior median (SD), fixed once learned.
	sd float64
}

// LearnLiftPrior returns the posterior from the history, or nil with fewer
// than MinLiftHistory usable comparisons.
func LearnLiftPrior(history []LiftObservation) *LiftPrior {
	p := &LiftPrior{logw: append([]float64(nil), liftLogPrior...)}
	ll := make([]float64, len(p.logw))
	for _, o := range history {
		if !usable(o.LogLift, o.SE) {
			continue
		}
		p.Comparisons++
		cellLikelihoods(o.LogLift, o.SE, ll, nil)
		for k, l := range ll {
			p.logw[k] += l
		}
	}
	if p.Comparisons < MinLiftHistory {
		return nil
	}
	p.sd = median(weights(p.logw))
	return p
}

// logNormal is the log density of N(0, v) at y.
func logNormal(y, v float64) float64 { return -0.5*math.Log(2*math.Pi*v) - 0.5*y*y/v }

// cellLikelihoods sets ll[k], for every grid cell k (τ = liftTaus[k/len(liftEps)]),
// to the marginal log likelihood of an estimate y with standard error s
// there — the mixture of N(y; 0, τ² + s²) and N(y; 0, 1 + s²) with weights
// 1 − ε and ε — and, when share is not nil, share[k] to the part of it the
// narrow component explains.
func cellLikelihoods(y, s float64, ll, share []float64) {
	wide := logNormal(y, wideLiftSD*wideLiftSD+s*s)
	ne := len(liftEps)
	for i, t := range liftTaus {
		narrow := logNormal(y, t*t+s*s)
		m := math.Max(narrow, wide)
		a, b := math.Exp(narrow-m), math.Exp(wide-m)
		for j, e := range liftEps {
			pn, pw := (1-e)*a, e*b
			ll[i*ne+j] = m + math.Log(pn+pw)
			if share != nil {
				share[i*ne+j] = pn / (pn + pw)
			}
		}
	}
}

// weights returns the normalised posterior weights of logw.
func weights(logw []float64) []float64 {
	m := math.Inf(-1)
	for _, l := range logw {
		m = math.Max(m, l)
	}
	w := make([]float64, len(logw))
	sum := 0.0
	for i, l := range logw {
		w[i] = math.Exp(l - m)
		sum += w[i]
	}
	for i := range w {
		w[i] /= sum
	}
	return w
}

// median is τ's median under the normalised cell weights w.
func median(w []float64) float64 {
	ne := len(liftEps)
	acc := 0.0
	for i := range liftTaus {
		for j := range ne {
			acc += w[i*ne+j]
		}
		if acc >= 0.5 {
			return liftTaus[i]
		}
	}
	return liftTaus[len(liftTaus)-1]
}

// SD is τ's posterior median: the typical spread of true lifts the history
// points to, for people to read (the decisions integrate over the grid).
func (p *LiftPrior) SD() float64 { return p.sd }

// Beats is the posterior probability that a comparison whose estimated log
// ratio is lr, with standard error se, has a positive true lift: the
// posterior updated by this comparison, mixed over the grid and, in each
// cell, over the two components (each weighted by how well it explains lr).
func (p *LiftPrior) Beats(lr, se float64) float64 {
	if !usable(lr, se) {
		return 0.5
	}
	// This comparison's likelihood, then the history's posterior on top.
	logw, share := make([]float64, len(p.logw)), make([]float64, len(p.logw))
	cellLikelihoods(lr, se, logw, share)
	for k := range logw {
		logw[k] += p.logw[k]
	}
	qWide := normalBeats(wideLiftSD)(lr, se)
	ne := len(liftEps)
	var qNarrow float64
	q := 0.0
	for k, w := range weights(logw) {
		if k%ne == 0 {
			// A new τ: the narrow component's posterior given it.
			qNarrow = normalBeats(liftTaus[k/ne])(lr, se)
		}
		q += w * (share[k]*qNarrow + (1-share[k])*qWide)
	}
	return q
}

// liftPrior is the prior on lifts a winner must also convince, if any:
// P(θ > 0) for an estimate, the spread it assumes (for the reason) and
// where it comes from.
func (s Settings) liftPrior() (beats func(lr, se float64) float64, sd float64, source string) {
	switch {
	case s.PriorLiftSD > 0:
		return normalBeats(s.PriorLiftSD), s.PriorLiftSD, "prior_lift_sd"
	case s.LearnedPrior != nil:
		p := s.LearnedPrior
		return p.Beats, p.SD(), fmt.Sprintf("learned from %d finished comparisons", p.Comparisons)
	}
	return nil, 0, ""
}
