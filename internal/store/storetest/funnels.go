package storetest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

// newFunnel returns an unsaved running funnel: landing (a, b), signup
// (short, long), checkout (the goal), with a one-hour window.
func newFunnel(ws store.Workspace, key string) store.Funnel {
	f := store.Funnel{
		ID: id.New(id.Funnel), WorkspaceID: ws.ID, Key: key, Name: "Funnel " + key, Strategy: "multi_step",
		Status: store.StatusRunning,
		Settings: store.FunnelSettings{MinSamples: 100, DecisionThreshold: 0.95, LossThreshold: 0.001, Seed: ptr(int64(7)),
			AttributionWindow: time.Hour, BucketWidth: time.Minute},
		CreatedAt: t0, UpdatedAt: t0, StartedAt: ptr(t0),
	}
	for i, st := range []struct {
		key      string
		variants []string
	}{{"landing", []string{"a", "b"}}, {"signup", []string{"short", "long"}}, {"checkout", nil}} {
		s := store.FunnelStep{ID: id.New("stp"), Key: st.key, Name: st.key, Position: i}
		for j, v := range st.variants {
			s.Variants = append(s.Variants, store.Variant{ID: id.New(id.Variant), Key: v, Name: v, Control: j == 0,
				Payload: json.RawMessage(fmt.Sprintf(`{"v":%q}`, v)), Position: j})
		}
		f.Steps = append(f.Steps, s)
	}
	return f
}

func createFunnel(t *testing.T, s store.Store, ws store.Workspace, key string) store.Funnel {
	t.Helper()
	f := newFunnel(ws, key)
	must(t, s.CreateFunnel(t.Context(), f), "create funnel")
	return f
}

// reach records one progress item and returns its result.
func reach(t *testing.T, s store.Store, f store.Funnel, unit string, step, variant int, at time.Time, value float64) store.ProgressResult {
	t.Helper()
	it := store.Progress{UnitID: unit, Step: step, VariantID: variantID(f, step, variant), Propensity: 1, Value: value, At: at}
	if variant >= 0 {
		// The step's plan served its first variant a quarter of the units,
		// the second three quarters (the propensities the counters weigh by).
		it.Weights = map[string]float64{variantID(f, step, 0): 0.25, variantID(f, step, 1): 0.75}
		it.Propensity = it.Weights[it.VariantID]
	}
	res, err := s.RecordProgress(t.Context(), []store.ProgressBatch{progressBatch(f, it)})
	must(t, err, "record progress")
	return res[0][0]
}

func progressBatch(f store.Funnel, items ...store.Progress) store.ProgressBatch {
	return store.ProgressBatch{WorkspaceID: f.WorkspaceID, FunnelID: f.ID, Goal: len(f.Steps) - 1,
		Window: f.Settings.AttributionWindow, BucketWidth: f.Settings.BucketWidth, Items: items}
}

func variantID(f store.Funnel, step, variant int) string {
	if variant < 0 {
		return ""
	}
	return f.Steps[step].Variants[variant].ID
}

// stepCounters returns the counters by (step, variant id).
func stepCounters(t *testing.T, s store.Store, f store.Funnel, now time.Time) (map[[2]string]store.StepCounters, store.FunnelCounts) {
	t.Helper()
	c, err := s.FunnelCounts(t.Context(), f.WorkspaceID, f.ID, now)
	must(t, err, "funnel counts")
	out := map[[2]string]store.StepCounters{}
	for _, sc := range c.Steps {
		out[[2]string{fmt.Sprint(sc.Step), sc.VariantID}] = sc
	}
	return out, c
}

func testFunnelsCRUD(t *testing.T, s store.Store) {
	ws := newWorkspace(t, s, "funnels")
	other := newWorkspace(t, s, "other")
	f := createFunnel(t, s, ws, "signup-flow")
	for _, ref := range []string{f.ID, f.Key} {
		got, err := s.GetFunnel(t.Context(), ws.ID, ref)
		must(t, err, "get funnel")
		diff(t, "funnel", f, got, cmpopts.EquateEmpty())
	}
	_, err := s.GetFunnel(t.Context(), other.ID, f.ID)
	wantCode(t, err, apperr.NotFound, "get from another workspace")
	wantCode(t, s.CreateFunnel(t.Context(), newFunnel(ws, "signup-flow")), apperr.Conflict, "duplicate key")
	must(t, s.CreateFunnel(t.Context(), newFunnel(other, "signup-flow")), "same key in another workspace")
	second := createFunnel(t, s, ws, "second")
	list, err := s.ListFunnels(t.Context(), ws.ID, store.ListParams{Limit: 1})
	must(t, err, "list")
	if len(list) != 1 || list[0].ID != f.ID || len(list[0].Steps) != 3 || len(list[0].Steps[1].Variants) != 2 {
		t.Errorf("first page %+v", list)
	}
	list, err = s.ListFunnels(t.Context(), ws.ID, store.ListParams{After: f.ID})
	must(t, err, "list")
	if len(list) != 1 || list[0].ID != second.ID {
		t.Errorf("second page %+v", list)
	}

	got, err := s.TransitionFunnel(t.Context(), ws.ID, f.ID, store.Transition{From: []store.Status{store.StatusRunning}, To: store.StatusPaused, At: t0.Add(time.Minute)})
	must(t, err, "pause")
	if got.Status != store.StatusPaused {
		t.Errorf("status %s", got.Status)
	}
	_, err = s.TransitionFunnel(t.Context(), ws.ID, f.ID, store.Transition{From: []store.Status{store.StatusRunning}, To: store.StatusPaused, At: t0})
	wantCode(t, err, apperr.Conflict, "pause twice")
	_, err = s.TransitionFunnel(t.Context(), other.ID, f.ID, store.Transition{From: []store.Status{store.StatusPaused}, To: store.StatusRunning, At: t0})
	wantCode(t, err, apperr.NotFound, "transition from another workspace")

	set, err := s.DeclareStepWinner(t.Context(), ws.ID, f.ID, 0, "b", t0)
	must(t, err, "declare")
	again, err := s.DeclareStepWinner(t.Context(), ws.ID, f.ID, 0, "a", t0)
	must(t, err, "declare again")
	if !set || again {
		t.Errorf("declare: first %v, second %v", set, again)
	}
	got, err = s.GetFunnel(t.Context(), ws.ID, f.ID)
	must(t, err, "get")
	if got.Steps[0].Winner != "b" || got.Steps[1].Winner != "" {
		t.Errorf("winners %q %q", got.Steps[0].Winner, got.Steps[1].Winner)
	}
	_, err = s.DeclareStepWinner(t.Context(), other.ID, f.ID, 1, "short", t0)
	wantCode(t, err, apperr.NotFound, "declare in another workspace")

	// no_difference likewise: recorded once, with its time, per step.
	if got.Steps[1].NoDifferenceAt != nil {
		t.Errorf("step 1 NoDifferenceAt = %v before any was recorded", got.Steps[1].NoDifferenceAt)
	}
	set, err = s.MarkStepNoDifference(t.Context(), ws.ID, f.ID, 1, t0.Add(time.Hour))
	must(t, err, "mark no difference")
	again, err = s.MarkStepNoDifference(t.Context(), ws.ID, f.ID, 1, t0.Add(2*time.Hour))
	must(t, err, "mark no difference again")
	if !set || again {
		t.Errorf("no difference: first %v, second %v", set, again)
	}
	got, err = s.GetFunnel(t.Context(), ws.ID, f.ID)
	must(t, err, "get")
	if at := got.Steps[1].NoDifferenceAt; at == nil || !at.Equal(t0.Add(time.Hour)) || got.Steps[0].NoDifferenceAt != nil {
		t.Errorf("NoDifferenceAt %v %v, want nil and %v", got.Steps[0].NoDifferenceAt, at, t0.Add(time.Hour))
	}
	_, err = s.MarkStepNoDifference(t.Context(), other.ID, f.ID, 0, t0)
	wantCode(t, err, apperr.NotFound, "mark no difference in another workspace")
}

func testFunnelProgress(t *testing.T, s store.Store) {
	ws := newWorkspace(t, s, "progress")
	f := createFunnel(t, s, ws, "signup-flow")
	at := t0
	outcome := func(r store.ProgressResult, want store.ProgressOutcome, wantVariant string, what string) {
		t.Helper()
		if r.Outcome != want || r.VariantID != wantVariant {
			t.Errorf("%s: got %s %q, want %s %q", what, r.Outcome, r.VariantID, want, wantVariant)
		}
	}
	outcome(reach(t, s, f, "u1", 0, 1, at, 0), store.ProgressRecorded, variantID(f, 0, 1), "u1 lands")
	// A repeat with another drawn variant keeps the stored one.
	outcome(reach(t, s, f, "u1", 0, 0, at, 0), store.ProgressRepeated, variantID(f, 0, 1), "u1 lands again")
	outcome(reach(t, s, f, "ghost", 2, -1, at, 0), store.ProgressNotEntered, "", "ghost converts")
	outcome(reach(t, s, f, "u1", 1, 0, at.Add(time.Minute), 0), store.ProgressRecorded, variantID(f, 1, 0), "u1 signs up")
	outcome(reach(t, s, f, "u1", 2, -1, at.Add(2*time.Minute), 40), store.ProgressRecorded, "", "u1 converts")
	outcome(reach(t, s, f, "u1", 2, -1, at.Add(3*time.Minute), 40), store.ProgressRepeated, "", "u1 converts again")
	// u2 skips signup, converts, then is behind signup.
	outcome(reach(t, s, f, "u2", 0, 0, at, 0), store.ProgressRecorded, variantID(f, 0, 0), "u2 lands")
	outcome(reach(t, s, f, "u2", 2, -1, at.Add(90*time.Minute), 5), store.ProgressRecorded, "", "u2 converts late")
	outcome(reach(t, s, f, "u2", 1, 1, at.Add(91*time.Minute), 0), store.ProgressBehind, "", "u2 goes back")
	// u3 enters at signup; u4 lands and stays.
	outcome(reach(t, s, f, "u3", 1, 1, at, 0), store.ProgressRecorded, variantID(f, 1, 1), "u3 enters at signup")
	outcome(reach(t, s, f, "u4", 0, 0, at.Add(100*time.Minute), 0), store.ProgressRecorded, variantID(f, 0, 0), "u4 lands")

	steps, err := s.UnitSteps(t.Context(), ws.ID, f.ID, []string{"u1", "u2", "ghost"})
	must(t, err, "unit steps")
	diff(t, "unit steps", map[string]map[int]string{
		"u1": {0: variantID(f, 0, 1), 1: variantID(f, 1, 0), 2: ""},
		"u2": {0: variantID(f, 0, 0), 2: ""},
	}, steps)

	now := at.Add(110 * time.Minute)
	c, counts := stepCounters(t, s, f, now)
	k := func(step int, v string) [2]string { return [2]string{fmt.Sprint(step), v} }
	// The inverse-propensity sums count each unit with its variant's
	// propensity (¾ for the second variant, ¼ for the first): over the
	// units, the conversions and the advances within the window; and every
	// unit at a step adds both variants' weights to their Expected sums
	// (three units landed, two reached signup). The goal, without
	// variants, has none.
	const q, h = 4.0 / 3, 16.0 / 9 // 1/p and 1/p² at p = ¾
	diff(t, "counters", map[[2]string]store.StepCounters{
		// u1 converted within the hour and advanced; u2 advanced and
		// converted after the window; u4 is open.
		k(0, variantID(f, 0, 1)): {Step: 0, VariantID: variantID(f, 0, 1), Units: 1, Conversions: 1, Advanced: 1, Value: 40,
			InvP: q, InvP2: h, ConvInvP: q, ConvInvP2: h, AdvInvP: q, AdvInvP2: h, Expected: 3 * 0.75, ExpectedSquares: 3 * 0.5625, InvExpected: 3 * q},
		k(0, variantID(f, 0, 0)): {Step: 0, VariantID: variantID(f, 0, 0), Units: 2, Late: 1, Open: 1,
			InvP: 2 * 4, InvP2: 2 * 16, Expected: 3 * 0.25, ExpectedSquares: 3 * 0.0625, InvExpected: 3 * 4},
		k(1, variantID(f, 1, 0)): {Step: 1, VariantID: variantID(f, 1, 0), Units: 1, Conversions: 1, Advanced: 1, Value: 40,
			InvP: 4, InvP2: 16, ConvInvP: 4, ConvInvP2: 16, AdvInvP: 4, AdvInvP2: 16, Expected: 2 * 0.25, ExpectedSquares: 2 * 0.0625, InvExpected: 2 * 4},
		k(1, variantID(f, 1, 1)): {Step: 1, VariantID: variantID(f, 1, 1), Units: 1,
			InvP: q, InvP2: h, Expected: 2 * 0.75, ExpectedSquares: 2 * 0.5625, InvExpected: 2 * q},
		k(2, ""): {Step: 2, VariantID: "", Units: 2, Conversions: 2, Value: 45},
	}, c, approx)
	paths := map[string]store.PathCounters{}
	for _, p := range counts.Paths {
		paths[fmt.Sprint(p.Path)] = p
	}
	key := func(p map[int]string) string { return fmt.Sprint(p) }
	diff(t, "paths", map[string]store.PathCounters{
		key(map[int]string{0: variantID(f, 0, 1), 1: variantID(f, 1, 0)}): {Path: map[int]string{0: variantID(f, 0, 1), 1: variantID(f, 1, 0)}, Units: 1, Conversions: 1},
		key(map[int]string{0: variantID(f, 0, 0)}):                        {Path: map[int]string{0: variantID(f, 0, 0)}, Units: 2},
		key(map[int]string{1: variantID(f, 1, 1)}):                        {Path: map[int]string{1: variantID(f, 1, 1)}, Units: 1},
	}, paths)

	// The reach-time slots that the delay model reads (engine.MatureFunnel)
	// carry each completion's delay from reaching the step: u1's
	// completion came 2 minutes after its landing and 1 after its signup;
	// u2's, after its window, is in no histogram.
	_, early := stepCounters(t, s, f, at.Add(30*time.Minute))
	type slotKey struct {
		step    int
		variant string
	}
	got := map[slotKey]store.StepSlot{}
	for _, sl := range early.Slots {
		if sl.Start.Before(at.Add(30 * time.Minute)) { // not u4's, later
			if _, dup := got[slotKey{sl.Step, sl.VariantID}]; dup {
				t.Errorf("two slots of step %d variant %s before u4", sl.Step, sl.VariantID)
			}
			got[slotKey{sl.Step, sl.VariantID}] = sl
		}
	}
	var d2, d1 [12]int64
	d2[0], d1[0] = 1, 1 // both below the first edge, 5 minutes
	for key, want := range map[slotKey]struct {
		units, conversions int64
		delays             [12]int64
	}{
		{0, variantID(f, 0, 1)}: {1, 1, d2},
		{0, variantID(f, 0, 0)}: {1, 0, [12]int64{}},
		{1, variantID(f, 1, 0)}: {1, 1, d1},
	} {
		sl, ok := got[key]
		if !ok || sl.Units != want.units || sl.Conversions != want.conversions || sl.Delays != want.delays {
			t.Errorf("slot of step %d variant %s: %+v (found %v), want %d units, %d conversions, delays %v",
				key.step, key.variant, sl, ok, want.units, want.conversions, want.delays)
		}
	}

	// Later, every window has closed: nothing is open any more.
	c, _ = stepCounters(t, s, f, at.Add(5*time.Hour))
	for key, sc := range c {
		if sc.Open != 0 {
			t.Errorf("%v still open: %d", key, sc.Open)
		}
	}
	other := newWorkspace(t, s, "other")
	_, err = s.FunnelCounts(t.Context(), other.ID, f.ID, now)
	wantCode(t, err, apperr.NotFound, "counts from another workspace")
	_, err = s.RecordProgress(t.Context(), []store.ProgressBatch{{WorkspaceID: other.ID, FunnelID: f.ID, Goal: 2, Window: time.Hour,
		Items: []store.Progress{{UnitID: "x", Step: 0, VariantID: variantID(f, 0, 0), At: at}}}})
	wantCode(t, err, apperr.NotFound, "progress in another workspace")
	_, err = s.UnitSteps(t.Context(), other.ID, f.ID, []string{"u1"})
	wantCode(t, err, apperr.NotFound, "unit steps from another workspace")
}

// testFunnelProgressBatch: several steps of one unit in one batch are
// applied in order, exactly as one call each.
func testFunnelProgressBatch(t *testing.T, s store.Store) {
	ws := newWorkspace(t, s, "batch")
	f := createFunnel(t, s, ws, "signup-flow")
	res, err := s.RecordProgress(t.Context(), []store.ProgressBatch{progressBatch(f,
		store.Progress{UnitID: "u", Step: 0, VariantID: variantID(f, 0, 0), At: t0},
		store.Progress{UnitID: "u", Step: 0, VariantID: variantID(f, 0, 1), At: t0},
		store.Progress{UnitID: "u", Step: 1, VariantID: variantID(f, 1, 1), At: t0},
		store.Progress{UnitID: "u", Step: 2, At: t0},
		store.Progress{UnitID: "v", Step: 2, At: t0},
	)})
	must(t, err, "batch")
	var got []store.ProgressOutcome
	for _, r := range res[0] {
		got = append(got, r.Outcome)
	}
	diff(t, "outcomes", []store.ProgressOutcome{store.ProgressRecorded, store.ProgressRepeated, store.ProgressRecorded,
		store.ProgressRecorded, store.ProgressNotEntered}, got)
	c, _ := stepCounters(t, s, f, t0)
	if sc := c[[2]string{"0", variantID(f, 0, 0)}]; sc.Units != 1 || sc.Conversions != 1 || sc.Advanced != 1 {
		t.Errorf("landing a %+v", sc)
	}
}

// testFunnelProgressBatchAsCalls checks that batches are applied exactly
// as the same items sent one call each: 3,000 random items of 1,200 units
// (steps in any order, repeats, skips, goals of units that never entered,
// reach times around the window) go to one funnel as three batches of
// 1,000, each with more units than one statement's rows on both databases
// (each reads what the ones before stored), and to another item by item. The
// outcomes, the counters, the paths and the open slots must agree, with the
// variants named by step and position.
func testFunnelProgressBatchAsCalls(t *testing.T, s store.Store) {
	ws := newWorkspace(t, s, "as-calls")
	batched, single := createFunnel(t, s, ws, "batched"), createFunnel(t, s, ws, "single")
	r := rand.New(rand.NewPCG(11, 16))
	type draw struct {
		unit, step, variant int
		at                  time.Duration
		value               float64
	}
	var draws []draw
	for range 3000 {
		d := draw{unit: r.IntN(1200), step: r.IntN(3), variant: -1, at: time.Duration(r.IntN(150)) * time.Minute}
		if d.step < 2 {
			d.variant = r.IntN(2)
		} else {
			d.value = float64(r.IntN(5))
		}
		draws = append(draws, d)
	}
	items := func(f store.Funnel) []store.Progress {
		var out []store.Progress
		for _, d := range draws {
			it := store.Progress{UnitID: fmt.Sprintf("u%04d", d.unit), Step: d.step, VariantID: variantID(f, d.step, d.variant),
				Propensity: 1, Value: d.value, At: t0.Add(d.at)}
			if d.variant >= 0 {
				it.Weights = map[string]float64{variantID(f, d.step, 0): 0.25, variantID(f, d.step, 1): 0.75}
				it.Propensity = it.Weights[it.VariantID]
			}
			out = append(out, it)
		}
		return out
	}
	// label names the funnel's variant ids by step and position.
	label := func(f store.Funnel, v any) string {
		b, err := json.Marshal(v)
		must(t, err, "marshal")
		text := string(b)
		for i, st := range f.Steps {
			for j, va := range st.Variants {
				text = strings.ReplaceAll(text, va.ID, fmt.Sprintf("s%dv%d", i, j))
			}
		}
		return text
	}
	counts := func(f store.Funnel) store.FunnelCounts {
		_, c := stepCounters(t, s, f, t0.Add(100*time.Minute))
		var out store.FunnelCounts
		must(t, json.Unmarshal([]byte(label(f, c)), &out), "unmarshal")
		slices.SortFunc(out.Steps, func(a, b store.StepCounters) int {
			return cmpInts(a.Step, b.Step, strings.Compare(a.VariantID, b.VariantID))
		})
		slices.SortFunc(out.Paths, func(a, b store.PathCounters) int { return strings.Compare(fmt.Sprint(a.Path), fmt.Sprint(b.Path)) })
		slices.SortFunc(out.Slots, func(a, b store.StepSlot) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		return out
	}

	var inBatches []store.ProgressResult
	all := items(batched)
	for _, part := range [][]store.Progress{all[:1000], all[1000:2000], all[2000:]} {
		res, err := s.RecordProgress(t.Context(), []store.ProgressBatch{progressBatch(batched, part...)})
		must(t, err, "record a batch")
		inBatches = append(inBatches, res[0]...)
	}
	var one []store.ProgressResult
	for _, it := range items(single) {
		res, err := s.RecordProgress(t.Context(), []store.ProgressBatch{progressBatch(single, it)})
		must(t, err, "record an item")
		one = append(one, res[0][0])
	}
	byOutcome := map[store.ProgressOutcome]int{}
	for _, r := range inBatches {
		byOutcome[r.Outcome]++
	}
	want, got := counts(single), counts(batched)
	t.Logf("outcomes of the batches: %v; %d counters, %d paths, %d open slots", byOutcome, len(got.Steps), len(got.Paths), len(got.Slots))
	diff(t, "outcomes", label(single, one), label(batched, inBatches))
	diff(t, "counts", want, got, approx)
}

// cmpInts compares a and b, then falls back on then.
func cmpInts(a, b, then int) int {
	if a != b {
		return a - b
	}
	return then
}

// testFunnelProgressConcurrent: many writers racing on the same units count
// each (unit, step) once.
func testFunnelProgressConcurrent(t *testing.T, s store.Store) {
	ws := newWorkspace(t, s, "concurrent")
	f := createFunnel(t, s, ws, "signup-flow")
	const units, writers = 20, 4
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range units {
				unit := fmt.Sprintf("u%d", u)
				for step := range 3 {
					v := -1
					if step < 2 {
						v = (u + w) % 2
					}
					_, err := s.RecordProgress(t.Context(), []store.ProgressBatch{progressBatch(f,
						store.Progress{UnitID: unit, Step: step, VariantID: variantID(f, step, v), At: t0})})
					if err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_, counts := stepCounters(t, s, f, t0)
	for _, sc := range counts.Steps {
		if sc.Step == 2 && sc.Units != units {
			t.Errorf("goal units %d, want %d", sc.Units, units)
		}
	}
	var total, conv int64
	for _, sc := range counts.Steps {
		if sc.Step == 0 {
			total += sc.Units
			conv += sc.Conversions
		}
	}
	var pathUnits int64
	for _, p := range counts.Paths {
		pathUnits += p.Units
	}
	if total != units || conv != units || pathUnits != units {
		t.Errorf("landing units %d conversions %d path units %d, want %d each", total, conv, pathUnits, units)
	}
}
