package engine

import (
	"math"
	"math/rand/v2"
	"sync"

	"github.com/samplit/samplit/internal/engine/stats"
)

// effectiveCounts returns the statistics the Bayesian strategies learn from: the
// cumulative ones, or, when Settings.Gamma < 1, the discounted ones.
func effectiveCounts(in Input) []counts {
	cs := make([]counts, len(in.Arms))
	if in.Settings.Gamma < 1 {
		st := discounted(in)
		for i, a := range st.Arms {
			cs[i] = counts{n: a.Units, c: a.Conversions, sum: a.Sum, sumSq: a.SumSquares}
		}
		return cs
	}
	for i, a := range in.Arms {
		cs[i] = armCounts(a)
	}
	return cs
}

// bayesUpdate is the Update of the Bayesian strategies: discounted counts when
// Gamma < 1, nothing otherwise.
func bayesUpdate(name string, in Input) (State, error) {
	in, err := in.validate()
	if err != nil {
		return State{}, err
	}
	if in.Settings.Gamma < 1 {
		st := discounted(in)
		st.Strategy = name
		return st, nil
	}
	return State{Version: StateVersion, Strategy: name, UpdatedAt: in.Now}, nil
}

// thompson is the adaptive strategy: Thompson sampling, optionally discounted.
type thompson struct{}

func (thompson) Name() string { return "adaptive" }

func (thompson) Plan(in Input) (*Plan, error) {
	in, err := in.validate()
	if err != nil {
		return nil, err
	}
	ps := posteriors(in.Metric, effectiveCounts(in), in.Settings)
	return newPlan(in, func(c []int) sampler {
		if b := burnInSampler(in, c); b != nil {
			return b
		}
		return &thompsonSampler{ps: subset(ps, c)}
	}), nil
}

// burnInSampler returns a sampler for the burn-in of the competing arms
// (indices c), or nil when every arm has MinSamples units: the arms short of
// them, uniformly — or, at funnel steps whose outcomes mature with a delay
// (Arm.Served set), every arm alike while any is short or the arms have
// too few conversions.
//
// The decision rule needs MinSamples units on every arm, and Thompson
// sampling (like top-two) starves a clearly worse arm: left alone it can
// stay below MinSamples for ever, and an adaptive experiment would never
// declare its winner. Serving the under-sampled arms first costs at most
// K·MinSamples units of exploration, which the decision needed anyway.
//
// At funnel steps that gave the arm short of its units every unit for a
// while — uniform draws leave the arms a few dozen units apart when the
// first reaches MinSamples — and the timed funnels' hourly view saw weight
// 1.00 and then 0.34: half the swings of a one-step funnel with delayed
// completions (41 of 82 in 400 runs, docs/funnels.md). Experiments with a
// conversion window keep serving the short arms only: serving every arm
// alike there, 3 of 20 runs of TestConversionsOverHoursExperiment swung and
// 1 did not converge (0 and 0 this way).
//
// An arm's units are its Served units when it has them (funnel steps:
// FunnelArm.endToEndArm says why), else its Units. Such steps also serve
// every arm alike until the competing arms together have
// Settings.MinConversions matured conversions per arm (FunnelMinConversions
// says why and why together).
func burnInSampler(in Input, c []int) sampler {
	var under []int
	funnel := false
	var conv int64
	for j, i := range c {
		a := in.Arms[i]
		if a.Served > 0 {
			funnel = true
			conv += a.Conversions
		}
		if max(a.Units, a.Served) < in.Settings.MinSamples {
			under = append(under, j)
		}
	}
	switch {
	case funnel && (len(under) > 0 || conv < int64(len(c))*in.Settings.MinConversions):
		return fixedSampler(c)
	case len(under) == 0:
		return nil
	}
	return &setSampler{n: len(c), set: under}
}

func (t thompson) Update(in Input) (State, error) { return bayesUpdate(t.Name(), in) }

// thompsonSampler serves the argmax of one draw from every posterior; its weights are
// the P(best) integral.
type thompsonSampler struct {
	ps   []posterior
	once sync.Once
	pb   []float64
}

func (s *thompsonSampler) draw(r *rand.Rand) int {
	best, bestV := 0, math.Inf(-1)
	for i, p := range s.ps {
		var v float64
		if p.normal {
			// Of θ, or of ln θ under the log-normal model, which every arm
			// then shares: the argmax is the same either way, without an exp.
			v = p.mu + p.sd*r.NormFloat64()
		} else {
			v = stats.Beta(r, p.a, p.b)
		}
		if v > bestV {
			best, bestV = i, v
		}
	}
	return best
}

func (s *thompsonSampler) weights() []float64 {
	s.once.Do(func() { s.pb, _ = bestProbabilities(s.ps) })
	return s.pb
}

// topTwo is fast_learning: top-two Thompson sampling (Russo 2016).
type topTwo struct{}

func (topTwo) Name() string { return "fast_learning" }

func (topTwo) Plan(in Input) (*Plan, error) {
	in, err := in.validate()
	if err != nil {
		return nil, err
	}
	ps := posteriors(in.Metric, effectiveCounts(in), in.Settings)
	beta := in.Settings.TopTwoBeta
	return newPlan(in, func(c []int) sampler {
		if b := burnInSampler(in, c); b != nil {
			return b
		}
		return &topTwoSampler{ts: thompsonSampler{ps: subset(ps, c)}, beta: beta}
	}), nil
}

func (t topTwo) Update(in Input) (State, error) { return bayesUpdate(t.Name(), in) }

// maxRedraws bounds the search for a challenger. When it is exhausted (the leader's
// P(best) is within about 1% of 1) the challenger is drawn from the exact conditional
// distribution P_j/(1−P_leader) instead, so the picks still follow the weights.
const maxRedraws = 100

// topTwoSampler: draw a leader I; with probability β serve it, otherwise redraw until
// another arm J leads and serve J. Its weights are
// w_i = β·P_i + (1−β)·Σ_{j≠i} P_j·P_i/(1−P_j).
type topTwoSampler struct {
	ts   thompsonSampler
	beta float64
}

func (s *topTwoSampler) draw(r *rand.Rand) int {
	leader := s.ts.draw(r)
	if r.Float64() < s.beta {
		return leader
	}
	for range maxRedraws {
		if j := s.ts.draw(r); j != leader {
			return j
		}
	}
	pb := s.ts.weights()
	return challenger(pb, leader, r.Float64())
}

// challenger picks j ≠ leader with probability P_j/(1−P_leader) (uniformly when that
// is numerically undefined) using the uniform variate u.
func challenger(pb []float64, leader int, u float64) int {
	rest := 1 - pb[leader]
	m := len(pb) - 1
	last := -1
	for j, p := range pb {
		if j == leader {
			continue
		}
		last = j
		q := 1 / float64(m)
		if rest > 1e-12 {
			q = p / rest
		}
		if u < q {
			return j
		}
		u -= q
	}
	return last
}

func (s *topTwoSampler) weights() []float64 {
	pb := s.ts.weights()
	m := len(pb)
	w := make([]float64, m)
	for i := range pb {
		w[i] += s.beta * pb[i]
		for j := range pb {
			if j == i {
				continue
			}
			rest := 1 - pb[j]
			q := 1 / float64(m-1)
			if rest > 1e-12 {
				q = pb[i] / rest
			}
			w[i] += (1 - s.beta) * pb[j] * q
		}
	}
	return w
}

// observedMeans returns the arms' observed means (0 without units).
func observedMeans(m Metric, arms []Arm) []float64 {
	out := make([]float64, len(arms))
	for i, a := range arms {
		if a.Units > 0 {
			if m == Binary {
				out[i] = float64(a.Conversions) / float64(a.Units)
			} else {
				out[i] = a.Sum / float64(a.Units)
			}
		}
	}
	return out
}

// epsGreedy is the explore strategy: a uniform burn-in until every arm has
// MinSamples units, then ε-greedy with ε = min(1, c·K/t), t the total units.
type epsGreedy struct{}

func (epsGreedy) Name() string { return "explore" }

func (epsGreedy) Plan(in Input) (*Plan, error) {
	in, err := in.validate()
	if err != nil {
		return nil, err
	}
	means := observedMeans(in.Metric, in.Arms)
	return newPlan(in, func(c []int) sampler {
		if b := burnInSampler(in, c); b != nil {
			return b
		}
		arms := subset(in.Arms, c)
		total := 0.0
		for _, a := range arms {
			total += float64(a.Units)
		}
		ms := subset(means, c)
		greedy := argmax(ms)
		eps := math.Min(1, in.Settings.EpsilonC*float64(len(arms))/math.Max(total, 1))
		return &epsSampler{n: len(arms), greedy: greedy, eps: eps}
	}), nil
}

func (e epsGreedy) Update(in Input) (State, error) { return stateless(e.Name(), in) }

func argmax(xs []float64) int {
	best := 0
	for i, x := range xs {
		if x > xs[best] {
			best = i
		}
	}
	return best
}

// setSampler chooses uniformly among a subset of the arms.
type setSampler struct {
	n   int
	set []int
}

func (s *setSampler) draw(r *rand.Rand) int { return s.set[r.IntN(len(s.set))] }

func (s *setSampler) weights() []float64 {
	w := make([]float64, s.n)
	for _, i := range s.set {
		w[i] = 1 / float64(len(s.set))
	}
	return w
}

// epsSampler explores uniformly with probability eps and exploits greedy otherwise.
type epsSampler struct {
	n, greedy int
	eps       float64
}

func (s *epsSampler) draw(r *rand.Rand) int {
	if r.Float64() < s.eps {
		return r.IntN(s.n)
	}
	return s.greedy
}

func (s *epsSampler) weights() []float64 {
	w := make([]float64, s.n)
	for i := range w {
		w[i] = s.eps / float64(s.n)
	}
	w[s.greedy] += 1 - s.eps
	return w
}

// ucb1 is UCB1 (Auer, Cesa-Bianchi & Fischer 2002): every arm once (uniformly among
// the unplayed), then the arm maximising mean + scale·√(2 ln t / n), scale 1 for
// binary metrics and the pooled standard deviation for continuous ones. It is
// deterministic given the counts, so every pick of a batch goes to the same arm.
type ucb1 struct{}

func (ucb1) Name() string { return "ucb1" }

func (ucb1) Plan(in Input) (*Plan, error) {
	in, err := in.validate()
	if err != nil {
		return nil, err
	}
	means := observedMeans(in.Metric, in.Arms)
	scale := 1.0
	if in.Metric == Continuous {
		var n, sum, sq float64
		for _, a := range in.Arms {
			n, sum, sq = n+float64(a.Units), sum+a.Sum, sq+a.SumSquares
		}
		if n >= 2 {
			scale = math.Sqrt(math.Max(0, sq-sum*sum/n) / (n - 1))
		}
	}
	return newPlan(in, func(c []int) sampler {
		arms := subset(in.Arms, c)
		var unplayed []int
		total := 0.0
		for j, a := range arms {
			total += float64(a.Units)
			if a.Units == 0 {
				unplayed = append(unplayed, j)
			}
		}
		if len(unplayed) > 0 {
			return &setSampler{n: len(arms), set: unplayed}
		}
		idx := make([]float64, len(arms))
		lt := math.Log(total)
		for j, a := range arms {
			idx[j] = means[c[j]] + scale*math.Sqrt(2*lt/float64(a.Units))
		}
		return &setSampler{n: len(arms), set: []int{argmax(idx)}}
	}), nil
}

func (u ucb1) Update(in Input) (State, error) { return stateless(u.Name(), in) }

// uniform serves the competing arms with equal fixed weights and decides with the
// Bayesian rule: the classic A/B test, kept as a baseline.
type uniform struct{}

func (uniform) Name() string { return "uniform" }

func (uniform) Plan(in Input) (*Plan, error) {
	in, err := in.validate()
	if err != nil {
		return nil, err
	}
	return newPlan(in, fixedSampler), nil
}

func (u uniform) Update(in Input) (State, error) { return stateless(u.Name(), in) }

func fixedSampler(c []int) sampler {
	set := make([]int, len(c))
	for j := range set {
		set[j] = j
	}
	return &setSampler{n: len(c), set: set}
}
