package engine

import (
	"math"
	"math/rand/v2"

	"github.com/samplit/samplit/internal/engine/stats"
)

// posterior is the distribution of one variant's θ: Beta(a, b) for binary metrics,
// Normal(mu, sd²) for continuous ones.
type posterior struct {
	normal bool
	a, b   float64
	mu, sd float64
}

func (p posterior) mean() float64 {
	if p.normal {
		return p.mu
	}
	return p.a / (p.a + p.b)
}

func (p posterior) stdDev() float64 {
	if p.normal {
		return p.sd
	}
	return stats.BetaStdDev(p.a, p.b)
}

func (p posterior) draw(r *rand.Rand) float64 {
	if p.normal {
		return p.mu + p.sd*r.NormFloat64()
	}
	return stats.Beta(r, p.a, p.b)
}

func (p posterior) quantile(q float64) float64 {
	if p.normal {
		return p.mu + p.sd*stats.NormalQuantile(q)
	}
	return stats.BetaQuantile(q, p.a, p.b)
}

// posteriors builds one posterior per arm.
//
// Binary: Beta(α0 + c, β0 + n − c).
//
// Continuous: the normal approximation N(x̄', s'²/n') with a weak prior worth one
// pseudo-unit whose mean and variance are those of all arms pooled, so that arms
// with n < 2 (or no data at all) still have a proper, wide posterior:
// n' = n + 1, x̄' = (Σx + m0)/n', s'² = (SS + v0)/n'.
func posteriors(m Metric, cs []counts, s Settings) []posterior {
	ps := make([]posterior, len(cs))
	if m == Binary {
		for i, c := range cs {
			ps[i] = posterior{a: s.PriorAlpha + c.c, b: s.PriorBeta + c.n - c.c}
		}
		return ps
	}
	var n, sum, sumSq float64
	for _, c := range cs {
		n, sum, sumSq = n+c.n, sum+c.sum, sumSq+c.sumSq
	}
	m0, v0 := 0.0, 1.0
	if n > 0 {
		m0 = sum / n
	}
	if n >= 2 {
		v0 = math.Max(0, sumSq-n*m0*m0) / (n - 1)
	}
	if !(v0 > 0) {
		// All values equal: keep a tiny but proper spread on the metric's scale.
		v0 = 1e-12 * math.Max(1, m0*m0)
	}
	for i, c := range cs {
		ss := 0.0
		if c.n > 0 {
			ss = math.Max(0, c.sumSq-c.sum*c.sum/c.n)
		}
		np := c.n + 1
		ps[i] = posterior{normal: true, mu: (c.sum + m0) / np, sd: math.Sqrt((ss + v0) / np / np)}
	}
	return ps
}
