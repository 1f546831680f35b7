package optimize_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

// TestWindowTestsUseRawCounts: with a conversion window, the results'
// always-valid p-values and difference intervals come from the raw counts
// (every unit, the outcomes that have arrived; engine.Input.TestArms), not
// from the matured view the posterior uses. The matured view scales each
// arm's inverse-propensity sums by its own matured share, which under
// adaptive allocation biases the tests toward the leader (TestLateOutcomes
// KeepLevel in internal/offline measures it). The check also makes sure the
// matured view would give other numbers here, so that it can fail.
func TestWindowTestsUseRawCounts(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	e := lateExperiment(t, st, 3, 24*time.Hour, 2)
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	c := &clock{}
	c.set(t0)
	x := optimize.NewExperiments(st, keyring(t, newKey(t)), c.now, nil, optimize.Options{RefreshEvery: time.Minute})
	defer x.Close()

	// Units every hour for ten hours of a one-day window, each conversion
	// three hours after its unit's assignment: the last units' outcomes
	// have not come, and the matured view is not the raw one.
	n := 0
	pending := map[int][]store.Event{} // by the step they come at
	for step := range 10 {
		c.set(t0.Add(time.Duration(step) * time.Hour))
		var units []string
		for range 60 {
			units = append(units, fmt.Sprintf("u%d", n))
			n++
		}
		as, err := x.Assign(ctx, e, units)
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range as {
			// The control converts one unit in 6, the other one in 4.
			if (a.Variant.Key == "v0" && i%6 == 0) || (a.Variant.Key == "v1" && i%4 == 0) {
				pending[step+3] = append(pending[step+3], store.Event{UnitID: units[i], Value: 1, At: c.now().Add(3 * time.Hour)})
			}
		}
		if evs := pending[step]; len(evs) > 0 {
			if _, err := x.RecordEvents(ctx, e, evs); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := x.Results(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	counters, err := st.Counters(ctx, e.WorkspaceID, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]engine.Arm, len(e.Variants))
	matured := make([]engine.Arm, len(e.Variants))
	for i, v := range e.Variants {
		raw[i] = optimize.ArmOf(v, counters[i])
		mu := res.Variants[i].MaturedUnits
		if mu == nil {
			t.Fatalf("variant %s: no matured units with a window", v.Key)
		}
		matured[i] = engine.MatureArm(raw[i], *mu)
	}
	set := engine.Settings{Alpha: e.Settings.Alpha, WeightFloor: e.Settings.WeightFloor}
	want, err := engine.AnalyzeMetric(e.Strategy, engine.Input{Metric: engine.Binary, Arms: raw, Settings: set})
	if err != nil {
		t.Fatal(err)
	}
	old, err := engine.AnalyzeMetric(e.Strategy, engine.Input{Metric: engine.Binary, Arms: matured, Settings: set})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Variants[1]
	if got.PValue == nil || want[1].PValue == nil || got.DiffLow == nil || want[1].DiffLow == nil {
		t.Fatalf("no test: got %+v, want %+v", got, want[1])
	}
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	if !close(*got.PValue, *want[1].PValue) || !close(*got.DiffLow, *want[1].DiffLow) || !close(*got.DiffHigh, *want[1].DiffHigh) {
		t.Errorf("p %v, difference [%v, %v]; from the raw counts p %v, [%v, %v]",
			*got.PValue, *got.DiffLow, *got.DiffHigh, *want[1].PValue, *want[1].DiffLow, *want[1].DiffHigh)
	}
	if close(*old[1].DiffLow, *want[1].DiffLow) {
		t.Errorf("the matured view gives the same interval (%v): this data does not tell the two apart", *old[1].DiffLow)
	}
	t.Logf("units %d %d, matured %v %v", raw[0].Units, raw[1].Units, *res.Variants[0].MaturedUnits, *res.Variants[1].MaturedUnits)
	t.Logf("raw: p %.4g [%.4f, %.4f]; matured view: p %.4g [%.4f, %.4f]", *want[1].PValue, *want[1].DiffLow, *want[1].DiffHigh,
		*old[1].PValue, *old[1].DiffLow, *old[1].DiffHigh)
}
