package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

// benchExperiment creates a workspace and a two-variant experiment.
func benchExperiment(b *testing.B, s store.Store, metric store.Metric) store.Experiment {
	b.Helper()
	ws := store.Workspace{ID: id.New(id.Workspace), Name: "bench-" + id.New(""), CreatedAt: t0}
	if err := s.CreateWorkspace(b.Context(), ws); err != nil {
		b.Fatal(err)
	}
	e := newExperiment(ws, "bench", metric)
	if err := s.CreateExperiment(b.Context(), e); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkAssign measures Assign of batches of n new units; it reports
// units/s beside the time per call.
func BenchmarkAssign(b *testing.B, s store.Store, n int) {
	e := benchExperiment(b, s, store.MetricBinary)
	weights := evenWeights(e)
	unit := 0
	b.ResetTimer()
	for b.Loop() {
		batch := store.AssignBatch{WorkspaceID: e.WorkspaceID, ExperimentID: e.ID, Weights: weights,
			Items: make([]store.Assignment, n)}
		for i := range batch.Items {
			unit++
			batch.Items[i] = store.Assignment{UnitID: fmt.Sprintf("user-%09d", unit), VariantID: e.Variants[unit%2].ID,
				Propensity: 0.5, Epoch: 1, AssignedAt: t0.Add(time.Duration(unit) * time.Millisecond)}
		}
		if _, err := s.Assign(b.Context(), []store.AssignBatch{batch}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(unit)/b.Elapsed().Seconds(), "units/s")
}

// BenchmarkRecordEvents measures RecordEvents of batches of n continuous
// events, each for a distinct assigned unit, half with idempotency keys; it
// reports events/s.
func BenchmarkRecordEvents(b *testing.B, s store.Store, n int) {
	e := benchExperiment(b, s, store.MetricContinuous)
	const units = 20000
	batch := store.AssignBatch{WorkspaceID: e.WorkspaceID, ExperimentID: e.ID, Weights: evenWeights(e)}
	for u := range units {
		batch.Items = append(batch.Items, store.Assignment{UnitID: fmt.Sprintf("user-%09d", u),
			VariantID: e.Variants[u%2].ID, Propensity: 0.5, Epoch: 1, AssignedAt: t0})
	}
	if _, err := s.Assign(b.Context(), []store.AssignBatch{batch}); err != nil {
		b.Fatal(err)
	}
	// Measure the steady state, not the minute after a bulk load before
	// the database has statistics on the new rows.
	if a, ok := s.(interface{ Analyze(context.Context) error }); ok {
		if err := a.Analyze(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	events := 0
	b.ResetTimer()
	for b.Loop() {
		evs := make([]store.Event, n)
		for i := range evs {
			events++
			evs[i] = store.Event{UnitID: fmt.Sprintf("user-%09d", events%units), Value: float64(events % 7), At: t0}
			if events%2 == 0 {
				evs[i].IdempotencyKey = fmt.Sprintf("evt-%d", events)
			}
		}
		if _, err := recordEvents(b.Context(), s, e.WorkspaceID, e.ID, store.MetricContinuous, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRecordCampaignEvents measures RecordCampaignEvents of batches of
// n events of one email campaign, each for a distinct sent recipient:
// opens, clicks and conversions with values, half with idempotency keys, as
// an email provider's webhooks deliver them; it reports events/s.
func BenchmarkRecordCampaignEvents(b *testing.B, s store.Store, n int) {
	ws := store.Workspace{ID: id.New(id.Workspace), Name: "bench-" + id.New(""), CreatedAt: t0}
	if err := s.CreateWorkspace(b.Context(), ws); err != nil {
		b.Fatal(err)
	}
	c := newCampaign(ws, "bench")
	c.Objective = "value"
	if err := s.CreateCampaign(b.Context(), c); err != nil {
		b.Fatal(err)
	}
	const recipients = 20000
	for start := 0; start < recipients; start += 1000 {
		sb := store.SendBatch{WorkspaceID: ws.ID, CampaignID: c.ID, ExpectSent: -1, At: t0}
		for r := start; r < start+1000; r++ {
			sb.Items = append(sb.Items, store.Send{Recipient: fmt.Sprintf("r%06d@example.com", r), VariantID: c.Variants[r%2].ID})
		}
		if _, err := s.RecordSends(b.Context(), sb); err != nil {
			b.Fatal(err)
		}
	}
	if a, ok := s.(interface{ Analyze(context.Context) error }); ok {
		if err := a.Analyze(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	types := []string{store.CampaignOpen, store.CampaignOpen, store.CampaignClick, store.CampaignConversion}
	events := 0
	b.ResetTimer()
	for b.Loop() {
		batch := store.CampaignEventBatch{WorkspaceID: ws.ID, CampaignID: c.ID, Window: time.Hour, Objective: c.Objective,
			Items: make([]store.CampaignEvent, n)}
		for i := range batch.Items {
			events++
			ev := store.CampaignEvent{Recipient: fmt.Sprintf("r%06d@example.com", events%recipients),
				Type: types[events%len(types)], At: t0.Add(time.Minute)}
			if ev.Type == store.CampaignConversion {
				ev.Value = float64(events % 7)
			}
			if events%2 == 0 {
				ev.IdempotencyKey = fmt.Sprintf("evt-%d", events)
			}
			batch.Items[i] = ev
		}
		if _, err := s.RecordCampaignEvents(b.Context(), []store.CampaignEventBatch{batch}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRecordProgress measures RecordProgress of batches of n items of
// one three-step funnel: units entering its first step, moving to the
// second and reaching the goal, a third of the items each, as the group
// commit merges a funnel's calls; it reports items/s.
func BenchmarkRecordProgress(b *testing.B, s store.Store, n int) {
	ws := store.Workspace{ID: id.New(id.Workspace), Name: "bench-" + id.New(""), CreatedAt: t0}
	if err := s.CreateWorkspace(b.Context(), ws); err != nil {
		b.Fatal(err)
	}
	f := newFunnel(ws, "bench")
	if err := s.CreateFunnel(b.Context(), f); err != nil {
		b.Fatal(err)
	}
	weights := func(step int) map[string]float64 {
		return map[string]float64{f.Steps[step].Variants[0].ID: 0.5, f.Steps[step].Variants[1].ID: 0.5}
	}
	items := 0
	b.ResetTimer()
	for b.Loop() {
		batch := progressBatch(f)
		for range n {
			unit, step := fmt.Sprintf("unit-%09d", items/3), items%3
			items++
			it := store.Progress{UnitID: unit, Step: step, At: t0.Add(time.Duration(items) * time.Millisecond)}
			if step < 2 {
				it.VariantID, it.Propensity, it.Weights = f.Steps[step].Variants[items%2].ID, 0.5, weights(step)
			} else {
				it.Value = 1
			}
			batch.Items = append(batch.Items, it)
		}
		if _, err := s.RecordProgress(b.Context(), []store.ProgressBatch{batch}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(items)/b.Elapsed().Seconds(), "items/s")
}
