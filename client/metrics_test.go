package client_test

import (
	"fmt"
	"testing"

	"github.com/samplit/samplit/client"
)

// TestMetrics: an experiment with a secondary and a guardrail metric,
// events that name their metric, and every metric's lines in the results.
func TestMetrics(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()
	exp, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{
		Key: "multi", Metric: client.MetricBinary, Start: true,
		Variants: []client.VariantSpec{{Key: "control"}, {Key: "green"}},
		Metrics: []client.MetricSpec{
			{Key: "revenue", Type: client.MetricContinuous},
			{Key: "refunds", Type: client.MetricBinary, Role: client.RoleGuardrail, Direction: client.DirectionDecrease, MaxDegradation: new(0.1)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(exp.Metrics) != 2 || exp.Metrics[0].Role != client.RoleSecondary || exp.Metrics[1].MaxDegradation == nil || *exp.Metrics[1].MaxDegradation != 0.1 {
		t.Fatalf("metrics %+v", exp.Metrics)
	}
	units := make([]string, 10)
	for i := range units {
		units[i] = fmt.Sprintf("u%d", i)
	}
	if _, err := c.AssignMany(ctx, "multi", units); err != nil {
		t.Fatal(err)
	}
	res, err := c.TrackMany(ctx, "multi", []client.Event{
		{UnitID: "u0", Metric: "revenue", Value: new(9.5), IdempotencyKey: "o1"},
		{UnitID: "u0", IdempotencyKey: "o1"}, // the primary's own keys
		{UnitID: "u1", Metric: "refunds"},
		{UnitID: "u2", Metric: "nope"},
	})
	if err != nil || res.Accepted != 3 || len(res.Rejected) != 1 || res.Rejected[0].Index != 3 {
		t.Fatalf("track: %+v, %v", res, err)
	}
	if _, err := c.Track(ctx, "multi", client.Event{UnitID: "u2", Metric: "nope"}); apiError(t, err).Fields[0].Field != "metric" {
		t.Errorf("unknown metric: %v", err)
	}
	r, err := c.Results(ctx, "multi")
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, l := range r.Metrics["revenue"].Variants {
		sum += l.Sum
	}
	if sum != 9.5 || r.Metrics["refunds"].Role != client.RoleGuardrail || r.Metrics["refunds"].Variants[0].Guardrail != "ok" {
		t.Errorf("metrics %+v", r.Metrics)
	}
}
