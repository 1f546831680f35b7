package offline

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/samplit/samplit/internal/cli"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/samplit/samplit/internal/engine"
)

// FunnelScenario is a funnel with known behaviour, read from the JSON file
// of `samplit simulate --funnel FILE`: ordered steps, the last the goal,
// each with its variants and the probability that a unit at the step goes
// on to the next one.
type FunnelScenario struct {
	Name  string         `json:"name"`
	Steps []ScenarioStep `json:"steps"`

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
func (sc *FunnelScenario) bestPath() ([]int, float64) {
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
			path[k] = v
			walk(k + 1)
		}
	}
	walk(0)
	return best, bestRate
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
}

type funnelRun struct {
	conversions int
	chosen      []int
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
				runs[i], errs[i] = simulateFunnelRun(cfg, rand.New(rand.NewPCG(cfg.Seed, uint64(i))))
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
	var out funnelRun
	seen := make([]int, m)
	var plans []*engine.Plan
	for u := range cfg.Units {
		if u%cfg.Batch == 0 {
			var err error
			if plans, err = engine.PlanFunnel(in); err != nil {
				return out, err
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
			a := &in.Steps[k].Arms[max(seen[k], 0)]
			a.Units++
			if k < last {
				a.Advanced++
			}
			if converted {
				a.Conversions++
			}
		}
	}
	res, err := engine.AnalyzeFunnel(in)
	if err != nil {
		return out, err
	}
	out.chosen = make([]int, m)
	for k, sr := range res.Steps {
		out.chosen[k] = -1
		best := -1.0
		for i, v := range sr.Variants {
			// The variant the strategy itself favours: its weight is its
			// P(best) on the strategy's own objective.
			if v.Weight > best {
				out.chosen[k], best = i, v.Weight
			}
		}
	}
	return out, nil
}

// hasFunnelFlag reports whether the simulate arguments ask for a funnel
// scenario, so that Simulate hands them to SimulateFunnel.
func hasFunnelFlag(args []string) bool { return hasFlag(args, "funnel") }

// SimulateFunnel is `samplit simulate --funnel FILE`: it replays the funnel
// strategies against a scenario and reports, per strategy, the end-to-end
// conversions and how often the truly best path was chosen.
//
//	samplit simulate --funnel examples/funnels/signup.json [--strategy both|multi_step|per_step] [--units 20000] [--runs 100] [--seed 1] [--batch 100] [--json]
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
	strategies := []string{*strategy}
	if *strategy == "both" {
		strategies = engine.FunnelStrategies()
	}
	if *units < 1 || *runs < 1 || *batch < 1 {
		return fail(stderr, "simulate", errors.New("--units, --runs and --batch must be positive"))
	}
	var results []FunnelSimResult
	for _, s := range strategies {
		res, err := RunFunnelSimulation(FunnelSimConfig{Scenario: sc, Strategy: s, Units: *units, Runs: *runs, Seed: *seed,
			Batch: *batch, Settings: engine.Settings{MinSamples: *minSamples}})
		if err != nil {
			return fail(stderr, "simulate", err)
		}
		results = append(results, res)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(results)
		return ExitOK
	}
	fmt.Fprintf(stdout, "scenario %s: %d units × %d runs per strategy; truly best path %s (oracle %.0f conversions)\n",
		sc.Name, *units, *runs, results[0].BestPath, results[0].OracleConversions)
	for _, r := range results {
		fmt.Fprintf(stdout, "%-10s  conversions %.0f ± %.0f (mean ± s.e.)  best path chosen in %.0f%% of runs  choices %v\n",
			r.Strategy, r.Conversions, r.ConversionsSE, 100*r.BestPathRate, r.Chosen)
	}
	return ExitOK
}
