package client_test

import (
	"fmt"
	"testing"

	"github.com/samplit/samplit/client"
)

// The client against a real server: attributes and targeting, breakdowns,
// layers.
func TestTargetingLayersBreakdown(t *testing.T) {
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()

	l, err := c.CreateLayer(ctx, "checkout", "Checkout")
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{
		Key: "targeted", Variants: []client.VariantSpec{{Key: "a"}, {Key: "b"}}, Start: true,
		Targeting: &client.Targeting{All: []client.Condition{{Attribute: "country", Op: "in", Values: []any{"ES", "MX"}}}},
		Layer:     "checkout", LayerShare: 0.5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.Layer == nil || *e.Layer != "checkout" || e.LayerRange == nil || *e.LayerRange != [2]float64{0, 0.5} || e.Targeting == nil {
		t.Fatalf("experiment %+v", e)
	}
	if _, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{Key: "big", Variants: []client.VariantSpec{{Key: "a"}, {Key: "b"}},
		Layer: "checkout", LayerShare: 0.6}); !client.IsConflict(err) {
		t.Errorf("a share that does not fit: %v", err)
	}
	got, err := c.GetLayer(ctx, l.ID)
	if err != nil || len(got.Experiments) != 1 || got.Experiments[0].Key != "targeted" {
		t.Fatalf("layer %+v, %v", got, err)
	}
	if page, err := c.ListLayers(ctx, client.ListParams{}); err != nil || len(page.Items) != 1 {
		t.Fatalf("layers %+v, %v", page, err)
	}

	a, err := c.AssignWithAttributes(ctx, "targeted", "fr-user", client.Attributes{"country": "FR"})
	if err != nil || a.Variant != "" || a.Reason != client.ReasonNotTargeted {
		t.Fatalf("untargeted: %+v, %v", a, err)
	}
	units := make([]client.Unit, 200)
	for i := range units {
		units[i] = client.Unit{ID: fmt.Sprintf("u%d", i), Attributes: client.Attributes{"country": []string{"ES", "MX"}[i%2]}}
	}
	as, err := c.AssignUnits(ctx, "targeted", units)
	if err != nil {
		t.Fatal(err)
	}
	in := 0
	for _, a := range as {
		switch {
		case a.Variant != "":
			in++
		case a.Reason != client.ReasonLayer:
			t.Errorf("%+v", a)
		}
	}
	r, err := c.ResultsBy(ctx, "targeted", "country")
	if err != nil {
		t.Fatal(err)
	}
	if r.Breakdown == nil || len(r.Breakdown.Segments) != 2 || r.Breakdown.Segments[0].Units+r.Breakdown.Segments[1].Units != int64(in) {
		t.Errorf("breakdown %+v of %d units", r.Breakdown, in)
	}
}
