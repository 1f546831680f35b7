package api

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/samplit/samplit/internal/optimize"
)

// metricEvent is an event that names its metric.
type metricEvent struct {
	UnitID         string   `json:"unit_id"`
	Metric         string   `json:"metric,omitempty"`
	Value          *float64 `json:"value,omitempty"`
	IdempotencyKey string   `json:"idempotency_key,omitempty"`
}

func num(x float64) *float64 { return &x }

const metricsBody = `{"key":%q,"metric":"binary","strategy":"adaptive","start":true,
	"variants":[{"key":"control","control":true},{"key":"green"}],
	"settings":{"seed":7},
	"metrics":[{"key":"revenue","type":"continuous","role":"secondary"},
	           {"key":"refunds","type":"binary","role":"guardrail","direction":"decrease","max_degradation":0.1}]}`

// TestMetricsValidation: every rule of the metrics list is a 422 naming the
// field, and changes nothing.
func TestMetricsValidation(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ws := e.defaultWorkspace()
		eleven := make([]string, 11)
		for i := range eleven {
			eleven[i] = fmt.Sprintf(`{"key":"m%d","type":"binary"}`, i)
		}
		for _, tc := range []struct {
			name, metrics string
			want          []string
		}{
			{"duplicate keys", `[{"key":"a","type":"binary"},{"key":"a","type":"continuous"}]`, []string{"metrics[1].key"}},
			{"more than ten", "[" + strings.Join(eleven, ",") + "]", []string{"metrics"}},
			{"bad type", `[{"key":"a","type":"count"}]`, []string{"metrics[0].type"}},
			{"no type", `[{"key":"a"}]`, []string{"metrics[0].type"}},
			{"bad role", `[{"key":"a","type":"binary","role":"primary"}]`, []string{"metrics[0].role"}},
			{"bad key", `[{"key":"Revenue!","type":"binary"}]`, []string{"metrics[0].key"}},
			{"the primary's key", `[{"key":"primary","type":"binary"}]`, []string{"metrics[0].key"}},
			{"bad direction", `[{"key":"a","type":"binary","direction":"up"}]`, []string{"metrics[0].direction"}},
			{"guardrail without max_degradation", `[{"key":"a","type":"binary","role":"guardrail","direction":"decrease"}]`, []string{"metrics[0].max_degradation"}},
			{"guardrail without direction", `[{"key":"a","type":"binary","role":"guardrail","max_degradation":0.1}]`, []string{"metrics[0].direction"}},
			{"max_degradation out of range", `[{"key":"a","type":"binary","role":"guardrail","direction":"decrease","max_degradation":1.5}]`, []string{"metrics[0].max_degradation"}},
			{"max_degradation on a secondary", `[{"key":"a","type":"binary","max_degradation":0.1}]`, []string{"metrics[0].max_degradation"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				body := `{"key":"m","metric":"binary","variants":[{"key":"a"},{"key":"b"}],"metrics":` + tc.metrics + `}`
				r := e.must(http.StatusUnprocessableEntity, "POST", "/v1/experiments", e.admin, body)
				if got := r.fields(t); !slices.Equal(got, tc.want) {
					t.Errorf("fields %v, want %v\n%s", got, tc.want, r.Body)
				}
			})
		}
		if r := e.req("POST", "/v1/experiments", e.admin, `{"key":"m","metric":"binary","variants":[{"key":"a"},{"key":"b"}],"metrics":[{"key":"a","type":"binary","weight":1}]}`); r.Status != 400 && r.Status != 422 {
			t.Errorf("unknown field of a metric: %d %s", r.Status, r.Body)
		}
		if n := e.count(ws); n != 0 {
			t.Fatalf("%d experiments stored by invalid requests", n)
		}
		got := e.must(201, "POST", "/v1/experiments", e.admin, fmt.Sprintf(metricsBody, "ok")).JSON(t)
		ms := got["metrics"].([]any)
		if len(ms) != 2 || ms[0].(map[string]any)["max_degradation"] != nil || ms[1].(map[string]any)["max_degradation"] != 0.1 ||
			ms[0].(map[string]any)["direction"] != "increase" {
			t.Errorf("metrics %v", ms)
		}
		again := e.must(200, "GET", "/v1/experiments/ok", e.admin, "").JSON(t)
		if fmt.Sprint(again["metrics"]) != fmt.Sprint(got["metrics"]) {
			t.Errorf("GET metrics %v, want %v", again["metrics"], got["metrics"])
		}
	})
}

// TestMetricEvents: events name their metric (default the primary); an
// unknown metric is rejected with its reason; each metric has its own
// idempotency keys, conversions and counters; the results give every
// metric's lines.
func TestMetricEvents(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		e.must(201, "POST", "/v1/experiments", e.admin, fmt.Sprintf(metricsBody, "m"))
		as := e.assign("m", e.admin, units("u", 20))
		variant := map[string]string{}
		for _, a := range as {
			variant[a.UnitID] = a.variant()
		}

		// A single event with an unknown metric: 422 naming the field.
		r := e.must(422, "POST", "/v1/experiments/m/events", e.admin, `{"unit_id":"u-0","metric":"nope"}`)
		if got := r.fields(t); !slices.Equal(got, []string{"metric"}) || !strings.Contains(string(r.Body), "unknown metric") {
			t.Errorf("unknown metric: %v %s", got, r.Body)
		}
		// A continuous metric needs its value; a binary one takes none other than 1.
		if got := e.must(422, "POST", "/v1/experiments/m/events", e.admin, `{"unit_id":"u-0","metric":"revenue"}`).fields(t); !slices.Equal(got, []string{"value"}) {
			t.Errorf("revenue without value: %v", got)
		}
		if got := e.must(422, "POST", "/v1/experiments/m/events", e.admin, `{"unit_id":"u-0","metric":"refunds","value":3}`).fields(t); !slices.Equal(got, []string{"value"}) {
			t.Errorf("refunds with value 3: %v", got)
		}

		batch := []metricEvent{
			{UnitID: "u-1", Metric: "revenue", Value: num(12.5), IdempotencyKey: "k1"},
			{UnitID: "u-1", Metric: "revenue", Value: num(12.5), IdempotencyKey: "k1"}, // duplicate key of revenue
			{UnitID: "u-1", IdempotencyKey: "k1"},                                      // the primary's own keys: accepted
			{UnitID: "u-1", Metric: "primary"},                                         // converted already (primary)
			{UnitID: "u-2", Metric: "refunds"},
			{UnitID: "u-2", Metric: "refunds"}, // converts once
			{UnitID: "u-3", Metric: "nope"},    // unknown: rejected with its reason
			{UnitID: "never", Metric: "revenue", Value: num(1)},
			{UnitID: "u-1", Metric: "revenue", Value: num(7.5)},
		}
		got := decodeInto[eventsOut](t, e.must(202, "POST", "/v1/experiments/m/events", e.admin, jsonBody(t, map[string]any{"events": batch})))
		if got.Accepted != 4 || got.Duplicates != 3 || len(got.Rejected) != 2 ||
			got.Rejected[0].Index != 6 || !strings.Contains(got.Rejected[0].Error, "unknown metric") || got.Rejected[1].Index != 7 {
			t.Errorf("outcome %+v", got)
		}
		// Replayed, everything is a duplicate (or rejected again).
		again := decodeInto[eventsOut](t, e.must(202, "POST", "/v1/experiments/m/events", e.admin, jsonBody(t, map[string]any{"events": batch[:6]})))
		if again.Accepted != 0 || again.Duplicates != 6 {
			t.Errorf("replay: %+v", again)
		}

		res := e.results("m")
		rev, ref := res.Metrics["revenue"], res.Metrics["refunds"]
		if rev.Type != "continuous" || rev.Role != "secondary" || ref.Role != "guardrail" || ref.MaxDegradation == nil || *ref.MaxDegradation != 0.1 {
			t.Fatalf("metrics %+v", res.Metrics)
		}
		line := func(ls []optimize.MetricVariant, key string) optimize.MetricVariant {
			for _, l := range ls {
				if l.Key == key {
					return l
				}
			}
			t.Fatalf("no line %s", key)
			return optimize.MetricVariant{}
		}
		v1, v2 := variant["u-1"], variant["u-2"]
		if l := line(rev.Variants, v1); l.Sum != 20 || l.Conversions != 1 || l.Guardrail != "" {
			t.Errorf("revenue of %s: %+v", v1, l)
		}
		if l := line(ref.Variants, v2); l.Conversions != 1 || l.Guardrail != "ok" || l.GuardrailReason == "" {
			t.Errorf("refunds of %s: %+v", v2, l)
		}
		var primaryConv, units int64
		for _, v := range res.Variants {
			primaryConv += v.Conversions
			units += v.Units
		}
		for _, l := range rev.Variants {
			units -= l.Units
		}
		if primaryConv != 1 || units != 0 {
			t.Errorf("primary conversions %d (want 1); units differ by %d between metrics", primaryConv, units)
		}
		if len(res.GuardrailTrips) != 0 {
			t.Errorf("trips %+v", res.GuardrailTrips)
		}
	})
}

// TestGuardrailTrips: a variant that a guardrail shows to be harmful is
// stopped through the API: weight 0, no new units, marked tripped with a
// sentence, never the winner, experiment.guardrail_tripped recorded once
// (one delivery however often the results are read), the control never
// tripped, the state stored.
func TestGuardrailTrips(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b, func(t *testing.T) {
			e := newWebhookEnv(t, b, false)
			hook := decodeInto[webhookOut](t, e.must(201, "POST", "/v1/webhooks", e.admin,
				`{"url":"https://hooks.example.com/samplit","events":["experiment.guardrail_tripped","experiment.winner_found"]}`))
			e.must(201, "POST", "/v1/experiments", e.admin, fmt.Sprintf(metricsBody, "g"))
			r := rand.New(rand.NewPCG(3, 4))
			tripped := false
			for round := 0; round < 8 && !tripped; round++ {
				as := e.assign("g", e.admin, units(fmt.Sprintf("r%d", round), 500))
				var evs []metricEvent
				for _, a := range as {
					// green sells a little more but refunds 3 times as often.
					sale, refund := 0.10, 0.05
					if a.variant() == "green" {
						sale, refund = 0.12, 0.15
					}
					if r.Float64() < sale {
						evs = append(evs, metricEvent{UnitID: a.UnitID})
					}
					if r.Float64() < refund {
						evs = append(evs, metricEvent{UnitID: a.UnitID, Metric: "refunds"})
					}
				}
				e.must(202, "POST", "/v1/experiments/g/events", e.admin, jsonBody(t, map[string]any{"events": evs}))
				res := e.results("g")
				tripped = len(res.GuardrailTrips) > 0
			}
			if !tripped {
				t.Fatal("the guardrail did not trip")
			}
			res := e.results("g")
			if len(res.GuardrailTrips) != 1 || res.GuardrailTrips[0].Variant != "green" || res.GuardrailTrips[0].Metric != "refunds" ||
				!strings.Contains(res.GuardrailTrips[0].Reason, "refunds") {
				t.Fatalf("trips %+v", res.GuardrailTrips)
			}
			for _, v := range res.Variants {
				if v.Key == "green" && v.Weight != 0 {
					t.Errorf("green's weight %v, want 0", v.Weight)
				}
			}
			for _, l := range res.Metrics["refunds"].Variants {
				want := map[string]string{"control": "ok", "green": "tripped"}[l.Key]
				if l.Guardrail != want || l.GuardrailReason == "" {
					t.Errorf("refunds line %+v, want %s", l, want)
				}
			}
			if res.Winner != nil && *res.Winner == "green" {
				t.Error("green was declared the winner")
			}
			// No new unit gets green; the ones it had keep it.
			if got := byVariant(e.assign("g", e.admin, units("after", 300))); got["green"] != 0 || got["control"] != 300 {
				t.Errorf("after the trip: %v", got)
			}
			if a := e.assignOne("g", e.admin, "r0-1"); a.New {
				t.Errorf("an old unit was reassigned: %+v", a)
			}
			// Recorded once: one delivery of the event, whatever was read.
			for range 3 {
				e.results("g")
			}
			n := 0
			for _, d := range e.deliveries(hook.ID) {
				if d.EventType == "experiment.guardrail_tripped" {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d deliveries of experiment.guardrail_tripped, want 1", n)
			}
			// Stored: a fresh optimizer (another replica) sees it.
			exp, err := e.store.GetExperiment(context.Background(), e.defaultWorkspace(), "g")
			if err != nil {
				t.Fatal(err)
			}
			trips, err := e.store.GuardrailTrips(context.Background(), exp.WorkspaceID, exp.ID)
			if err != nil || len(trips) != 1 {
				t.Fatalf("stored trips %+v, %v", trips, err)
			}
		})
	}
}
