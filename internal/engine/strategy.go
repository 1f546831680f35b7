package engine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Strategy is one allocation policy. Implementations are stateless values; what they
// remember between calls travels in Input.State.
type Strategy interface {
	// Name is the registry name, as in the experiment's "strategy" field.
	Name() string
	// Plan prepares the allocation of the next units from the current statistics.
	Plan(in Input) (*Plan, error)
	// Update folds the current statistics into the state and returns the new state to
	// store. Call it whenever new data has arrived (it is how the sequential test
	// "looks" and how discounted counts age); it is cheap.
	Update(in Input) (State, error)
}

// registry maps names to strategies. It is filled once here and never changed, so it
// is safe for concurrent use.
var registry = map[string]Strategy{
	"adaptive":      thompson{},
	"fast_learning": topTwo{},
	"explore":       epsGreedy{},
	"ucb1":          ucb1{},
	"sequential":    sequential{},
	"uniform":       uniform{},
}

// Lookup returns the strategy registered under name. Registered names are adaptive
// (Thompson sampling; discounted when Settings.Gamma < 1), fast_learning (top-two
// Thompson), explore (ε-greedy after a burn-in), ucb1 (UCB1, explore's deterministic
// variant), sequential (fixed weights with a mixture SPRT) and uniform (fixed equal
// weights with the Bayesian decision rule, a baseline).
func Lookup(name string) (Strategy, error) {
	s, ok := registry[name]
	if !ok {
		return nil, invalid("unknown strategy %q (known: %v)", name, Names())
	}
	return s, nil
}

// descriptions say in a line what each strategy does, for help texts, the
// dashboard and error messages. Every registered strategy has one.
var descriptions = map[string]string{
	"adaptive":      "Thompson sampling: traffic follows the probability of being best (the default)",
	"fast_learning": "top-two Thompson sampling: finds the best variant with fewer units, earning less meanwhile",
	"explore":       "ε-greedy after a uniform burn-in of min_samples per variant",
	"ucb1":          "UCB1, explore's deterministic cousin (a baseline; keep the weight floor on)",
	"sequential":    "fixed split (control_share) with an always-valid test: the classic A/B test, peeking allowed",
	"uniform":       "fixed equal split with the Bayesian decision rule (a baseline)",
}

// Describe returns the one-line description of a registered strategy.
func Describe(name string) string { return descriptions[name] }

// Help lists every strategy with its description, one per line, each line
// starting with indent: the text of --strategy in the CLI's help.
func Help(indent string) string {
	var b strings.Builder
	for _, n := range Names() {
		fmt.Fprintf(&b, "%s%-13s  %s\n", indent, n, descriptions[n])
	}
	return b.String()
}

// Names returns the registered strategy names, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Pick is one assignment: the chosen arm and the probability it had of being chosen.
type Pick struct {
	// Index is the position of the arm in Input.Arms.
	Index int `json:"index"`
	// Key is the arm's key.
	Key string `json:"key"`
	// Propensity is the probability that this arm was chosen, the arm's weight.
	Propensity float64 `json:"propensity"`
}

// sampler is a strategy's own way to choose among the competing arms.
type sampler interface {
	// draw returns an index into the competing arms.
	draw(r *rand.Rand) int
	// weights returns the probability of each competing arm under draw.
	weights() []float64
}

// Plan is a prepared allocation: the weights of the arms and a sampler whose picks
// follow exactly those weights. A Plan is safe for concurrent use as long as each
// goroutine passes its own *rand.Rand.
//
// Weight floors and the control share are applied as a mixture, so that picks and
// reported weights always agree: with probability ControlShare the control is served;
// otherwise, with probability m·f (m competing arms, f = WeightFloor/(1−ControlShare))
// a competing arm is chosen uniformly, and else the strategy's own sampler (a Thompson
// draw, say) chooses. Every competing arm's weight is therefore
// (1−ControlShare)·(f + (1−m·f)·w) ≥ WeightFloor, where w is its weight under the
// strategy alone; for Thompson sampling w is P(best) among the competing arms.
type Plan struct {
	keys         []string
	competitors  []int // indices into keys of the arms the sampler chooses among
	control      int   // index of the control arm, or -1 without a control share
	controlShare float64
	floorMass    float64 // m·f: the probability of a uniform choice among competitors
	base         sampler

	once sync.Once
	w    []float64
}

func newPlan(in Input, base func(competitors []int) sampler) *Plan {
	p := &Plan{keys: make([]string, len(in.Arms)), control: -1}
	for i, a := range in.Arms {
		p.keys[i] = a.Key
	}
	s := in.Settings
	ctrl := controlIndex(in.Arms)
	for i, a := range in.Arms {
		if i != ctrl && !a.Stopped && a.Unproven != "" && s.GuardrailControlShare > s.ControlShare {
			// A guardrail still has to compare an arm with the control:
			// the control keeps its guardrail share of the traffic.
			s.ControlShare = s.GuardrailControlShare
			break
		}
	}
	stopped := false
	for i, a := range in.Arms {
		stopped = stopped || a.Stopped
		// A stopped arm (a tripped guardrail) competes no more: its weight
		// is 0, and the floor and the strategy share the rest.
		if a.Stopped || (s.ControlShare > 0 && i == ctrl) {
			continue
		}
		p.competitors = append(p.competitors, i)
	}
	if s.ControlShare > 0 && len(p.competitors) > 0 {
		p.control, p.controlShare = ctrl, s.ControlShare
	}
	if len(p.competitors) == 0 {
		// Every arm but the control, which has a share of its own, is
		// stopped: the control takes all the traffic.
		p.competitors = []int{ctrl}
	}
	if s.WeightFloor > 0 {
		p.floorMass = float64(len(p.competitors)) * s.WeightFloor / (1 - p.controlShare)
	}
	if len(p.competitors) == 1 && stopped {
		// One arm left to choose (the others stopped): nothing to learn.
		p.base, p.floorMass = fixedSampler(p.competitors), 0
		return p
	}
	p.base = base(p.competitors)
	return p
}

// Keys returns the arm keys in Input order.
func (p *Plan) Keys() []string { return slices.Clone(p.keys) }

// Weights returns the probability that the next unit goes to each arm, in Input
// order. They sum to 1. For Thompson sampling they come from the numerical P(best)
// integral, computed once per Plan on first use.
func (p *Plan) Weights() []float64 {
	return slices.Clone(p.weights())
}

// weights returns the plan's weights, computing them on first use; callers
// must not change them (Weights hands out a copy).
func (p *Plan) weights() []float64 {
	p.once.Do(func() {
		w := make([]float64, len(p.keys))
		bw := p.base.weights()
		m := float64(len(p.competitors))
		for j, i := range p.competitors {
			w[i] = (1 - p.controlShare) * (p.floorMass/m + (1-p.floorMass)*bw[j])
		}
		if p.control >= 0 {
			w[p.control] = p.controlShare
		}
		p.w = w
	})
	return p.w
}

// Draw chooses the arm for one unit and returns its index. It does not compute the
// weights, so it is the cheapest way to assign (a Thompson decision for ten arms is
// ten Beta draws).
func (p *Plan) Draw(r *rand.Rand) int {
	if p.control >= 0 && r.Float64() < p.controlShare {
		return p.control
	}
	if p.floorMass > 0 && r.Float64() < p.floorMass {
		return p.competitors[r.IntN(len(p.competitors))]
	}
	return p.competitors[p.base.draw(r)]
}

// Pick chooses the arm for one unit and reports its propensity.
func (p *Plan) Pick(r *rand.Rand) Pick {
	i := p.Draw(r)
	return Pick{Index: i, Key: p.keys[i], Propensity: p.weights()[i]}
}

// PickN chooses the arms for a batch of n units. Each pick is an independent draw
// from the same Plan, so a batch follows exactly the probabilities of n single picks
// made before any of their outcomes is known.
func (p *Plan) PickN(r *rand.Rand, n int) []Pick {
	out := make([]Pick, n)
	w := p.weights()
	for k := range out {
		i := p.Draw(r)
		out[k] = Pick{Index: i, Key: p.keys[i], Propensity: w[i]}
	}
	return out
}

// String describes the plan for debugging.
func (p *Plan) String() string {
	return fmt.Sprintf("plan%v%v", p.keys, p.Weights())
}

// stateless is the Update of strategies that keep nothing between calls.
func stateless(name string, in Input) (State, error) {
	if _, err := in.validate(); err != nil {
		return State{}, err
	}
	return State{Version: StateVersion, Strategy: name, UpdatedAt: in.Now}, nil
}

// subset returns the elements of xs at the given indices.
func subset[T any](xs []T, idx []int) []T {
	out := make([]T, len(idx))
	for j, i := range idx {
		out[j] = xs[i]
	}
	return out
}

// prime hands P(best) over all arms, already computed by Analyze, to a Thompson
// sampler that competes over all arms, so the integral is not computed twice.
func (p *Plan) prime(pbest []float64) {
	if len(p.competitors) != len(p.keys) {
		return
	}
	var ts *thompsonSampler
	switch s := p.base.(type) {
	case *thompsonSampler:
		ts = s
	case *topTwoSampler:
		ts = &s.ts
	default:
		return
	}
	ts.once.Do(func() { ts.pb = pbest })
}
