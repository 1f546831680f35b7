package engine

import (
	"math"
	"slices"
)

// tailLog is how far below its peak, in natural-log units, each posterior's
// density is cut: e⁻³² ≈ 1.3e-14 of the peak. For a near-normal posterior that is
// ±8 standard deviations (mass beyond: 1e-15); for the exponential tails of the
// most skewed posteriors the engine builds (Beta(1, b), every unit failed) it is
// 32 e-folds (mass beyond: 1e-14).
const tailLog = 32

// gridStep is the spacing of each posterior's own grid points, in units of its
// local standard deviation in the integration coordinate (below), or of 0.5 when
// that is smaller: the logit density of a Beta with small shapes (Beta(1, 1) is the
// logistic density) varies on a scale of 1 however wide it is. With the
// fourth-order rule the largest error of P(best) and of the expected loss on the
// reference table (stats/testdata/pbest_reference.json) is 6e-6; without the 0.5
// it was 1.6e-5; a step of 0.8 sd exceeds 1e-4 on 29 arms of the table.
const gridStep = 0.4

// Bounds of the number of grid points one posterior contributes: a near-normal
// posterior needs 41, the logistic-shaped Beta(1, 1) 134.
const (
	minGridPoints = 24
	maxGridPoints = 200
)

// bestProbabilities returns, for each posterior i, P(θ_i = max_j θ_j) and the expected
// loss E[max_j θ_j − θ_i], by deterministic numerical integration of
//
//	P_i = ∫ Π_{j≠i} F_j(y) dF_i(y),   E[max] = Σ_i ∫ x(y) Π_{j≠i} F_j(y) dF_i(y),
//
// in a coordinate y = T(θ) in which every posterior is smooth and close to normal:
// y = logit θ for Beta posteriors, y = θ for normal ones and y = ln θ for the
// log-normal posteriors of the zero-inflated model (x(y) = T⁻¹(y) maps back to θ for
// the loss). In the logit coordinate a Beta density x^a(1−x)^b is log-concave with
// no boundary, its width is √(1/a + 1/b) and its tails at worst exponential, so one
// rule serves Beta(1, 1), Beta(3, 6000) and Beta(10⁸+1, 1) alike: in θ itself the
// last two are a spike against an edge that no fixed grid resolves (they caused
// P(best) errors of 1e-3 and expected losses growing with n²).
//
// Every posterior contributes points every gridStep of its own standard deviation
// over the range where its density is within e^tailLog of its peak, so the merged
// grid resolves each density however narrow it is (10⁹ units) and however far apart
// the posteriors lie. On that grid each F_j is the cumulative integral of its
// density (normalised to end at 1; outside its range a density is 0 and F is 0 or
// 1), and P_i, E[max] and the means are integrals of products of those, all by the
// fourth-order Hermite rule (trapezoid plus derivative end correction; every
// derivative is known in closed form). The same rule for E[max] and for the means
// makes their errors cancel in the loss. The leave-one-out products Π_{j≠i} F_j and
// their derivatives come from prefix and suffix products (no division, so no
// overflow or NaN whatever the number of arms). Densities are evaluated relative to
// their peak, so no normalising constant (and no huge log-gamma) is needed.
//
// All posteriors of one call must share the coordinate: all Beta, or all normal on
// the same scale (posteriors and armPosteriors guarantee it).
func bestProbabilities(ps []posterior) (pbest, loss []float64) {
	k := len(ps)
	pbest, loss = make([]float64, k), make([]float64, k)
	if k == 1 {
		pbest[0] = 1
		return pbest, loss
	}
	co := coordinateOf(ps[0])
	arms := make([]armDensity, k)
	size := 0
	for i, p := range ps {
		arms[i] = densityOf(p)
		size += arms[i].points
	}
	grid := make([]float64, 0, size)
	for _, a := range arms {
		grid = a.appendPoints(grid)
	}
	slices.Sort(grid)
	grid = slices.Compact(grid)
	n := len(grid)

	// In the logit coordinate every Beta kernel needs softplus(±y) and σ(y) at
	// each grid point: computed once here, shared by all arms.
	var lg logitGrid
	if co == logitCoordinate {
		lg = newLogitGrid(grid)
	}

	// Per arm j and grid point t: density f, its derivative d and the CDF F, each
	// stored at [j*n+t].
	f, d, cdf := make([]float64, k*n), make([]float64, k*n), make([]float64, k*n)
	for j, a := range arms {
		fr, dr, cr := f[j*n:(j+1)*n], d[j*n:(j+1)*n], cdf[j*n:(j+1)*n]
		t0, _ := slices.BinarySearch(grid, a.lo)
		acc := 0.0
		t := t0
		for ; t < n && grid[t] <= a.hi; t++ {
			if a.beta {
				fr[t], dr[t] = a.betaAt(lg, t)
			} else {
				fr[t], dr[t] = a.kern(grid[t])
			}
			if t > t0 {
				acc += hermite(grid[t-1], grid[t], fr[t-1], fr[t], dr[t-1], dr[t])
			}
			cr[t] = acc
		}
		for ; t < n; t++ {
			cr[t] = acc
		}
		if !(acc > 0) || math.IsInf(acc, 0) {
			// Cannot happen for a proper posterior; keep the result defined.
			return degenerate(ps)
		}
		inv := 1 / acc
		for t := range cr {
			fr[t] *= inv
			dr[t] *= inv
			cr[t] = min(cr[t]*inv, 1)
		}
	}

	// g_i = f_i·L_i with L_i = Π_{j≠i} F_j; g_i' = f_i'·L_i + f_i·L_i'.
	g, gd := make([]float64, k), make([]float64, k)
	pg, pgd := make([]float64, k), make([]float64, k)
	pre, preD := make([]float64, k+1), make([]float64, k+1)
	suf, sufD := make([]float64, k+1), make([]float64, k+1)
	means := make([]float64, k)
	emax := 0.0
	px, pdx := 0.0, 0.0
	for t := 0; t < n; t++ {
		// Prefix and suffix products of the CDFs with their derivatives:
		// (P, D)·(F, f) = (P·F, D·F + P·f).
		pre[0], preD[0] = 1, 0
		for j := 0; j < k; j++ {
			c, fj := cdf[j*n+t], f[j*n+t]
			pre[j+1], preD[j+1] = pre[j]*c, preD[j]*c+pre[j]*fj
		}
		suf[k], sufD[k] = 1, 0
		for j := k - 1; j >= 0; j-- {
			c, fj := cdf[j*n+t], f[j*n+t]
			suf[j], sufD[j] = suf[j+1]*c, sufD[j+1]*c+suf[j+1]*fj
		}
		for i := 0; i < k; i++ {
			l := pre[i] * suf[i+1]
			ld := preD[i]*suf[i+1] + pre[i]*sufD[i+1]
			fi := f[i*n+t]
			g[i], gd[i] = fi*l, d[i*n+t]*l+fi*ld
		}
		var x, dx float64
		if co == logitCoordinate {
			x, dx = lg.sigma[t], lg.sigma[t]*lg.sigmaNeg[t]
		} else {
			x, dx = co.value(grid[t])
		}
		if t > 0 {
			y0, y1 := grid[t-1], grid[t]
			for i := 0; i < k; i++ {
				pbest[i] += hermite(y0, y1, pg[i], g[i], pgd[i], gd[i])
				// (x·g)' = x'·g + x·g'.
				emax += hermite(y0, y1, px*pg[i], x*g[i], pdx*pg[i]+px*pgd[i], dx*g[i]+x*gd[i])
				f0, f1 := f[i*n+t-1], f[i*n+t]
				d0, d1 := d[i*n+t-1], d[i*n+t]
				means[i] += hermite(y0, y1, px*f0, x*f1, pdx*f0+px*d0, dx*f1+x*d1)
			}
		}
		pg, g = g, pg
		pgd, gd = gd, pgd
		px, pdx = x, dx
	}
	total := 0.0
	for i := range pbest {
		pbest[i] = max(pbest[i], 0)
		total += pbest[i]
	}
	if !(total > 0) || math.IsInf(total, 0) || math.IsNaN(emax) {
		return degenerate(ps)
	}
	for i := range pbest {
		pbest[i] /= total
		loss[i] = max(0, emax/total-means[i])
		if math.IsNaN(loss[i]) || math.IsInf(loss[i], 0) {
			return degenerate(ps)
		}
	}
	return pbest, loss
}

// degenerate is the answer when the integral is not defined (it is for every
// posterior the engine builds; this keeps NaN out of results whatever happens):
// P(best) shared among the arms with the highest mean, losses from the means.
func degenerate(ps []posterior) (pbest, loss []float64) {
	k := len(ps)
	pbest, loss = make([]float64, k), make([]float64, k)
	best := math.Inf(-1)
	for _, p := range ps {
		best = max(best, p.mean())
	}
	ties := 0.0
	for _, p := range ps {
		if p.mean() == best {
			ties++
		}
	}
	for i, p := range ps {
		if p.mean() == best {
			pbest[i] = 1 / ties
		}
		loss[i] = best - p.mean()
		if math.IsNaN(loss[i]) || math.IsInf(loss[i], 0) {
			loss[i] = 0
		}
	}
	return pbest, loss
}

// coordinate is the integration variable y = T(θ) of bestProbabilities.
type coordinate int

const (
	logitCoordinate    coordinate = iota // Beta posteriors
	identityCoordinate                   // normal posteriors of θ
	logCoordinate                        // normal posteriors of ln θ
)

func coordinateOf(p posterior) coordinate {
	switch {
	case !p.normal:
		return logitCoordinate
	case p.logScale:
		return logCoordinate
	}
	return identityCoordinate
}

// value returns θ = T⁻¹(y) and dθ/dy.
func (c coordinate) value(y float64) (x, dx float64) {
	switch c {
	case logitCoordinate:
		x = logistic(y)
		return x, x * logistic(-y)
	case logCoordinate:
		x = math.Exp(y)
		return x, x
	}
	return y, 1
}

// logistic is 1/(1+e^{−y}), accurate in both tails.
func logistic(y float64) float64 {
	if y >= 0 {
		return 1 / (1 + math.Exp(-y))
	}
	e := math.Exp(y)
	return e / (1 + e)
}

// softplus is ln(1+e^y) without overflow: −ln σ(−y).
func softplus(y float64) float64 {
	if y > 0 {
		return y + math.Log1p(math.Exp(-y))
	}
	return math.Log1p(math.Exp(y))
}

// armDensity is one posterior in the integration coordinate: its density up to a
// constant factor (1 at the peak) with derivative, and the range [lo, hi] covered
// by its own grid points. Beta posteriors (beta) are evaluated by betaAt on a
// logitGrid, the others by kern.
type armDensity struct {
	kern   func(y float64) (f, d float64)
	lo, hi float64
	points int

	beta       bool
	a, b, rel0 float64
}

// logitGrid holds softplus(y), softplus(−y), σ(y) and σ(−y) at each grid point.
type logitGrid struct {
	spPos, spNeg, sigma, sigmaNeg []float64
}

func newLogitGrid(grid []float64) logitGrid {
	n := len(grid)
	g := logitGrid{make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)}
	for t, y := range grid {
		// With e = e^{−|y|}: softplus(|y|) = |y| + ln(1+e), softplus(−|y|) = ln(1+e),
		// σ(|y|) = 1/(1+e), σ(−|y|) = e/(1+e).
		e := math.Exp(-math.Abs(y))
		l := math.Log1p(e)
		hi, lo := 1/(1+e), e/(1+e)
		if y >= 0 {
			g.spPos[t], g.spNeg[t], g.sigma[t], g.sigmaNeg[t] = y+l, l, hi, lo
		} else {
			g.spPos[t], g.spNeg[t], g.sigma[t], g.sigmaNeg[t] = l, -y+l, lo, hi
		}
	}
	return g
}

// betaAt is the Beta kernel of densityOf at grid point t.
func (a armDensity) betaAt(g logitGrid, t int) (float64, float64) {
	v := math.Exp(-a.a*g.spNeg[t] - a.b*g.spPos[t] - a.rel0)
	// l'(y) = a − (a+b)σ(y) = a·σ(−y) − b·σ(y), without cancellation.
	return v, v * (a.a*g.sigmaNeg[t] - a.b*g.sigma[t])
}

func (a armDensity) appendPoints(grid []float64) []float64 {
	if a.points < 2 {
		return append(grid, a.lo)
	}
	step := (a.hi - a.lo) / float64(a.points-1)
	for i := 0; i < a.points-1; i++ {
		grid = append(grid, a.lo+float64(i)*step)
	}
	return append(grid, a.hi)
}

// gridPoints is the number of points that spaces [lo, hi] by gridStep·sd.
func gridPoints(lo, hi, sd float64) int {
	n := math.Ceil((hi-lo)/(gridStep*sd)) + 1
	if !(n >= minGridPoints) { // also NaN
		return minGridPoints
	}
	return int(min(n, maxGridPoints))
}

// densityOf returns p's density in its integration coordinate.
func densityOf(p posterior) armDensity {
	if p.normal {
		mu, sd := p.mu, p.sd
		if !(sd > 0) {
			sd = 1e-300 + math.Abs(mu)*1e-15
		}
		inv := 1 / sd
		half := math.Sqrt(2*tailLog) * sd
		return armDensity{
			kern: func(y float64) (float64, float64) {
				z := (y - mu) * inv
				v := math.Exp(-0.5 * z * z)
				return v, -v * z * inv
			},
			lo: mu - half, hi: mu + half, points: gridPoints(-half, half, sd),
		}
	}
	// Beta(a, b) in y = logit θ: density ∝ σ(y)^a·(1−σ(y))^b, i.e. the log density
	// l(y) = −a·softplus(−y) − b·softplus(y), peaked at y0 = ln(a/b) with curvature
	// −ab/(a+b), so a local standard deviation of √(1/a + 1/b); l'(y) = a − (a+b)σ(y).
	a, b := p.a, p.b
	y0 := math.Log(a) - math.Log(b)
	l0 := -a*softplus(-y0) - b*softplus(y0)
	rel := func(y float64) float64 { return -a*softplus(-y) - b*softplus(y) - l0 }
	slope := func(y float64) float64 { return a*logistic(-y) - b*logistic(y) }
	sd := math.Sqrt(1/a + 1/b)
	edge := func(dir float64) float64 {
		// l is concave: step out until l < −tailLog, then Newton steps back, which
		// approach the crossing monotonically from outside.
		y := y0 + dir*sd*math.Sqrt(2*tailLog)
		for i := 0; i < 60 && rel(y) > -tailLog; i++ {
			y = y0 + 2*(y-y0)
		}
		for i := 0; i < 8; i++ {
			s := slope(y)
			if s == 0 {
				break
			}
			next := y - (rel(y)+tailLog)/s
			if !(dir*(next-y0) > 0) || math.Abs(next-y) < 0.05*sd {
				break
			}
			y = next
		}
		return y
	}
	lo, hi := edge(-1), edge(1)
	return armDensity{
		lo: lo, hi: hi, points: gridPoints(lo, hi, math.Min(sd, 0.5)),
		beta: true, a: a, b: b, rel0: l0,
	}
}

// hermite integrates a function over [x0, x1] from its values and derivatives at the
// ends: the trapezoid rule with the Euler–Maclaurin end correction, exact for cubics
// and so fourth-order accurate.
func hermite(x0, x1, f0, f1, d0, d1 float64) float64 {
	h := x1 - x0
	return 0.5*h*(f0+f1) + h*h/12*(d0-d1)
}
