package engine

import (
	"math"
	"math/rand/v2"

	"github.com/samplit/samplit/internal/engine/stats"
	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat/distuv"
)

// posterior is the distribution of one variant's θ that allocation draws from and
// P(best) integrates: Beta(a, b) for binary metrics; for continuous ones a normal
// N(mu, sd²) of θ, or of ln θ when logScale (the zero-inflated log-normal model).
// The Thompson samplers draw mu + sd·Z and compare the draws across arms, so every
// arm of one experiment is on the same scale (a common monotone transform does not
// change which arm is the largest).
type posterior struct {
	normal   bool
	a, b     float64
	mu, sd   float64
	logScale bool
}

func (p posterior) mean() float64 {
	switch {
	case !p.normal:
		return p.a / (p.a + p.b)
	case p.logScale:
		return math.Exp(p.mu + p.sd*p.sd/2)
	}
	return p.mu
}

func (p posterior) draw(r *rand.Rand) float64 {
	switch {
	case !p.normal:
		return stats.Beta(r, p.a, p.b)
	case p.logScale:
		return math.Exp(p.mu + p.sd*r.NormFloat64())
	}
	return p.mu + p.sd*r.NormFloat64()
}

func (p posterior) quantile(q float64) float64 {
	switch {
	case !p.normal:
		return stats.BetaQuantile(q, p.a, p.b)
	case p.logScale:
		return math.Exp(p.mu + p.sd*stats.NormalQuantile(q))
	}
	return p.mu + p.sd*stats.NormalQuantile(q)
}

// posteriors builds one posterior per arm from counts (possibly discounted).
//
// Binary: Beta(α0 + c, β0 + n − c). An arm with no units at all is given the
// posterior of all arms' units pooled, Beta(α0 + Σc, β0 + Σ(n − c)): before its
// first unit a variant is believed to be like the average variant, so its P(best)
// (and the share of traffic Thompson sampling gives it) is not above the others'
// merely because it is unknown. (Its shown interval is [0, 1]: binaryIntervals.)
//
// With Settings.PooledPriorCV (campaigns and funnels), the prior of the arms
// with units is pooledPrior instead of Beta(α0, β0).
//
// Continuous: the t model (continuousPosteriors); counts carry no log statistics,
// so the log-normal model is not available here.
func posteriors(m Metric, cs []counts, s Settings) []posterior {
	ps := make([]posterior, len(cs))
	if m == Binary {
		var pn, pc float64
		for _, c := range cs {
			pn, pc = pn+c.n, pc+c.c
		}
		a0, b0 := s.PriorAlpha, s.PriorBeta
		if s.PooledPriorCV > 0 {
			a0, b0 = pooledPrior(cs, s)
		}
		for i, c := range cs {
			if c.n > 0 {
				ps[i] = posterior{a: a0 + c.c, b: b0 + c.n - c.c}
			} else {
				ps[i] = posterior{a: s.PriorAlpha + pc, b: s.PriorBeta + pn - pc}
			}
		}
		return ps
	}
	st := make([]valueStats, len(cs))
	for i, c := range cs {
		st[i] = valueStats{n: c.n, sum: c.sum, sumSq: c.sumSq,
			logKnown: c.logKnown, pos: c.pos, neg: c.neg, logSum: c.logSum, logSumSq: c.logSumSq}
	}
	ps, _ = continuousPosteriors(st)
	return ps
}

// armPosteriors is posteriors from the arms' full statistics: for continuous
// metrics it can use the log-normal model (it needs Positive, Negative, LogSum and
// LogSumSquares, which counts do not carry). It also returns each arm's 95%
// interval (intervals).
func armPosteriors(m Metric, arms []Arm, s Settings) ([]posterior, [][2]float64) {
	if m == Binary {
		cs := make([]counts, len(arms))
		for i, a := range arms {
			cs[i] = armCounts(a)
		}
		return posteriors(m, cs, s), binaryIntervals(arms, s)
	}
	st := make([]valueStats, len(arms))
	for i, a := range arms {
		st[i] = valueStats{
			n: float64(a.Units), sum: a.Sum, sumSq: a.SumSquares, logKnown: true,
			pos: float64(a.Positive), neg: float64(a.Negative), logSum: a.LogSum, logSumSq: a.LogSumSquares,
		}
	}
	return continuousPosteriors(st)
}

// intervals returns each arm's equal-tailed 95% credible interval, as Analyze
// reports it (see docs/engine.md, "Numbers").
func intervals(m Metric, arms []Arm, s Settings) [][2]float64 {
	if m == Binary {
		return binaryIntervals(arms, s)
	}
	_, ci := armPosteriors(m, arms, s)
	return ci
}

// binaryIntervals: the equal-tailed 95% interval of Beta(α0 + c, β0 + n − c), with
// the lower end at 0 when no unit converted and the upper end at 1 when every unit
// did (as the Jeffreys and Clopper–Pearson intervals do; otherwise an observed rate
// of 0 or 1 would lie outside its own interval). With no units it is [0, 1].
func binaryIntervals(arms []Arm, s Settings) [][2]float64 {
	out := make([][2]float64, len(arms))
	for i, a := range arms {
		n, c := float64(a.Units), float64(a.Conversions)
		p := posterior{a: s.PriorAlpha + c, b: s.PriorBeta + n - c}
		lo, hi := p.quantile(0.025), p.quantile(0.975)
		if c == 0 {
			lo = 0
		}
		if c == n {
			hi = 1
		}
		out[i] = [2]float64{lo, hi}
	}
	return out
}

// valueStats are one arm's statistics of a continuous metric, as floats so that
// discounted counts fit. The log-normal ones are known only from full Arm
// statistics (logKnown).
type valueStats struct {
	n, sum, sumSq              float64
	logKnown                   bool
	pos, neg, logSum, logSumSq float64
}

// continuousPosteriors builds the posteriors and 95% intervals of continuous arms,
// all under one model chosen for the experiment (useLogNormal): the zero-inflated
// log-normal model for non-negative, zero-inflated or strongly skewed metrics
// (revenue), else the t model. Every posterior is a normal (of θ, or of ln θ) with
// the same 2.5% and 97.5% quantiles as the model's exact posterior, so that the
// interval shown, the Thompson draws and P(best) describe one distribution; the
// Thompson samplers can only draw normals (mu + sd·Z), hence the matching.
func continuousPosteriors(st []valueStats) ([]posterior, [][2]float64) {
	pool := pooledValues(st)
	if useLogNormal(st) {
		if ps, ci, ok := logNormalPosteriors(st, pool); ok {
			return ps, ci
		}
	}
	return tPosteriors(st, pool)
}

// pooled are all arms' values taken together: their mean and per-unit variance.
type pooled struct {
	n, mean, variance float64
}

func pooledValues(st []valueStats) pooled {
	var n, sum, sumSq float64
	for _, s := range st {
		n, sum, sumSq = n+s.n, sum+s.sum, sumSq+s.sumSq
	}
	p := pooled{n: n}
	if n > 0 {
		p.mean = sum / n
	}
	if n >= 2 {
		p.variance = math.Max(0, sumSq-sum*p.mean) / (n - 1)
	}
	if !(p.variance > 0) {
		if n >= 2 {
			// Every value equal: a tiny but proper spread on the metric's scale.
			p.variance = 1e-12 * math.Max(1, p.mean*p.mean)
		} else {
			// At most one value: nothing says how spread values are; assume a
			// coefficient of variation of 1 (scale 1 around zero).
			p.variance = math.Max(1, p.mean*p.mean)
		}
	}
	return p
}

// normal975 is the 97.5% standard normal quantile.
const normal975 = 1.959963984540054

// tQuantile975 is the 97.5% quantile of Student's t with nu degrees of freedom:
// a table for integer ν ≤ 40 (gonum's values, exact to ~1e-15), the Cornish–Fisher
// expansion to 1/ν⁴ above (Abramowitz & Stegun 26.7.5; relative error below 4e-9
// from ν = 40 on, tested), and gonum's inverse incomplete beta for other ν below 40
// (discounted counts). gonum alone costs ~20 µs per call, too much for every Plan.
func tQuantile975(nu float64) float64 {
	switch {
	case nu >= 40:
		x, v := normal975, 1/nu
		x2 := x * x
		g1 := (x2 + 1) * x / 4
		g2 := ((5*x2+16)*x2 + 3) * x / 96
		g3 := (((3*x2+19)*x2+17)*x2 - 15) * x / 384
		g4 := ((((79*x2+776)*x2+1482)*x2-1920)*x2 - 945) * x / 92160
		return x + v*(g1+v*(g2+v*(g3+v*g4)))
	case nu >= 1 && nu == math.Trunc(nu):
		return t975[int(nu)-1]
	}
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: nu}.Quantile(0.975)
}

// t975[ν−1] is the 97.5% quantile of Student's t with ν degrees of freedom.
var t975 = [40]float64{
	12.706204736174692, 4.3026527297494619, 3.1824463052837082, 2.7764451051977934,
	2.570581835636315, 2.4469118511449692, 2.3646242515927849, 2.3060041352041662,
	2.2621571627982049, 2.2281388519862744, 2.2009851600916392, 2.178812829667228,
	2.1603686564627926, 2.1447866879178026, 2.1314495455597733, 2.1199052992212533,
	2.1098155778333161, 2.1009220402410373, 2.0930240544083101, 2.0859634472658626,
	2.0796138447276817, 2.0738730679040236, 2.0686576104190491, 2.0638985616280259,
	2.0595385527532959, 2.0555294386428717, 2.0518305164802881, 2.0484071417952427,
	2.045229642132703, 2.0422724563012391, 2.0395134463964077, 2.0369333434601002,
	2.0345152974493401, 2.0322445093177182, 2.030107928250342, 2.0280940009804476,
	2.0261924630291102, 2.024394163911968, 2.0226909200367618, 2.0210753903062724,
}

// tPosteriors is the t model: values of each arm i.i.d. normal with unknown mean
// and variance, a flat prior on the mean and, on the variance, a scaled inverse χ²
// prior worth one degree of freedom at the pooled variance v0 of all arms. The
// posterior of the mean is then Student's t with ν = n degrees of freedom around
// x̄ with scale² = (SS + v0)/(ν·n), SS the arm's sum of squared deviations: the
// classical t interval (n − 1 df) with one pseudo-degree of freedom borrowed from
// the pool, which keeps the posterior proper when all of an arm's values are equal
// and defines it at n = 1 (a Cauchy of scale √v0 around the one value: an interval
// ±12.7 pooled standard deviations wide, not a confident one).
//
// An arm with no units is allocated as the pooled data (t with ν = N around the
// pooled mean, scale √(v0/N)), like binary arms; its interval is the prior's,
// what one unit would give: pooled mean ± t₁·√v0.
func tPosteriors(st []valueStats, pool pooled) ([]posterior, [][2]float64) {
	ps := make([]posterior, len(st))
	ci := make([][2]float64, len(st))
	for i, s := range st {
		var mean, nu, scale float64
		if s.n > 0 {
			mean = s.sum / s.n
			ss := math.Max(0, s.sumSq-s.sum*mean)
			nu = s.n
			scale = math.Sqrt((ss + pool.variance) / nu / s.n)
			q := tQuantile975(nu)
			ci[i] = [2]float64{mean - q*scale, mean + q*scale}
		} else {
			mean = pool.mean
			nu = math.Max(pool.n, 1)
			scale = math.Sqrt(pool.variance / nu)
			half := tQuantile975(1) * math.Sqrt(pool.variance)
			ci[i] = [2]float64{mean - half, mean + half}
		}
		ps[i] = posterior{normal: true, mu: mean, sd: tQuantile975(nu) * scale / normal975}
	}
	return ps, ci
}

// Model choice. The log-normal model needs the log statistics of every arm, and
// they must be consistent (Positive + Negative ≤ Units, and a positive sum only
// with positive values: data recorded before the statistics existed fails this).
// It is used when no value is negative, at least two are positive, and either some
// units have the value zero (a point mass the normal model cannot represent: most
// units of a revenue metric buy nothing) or the positive values are strongly skewed
// (log-sd ≥ skewedLogSD). Otherwise values are near-symmetric or may be negative,
// and the t model is used.
const skewedLogSD = 0.5 // a log-normal skewness of 1.75

func useLogNormal(st []valueStats) bool {
	var n, pos, zeros, s1, s2 float64
	for _, s := range st {
		if !s.logKnown || s.neg != 0 || s.pos < 0 || s.pos > s.n || (s.pos == 0 && s.sum != 0) || s.sum < 0 {
			return false
		}
		n, pos, zeros = n+s.n, pos+s.pos, zeros+s.n-s.pos
		s1, s2 = s1+s.logSum, s2+s.logSumSq
	}
	if pos < 2 || n < 2 {
		return false
	}
	if zeros > 0 {
		return true
	}
	v := (s2 - s1*s1/pos) / (pos - 1)
	return v >= skewedLogSD*skewedLogSD
}

// logNormalPosteriors is the zero-inflated log-normal model: a unit's value is 0
// with probability 1 − π, else log-normal with parameters (μ, σ²), so the mean is
// θ = π·exp(μ + σ²/2) and
//
//	ln θ = ln π + μ + σ²/2.
//
// Priors: Jeffreys Beta(½, ½) on π; on (μ, σ²) the conjugate normal–inverse-χ²
// worth one positive value (κ0 = ν0 = 1) at the pooled mean and variance of the logs
// of all arms' positive values. Posteriors: π ~ Beta(k + ½, n − k + ½) with k
// positive values among n; σ² ~ νn·σn²/χ²(νn) with νn = k + 1; μ | σ² ~ N(μn, σ²/κn)
// with κn = k + 1. The distribution of ln θ is computed, not approximated by its
// moments: σ² and ln π are integrated over by the trapezoid rule (logThetaMixture),
// which converges geometrically for such smooth integrands. The 2.5% and 97.5% quantiles of that
// mixture are the interval (exponentiated); the posterior handed to allocation is
// the normal of ln θ with the same quantiles.
//
// Boundary rules: an arm without positive values has the lower end 0 (its observed
// mean, like a binary arm without conversions). Model check: if an arm's observed
// mean falls outside its interval, the model does not describe the data (say one
// enormous value among small ones) and ok is false, so that the caller uses the t
// model for every arm.
func logNormalPosteriors(st []valueStats, _ pooled) (ps []posterior, ci [][2]float64, ok bool) {
	var k, s1, s2 float64
	for _, s := range st {
		k, s1, s2 = k+s.pos, s1+s.logSum, s2+s.logSumSq
	}
	m0 := s1 / k
	v0 := math.Max(0, s2-s1*m0) / (k - 1)
	ps = make([]posterior, len(st))
	ci = make([][2]float64, len(st))
	for i, s := range st {
		kn := s.pos + 1
		mun, ss := m0, 0.0
		if s.pos > 0 {
			ybar := s.logSum / s.pos
			mun = (m0 + s.pos*ybar) / kn
			ss = math.Max(0, s.logSumSq-s.logSum*ybar) + s.pos/kn*(ybar-m0)*(ybar-m0)
		}
		nun := s.pos + 1
		scale := v0 + ss // νn·σn²
		// The quantiles of a cheap version (ln π normal) start Newton's method on
		// the full mixture, which then needs one or two steps.
		alpha, beta := s.pos+0.5, s.n-s.pos+0.5
		rough := logThetaMixture(nun, scale, kn, mun, alpha, beta, false)
		mix := logThetaMixture(nun, scale, kn, mun, alpha, beta, true)
		lo := mix.quantileFrom(0.025, rough.quantile(0.025))
		hi := mix.quantileFrom(0.975, rough.quantile(0.975))
		ps[i] = posterior{normal: true, logScale: true, mu: (lo + hi) / 2, sd: (hi - lo) / (2 * normal975)}
		ci[i] = [2]float64{math.Exp(lo), math.Exp(hi)}
		if s.pos == 0 {
			ci[i][0] = 0
		}
		if s.n > 0 {
			if mean := s.sum / s.n; mean < ci[i][0] || mean > ci[i][1] {
				return nil, nil, false
			}
		}
	}
	return ps, ci, true
}

// normalMixture is Σ w_j N(c_j, r_j²).
type normalMixture struct {
	w, c, r []float64
}

// logThetaMixture returns the posterior of ln θ = ln π + μ + σ²/2 as a mixture of
// normals, where π ~ Beta(alpha, beta), σ² ~ scale/χ²(nu) and μ | σ² ~ N(mun, σ²/kn):
// given σ² and π, ln θ is N(ln π + mun + σ²/2, σ²/kn). Both σ² and ln π are
// integrated by the trapezoid rule on nodes spread uniformly over the range where
// their densities are within e⁻²⁵ of the peak: σ² in u = ln χ² (density ∝
// exp(nu·u/2 − e^u/2)), π in v = ln π (density ∝ e^{αv}(1 − e^v)^{β−1}, log-concave
// for β ≥ 1, which holds as soon as one unit is 0), 12 or 24 nodes each. Each
// normal component is at least 2/3 of the v-spacing wide, so that the discrete v
// nodes blur into the
// continuous convolution (the trapezoid rule's error on a Gaussian of width w and
// step h is ~exp(−2π²w²/h²)); this widens only components narrower than that, when
// the positive values hardly vary. Without zeros (β < 1, π piled against 1), or
// when !exactPi (a cheap first version whose quantiles start Newton's method on
// the full one), ln π is replaced by the normal of its mean and variance
// (digamma, trigamma).
func logThetaMixture(nu, scale, kn, mun, alpha, beta float64, exactPi bool) normalMixture {
	const cut = 25 // weights below e⁻²⁵ of the peak are dropped
	// Nodes: 24 each where few values make the densities skewed and heavy-tailed;
	// 12 from 30 on, where both are near-normal and the trapezoid rule with a step
	// of ~1.2 sd is already exact to ~1e-6 (the Monte Carlo test cannot tell 12
	// from 24 there; with 3 or 6 positive values 12 nodes err by 0.01).
	sigmaNodes, piNodes := 24, 24
	if nu >= 30 {
		sigmaNodes = 12
	}
	if alpha >= 30 {
		piNodes = 12
	}
	// σ² nodes.
	ustar := math.Log(nu)
	relU := func(u float64) float64 { return nu/2*(u-ustar) - (math.Exp(u)-nu)/2 }
	edgeU := func(dir float64) float64 {
		d := math.Sqrt(2/nu) * 4
		for i := 0; i < 60 && relU(ustar+dir*d) > -cut; i++ {
			d *= 1.25
		}
		return ustar + dir*d
	}
	ulo, uhi := edgeU(-1), edgeU(1)
	sw, s2 := make([]float64, sigmaNodes), make([]float64, sigmaNodes)
	for j := range sigmaNodes {
		u := ulo + (uhi-ulo)*float64(j)/float64(sigmaNodes-1)
		sw[j], s2[j] = math.Exp(relU(u)), scale*math.Exp(-u)
	}
	// ln π nodes.
	var pw, pv []float64
	floor := 0.0
	exactPi = exactPi && beta >= 1
	if exactPi {
		vstar := math.Log(alpha / (alpha + beta - 1))
		relV := func(v float64) float64 {
			return alpha*(v-vstar) + (beta-1)*(math.Log(-math.Expm1(v))-math.Log(-math.Expm1(vstar)))
		}
		sd := math.Sqrt(trigamma(alpha) - trigamma(alpha+beta))
		// Left: step out, then bisect; right: bisect between the mode and 0.
		lo := vstar - sd
		for i := 0; i < 200 && relV(lo) > -cut; i++ {
			lo = vstar - 2*(vstar-lo)
		}
		bisect := func(in, out float64) float64 {
			for range 60 {
				mid := (in + out) / 2
				if relV(mid) > -cut {
					in = mid
				} else {
					out = mid
				}
			}
			return out
		}
		lo = bisect(vstar, lo)
		hi := vstar
		if beta > 1 {
			hi = bisect(vstar, math.Nextafter(0, -1))
		}
		pw, pv = make([]float64, piNodes), make([]float64, piNodes)
		for m := range piNodes {
			v := lo + (hi-lo)*float64(m)/float64(piNodes-1)
			pw[m], pv[m] = math.Exp(relV(v)), v
		}
		floor = (hi - lo) / float64(piNodes-1) / 1.5
	} else {
		pw = []float64{1}
		pv = []float64{mathext.Digamma(alpha) - mathext.Digamma(alpha+beta)}
		floor = math.Sqrt(trigamma(alpha) - trigamma(alpha+beta))
	}
	nc := len(sw) * len(pw)
	m := normalMixture{w: make([]float64, 0, nc), c: make([]float64, 0, nc), r: make([]float64, 0, nc)}
	total := 0.0
	for j := range sw {
		r := math.Sqrt(s2[j] / kn)
		if !exactPi {
			r = math.Hypot(r, floor) // ln π's normal folded in
		} else {
			r = math.Max(r, floor)
		}
		for k := range pw {
			w := sw[j] * pw[k]
			if !(w > 1e-10) { // both weights are relative to their peak, 1
				continue
			}
			m.w = append(m.w, w)
			m.c = append(m.c, pv[k]+mun+s2[j]/2)
			m.r = append(m.r, r)
			total += w
		}
	}
	for j := range m.w {
		m.w[j] /= total
	}
	return m
}

func (m normalMixture) cdf(t float64) (f, dens float64) {
	for j, w := range m.w {
		z := (t - m.c[j]) / m.r[j]
		switch {
		case z < -9: // Φ < 1.2e-19
		case z > 9:
			f += w
		default:
			f += w * stats.NormalCDF(z)
			dens += w * stats.NormalPDF(z) / m.r[j]
		}
	}
	return f, dens
}

// quantile solves cdf(t) = q by Newton's method safeguarded by bisection, from the
// quantile of the normal with the mixture's mean and variance.
func (m normalMixture) quantile(q float64) float64 {
	return m.quantileFrom(q, math.NaN())
}

// quantileFrom is quantile started at t0 (if it is a number).
func (m normalMixture) quantileFrom(q, t0 float64) float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for j := range m.w {
		lo = math.Min(lo, m.c[j]-12*m.r[j])
		hi = math.Max(hi, m.c[j]+12*m.r[j])
	}
	// Start from the normal of the mixture's mean and variance.
	mean, second := 0.0, 0.0
	for j, w := range m.w {
		mean += w * m.c[j]
		second += w * (m.c[j]*m.c[j] + m.r[j]*m.r[j])
	}
	t := mean + stats.NormalQuantile(q)*math.Sqrt(math.Max(0, second-mean*mean))
	if t0 == t0 {
		t = t0
	}
	if !(t > lo && t < hi) {
		t = mean
	}
	for range 100 {
		f, dens := m.cdf(t)
		if f < q {
			lo = t
		} else {
			hi = t
		}
		step := (f - q) / dens
		if math.Abs(f-q) < 1e-11 || math.Abs(step) < 1e-9*(1+math.Abs(t)) || hi-lo < 1e-9*(1+math.Abs(t)) {
			return t - step
		}
		next := t - step
		if !(next > lo && next < hi) {
			next = (lo + hi) / 2
		}
		t = next
	}
	return t
}

// trigamma is ψ'(x) for x > 0: the recurrence ψ'(x) = ψ'(x+1) + 1/x² up to x ≥ 6,
// then the asymptotic series (error below 1e-12 there).
func trigamma(x float64) float64 {
	r := 0.0
	for x < 6 {
		r += 1 / (x * x)
		x++
	}
	x2 := 1 / (x * x)
	return r + 1/x + x2/2 + x2/x*(1.0/6-x2*(1.0/30-x2*(1.0/42-x2/30)))
}

// CampaignPriorCV and FunnelPriorCV are the coefficients of variation of the
// pooled prior of the campaigns' and the funnels' allocation
// (Settings.PooledPriorCV): a priori, a subject line's click rate is within
// about ±25% of the rate of all subjects together, a funnel variant's
// end-to-end rate within about ±50% of its step's.
//
// Campaigns take the tighter value because their waves are allocated on the
// clicks of the first hours, a handful per subject, and a wave's share
// follows P(best): in the 24-hour scenario (docs/campaigns.md, 400 runs on
// each of six seeds) the best subject's share collapsed after it had led in
// 25 of 2,400 campaigns at ½, 3 at 0.3 and 1 at ¼ (0 on seeds 1 and 2), for
// 1.5% of the clicks at ¼ (643.7 against 653.5 per campaign, the split
// 612.4); the one-wave-lag, email, guardrail and push scenarios moved within
// their noise. Variants of one message differ by tens of percent, not by
// factors, so ¼ is also what one expects a priori (in that scenario the true
// rates, 2–4%, have a coefficient of variation of 0.26). Funnel steps keep
// ½: at ¼ the timed funnel of docs/funnels.md swung in 7% and 6% of 400
// runs (two seeds) instead of 10% and 10%, but converted 3 and 10 units
// per run fewer (2653 and 2645 against 2656 and 2655, s.e. 4) and ended
// on the wrong signup form in 8 runs of 400 instead of 3; its variants (a
// landing page, a form) may also differ by more than a subject line.
const (
	CampaignPriorCV = 0.25
	FunnelPriorCV   = 0.5
)

// FunnelMinConversions is the number of end-to-end conversions (matured,
// within the delay model's horizon) per variant that the variants of a
// funnel step whose outcomes mature with a delay need together before
// Thompson sampling moves its traffic: until then the step serves its
// variants alike (burnInSampler).
//
// P(best) on a handful of conversions per variant moves with every one of
// them: in the timed funnel of docs/funnels.md the landing page's best
// variant, 33% better end to end, fell below a 10% share after leading in 7%
// of 400 runs, at hours 5–9 with 4–30 conversions per variant (5 against 12
// gave it 8%). At 30 (about 18% relative precision per variant) 2.5–3.0%
// collapsed and 2.0–2.5% swung (from 7.2% and 5.0–6.2%), for about 15
// conversions of 2655 per run. 50 halved the collapses again but kept a
// funnel converting 3–5.5% end to end uniform for a day.
//
// Together, not on every variant: the worst variant, with fewest
// conversions, held the whole step uniform until it had 30 of its own —
// the server's TestConversionsOverHoursFunnel (rates 3%, 4%, 5.5%, 20 runs)
// stayed uniform until hours 20–26 in 2 runs, which never gave the best
// variant 0.9, and in one of them it then fell to 0.05. With 30 per variant
// on average, 0 of 20 runs swung; the simulator's numbers stayed within
// their noise (docs/funnels.md). Without a delay model (every completion at
// once) there is no such burn-in: there it cost the right signup form in
// 2–5% of the untimed trap's runs.
const FunnelMinConversions = 30

// pooledPrior returns the empirical-Bayes prior of binary arms: a Beta
// centred on the pooled rate m of all arms (under the settings' prior, so
// that it is defined before any outcome), with coefficient of variation
// s.PooledPriorCV: Beta(κm, κ(1−m)) with κ + 1 = (1 − m)/(m·cv²). For a
// small rate its weight is about 1/cv² outcomes (4 at cv = ½, 16 at ¼) over
// 1/(m·cv²) trials, whatever the scale of the rate.
//
// Why. The uniform Beta(1, 1) prior says a variant's rate is as likely 60%
// as 3%; on a campaign's first clicks (1 to 3 per subject when an hour-old
// wave has shown 4% of its clicks) it makes a click the difference between
// rates that differ several-fold, so P(best), and the share of the next
// wave, jumps to 0.5–0.7 on one or two clicks and away again on the next
// ones (collapses, docs/campaigns.md). Variants of one message differ by
// tens of percent, not by factors: the prior says so, and its weight, a
// few outcomes, fades as they accumulate (CampaignPriorCV, FunnelPriorCV
// give the values and what they were measured to do).
func pooledPrior(cs []counts, s Settings) (float64, float64) {
	var pn, pc float64
	for _, c := range cs {
		pn, pc = pn+c.n, pc+c.c
	}
	m := (s.PriorAlpha + pc) / (s.PriorAlpha + s.PriorBeta + pn)
	cv := s.PooledPriorCV
	k := (1-m)/(m*cv*cv) - 1
	if k <= 0 || math.IsNaN(k) {
		return s.PriorAlpha, s.PriorBeta
	}
	return k * m, k * (1 - m)
}
