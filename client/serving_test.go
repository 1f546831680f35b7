package client_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samplit/samplit/client"
)

func TestAssign(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()
	createBinary(t, c, "btn")

	a, err := c.Assign(ctx, "btn", "user-1")
	if err != nil {
		t.Fatal(err)
	}
	if a.UnitID != "user-1" || !a.New || (a.Variant != "control" && a.Variant != "green") {
		t.Fatalf("first assignment %+v", a)
	}
	var payload struct{ Color string }
	if err := a.DecodePayload(&payload); err != nil {
		t.Fatal(err)
	}
	if a.Variant == "green" && payload.Color != "green" || a.Variant == "control" && payload.Color != "" {
		t.Errorf("variant %s has payload %s", a.Variant, a.Payload)
	}
	again, err := c.Assign(ctx, "btn", "user-1")
	if err != nil || again.New || again.Variant != a.Variant {
		t.Errorf("second assignment %+v (%v), want %s and not new", again, err, a.Variant)
	}

	units := make([]string, 50)
	for i := range units {
		units[i] = fmt.Sprintf("u%d", i)
	}
	units[7] = "user-1"
	as, err := c.AssignMany(ctx, "btn", units)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != len(units) {
		t.Fatalf("%d assignments for %d units", len(as), len(units))
	}
	seen := map[string]int{}
	for i, a := range as {
		if a.UnitID != units[i] {
			t.Errorf("assignment %d is of %s, want %s", i, a.UnitID, units[i])
		}
		if a.New == (units[i] == "user-1") {
			t.Errorf("assignment of %s: new %v", a.UnitID, a.New)
		}
		seen[a.Variant]++
	}
	if as[7].Variant != a.Variant || seen["control"] == 0 || seen["green"] == 0 || len(seen) != 2 {
		t.Errorf("variants %v; user-1 got %s, want %s", seen, as[7].Variant, a.Variant)
	}

	// Errors.
	if _, err := c.Assign(ctx, "nope", "u1"); !client.IsNotFound(err) {
		t.Errorf("unknown experiment: %v, want a 404", err)
	}
	_, err = c.Assign(ctx, "btn", "")
	if e := apiError(t, err); e.Status != 422 || len(e.Fields) != 1 || e.Fields[0].Field != "unit_id" {
		t.Errorf("empty unit: %v, want a 422 on unit_id", err)
	}
	_, err = c.AssignMany(ctx, "btn", []string{"ok", strings.Repeat("x", 300)})
	if e := apiError(t, err); e.Status != 422 || len(e.Fields) != 1 || e.Fields[0].Field != "unit_ids[1]" {
		t.Errorf("long unit in a batch: %v, want a 422 on unit_ids[1]", err)
	}
	if _, err := c.AssignMany(ctx, "btn", nil); !client.IsInvalid(err) {
		t.Errorf("no units: %v, want a 422", err)
	}
	if _, err := c.AssignMany(ctx, "btn", make([]string, client.MaxBatch+1)); !client.IsInvalid(err) {
		t.Errorf("too many units: %v, want a 422", err)
	}
	if _, err := c.PauseExperiment(ctx, "btn"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Assign(ctx, "btn", "user-2"); !client.IsConflict(err) {
		t.Errorf("paused: %v, want a 409", err)
	}
}

func TestAssignOutsideTraffic(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()
	_, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{
		Key: "tiny", Variants: []client.VariantSpec{{Key: "a"}, {Key: "b"}}, Start: true,
		Settings: &client.SettingsSpec{Traffic: new(0.01)},
	})
	if err != nil {
		t.Fatal(err)
	}
	units := make([]string, 200)
	for i := range units {
		units[i] = fmt.Sprintf("u%d", i)
	}
	as, err := c.AssignMany(ctx, "tiny", units)
	if err != nil {
		t.Fatal(err)
	}
	out := 0
	for _, a := range as {
		if a.Variant == "" {
			out++
			if string(a.Payload) != "null" {
				t.Errorf("unit outside traffic has payload %s", a.Payload)
			}
		}
	}
	if out < 150 {
		t.Errorf("%d of 200 units outside a 1%% traffic share", out)
	}
}

func TestTrackAndResults(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()
	createBinary(t, c, "conv")
	units := make([]string, 40)
	for i := range units {
		units[i] = fmt.Sprintf("u%d", i)
	}
	as, err := c.AssignMany(ctx, "conv", units)
	if err != nil {
		t.Fatal(err)
	}

	// One event.
	res, err := c.Track(ctx, "conv", client.Event{UnitID: "u0", IdempotencyKey: "order-0"})
	if err != nil || res.Accepted != 1 || res.Duplicates != 0 || len(res.Rejected) != 0 {
		t.Fatalf("track: %+v, %v", res, err)
	}
	// The same idempotency key again: a duplicate.
	res, err = c.Track(ctx, "conv", client.Event{UnitID: "u0", IdempotencyKey: "order-0"})
	if err != nil || res.Accepted != 0 || res.Duplicates != 1 {
		t.Errorf("repeated track: %+v, %v", res, err)
	}
	// A unit never assigned: rejected, not an error.
	res, err = c.Track(ctx, "conv", client.Event{UnitID: "stranger"})
	if err != nil || res.Accepted != 0 || len(res.Rejected) != 1 || res.Rejected[0].Index != 0 || res.Rejected[0].Error == "" {
		t.Errorf("unassigned unit: %+v, %v", res, err)
	}
	// A value other than 1 on a binary metric: 422.
	_, err = c.Track(ctx, "conv", client.Event{UnitID: "u1", Value: new(2.5)})
	if e := apiError(t, err); e.Status != 422 || e.Fields[0].Field != "value" {
		t.Errorf("binary value 2.5: %v", err)
	}

	// A batch: u1..u9 convert, u0 again (a duplicate), a stranger (rejected).
	var events []client.Event
	for i := 1; i < 10; i++ {
		events = append(events, client.Event{UnitID: units[i], IdempotencyKey: fmt.Sprintf("order-%d", i)})
	}
	events = append(events, client.Event{UnitID: "u0", IdempotencyKey: "order-0"}, client.Event{UnitID: "stranger", IdempotencyKey: "x"})
	res, err = c.TrackMany(ctx, "conv", events)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 9 || res.Duplicates != 1 || len(res.Rejected) != 1 || res.Rejected[0].Index != 10 {
		t.Errorf("batch: %+v", res)
	}
	if _, err := c.TrackMany(ctx, "conv", nil); err == nil {
		t.Error("an empty batch was sent")
	}

	r, err := c.Results(ctx, "conv")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int64{} // variant → units, conversions
	for i, a := range as {
		w := want[a.Variant]
		w[0]++
		if i < 10 {
			w[1]++
		}
		want[a.Variant] = w
	}
	if r.TotalUnits != 40 || r.Status != client.StatusRunning || r.Metric != client.MetricBinary || r.Strategy != client.StrategyAdaptive || r.UpdatedAt.IsZero() {
		t.Errorf("results %+v", r)
	}
	if r.Decision.State != "collecting" || r.Decision.Reason == "" || r.Winner != nil {
		t.Errorf("decision %+v winner %v", r.Decision, r.Winner)
	}
	for key, w := range want {
		v, ok := r.Variant(key)
		if !ok {
			t.Fatalf("no result for %s", key)
		}
		if v.Units != w[0] || v.Conversions != w[1] || v.Mean != float64(w[1])/float64(w[0]) {
			t.Errorf("%s: %d units %d conversions mean %g, want %v", key, v.Units, v.Conversions, v.Mean, w)
		}
		if v.PBest <= 0 || v.PBest >= 1 || v.Weight <= 0 || v.CILow > v.Mean || v.CIHigh < v.Mean {
			t.Errorf("%s: %+v", key, v)
		}
	}
	if _, ok := r.Variant("purple"); ok {
		t.Error("found a result for a variant that does not exist")
	}
	if _, err := c.Results(ctx, "nope"); !client.IsNotFound(err) {
		t.Errorf("results of nothing: %v", err)
	}

	// The timeseries of this hour holds the same counts.
	ts, err := c.Timeseries(ctx, "conv", client.TimeseriesParams{})
	if err != nil {
		t.Fatal(err)
	}
	var tsUnits, tsConv int64
	for _, p := range ts.Points {
		tsUnits += p.Units
		tsConv += p.Conversions
		if p.Hour.IsZero() || (p.Variant != "control" && p.Variant != "green") {
			t.Errorf("point %+v", p)
		}
	}
	if ts.ExperimentID != r.ExperimentID || tsUnits != 40 || tsConv != 10 || !ts.To.After(ts.From) {
		t.Errorf("timeseries %s from %v to %v: %d units %d conversions", ts.ExperimentID, ts.From, ts.To, tsUnits, tsConv)
	}
	from := time.Now().Add(-2 * time.Hour)
	ts, err = c.Timeseries(ctx, "conv", client.TimeseriesParams{From: from, To: from.Add(time.Hour)})
	if err != nil || len(ts.Points) != 0 || !ts.From.Equal(from.UTC().Truncate(time.Second)) {
		t.Errorf("a window before the experiment: %+v, %v", ts, err)
	}
	_, err = c.Timeseries(ctx, "conv", client.TimeseriesParams{From: from, To: from.Add(-time.Hour)})
	if e := apiError(t, err); e.Status != 422 || e.Fields[0].Field != "to" {
		t.Errorf("to before from: %v", err)
	}
}

func TestTrackContinuous(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()
	_, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{
		Key: "rev", Metric: client.MetricContinuous, Variants: []client.VariantSpec{{Key: "a"}, {Key: "b"}}, Start: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.Assign(ctx, "rev", "buyer")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []float64{10, 2.5} {
		if _, err := c.Track(ctx, "rev", client.Event{UnitID: "buyer", Value: new(v), IdempotencyKey: fmt.Sprint("o", i)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.Track(ctx, "rev", client.Event{UnitID: "buyer"})
	if e := apiError(t, err); e.Status != 422 || e.Fields[0].Field != "value" {
		t.Errorf("continuous event without a value: %v", err)
	}
	r, err := c.Results(ctx, "rev")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := r.Variant(a.Variant)
	if v.Sum != 12.5 || v.Units != 1 {
		t.Errorf("%s: %+v, want sum 12.5 over 1 unit", a.Variant, v)
	}
	if got := slices.IndexFunc(r.Variants, func(v client.VariantResult) bool { return v.Units > 0 }); got < 0 {
		t.Error("no variant has units")
	}
}

// TestConversionWindow: the client sends the conversion window, reads it
// back, and reads the late count and the matured units; a bad window is an
// invalid error naming the field.
func TestConversionWindow(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()
	_, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{Key: "bad", Variants: []client.VariantSpec{{Key: "a"}, {Key: "b"}},
		Settings: &client.SettingsSpec{ConversionWindow: new("soon")}})
	if !client.IsInvalid(err) || !strings.Contains(err.Error(), "settings.conversion_window") {
		t.Fatalf("bad window: %v", err)
	}
	e, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{Key: "late", Start: true,
		Variants: []client.VariantSpec{{Key: "a"}, {Key: "b"}}, Settings: &client.SettingsSpec{ConversionWindow: new("2d")}})
	if err != nil || e.Settings.ConversionWindow == nil || *e.Settings.ConversionWindow != "2d" {
		t.Fatalf("create: %+v, %v", e, err)
	}
	if _, err := c.AssignMany(ctx, "late", []string{"u1", "u2"}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Track(ctx, "late", client.Event{UnitID: "u1"})
	if err != nil || res.Accepted != 1 || res.Late != 0 {
		t.Fatalf("track: %+v, %v", res, err)
	}
	r, err := c.Results(ctx, "late")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range r.Variants {
		if v.MaturedUnits == nil || v.LateConversions == nil || *v.MaturedUnits > float64(v.Units) {
			t.Errorf("%s: matured %v, late %v, units %d", v.Key, v.MaturedUnits, v.LateConversions, v.Units)
		}
	}
}
