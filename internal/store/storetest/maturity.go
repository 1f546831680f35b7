package storetest

import (
	"testing"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/store"
)

// testConversionWindow: with a conversion window the store keeps the
// maturity slots (units by hour of assignment, their mean and latest
// assignment, their first outcomes by delay), stores an event after its
// unit's window as late (not counted, its key used), and keeps nothing of
// the kind for an experiment without a window.
func testConversionWindow(t *testing.T, s store.Store) {
	ctx := t.Context()
	ws := newWorkspace(t, s, "window")
	e := createExperiment(t, s, ws, "window", store.MetricBinary)
	const window = time.Hour
	at := t0.Truncate(time.Hour).Add(10 * time.Minute)
	b := store.AssignBatch{WorkspaceID: ws.ID, ExperimentID: e.ID, Weights: evenWeights(e), Window: window}
	for i, u := range []string{"u1", "u2", "u3"} {
		b.Items = append(b.Items, store.Assignment{UnitID: u, VariantID: e.Variants[0].ID, Propensity: 0.5, Epoch: 1,
			AssignedAt: at.Add(time.Duration(i) * 10 * time.Minute)})
	}
	_, err := s.Assign(ctx, []store.AssignBatch{b})
	must(t, err, "assign")
	events := func(evs ...store.Event) []store.Outcome {
		t.Helper()
		res, err := s.RecordEvents(ctx, []store.EventBatch{{WorkspaceID: ws.ID, ExperimentID: e.ID, Metric: store.MetricBinary,
			Events: evs, Window: window}})
		must(t, err, "record events")
		var out []store.Outcome
		for _, r := range res[0] {
			out = append(out, r.Outcome)
		}
		return out
	}
	// u1 converts 20 minutes after its assignment; u2's conversion comes
	// 70 minutes after its own (late), and again (its key is used).
	got := events(store.Event{UnitID: "u1", Value: 1, At: at.Add(20 * time.Minute), IdempotencyKey: "k1"},
		store.Event{UnitID: "u2", Value: 1, At: at.Add(80 * time.Minute), IdempotencyKey: "k2"})
	diff(t, "outcomes", []store.Outcome{store.OutcomeAccepted, store.OutcomeLate}, got)
	diff(t, "retried late event", []store.Outcome{store.OutcomeDuplicate},
		events(store.Event{UnitID: "u2", Value: 1, At: at.Add(81 * time.Minute), IdempotencyKey: "k2"}))

	slots, err := s.MaturitySlots(ctx, ws.ID, e.ID)
	must(t, err, "maturity slots")
	var delays [engine.DelayBuckets]int64
	delays[engine.DelayBucket(20*time.Minute)] = 1
	diff(t, "maturity slots", []store.MaturitySlot{{VariantID: e.Variants[0].ID, Start: t0.Truncate(time.Hour), Units: 3,
		AssignedSum: (10 + 20 + 30) * 60, LastAssigned: at.Add(20 * time.Minute), Conversions: 1, Late: 1, Delays: delays}}, slots)
	if c := counters(t, s, e)[e.Variants[0].ID]; c.Conversions != 1 || c.Units != 3 {
		t.Errorf("counters %+v: want 3 units and 1 conversion (the late one not counted)", c)
	}

	// Without a window: no maturity slots, no late events.
	plain := createExperiment(t, s, ws, "plain", store.MetricBinary)
	assign(t, s, plain, 0, at, "p1")
	res, err := s.RecordEvents(ctx, []store.EventBatch{{WorkspaceID: ws.ID, ExperimentID: plain.ID, Metric: store.MetricBinary,
		Events: []store.Event{{UnitID: "p1", Value: 1, At: at.Add(100 * 24 * time.Hour)}}}})
	must(t, err, "record events")
	diff(t, "outcome without a window", store.OutcomeAccepted, res[0][0].Outcome)
	slots, err = s.MaturitySlots(ctx, ws.ID, plain.ID)
	must(t, err, "maturity slots")
	if len(slots) != 0 {
		t.Errorf("an experiment without a window has maturity slots: %+v", slots)
	}
	other := newWorkspace(t, s, "window-other")
	_, err = s.MaturitySlots(ctx, other.ID, e.ID)
	wantCode(t, err, apperr.NotFound, "maturity slots of another workspace's experiment")
}
