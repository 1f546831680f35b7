package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

// testSegments: breakdown counters follow the units and events exactly,
// under concurrent writers, and the cap of values per attribute holds.
func testSegments(t *testing.T, s store.Store) {
	ctx := t.Context()
	ws := newWorkspace(t, s, "segments")
	e := createExperiment(t, s, ws, "seg", store.MetricContinuous)
	const writers, per = 6, 60
	var wg sync.WaitGroup
	errs := make(chan error, writers*2)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := store.AssignBatch{WorkspaceID: ws.ID, ExperimentID: e.ID, Weights: evenWeights(e)}
			var evs []store.Event
			for i := range per {
				u := fmt.Sprintf("w%d-u%d", w, i)
				// 50 distinct cities per writer: 300 in all, over the cap.
				city := fmt.Sprintf("city-%d-%d", w, i%50)
				b.Items = append(b.Items, store.Assignment{UnitID: u, VariantID: e.Variants[i%2].ID, Propensity: 0.5, Epoch: 1, AssignedAt: t0,
					Attributes: json.RawMessage(`{"plan":"pro"}`), Segments: map[string]string{"plan": "pro", "city": city}})
				evs = append(evs, store.Event{UnitID: u, Value: 2, At: t0})
			}
			if _, err := s.Assign(ctx, []store.AssignBatch{b}); err != nil {
				errs <- err
				return
			}
			if _, err := s.RecordEvents(ctx, []store.EventBatch{{WorkspaceID: ws.ID, ExperimentID: e.ID, Metric: store.MetricContinuous, Events: evs}}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	plan, err := s.SegmentCounters(ctx, ws.ID, e.ID, "plan")
	must(t, err, "plan counters")
	var units, conv int64
	var sum float64
	for _, c := range plan {
		if c.Value != "pro" {
			t.Errorf("plan value %q", c.Value)
		}
		units, conv, sum = units+c.Units, conv+c.Conversions, sum+c.Sum
	}
	if units != writers*per || conv != writers*per || sum != 2*writers*per {
		t.Errorf("plan: %d units, %d conversions, sum %g; want %d, %d, %g", units, conv, sum, writers*per, writers*per, 2.0*writers*per)
	}
	city, err := s.SegmentCounters(ctx, ws.ID, e.ID, "city")
	must(t, err, "city counters")
	values := map[string]bool{}
	units = 0
	for _, c := range city {
		values[c.Value] = true
		units += c.Units
	}
	if len(values) != store.MaxSegmentValues+1 || !values[store.OtherSegment] || units != writers*per {
		t.Errorf("city: %d values (with (other): %v), %d units; want %d values and (other), %d units",
			len(values), values[store.OtherSegment], units, store.MaxSegmentValues, writers*per)
	}
	attrs, err := s.SegmentAttributes(ctx, ws.ID, e.ID)
	must(t, err, "segment attributes")
	diff(t, "counted attributes", []string{"city", "plan"}, attrs)
	stored, err := s.AssignmentAttributes(ctx, ws.ID, e.ID, []string{"w0-u0", "nobody"})
	must(t, err, "assignment attributes")
	if len(stored) != 1 || string(stored["w0-u0"]) != `{"plan":"pro"}` {
		t.Errorf("stored attributes %v", stored)
	}
	other := newWorkspace(t, s, "segments-other")
	_, err = s.SegmentCounters(ctx, other.ID, e.ID, "plan")
	wantCode(t, err, apperr.NotFound, "another workspace's counters")
}

// testLayers: ranges are allocated first fit, refused when full, freed by
// completion, and layers are per workspace.
func testLayers(t *testing.T, s store.Store) {
	ctx := t.Context()
	ws := newWorkspace(t, s, "layers")
	l := store.Layer{ID: id.New(id.Layer), WorkspaceID: ws.ID, Key: "checkout", Name: "Checkout", CreatedAt: t0}
	must(t, s.CreateLayer(ctx, l), "create layer")
	wantCode(t, s.CreateLayer(ctx, store.Layer{ID: id.New(id.Layer), WorkspaceID: ws.ID, Key: "checkout", Name: "x", CreatedAt: t0}), apperr.Conflict, "duplicate key")
	got, err := s.GetLayer(ctx, ws.ID, "checkout")
	must(t, err, "get layer")
	diff(t, "layer", l, got)
	inLayer := func(key string, share float64) (store.Experiment, error) {
		e := newExperiment(ws, key, store.MetricBinary)
		e.LayerID, e.LayerKey, e.LayerShare = l.ID, l.Key, share
		e.LayerFrom, e.LayerTo = 1, 2 // ignored: the store allocates
		if err := s.CreateExperiment(ctx, e); err != nil {
			return e, err
		}
		return s.GetExperiment(ctx, ws.ID, e.ID)
	}
	a, err := inLayer("a", 0.3)
	must(t, err, "a")
	b, err := inLayer("b", 0.5)
	must(t, err, "b")
	if a.LayerFrom != 0 || a.LayerTo != 3000 || b.LayerFrom != 3000 || b.LayerTo != 8000 || b.LayerKey != "checkout" || b.LayerShare != 0.5 {
		t.Fatalf("ranges a [%d,%d) b [%d,%d)", a.LayerFrom, a.LayerTo, b.LayerFrom, b.LayerTo)
	}
	_, err = inLayer("c", 0.3)
	wantCode(t, err, apperr.Conflict, "a share that does not fit")
	_, err = s.TransitionExperiment(ctx, ws.ID, a.ID, store.Transition{From: []store.Status{store.StatusRunning}, To: store.StatusCompleted, At: t0})
	must(t, err, "complete a")
	c, err := inLayer("c", 0.3)
	must(t, err, "c after a completed")
	if c.LayerFrom != 0 || c.LayerTo != 3000 {
		t.Errorf("c [%d,%d), want a's freed range", c.LayerFrom, c.LayerTo)
	}
	ranges, err := s.LayerRanges(ctx, ws.ID, []string{l.ID})
	must(t, err, "ranges")
	if rs := ranges[l.ID]; len(rs) != 2 || rs[0].ExperimentKey != "c" || rs[1].ExperimentKey != "b" {
		t.Errorf("ranges %+v", rs)
	}

	other := newWorkspace(t, s, "layers-other")
	_, err = s.GetLayer(ctx, other.ID, l.ID)
	wantCode(t, err, apperr.NotFound, "another workspace's layer")
	foreign := newExperiment(other, "x", store.MetricBinary)
	foreign.LayerID, foreign.LayerKey, foreign.LayerShare = l.ID, l.Key, 0.1
	wantCode(t, s.CreateExperiment(ctx, foreign), apperr.NotFound, "an experiment in another workspace's layer")
	if list, err := s.ListLayers(ctx, other.ID, store.ListParams{}); err != nil || len(list) != 0 {
		t.Errorf("another workspace lists %v, %v", list, err)
	}
	if rs, err := s.LayerRanges(ctx, other.ID, []string{l.ID}); err != nil || len(rs[l.ID]) != 0 {
		t.Errorf("another workspace sees ranges %v, %v", rs, err)
	}
}
