package dashboard

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// The experiment page shows the layer, the targeting, and a breakdown
// selector whose table carries the numbers the optimizer computes.
func TestBreakdownAndLayer(t *testing.T) {
	e := newEnv(t)
	e.api("POST", "/v1/layers", e.admin, map[string]any{"key": "checkout"}, 201, nil)
	var x struct{ ID string }
	e.api("POST", "/v1/experiments", e.admin, map[string]any{
		"key": "segmented", "variants": []map[string]any{{"key": "a"}, {"key": "b"}}, "start": true,
		"layer": "checkout", "layer_share": 1,
		"targeting": map[string]any{"all": []map[string]any{{"attribute": "country", "op": "in", "values": []string{"ES", "MX", "AR"}}}},
	}, 201, &x)
	units := []map[string]any{}
	for i := range 90 {
		units = append(units, map[string]any{"unit_id": fmt.Sprintf("u%d", i), "attributes": map[string]any{"country": []string{"ES", "ES", "MX", "AR", "FR"}[i%5], "plan": "pro"}})
	}
	e.api("POST", "/v1/experiments/segmented/assign", e.admin, map[string]any{"units": units}, 200, nil)

	b := e.browser()
	b.signIn(e.admin)
	p := b.get("/experiments/" + x.ID)
	if p.Status != 200 {
		t.Fatalf("status %d\n%s", p.Status, p.Body)
	}
	if !strings.Contains(p.Body, `id="layer"`) || !strings.Contains(p.Body, "checkout: 100.0% of its units") {
		t.Errorf("the layer is not shown")
	}
	if !strings.Contains(p.Body, "country in [ES, MX, AR]") {
		t.Errorf("the targeting is not shown")
	}
	opts := tags(p.Body, "option", "value=")
	var offered []string
	for _, o := range opts {
		offered = append(offered, o["value"])
	}
	if !strings.Contains(strings.Join(offered, ","), "country,plan") {
		t.Errorf("the selector offers %v", offered)
	}
	if strings.Contains(p.Body, `id="breakdown"`) {
		t.Error("a breakdown is shown before one is chosen")
	}

	p = b.get("/experiments/" + x.ID + "?breakdown=country")
	ctx := context.Background()
	xp, err := e.st.GetExperiment(ctx, e.defaultWorkspace(), x.ID)
	if err != nil {
		t.Fatal(err)
	}
	bd, err := e.opt.Breakdown(ctx, &xp, "country")
	if err != nil {
		t.Fatal(err)
	}
	rows := tags(p.Body, "tr", "data-segment")
	if len(bd.Segments) != 3 || len(rows) != 6 {
		t.Fatalf("%d segments, %d rows", len(bd.Segments), len(rows))
	}
	i := 0
	for _, sg := range bd.Segments {
		for _, v := range sg.Variants {
			r := rows[i]
			if r["data-segment"] != sg.Value || r["data-variant"] != v.Key || r["data-units"] != strconv.FormatInt(v.Units, 10) {
				t.Errorf("row %d = %v, want %s %s %d", i, r, sg.Value, v.Key, v.Units)
			}
			i++
		}
	}
	if bd.Segments[0].Value != "ES" || bd.Segments[0].Units != 36 {
		t.Errorf("first segment %+v, want ES with 36 units", bd.Segments[0])
	}
	// An attribute the experiment does not count is not looked up.
	if p := b.get("/experiments/" + x.ID + "?breakdown=nope"); p.Status != 200 || strings.Contains(p.Body, `id="breakdown"`) {
		t.Errorf("unknown attribute: status %d", p.Status)
	}
}
