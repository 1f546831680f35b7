package optimize_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

// TestGuardrailThroughTheStore runs the guardrail scenarios through the
// server's own path below HTTP: optimize.Experiments on the real SQLite
// store (Assign, RecordEvents with the metric, Results as the decision loop
// calls it). Fewer runs than the engine's simulation (TestGuardrailSimulation
// in internal/engine), with a base rate that trips sooner, so that it stays
// quick: it checks that the store path stops the harmful variant, never
// declares it, never serves it after the trip, and leaves an equal one alone.
func TestGuardrailThroughTheStore(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("simulation (about 30 s); run without -race and -short")
	}
	st := openStore(t)
	x := optimizer(t, st, keyring(t, newKey(t)))
	ctx := t.Context()
	ws := store.Workspace{ID: id.New(id.Workspace), Name: "sim", CreatedAt: time.Now()}
	if err := st.CreateWorkspace(ctx, ws); err != nil {
		t.Fatal(err)
	}
	run := func(name string, seed int64, refunds [2]float64, horizon int) (stopped, won, servedAfter bool) {
		t.Helper()
		e, err := x.Create(ctx, ws.ID, optimize.ExperimentSpec{
			Key: name, Metric: "binary", Strategy: "adaptive", Start: true,
			Variants: []optimize.VariantSpec{{Key: "control", Control: true}, {Key: "treatment"}},
			Settings: optimize.SettingsSpec{Seed: &seed},
			Metrics:  []optimize.MetricSpec{{Key: "refunds", Type: "binary", Role: "guardrail", Direction: "decrease", MaxDegradation: new(0.25)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(uint64(seed), 99))
		for n := 0; n < horizon; n += 500 {
			as, err := x.Assign(ctx, &e, unitIDs(fmt.Sprintf("%s-%d", name, n), 500))
			if err != nil {
				t.Fatal(err)
			}
			var evs []store.Event
			for _, a := range as {
				i := 0
				if a.Variant.Key == "treatment" {
					i = 1
					if stopped {
						servedAfter = true
					}
				}
				if r.Float64() < [2]float64{0.10, 0.12}[i] {
					evs = append(evs, store.Event{UnitID: a.UnitID, Value: 1, At: time.Now()})
				}
				if r.Float64() < refunds[i] {
					evs = append(evs, store.Event{UnitID: a.UnitID, Value: 1, At: time.Now(), Metric: "refunds"})
				}
			}
			if _, err := x.RecordEvents(ctx, &e, evs); err != nil {
				t.Fatal(err)
			}
			res, err := x.Results(ctx, &e)
			if err != nil {
				t.Fatal(err)
			}
			if res.Winner != nil && *res.Winner == "treatment" {
				won = true
			}
			if len(res.GuardrailTrips) > 0 {
				if res.GuardrailTrips[0].Variant != "treatment" {
					t.Fatalf("%s: tripped %+v", name, res.GuardrailTrips)
				}
				if stopped {
					break // one more batch after the trip was served
				}
				stopped = true
			}
			if res.Winner != nil {
				break
			}
		}
		return stopped, won, servedAfter
	}
	// 40 runs each: the harmful variant was stopped in 174 of 180 runs
	// (96.7%) measured through the store (the allocation, hence the data,
	// varies with the timing of the weight refreshes), so at least 35 of
	// 40 fails by chance in 0.2% of runs; the equal one was stopped in none
	// of 180.
	const runs, minStopped = 40, 35
	var hs, hw, ha, es int
	for k := range runs {
		s, w, a := run(fmt.Sprintf("harmful-%d", k), int64(k+1), [2]float64{0.20, 0.30}, 20000)
		hs, hw, ha = hs+b2i(s), hw+b2i(w), ha+b2i(a)
		s, _, _ = run(fmt.Sprintf("equal-%d", k), int64(1000+k), [2]float64{0.20, 0.20}, 4000)
		es += b2i(s)
	}
	t.Logf("through the store, %d runs each: harmful (refunds 20%% → 30%%, allowed 25%%) stopped %d, declared %d, served after the trip %d; equal stopped %d",
		runs, hs, hw, ha, es)
	if hs < minStopped || hw > 0 || ha > 0 || es > 1 {
		t.Errorf("harmful stopped %d/%d (want ≥ %d), declared %d, served after the trip %d (want 0); equal stopped %d (want ≤ 1)", hs, runs, minStopped, hw, ha, es)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
