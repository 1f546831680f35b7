package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/store"
)

// testFinishedCounters: the history a prior on lifts is learned from is
// the workspace's completed experiments (archived ones included, running
// ones and other workspaces' not), newest completion first, at most the
// limit, each variant's counters summed over its shards and listed in
// variant order with its control flag.
func testFinishedCounters(t *testing.T, s store.Store) {
	ctx := t.Context()
	ws := newWorkspace(t, s, "history")
	other := newWorkspace(t, s, "other")
	complete := func(e store.Experiment, at time.Time) {
		t.Helper()
		_, err := s.TransitionExperiment(ctx, e.WorkspaceID, e.ID, store.Transition{
			From: []store.Status{store.StatusRunning}, To: store.StatusCompleted, At: at})
		must(t, err, "complete "+e.Key)
	}
	var exps []store.Experiment
	for i := range 4 {
		e := newExperiment(ws, fmt.Sprintf("e%d", i), store.MetricBinary, "control", "b", "c")
		must(t, s.CreateExperiment(ctx, e), "create")
		// i+1 units on control, 2(i+1) on b, none on c; the units come one
		// per transaction so that sharded counters spread them.
		for u := range 3 * (i + 1) {
			v := 0
			if u > i {
				v = 1
			}
			assign(t, s, e, v, t0, fmt.Sprintf("u%d", u))
		}
		_, err := recordEvents(ctx, s, ws.ID, e.ID, store.MetricBinary, []store.Event{{UnitID: "u0", At: t0}})
		must(t, err, "record")
		exps = append(exps, e)
	}
	// e0 completed first, e2 last and then archived; e3 still runs.
	complete(exps[0], t0.Add(time.Hour))
	complete(exps[1], t0.Add(3*time.Hour))
	complete(exps[2], t0.Add(4*time.Hour))
	_, err := s.TransitionExperiment(ctx, ws.ID, exps[2].ID, store.Transition{
		From: []store.Status{store.StatusCompleted}, To: store.StatusArchived, At: t0.Add(5 * time.Hour)})
	must(t, err, "archive")
	o := newExperiment(other, "o", store.MetricBinary)
	must(t, s.CreateExperiment(ctx, o), "create elsewhere")
	complete(o, t0.Add(2*time.Hour))

	got, err := s.FinishedCounters(ctx, ws.ID, 10)
	must(t, err, "finished counters")
	var ids []string
	for _, f := range got {
		ids = append(ids, f.ID)
	}
	if want := []string{exps[2].ID, exps[1].ID, exps[0].ID}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("finished experiments %v, want %v (newest completion first; running and other workspaces' left out)", ids, want)
	}
	for _, f := range got {
		i := map[string]int{exps[0].ID: 0, exps[1].ID: 1, exps[2].ID: 2}[f.ID]
		if f.Metric != store.MetricBinary || len(f.Variants) != 3 {
			t.Fatalf("%s: metric %s, %d variants", f.ID, f.Metric, len(f.Variants))
		}
		for j, want := range []int64{int64(i + 1), int64(2 * (i + 1)), 0} {
			v := f.Variants[j]
			if v.Control != (j == 0) || v.Units != want {
				t.Errorf("%s variant %d: control %v, %d units; want control %v, %d units", f.ID, j, v.Control, v.Units, j == 0, want)
			}
		}
		if c := f.Variants[0].Conversions; c != 1 {
			t.Errorf("%s: control's conversions %d, want 1", f.ID, c)
		}
	}
	if got, err := s.FinishedCounters(ctx, ws.ID, 2); err != nil || len(got) != 2 || got[0].ID != exps[2].ID || got[1].ID != exps[1].ID {
		t.Errorf("limit 2: %d experiments (%v), want the latest two", len(got), err)
	}
}
