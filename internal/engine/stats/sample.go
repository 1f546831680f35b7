// Package stats provides the probability distributions the decision engine needs:
// fast Gamma, Beta and Normal sampling from a caller-given *rand.Rand, and accurate
// Beta and Normal distribution functions and quantiles.
//
// It uses gonum (mathext, stat/distuv) where gonum is accurate and fast, and hand-writes
// only what gonum lacks, saying why at each place: an allocation-free Gamma sampler on
// a *rand.Rand (gonum's distuv.Gamma.Rand builds a new rand.Rand on every call, which
// costs an allocation on the hot path of every Thompson draw), and a Beta density, CDF
// and quantile that stay accurate at the huge counts an experiment reaches (gonum's
// RegIncBeta returns values above 1 for Beta(5e8, 5e8), and its inverse takes ~60 µs
// there).
//
// Nothing here reads a clock or a global random source: every draw comes from the
// *rand.Rand the caller passes, so a seeded caller is reproducible bit for bit.
package stats

import (
	"math"
	"math/rand/v2"
)

// Gamma draws from a Gamma(shape, 1) distribution using r.
//
// It is the Marsaglia–Tsang (2000) squeeze method, written by hand rather than taken
// from gonum because gonum's sampler allocates a rand.Rand per call. For shape < 1 it
// uses the boost Gamma(a) = Gamma(a+1)·U^(1/a). A shape that is not positive or not
// finite yields NaN.
func Gamma(r *rand.Rand, shape float64) float64 {
	if !(shape > 0) || math.IsInf(shape, 1) {
		return math.NaN()
	}
	if shape < 1 {
		return math.Exp(logGammaSmall(r, shape))
	}
	return gammaMT(r, shape)
}

// gammaMT is Marsaglia–Tsang for shape ≥ 1.
func gammaMT(r *rand.Rand, shape float64) float64 {
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.Float64()
		x2 := x * x
		if u < 1-0.0331*x2*x2 {
			return d * v
		}
		if math.Log(u) < 0.5*x2+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

// logGammaSmall returns the logarithm of a Gamma(shape, 1) draw for 0 < shape < 1,
// in log space so that tiny shapes do not underflow to zero.
func logGammaSmall(r *rand.Rand, shape float64) float64 {
	u := r.Float64()
	for u == 0 {
		u = r.Float64()
	}
	return math.Log(gammaMT(r, shape+1)) + math.Log(u)/shape
}

// Beta draws from a Beta(a, b) distribution using r, as X/(X+Y) with X ~ Gamma(a) and
// Y ~ Gamma(b). It stays finite for shapes from well below 1 to 1e9 and more; shapes
// that are not positive yield NaN.
func Beta(r *rand.Rand, a, b float64) float64 {
	if !(a > 0) || !(b > 0) || math.IsInf(a, 1) || math.IsInf(b, 1) {
		return math.NaN()
	}
	if a >= 1 && b >= 1 {
		x := gammaMT(r, a)
		y := gammaMT(r, b)
		return x / (x + y)
	}
	// Log space: a shape below 1 can produce a Gamma draw that underflows to 0.
	lx := logGammaDraw(r, a)
	ly := logGammaDraw(r, b)
	return 1 / (1 + math.Exp(ly-lx))
}

func logGammaDraw(r *rand.Rand, shape float64) float64 {
	if shape < 1 {
		return logGammaSmall(r, shape)
	}
	return math.Log(gammaMT(r, shape))
}

// Normal draws from a Normal(mu, sigma²) distribution using r.
func Normal(r *rand.Rand, mu, sigma float64) float64 {
	return mu + sigma*r.NormFloat64()
}
