package api

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestGuardrailSimulationThroughHTTP is issue 15's guardrail simulation
// through the API, every response checked against the OpenAPI document:
// the treatment sells more (12% against 10%) but, in "harmful", refunds
// 30% against the control's 20% — a 50% degradation, twice the 25% allowed;
// in "equal" it refunds as often as the control. Units come 500 at a time,
// each batch's conversions and refunds are posted as events, and the
// results are read after each batch, until a winner is declared or 20,000
// units. A harmful treatment must be stopped (≥ 90% of these 40 runs; 98.6% measured), never
// declared the winner and never served after its trip; an equal one is
// stopped in ≤ 5% of runs. The engine's simulation
// (internal/engine TestGuardrailSimulation, 200 runs) measures the rates
// closely; this one checks that the server as deployed behaves the same.
func TestGuardrailSimulationThroughHTTP(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("simulation (about a minute); scripts/test runs it without -race")
	}
	e := newEnv(t, "sqlite", Options{})
	run := func(name string, seed uint64, refunds [2]float64) (stopped, won, servedAfter bool) {
		t.Helper()
		e.must(201, "POST", "/v1/experiments", e.admin, fmt.Sprintf(`{"key":%q,"metric":"binary","strategy":"adaptive","start":true,
			"variants":[{"key":"control","control":true},{"key":"treatment"}],
			"settings":{"seed":%d},
			"metrics":[{"key":"refunds","type":"binary","role":"guardrail","direction":"decrease","max_degradation":0.25}]}`, name, seed))
		r := rand.New(rand.NewPCG(seed, 99))
		for n := 0; n < 20000; n += 500 {
			var evs []metricEvent
			for _, a := range e.assign(name, e.admin, units(fmt.Sprintf("%s-%d", name, n), 500)) {
				i := 0
				if a.variant() == "treatment" {
					i = 1
					servedAfter = servedAfter || stopped
				}
				if r.Float64() < [2]float64{0.10, 0.12}[i] {
					evs = append(evs, metricEvent{UnitID: a.UnitID})
				}
				if r.Float64() < refunds[i] {
					evs = append(evs, metricEvent{UnitID: a.UnitID, Metric: "refunds"})
				}
			}
			e.must(202, "POST", "/v1/experiments/"+name+"/events", e.admin, jsonBody(t, map[string]any{"events": evs}))
			res := e.results(name)
			if res.Winner != nil && *res.Winner == "treatment" {
				won = true
			}
			if len(res.GuardrailTrips) > 0 {
				if tr := res.GuardrailTrips[0]; tr.Variant != "treatment" || tr.Metric != "refunds" {
					t.Fatalf("%s: tripped %+v", name, res.GuardrailTrips)
				}
				if stopped {
					break // one batch was served after the trip
				}
				stopped = true
			}
			if res.Winner != nil {
				break
			}
		}
		return stopped, won, servedAfter
	}
	const runs = 40
	var hs, hw, ha, es, ew int
	for k := range runs {
		s, w, a := run(fmt.Sprintf("harmful-%d", k), uint64(k+1), [2]float64{0.20, 0.30})
		hs, hw, ha = hs+b2i(s), hw+b2i(w), ha+b2i(a)
		s, w, _ = run(fmt.Sprintf("equal-%d", k), uint64(1000+k), [2]float64{0.20, 0.20})
		es, ew = es+b2i(s), ew+b2i(w)
	}
	t.Logf("through HTTP, %d runs each: harmful (refunds 20%% → 30%%, 25%% allowed) stopped %d, declared the winner %d, served after the trip %d; "+
		"equal refunds stopped %d, declared the winner %d", runs, hs, hw, ha, es, ew)
	// The harmful treatment was stopped in 434 of 440 runs (98.6%: ten
	// local runs of this test and one CI run, which stopped 37 of 40). It is
	// not stopped when adaptive allocation starves the control (80/20) and
	// the control's refunds come out high, so the ratio's interval still
	// reaches the allowed 25%; which runs do depends on when the allocation
	// refreshes, not only on the seed. At 98.6%, 40 runs miss 5 or more
	// about once in 4,400; the former bound (38, at most 2 misses) failed
	// about once in 55. The equal treatment was stopped in none of 400.
	// A guardrail that allows 40% instead of 25% stops 9 of 40 and fails.
	const minStopped = runs - 4
	if hs < minStopped || hw > 0 || ha > 0 || es > 2 {
		t.Errorf("harmful stopped %d/%d (want ≥ %d), declared %d, served after the trip %d (want 0); equal stopped %d (want ≤ 2)",
			hs, runs, minStopped, hw, ha, es)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
