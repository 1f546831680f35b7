package offline

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/samplit/samplit/internal/cli"
	"github.com/samplit/samplit/internal/engine"
)

// FunnelScenario is a funnel with known behaviour, read from the JSON file
// of `samplit simulate --funnel FILE`: ordered steps, the last the goal,
// each with its variants and the probability that a unit at the step goes
// on to the next one.
type FunnelScenario struct {
	Name  string         `json:"name"`
	Steps []ScenarioStep `json:"steps"`
	// Delay, when set, is the distribution of the time from reaching a
	// step to reaching the next one, drawn for every move; with it the
	// units enter over Hours (default 48) and the server's counters are
	// those at each moment: a completion counts when it arrives, within
	// Window (default 7d) of reaching the step. Without it every unit goes
	// through the funnel at once.
	Delay  *DelayDist `json:"delay,omitempty"`
	Hours  float64    `json:"hours,omitempty"`
	Window Duration   `json:"window,omitempty"`

	rules [][]advRule // compiled Advance, by step
}

// ScenarioStep is one step of a FunnelScenario.
type ScenarioStep struct {
	Key      string   `json:"key"`
	Variants []string `json:"variants,omitempty"`
	// Advance gives the probability of reaching the next step. Keys are
	// "*" (the default) or conditions on the variants seen so far, such as
	// "landing=b" or "landing=b,signup=short"; the matching key with the
	// most conditions wins, so rates can depend on earlier variants. The
	// goal has none.
	Advance map[string]float64 `json:"advance,omitempty"`
}

// LoadFunnelScenario reads and checks a scenario file.
func LoadFunnelScenario(path string) (FunnelScenario, error) {
	var sc FunnelScenario
	raw, err := os.ReadFile(path)
	if err != nil {
		return sc, err
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return sc, fmt.Errorf("%s: %w", path, err)
	}
	return sc, sc.validate()
}

func (sc FunnelScenario) validate() error {
	if len(sc.Steps) < 2 {
		return errors.New("a funnel scenario needs at least two steps")
	}
	if d := sc.Delay; d != nil {
		if err := d.validate(); err != nil {
			return err
		}
	}
	if !(sc.Hours >= 0 && sc.Hours <= 24*365) || sc.Window < 0 {
		return errors.New("hours must be from 0 to a year, window not negative")
	}
	for k, st := range sc.Steps {
		if len(st.Variants) == 1 {
			return fmt.Errorf("step %q: give no variants or at least two", st.Key)
		}
		goal := k == len(sc.Steps)-1
		if goal && (len(st.Variants) > 0 || len(st.Advance) > 0) {
			return fmt.Errorf("step %q is the goal: it has neither variants nor advance rates", st.Key)
		}
		if goal {
			continue
		}
		if _, ok := st.Advance["*"]; !ok {
			return fmt.Errorf("step %q: advance needs a default \"*\" rate", st.Key)
		}
		for cond, p := range st.Advance {
			if !(p >= 0 && p <= 1) {
				return fmt.Errorf("step %q: advance %q = %v is not a probability", st.Key, cond, p)
			}
			if cond == "*" {
				continue
			}
			for _, c := range strings.Split(cond, ",") {
				sk, v, ok := strings.Cut(c, "=")
				j := sc.stepIndex(sk)
				if !ok || j < 0 || j > k || !slices.Contains(sc.Steps[j].Variants, v) {
					return fmt.Errorf("step %q: condition %q must name a variant of this or an earlier step", st.Key, c)
				}
			}
		}
	}
	return nil
}

func (sc FunnelScenario) stepIndex(key string) int {
	return slices.IndexFunc(sc.Steps, func(s ScenarioStep) bool { return s.Key == key })
}

// advRule is one parsed Advance entry: a probability and its conditions
// (step index, variant index).
type advRule struct {
	conds [][2]int
	p     float64
}

// compile parses the Advance maps into rules, most specific first (ties in
// key order, so that map order cannot change a simulation), the default last.
func (sc *FunnelScenario) compile() {
	sc.rules = make([][]advRule, len(sc.Steps))
	for k, st := range sc.Steps {
		keys := make([]string, 0, len(st.Advance))
		for c := range st.Advance {
			keys = append(keys, c)
		}
		slices.SortFunc(keys, func(a, b string) int {
			na, nb := strings.Count(a, ","), strings.Count(b, ",")
			if a == "*" || b == "*" {
				return boolInt(a == "*") - boolInt(b == "*")
			}
			if na != nb {
				return nb - na
			}
			return strings.Compare(a, b)
		})
		for _, c := range keys {
			r := advRule{p: st.Advance[c]}
			if c != "*" {
				for _, part := range strings.Split(c, ",") {
					sk, v, _ := strings.Cut(part, "=")
					j := sc.stepIndex(sk)
					r.conds = append(r.conds, [2]int{j, slices.Index(sc.Steps[j].Variants, v)})
				}
			}
			sc.rules[k] = append(sc.rules[k], r)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// advance returns the probability that a unit at step k that saw the
// variants seen (an index per step, -1 for none) reaches step k+1.
func (sc *FunnelScenario) advance(k int, seen []int) float64 {
	if sc.rules == nil {
		sc.compile()
	}
rules:
	for _, r := range sc.rules[k] {
		for _, c := range r.conds {
			if seen[c[0]] != c[1] {
				continue rules
			}
		}
		return r.p
	}
	return 0
}

// pathRate returns the true end-to-end conversion rate of a path (a
// variant index per step with variants).
func (sc *FunnelScenario) pathRate(path []int) float64 {
	r := 1.0
	for k := 0; k < len(sc.Steps)-1; k++ {
		r *= sc.advance(k, path)
	}
	return r
}

// bestPath enumerates every path and returns the truly best one and its rate.
func (sc *FunnelScenario) bestPath() ([]int, float64) { return sc.bestPathFixing(-1, 0) }

// bestPathWith returns the rate of the best path that has variant v at
// step k.
func (sc *FunnelScenario) bestPathWith(k, v int) float64 {
	_, r := sc.bestPathFixing(k, v)
	return r
}

// bestPathFixing is bestPath among the paths with variant v at step k (any
// path when k < 0).
func (sc *FunnelScenario) bestPathFixing(fixed, fixedVariant int) ([]int, float64) {
	path := make([]int, len(sc.Steps))
	var best []int
	bestRate := -1.0
	var walk func(k int)
	walk = func(k int) {
		if k == len(sc.Steps) {
			if r := sc.pathRate(path); r > bestRate {
				best, bestRate = slices.Clone(path), r
			}
			return
		}
		if len(sc.Steps[k].Variants) == 0 {
			path[k] = -1
			walk(k + 1)
			return
		}
		for v := range sc.Steps[k].Variants {
			if k == fixed && v != fixedVariant {
				continue
			}
			path[k] = v
			walk(k + 1)
		}
	}
	walk(0)
	return best, bestRate
}

// bestVariants returns, per step with variants, the variant of the best
// path through it that no other variant's best path equals (-1 where the
// best is tied, or for a step without variants): what a declared winner
// of the step should be.
func (sc *FunnelScenario) bestVariants() []int {
	out := make([]int, len(sc.Steps))
	for k, st := range sc.Steps {
		out[k] = -1
		top, second := -1.0, -1.0
		for v := range st.Variants {
			r := sc.bestPathWith(k, v)
			switch {
			case r > top:
				top, second, out[k] = r, top, v
			case r > second:
				second = r
			}
		}
		if top == second {
			out[k] = -1
		}
	}
	return out
}

func (sc FunnelScenario) pathString(path []int) string {
	var parts []string
	for k, v := range path {
		if k < len(sc.Steps) && v >= 0 {
			parts = append(parts, sc.Steps[k].Key+"="+sc.Steps[k].Variants[v])
		}
	}
	return strings.Join(parts, ",")
}

// FunnelSimConfig describes a funnel simulation.
type FunnelSimConfig struct {
	Scenario FunnelScenario
	// Strategy is engine.MultiStep or engine.PerStep.
	Strategy string
	// Units enter the funnel per run.
	Units int
	Runs  int
	// Seed: run i draws from the PCG stream (Seed, i).
	Seed uint64
	// Batch is the number of units served from one set of plans before the
	// counts are updated (batched Thompson sampling, as the server does).
	Batch    int
	Settings engine.Settings
	Workers  int
	// NoDelayModel counts units inside their window as not converted so
	// far, as the server did before the delay model (timed scenarios only).
	NoDelayModel bool
	// Look, when positive, runs the server's decision rule every Look units
	// (every Look reaches of a step, in a timed scenario) and records each
	// step's first declared winner, as the server records it for good.
	Look int
}

// FunnelSimResult summarises the runs. The JSON keys are those of
// `samplit simulate --funnel FILE --json`.
type FunnelSimResult struct {
	Strategy string `json:"strategy"`
	Units    int    `json:"units"`
	Runs     int    `json:"runs"`
	// Conversions is the mean number of end-to-end conversions per run.
	Conversions   float64 `json:"conversions_mean"`
	ConversionsSE float64 `json:"conversions_se"`
	// OracleConversions is what serving the truly best path to every unit
	// would give on average.
	OracleConversions float64 `json:"oracle_conversions"`
	BestPath          string  `json:"best_path"`
	// BestPathRate is the share of runs whose final choice (per step, the
	// variant its strategy favours) is the truly best path.
	BestPathRate float64 `json:"best_path_rate"`
	// Chosen counts the final choices of the runs by path.
	Chosen map[string]int `json:"chosen"`
	// Timed scenarios (with a delay) only: whether the counts were
	// matured by the delay model, and the share of runs in which, at some
	// step, the best path's variant had its weight fall below one half
	// after it had first reached 0.9 (a swing).
	DelayModel *bool    `json:"delay_model,omitempty"`
	SwingRate  *float64 `json:"swing_rate,omitempty"`
	// CollapseRate is the share of runs in which, at some step, the best
	// path's variant had its weight fall below CollapseFloor after it had
	// been above CollapseLead: the campaigns' rule (a collapse), the kind
	// of swing the issue saw (96% → 2% → 97%).
	CollapseRate *float64 `json:"collapse_rate,omitempty"`
	// With Look: the share of runs in which some step declared a winner,
	// and the share of the declared step winners that are not their
	// step's truly best variant (every one, when the step's variants do
	// not differ).
	DeclaredRate     *float64 `json:"declared_rate,omitempty"`
	WrongWinnerShare *float64 `json:"wrong_winner_share,omitempty"`
	// With Look: the share of runs in which some step was recorded
	// no_difference (its variants provably within ± min_effect of its
	// leader), and the share in which every step with variants was
	// decided (a winner or no_difference) by the end: the funnel's
	// decision left collecting.
	NoDifferenceRate *float64 `json:"no_difference_rate,omitempty"`
	DecidedRate      *float64 `json:"decided_rate,omitempty"`
}

type funnelRun struct {
	conversions int
	chosen      []int
	swung       bool
	collapsed   bool
	// winners holds, per step, the variant first declared its winner (-1:
	// none), and same whether the step was recorded no_difference, with
	// Look.
	winners []int
	same    []bool
}

// RunFunnelSimulation runs the simulation in parallel; the result does not
// depend on the scheduling.
func RunFunnelSimulation(cfg FunnelSimConfig) (FunnelSimResult, error) {
	sc := cfg.Scenario
	if err := sc.validate(); err != nil {
		return FunnelSimResult{}, err
	}
	// Compiled once here, so that the runs share it read-only.
	sc.compile()
	cfg.Scenario = sc
	if cfg.Strategy != engine.MultiStep && cfg.Strategy != engine.PerStep {
		return FunnelSimResult{}, fmt.Errorf("strategy must be %s or %s", engine.MultiStep, engine.PerStep)
	}
	cfg.Batch = max(cfg.Batch, 1)
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	runs := make([]funnelRun, cfg.Runs)
	errs := make([]error, cfg.Runs)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, cfg.Runs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				run := simulateFunnelRun
				if cfg.Scenario.Delay != nil {
					run = simulateTimedFunnelRun
				}
				runs[i], errs[i] = run(cfg, rand.New(rand.NewPCG(cfg.Seed, uint64(i))))
			}
		}()
	}
	for i := range cfg.Runs {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return FunnelSimResult{}, err
	}
	best, bestRate := sc.bestPath()
	res := FunnelSimResult{Strategy: cfg.Strategy, Units: cfg.Units, Runs: cfg.Runs, Chosen: map[string]int{},
		OracleConversions: bestRate * float64(cfg.Units), BestPath: sc.pathString(best)}
	var sum, sumSq float64
	for _, r := range runs {
		c := float64(r.conversions)
		sum, sumSq = sum+c, sumSq+c*c
		p := sc.pathString(r.chosen)
		res.Chosen[p]++
		if p == res.BestPath {
			res.BestPathRate++
		}
	}
	n := float64(cfg.Runs)
	res.Conversions = sum / n
	if cfg.Runs > 1 {
		res.ConversionsSE = math.Sqrt(math.Max(0, sumSq/n-res.Conversions*res.Conversions) / (n - 1))
	}
	res.BestPathRate /= n
	if cfg.Look > 0 {
		right := sc.bestVariants()
		// Per run: some step declared a winner; some step recorded
		// no_difference; every step with variants decided.
		var declared, winners, wrong, same, decided float64
		for _, r := range runs {
			won, alike, all := false, false, true
			for k, st := range sc.Steps {
				if len(st.Variants) == 0 {
					continue
				}
				if w := r.winners[k]; w >= 0 {
					won = true
					winners++
					if w != right[k] {
						wrong++
					}
				}
				alike = alike || r.same[k]
				all = all && (r.winners[k] >= 0 || r.same[k])
			}
			declared += float64(boolInt(won))
			same += float64(boolInt(alike))
			decided += float64(boolInt(all))
		}
		declared, same, decided = declared/n, same/n, decided/n
		if winners > 0 {
			wrong /= winners
		}
		res.DeclaredRate, res.WrongWinnerShare, res.NoDifferenceRate, res.DecidedRate = &declared, &wrong, &same, &decided
	}
	if sc.Delay != nil {
		model, swings, collapses := !cfg.NoDelayModel, 0.0, 0.0
		for _, r := range runs {
			if r.swung {
				swings++
			}
			if r.collapsed {
				collapses++
			}
		}
		swings /= n
		collapses /= n
		res.DelayModel, res.SwingRate, res.CollapseRate = &model, &swings, &collapses
	}
	return res, nil
}

// simulateFunnelRun plays one run: units enter one by one, get a variant at
// every step with variants they reach from the current plans, and advance
// with the scenario's probabilities; the counters are what the server's
// would be with every completion inside the attribution window.
func simulateFunnelRun(cfg FunnelSimConfig, rng *rand.Rand) (funnelRun, error) {
	sc := cfg.Scenario
	m := len(sc.Steps)
	in := engine.FunnelInput{Strategy: cfg.Strategy, Settings: cfg.Settings, Steps: make([]engine.FunnelStepInput, m)}
	for k, st := range sc.Steps {
		si := engine.FunnelStepInput{Key: st.Key}
		if len(st.Variants) == 0 {
			si.Arms = []engine.FunnelArm{{}}
		}
		for _, v := range st.Variants {
			si.Arms = append(si.Arms, engine.FunnelArm{Key: v})
		}
		in.Steps[k] = si
	}
	out := newFunnelRun(m)
	seen := make([]int, m)
	props := make([]float64, m) // the propensity of each variant seen
	var plans []*engine.Plan
	weights := make([][]float64, m)
	for u := range cfg.Units {
		if cfg.Look > 0 && u > 0 && u%cfg.Look == 0 {
			if err := recordStepDecisions(in, &out); err != nil {
				return out, err
			}
		}
		if u%cfg.Batch == 0 {
			var err error
			if plans, err = engine.PlanFunnel(in); err != nil {
				return out, err
			}
			for k, p := range plans {
				weights[k] = nil
				if p != nil {
					weights[k] = p.Weights()
				}
			}
		}
		last := 0
		for k := range m {
			seen[k] = -1
		}
		for k := 0; k < m; k++ {
			last = k
			if plans[k] != nil {
				seen[k] = plans[k].Draw(rng)
				props[k] = weights[k][seen[k]]
				for j, w := range weights[k] {
					in.Steps[k].Arms[j].AddExpected(w)
				}
			}
			if k == m-1 || rng.Float64() >= sc.advance(k, seen) {
				break
			}
		}
		converted := last == m-1
		if converted {
			out.conversions++
		}
		for k := 0; k <= last; k++ {
			p := 0.0 // a step without variants logs no propensity
			if seen[k] >= 0 {
				p = props[k]
			}
			a := &in.Steps[k].Arms[max(seen[k], 0)]
			a.AddUnit(p)
			if k < last {
				a.AddAdvance(p)
			}
			if converted {
				a.AddConversion(p)
			}
		}
	}
	var err error
	out.chosen, err = chosenVariants(in)
	return out, err
}

// newFunnelRun returns a run of a funnel of m steps, no step decided.
func newFunnelRun(m int) funnelRun {
	out := funnelRun{winners: make([]int, m), same: make([]bool, m)}
	for k := range out.winners {
		out.winners[k] = -1
	}
	return out
}

// recordStepDecisions analyses the funnel as the server's decision loop does
// and records in out, as the server records them for good, the first winner
// of each step and whether it was found to show no difference before any
// winner.
func recordStepDecisions(in engine.FunnelInput, out *funnelRun) error {
	res, err := engine.AnalyzeFunnel(in)
	if err != nil {
		return err
	}
	for k, sr := range res.Steps {
		if out.winners[k] >= 0 {
			continue
		}
		if sr.Winner == nil {
			out.same[k] = out.same[k] || sr.NoDifference()
			continue
		}
		for i, a := range in.Steps[k].Arms {
			if a.Key == *sr.Winner {
				out.winners[k] = i
			}
		}
	}
	return nil
}

// chosenVariants analyses the funnel and returns, per step, the variant the
// strategy itself favours: its weight is its P(best) on the strategy's own
// objective (-1 for a step without variants).
func chosenVariants(in engine.FunnelInput) ([]int, error) {
	res, err := engine.AnalyzeFunnel(in)
	if err != nil {
		return nil, err
	}
	chosen := make([]int, len(res.Steps))
	for k, sr := range res.Steps {
		chosen[k] = -1
		best := -1.0
		for i, v := range sr.Variants {
			if v.Weight > best {
				chosen[k], best = i, v.Weight
			}
		}
	}
	return chosen, nil
}

// hasFunnelFlag reports whether the simulate arguments ask for a funnel
// scenario, so that Simulate hands them to SimulateFunnel.
func hasFunnelFlag(args []string) bool { return hasFlag(args, "funnel") }

// SimulateFunnel is `samplit simulate --funnel FILE`: it replays the funnel
// strategies against a scenario and reports, per strategy, the end-to-end
// conversions and how often the truly best path was chosen.
//
//	samplit simulate --funnel examples/funnels/signup.json [--strategy both|multi_step|per_step] [--units 20000] [--runs 100] [--seed 1] [--batch 100] [--json]
//	    [--hours H] [--window 7d] [--delay-model both|on|off] [--weight-floor 0.01] [--look 100 [--alpha 0.05] [--min-effect 0.05]]
//
// A scenario with a "delay" (or --delay) is timed: units enter over --hours
// and move between steps after delays; --delay-model compares the server's
// delay model with counting units inside their window as not converted.
// With --look the server's decision rule runs every --look units, and the
// report adds how often steps were declared a winner (and wrongly) or found
// to show no difference, and how often every step was decided.
func SimulateFunnel(args []string, stdout, stderr io.Writer) int {
	c := cli.New("samplit simulate --funnel", "samplit simulate --funnel FILE [flags]",
		"Simulate a funnel scenario (steps, variants, advance rates; see examples/funnels/signup.json):\n"+
			"multi_step, which optimises each step for the end-to-end conversion, against the naive per_step.")
	fs := c.FS
	file := fs.String("funnel", "", "JSON `file` of the funnel scenario (steps, variants, advance rates)")
	strategy := fs.String("strategy", "both", "multi_step, per_step or both")
	units := fs.Int("units", 20000, "units entering the funnel per run")
	runs := fs.Int("runs", 100, "number of runs per strategy")
	seed := fs.Uint64("seed", 1, "random seed")
	batch := fs.Int("batch", 100, "units served between updates of the counts")
	minSamples := fs.Int64("min-samples", engine.DefaultMinSamples, "units every variant needs before a decision")
	asJSON := fs.Bool("json", false, "print one JSON array")
	hours := fs.Float64("hours", 0, "timed scenarios: hours over which the units enter (default: the scenario's, else 48)")
	window := fs.String("window", "", "timed scenarios: the conversion window, e.g. 72h or 7d (default: the scenario's, else 7d)")
	delay := fs.String("delay", "", "make the scenario timed: the delay between steps, e.g. lognormal:4h:1 or exponential:6h (median)")
	delayModel := fs.String("delay-model", "both", "timed scenarios: on (the server's), off (units inside their window count as not converted) or both")
	floor := fs.Float64("weight-floor", engine.DefaultAdaptiveWeightFloor, "minimum share of every variant of a step (the server's funnel default)")
	look := fs.Int("look", 0, "run the server's decision rule every `N` units and report the step decisions it records (0: none)")
	alpha := fs.Float64("alpha", engine.DefaultAlpha, "with --look: level of the steps' anytime-valid tests")
	minEffect := fs.Float64("min-effect", engine.DefaultMinEffect, "with --look: relative margin of a step's no_difference")
	help, err := parseFlags(c, args, stdout)
	if help {
		return ExitOK
	}
	if err != nil {
		return fail(stderr, "simulate", err)
	}
	sc, err := LoadFunnelScenario(*file)
	if err != nil {
		return fail(stderr, "simulate", err)
	}
	if *delay != "" {
		d, err := parseDelayFlag(*delay)
		if err != nil {
			return fail(stderr, "simulate", err)
		}
		sc.Delay = &d
	}
	if *hours != 0 {
		sc.Hours = *hours
	}
	if *window != "" {
		var w Duration
		if err := w.UnmarshalJSON([]byte(`"` + *window + `"`)); err != nil || w <= 0 {
			return fail(stderr, "simulate", fmt.Errorf("--window %q: want a positive duration such as 72h or 7d", *window))
		}
		sc.Window = w
	}
	if err := sc.validate(); err != nil {
		return fail(stderr, "simulate", err)
	}
	models := map[string][]bool{"both": {true, false}, "on": {true}, "off": {false}}[*delayModel]
	if models == nil {
		return fail(stderr, "simulate", fmt.Errorf("--delay-model must be on, off or both, not %q", *delayModel))
	}
	if sc.Delay == nil {
		models = []bool{true} // untimed: nothing is late
	}
	strategies := []string{*strategy}
	if *strategy == "both" {
		strategies = engine.FunnelStrategies()
	}
	if *units < 1 || *runs < 1 || *batch < 1 || *look < 0 {
		return fail(stderr, "simulate", errors.New("--units, --runs and --batch must be positive, --look not negative"))
	}
	set := engine.Settings{MinSamples: *minSamples, Alpha: *alpha, MinEffect: *minEffect, WeightFloor: *floor}.WithDefaults()
	if err := set.Validate(2); err != nil {
		return fail(stderr, "simulate", err)
	}
	var results []FunnelSimResult
	for _, s := range strategies {
		for _, model := range models {
			res, err := RunFunnelSimulation(FunnelSimConfig{Scenario: sc, Strategy: s, Units: *units, Runs: *runs, Seed: *seed,
				Batch: *batch, Settings: set, NoDelayModel: !model, Look: *look})
			if err != nil {
				return fail(stderr, "simulate", err)
			}
			results = append(results, res)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(results)
		return ExitOK
	}
	fmt.Fprintf(stdout, "scenario %s: %d units × %d runs per strategy; truly best path %s (oracle %.0f conversions)\n",
		sc.Name, *units, *runs, results[0].BestPath, results[0].OracleConversions)
	if d := sc.Delay; d != nil {
		fmt.Fprintf(stdout, "timed: units enter over %gh, delay between steps %s, window %s\n",
			cmp.Or(sc.Hours, defaultFunnelHours), d, cmp.Or(time.Duration(sc.Window), defaultFunnelWindow))
	}
	for _, r := range results {
		label := r.Strategy
		if r.DelayModel != nil && *r.DelayModel {
			label += " (delay model)"
		} else if r.DelayModel != nil {
			label += " (no delay model)"
		}
		fmt.Fprintf(stdout, "%-28s  conversions %.0f ± %.0f (mean ± s.e.)  best path chosen in %.0f%% of runs", label, r.Conversions, r.ConversionsSE, 100*r.BestPathRate)
		if r.SwingRate != nil {
			fmt.Fprintf(stdout, "  swings in %.1f%% of runs, collapses in %.1f%%", 100**r.SwingRate, 100**r.CollapseRate)
		}
		fmt.Fprintf(stdout, "  choices %v\n", r.Chosen)
		if r.DeclaredRate != nil {
			fmt.Fprintf(stdout, "%-28s  looked at every %d units: a step winner in %.1f%% of runs (%.1f%% of winners wrong), no difference at a step in %.1f%%, every step decided in %.1f%%\n",
				"", *look, 100**r.DeclaredRate, 100**r.WrongWinnerShare, 100**r.NoDifferenceRate, 100**r.DecidedRate)
		}
	}
	return ExitOK
}

// parseDelayFlag reads --delay: dist:median[:sigma], e.g. "lognormal:4h:1",
// "exponential:6h", "fixed:2h", or "uniform:12h" (the maximum).
func parseDelayFlag(v string) (DelayDist, error) {
	parts := strings.Split(v, ":")
	bad := fmt.Errorf("--delay %q: want dist:median[:sigma], e.g. lognormal:4h:1 or exponential:6h", v)
	if len(parts) < 2 || len(parts) > 3 {
		return DelayDist{}, bad
	}
	var m Duration
	if err := m.UnmarshalJSON([]byte(`"` + parts[1] + `"`)); err != nil {
		return DelayDist{}, bad
	}
	d := DelayDist{Dist: parts[0], Median: m}
	if d.Dist == "uniform" {
		d.Median, d.Max = 0, m
	}
	if len(parts) == 3 {
		if _, err := fmt.Sscanf(parts[2], "%g", &d.Sigma); err != nil {
			return DelayDist{}, bad
		}
	}
	return d, d.validate()
}
