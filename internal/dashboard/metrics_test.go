package dashboard

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// TestMetricTablesAndTrippedBadge: an experiment's other metrics are shown
// as tables with the results' numbers, and a variant a guardrail stopped
// carries the tripped badge and an alert with the reason.
func TestMetricTablesAndTrippedBadge(t *testing.T) {
	e := newEnv(t)
	var out struct{ ID string }
	e.api("POST", "/v1/experiments", e.admin, map[string]any{
		"key": "guard", "variants": []map[string]any{{"key": "control"}, {"key": "green"}}, "start": true,
		"settings": map[string]any{"seed": 7},
		"metrics": []map[string]any{{"key": "revenue", "type": "continuous"},
			{"key": "refunds", "type": "binary", "role": "guardrail", "direction": "decrease", "max_degradation": 0.1}},
	}, 201, &out)
	units := make([]string, 600)
	for i := range units {
		units[i] = fmt.Sprintf("u%d", i)
	}
	var as struct {
		Assignments []struct {
			UnitID  string  `json:"unit_id"`
			Variant *string `json:"variant"`
		}
	}
	e.api("POST", "/v1/experiments/guard/assign", e.admin, map[string]any{"unit_ids": units}, 200, &as)
	var events []map[string]any
	seen := map[string]int{}
	for _, a := range as.Assignments {
		v := *a.Variant
		seen[v]++
		// green refunds half its units, control one in twenty.
		if (v == "green" && seen[v]%2 == 0) || (v == "control" && seen[v]%20 == 0) {
			events = append(events, map[string]any{"unit_id": a.UnitID, "metric": "refunds"})
		}
		events = append(events, map[string]any{"unit_id": a.UnitID, "metric": "revenue", "value": 2.5})
	}
	e.api("POST", "/v1/experiments/guard/events", e.admin, map[string]any{"events": events}, 202, nil)

	b := e.browser()
	b.signIn(e.admin)
	p := b.get("/experiments/" + out.ID)
	if p.Status != 200 {
		t.Fatalf("status %d\n%s", p.Status, p.Body)
	}
	ctx := context.Background()
	x, _ := e.st.GetExperiment(ctx, e.defaultWorkspace(), out.ID)
	res, err := e.opt.Results(ctx, &x)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GuardrailTrips) != 1 || res.GuardrailTrips[0].Variant != "green" {
		t.Fatalf("trips %+v", res.GuardrailTrips)
	}
	if !strings.Contains(p.Body, `data-trip="green"`) || !strings.Contains(p.Body, `tag-stopped">tripped`) {
		t.Error("no tripped badge or alert for green")
	}
	for _, key := range []string{"revenue", "refunds"} {
		if !strings.Contains(p.Body, `data-metric="`+key+`"`) {
			t.Fatalf("no table of %s", key)
		}
	}
	rows := tags(p.Body, "tr", "data-guardrail")
	if len(rows) != 2 {
		t.Fatalf("%d guardrail rows, want 2", len(rows))
	}
	for i, l := range res.Metrics["refunds"].Variants {
		if rows[i]["data-variant"] != l.Key || rows[i]["data-guardrail"] != l.Guardrail || rows[i]["data-conversions"] != strconv.FormatInt(l.Conversions, 10) {
			t.Errorf("row %v, results %+v", rows[i], l)
		}
	}
}
