package optimize_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

// Issue 12, "conversions arrive over hours": an experiment with a
// conversion_window and a funnel, on the real SQLite store and a fake clock,
// fed traffic spread over days whose conversions arrive hours later
// (log-normal delays, mean 6 hours). The allocation must converge to the
// best variant without swings, and the matured rates at the end, while
// the last day's units are still inside their window, must be within two
// standard errors of the truth.
//
// Swing: once the best variant's weight has first reached swingFrom, the
// least weight it has at any later hour. Without the delay model the units
// too young to have converted count as failures, the variant that got the
// most recent traffic looks worse than it is, and its weight falls back;
// and its rate at the end is biased down by the share of units still
// inside their window.
//
// SAMPLIT_LATE_SEEDS=N runs seeds 1…N (=S: seed S alone) instead of the one fixed seed and logs
// how many runs swung and how many matured rates were off by more than two
// standard errors (docs/decisions.md reports these numbers).

// clock is a settable clock for the optimizers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// lateScenario is the traffic and the truth of the demonstration.
type lateScenario struct {
	rates        []float64     // true conversion rate per variant; the last is the best
	hours        int           // hours of traffic
	perTick      int           // new units per tick
	tick         time.Duration // time between ticks
	meanDelay    time.Duration // mean of the log-normal delay to the conversion
	sigma        float64       // log-normal shape
	window       time.Duration // conversion window
	swingFrom    float64       // the best variant's weight that starts the swing measurement
	minAfter     float64       // the least weight allowed after it
	finalAtLeast float64       // the best variant's weight at the end
}

var lateDemo = lateScenario{
	rates: []float64{0.03, 0.04, 0.055}, hours: 48, perTick: 30, tick: 10 * time.Minute,
	meanDelay: 8 * time.Hour, sigma: 1, window: 72 * time.Hour,
	swingFrom: 0.9, minAfter: 0.5, finalAtLeast: 0.75,
}

// lateSeeds returns the seeds to run: one fixed seed, or 1…N with
// SAMPLIT_LATE_SEEDS=N.
func lateSeeds(t *testing.T) []uint64 {
	v := os.Getenv("SAMPLIT_LATE_SEEDS")
	if v == "" {
		return []uint64{12}
	}
	if one, ok := strings.CutPrefix(v, "="); ok {
		n, err := strconv.ParseUint(one, 10, 64)
		if err != nil {
			t.Fatalf("SAMPLIT_LATE_SEEDS=%q: want =seed", v)
		}
		return []uint64{n}
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("SAMPLIT_LATE_SEEDS=%q: want a positive integer", v)
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

// delay draws a log-normal delay with the scenario's mean.
func (s lateScenario) delay(rng *rand.Rand) time.Duration {
	mu := math.Log(float64(s.meanDelay)) - s.sigma*s.sigma/2
	d := time.Duration(math.Exp(mu + s.sigma*rng.NormFloat64()))
	return min(d, s.window-time.Minute) // inside the window: every conversion counts
}

// lateRun is what a run shows: the best variant's weight every hour, and at
// the end each variant's matured rate and matured units.
type lateRun struct {
	weights []float64
	rates   []float64
	matured []float64
}

// swing returns the least weight of the best variant after it first reached
// from, and whether it did.
func (r lateRun) swing(from float64) (float64, bool) {
	least, seen := 1.0, false
	for _, w := range r.weights {
		if seen {
			least = min(least, w)
		} else if w >= from {
			seen = true
		}
	}
	return least, seen
}

// arrival is a conversion the server will learn of at a time.
type arrival struct {
	at   time.Time
	unit string
}

// simulate feeds the scenario through assign (new units → variant index)
// and convert (units whose conversion arrives now), reading the weights
// and rates with read every hour and at the end.
func (s lateScenario) simulate(t *testing.T, seed uint64, c *clock, assign func(units []string) []int, convert func(units []string),
	read func() (weights, rates, matured []float64)) lateRun {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	var pending []arrival
	var run lateRun
	best := len(s.rates) - 1
	ticksPerHour := int(time.Hour / s.tick)
	next := 0
	for tick := 0; tick < s.hours*ticksPerHour; tick++ {
		now := start.Add(time.Duration(tick) * s.tick)
		c.set(now)
		slices.SortFunc(pending, func(a, b arrival) int { return a.at.Compare(b.at) })
		due := 0
		for due < len(pending) && !pending[due].at.After(now) {
			due++
		}
		if due > 0 {
			units := make([]string, due)
			for i := range due {
				units[i] = pending[i].unit
			}
			convert(units)
			pending = pending[due:]
		}
		units := make([]string, s.perTick)
		for i := range units {
			units[i] = fmt.Sprintf("u%d", next)
			next++
		}
		for i, v := range assign(units) {
			if rng.Float64() < s.rates[v] {
				pending = append(pending, arrival{at: now.Add(s.delay(rng)), unit: units[i]})
			}
		}
		if tick%ticksPerHour == ticksPerHour-1 {
			w, _, _ := read()
			run.weights = append(run.weights, w[best])
		}
	}
	// The end: traffic has just stopped; the last hours' units are still
	// inside their window.
	_, run.rates, run.matured = read()
	return run
}

// lateTally counts, over runs, what check finds.
type lateTally struct {
	runs, swung, unconverged, rates, offRates int
	bestZ                                     []float64
}

// check finds convergence, swings and the matured rates' coverage of one
// run, counts them in tally, and reports them as errors when assert.
func (s lateScenario) check(t *testing.T, run lateRun, tally *lateTally, assert bool) {
	t.Helper()
	fail := t.Logf
	if assert {
		fail = t.Errorf
	}
	tally.runs++
	least, seen := run.swing(s.swingFrom)
	final := run.weights[len(run.weights)-1]
	if assert || os.Getenv("SAMPLIT_LATE_TRACE") != "" {
		t.Logf("best variant's weight by hour: %.2f", run.weights)
	}
	t.Logf("after first reaching %.2f the best variant's least weight was %.3f; at the end %.3f", s.swingFrom, least, final)
	if !seen || least < s.minAfter {
		tally.swung++
		fail("the best variant's weight fell to %.3f after reaching %.2f (reached: %v); want ≥ %.2f", least, s.swingFrom, seen, s.minAfter)
	}
	if final < s.finalAtLeast {
		tally.unconverged++
		fail("the best variant's weight at the end is %.3f, want ≥ %.2f", final, s.finalAtLeast)
	}
	for i, p := range s.rates {
		se := math.Sqrt(p * (1 - p) / run.matured[i])
		z := (run.rates[i] - p) / se
		tally.rates++
		if i == len(s.rates)-1 {
			tally.bestZ = append(tally.bestZ, z)
		}
		t.Logf("variant %d: matured rate %.4f on %.0f matured units, truth %.3f, z = %+.2f", i, run.rates[i], run.matured[i], p, z)
		if math.Abs(z) > 2 {
			tally.offRates++
			fail("variant %d: matured rate %.4f is %.1f standard errors from the truth %.3f", i, run.rates[i], z, p)
		}
	}
}

func (y lateTally) String() string {
	var mz float64
	for _, z := range y.bestZ {
		mz += z / float64(len(y.bestZ))
	}
	return fmt.Sprintf("%d runs: %d swung, %d did not converge, %d of %d matured rates off by more than 2 SE; best variant's mean z %+.2f",
		y.runs, y.swung, y.unconverged, y.offRates, y.rates, mz)
}

func TestConversionsOverHoursExperiment(t *testing.T) {
	if raceEnabled {
		t.Skip("statistical simulation: run without -race")
	}
	s := lateDemo
	seeds := lateSeeds(t)
	assert := len(seeds) == 1
	var with, without lateTally
	for _, seed := range seeds {
		s.check(t, s.runExperiment(t, seed, s.window), &with, assert)
		// The same traffic without a conversion window: outcomes count
		// when they arrive, every unit a trial from its assignment.
		t.Logf("seed %d without a conversion window:", seed)
		s.check(t, s.runExperiment(t, seed, 0), &without, false)
	}
	t.Logf("with the window: %v", with)
	t.Logf("without: %v", without)
	if assert && without.swung+without.offRates == 0 {
		// What the window is for must show on this seed, or the scenario
		// no longer demonstrates anything.
		t.Errorf("without a window the run neither swung nor missed a rate: %v", without)
	}
}

// runExperiment runs the scenario through an experiment with the window (0:
// none).
func (s lateScenario) runExperiment(t *testing.T, seed uint64, window time.Duration) lateRun {
	st := openStore(t)
	ctx := t.Context()
	e := lateExperiment(t, st, seed, window, len(s.rates))
	c := &clock{}
	x := optimize.NewExperiments(st, keyring(t, newKey(t)), c.now, nil, optimize.Options{RefreshEvery: s.tick})
	defer x.Close()
	index := map[string]int{}
	for i, v := range e.Variants {
		index[v.ID] = i
	}
	return s.simulate(t, seed, c,
		func(units []string) []int {
			as, err := x.Assign(ctx, e, units)
			if err != nil {
				t.Fatal(err)
			}
			out := make([]int, len(as))
			for i, a := range as {
				out[i] = index[a.Variant.ID]
			}
			return out
		},
		func(units []string) {
			evs := make([]store.Event, len(units))
			for i, u := range units {
				evs[i] = store.Event{UnitID: u, Value: 1, At: c.now()}
			}
			res, err := x.RecordEvents(ctx, e, evs)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if r.Outcome != store.OutcomeAccepted {
					t.Fatalf("event of %s: %s (%s)", units[i], r.Outcome, r.Reason)
				}
			}
		},
		func() (w, r, m []float64) {
			res, err := x.Results(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range res.Variants {
				w, r = append(w, v.Weight), append(r, v.Mean)
				switch {
				case v.MaturedUnits != nil:
					m = append(m, *v.MaturedUnits)
				case window > 0:
					t.Fatalf("variant %s: no matured units in the results of an experiment with a window", v.Key)
				default:
					m = append(m, float64(v.Units))
				}
			}
			return w, r, m
		})
}

// landingFunnel returns an unsaved running funnel of two steps: landing,
// with k variants (v0 the control), then the goal, purchase.
func landingFunnel(funnelID, workspaceID, key string, k int, set store.FunnelSettings) store.Funnel {
	f := store.Funnel{ID: funnelID, WorkspaceID: workspaceID, Key: key, Name: key,
		Strategy: "multi_step", Status: store.StatusRunning, Settings: set,
		Steps: []store.FunnelStep{
			{ID: id.New("stp"), Key: "landing", Name: "landing", Position: 0},
			{ID: id.New("stp"), Key: "purchase", Name: "purchase", Position: 1},
		}}
	for i := range k {
		v := fmt.Sprintf("v%d", i)
		f.Steps[0].Variants = append(f.Steps[0].Variants, store.Variant{ID: id.New(id.Variant), Key: v, Name: v, Control: i == 0,
			Payload: json.RawMessage("null"), Position: i})
	}
	return f
}

// lateExperiment stores a running adaptive experiment with k variants and
// the conversion window, in a workspace of its own.
func lateExperiment(t *testing.T, st store.Store, seed uint64, window time.Duration, k int) *store.Experiment {
	t.Helper()
	ws := store.Workspace{ID: id.New(id.Workspace), Name: "late", CreatedAt: time.Now()}
	if err := st.CreateWorkspace(t.Context(), ws); err != nil {
		t.Fatal(err)
	}
	sd := int64(seed)
	e := store.Experiment{
		// A fixed id: the experiment's random stream is seeded by its seed
		// and its id.
		ID: fmt.Sprintf("exp_late%d", seed), WorkspaceID: ws.ID, Key: "late", Name: "late",
		Kind: store.KindStandard, Metric: store.MetricBinary, Strategy: "adaptive", Status: store.StatusRunning,
		Settings: store.Settings{MinSamples: 100, DecisionThreshold: 0.95, LossThreshold: 0.001, Alpha: 0.05, Traffic: 1,
			WeightFloor: 0.01, Seed: &sd, ConversionWindow: window},
	}
	for i := range k {
		v := fmt.Sprintf("v%d", i)
		e.Variants = append(e.Variants, store.Variant{ID: id.New(id.Variant), Key: v, Name: v, Control: i == 0, Payload: json.RawMessage("null"), Position: i})
	}
	if err := st.CreateExperiment(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	return &e
}

func TestConversionsOverHoursFunnel(t *testing.T) {
	if raceEnabled {
		t.Skip("statistical simulation: run without -race")
	}
	s := lateDemo
	seeds := lateSeeds(t)
	var tally lateTally
	for _, seed := range seeds {
		s.check(t, s.runFunnel(t, seed), &tally, len(seeds) == 1)
	}
	t.Logf("funnel: %v", tally)
}

// runFunnel runs the scenario through a funnel whose first step has the
// variants and whose goal is the conversion.
func (s lateScenario) runFunnel(t *testing.T, seed uint64) lateRun {
	st := openStore(t)
	ctx := t.Context()
	e := lateExperiment(t, st, seed, 0, 2) // for its workspace
	sd := int64(seed)
	f := landingFunnel(fmt.Sprintf("fnl_late%d", seed), e.WorkspaceID, "late-funnel", len(s.rates),
		store.FunnelSettings{MinSamples: 100, DecisionThreshold: 0.95, LossThreshold: 0.001, Seed: &sd,
			// The API's bucket width: the window over 168 buckets, at most an hour.
			AttributionWindow: s.window, BucketWidth: min(s.window/168, time.Hour)})
	if err := st.CreateFunnel(ctx, f); err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	x := optimize.NewFunnels(st, c.now, nil, optimize.Options{RefreshEvery: s.tick})
	defer x.Close()
	index := map[string]int{}
	for i, v := range f.Steps[0].Variants {
		index[v.ID] = i
	}
	return s.simulate(t, seed, c,
		func(units []string) []int {
			out := make([]int, len(units))
			for i, u := range units {
				r, err := x.Progress(ctx, &f, u, "landing", 0)
				if err != nil {
					t.Fatal(err)
				}
				out[i] = index[r.Variant.ID]
			}
			return out
		},
		func(units []string) {
			for _, u := range units {
				if _, err := x.Progress(ctx, &f, u, "purchase", 0); err != nil {
					t.Fatal(err)
				}
			}
		},
		func() (w, r, m []float64) {
			res, err := x.Results(ctx, &f)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range res.Steps[0].Variants {
				w, r = append(w, v.Weight), append(r, v.Rate)
				mu := float64(v.Units)
				if v.MaturedUnits != nil {
					mu = *v.MaturedUnits
				}
				m = append(m, mu)
			}
			return w, r, m
		})
}
