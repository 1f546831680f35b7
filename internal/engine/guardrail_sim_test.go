package engine

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// guardrailRun is one simulated experiment with a primary metric and one
// guardrail metric, run through the functions the server uses: the
// strategy's Update and Plan (with the stopped arms of the trips recorded so
// far), Arm.AddUnit/AddExpected/AddOutcome for the counters (the store's
// code), MetricArms for the guardrail's arms, CheckGuardrail and Decide after
// every batch (the decision loop). It returns whether the treatment was
// stopped and whether it was ever declared the winner.
type guardrailScenario struct {
	strategy       string
	primary        [2]float64 // conversion rates: control, treatment
	guard          [2]float64 // guardrail event rates (lower is better)
	maxDegradation float64
	horizon, batch int
}

type guardrailOutcome struct {
	stopped, treatmentWon bool
	stoppedAt             int
	// servedAfterStop counts units the treatment got after its trip.
	servedAfterStop int
}

func runGuardrail(t *testing.T, sc guardrailScenario, seed uint64) guardrailOutcome {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	strat, err := Lookup(sc.strategy)
	if err != nil {
		t.Fatal(err)
	}
	set := DefaultSettings()
	set.WeightFloor = DefaultWeightFloorFor(sc.strategy)
	set.GuardrailControlShare = DefaultGuardrailControlShare
	primary := []Arm{{Key: "control", Control: true}, {Key: "treatment"}}
	guard := make([]Arm, 2) // outcome statistics only, as the store keeps them
	var st State
	var out guardrailOutcome
	rule := GuardrailRule{Direction: Decrease, MaxDegradation: sc.maxDegradation}
	for n := 0; n < sc.horizon; n += sc.batch {
		in := Input{Metric: Binary, Arms: primary, Settings: set, State: st}
		if st, err = strat.Update(in); err != nil {
			t.Fatal(err)
		}
		in.State = st
		plan, err := strat.Plan(in)
		if err != nil {
			t.Fatal(err)
		}
		w := plan.Weights()
		for range sc.batch {
			pick := plan.Pick(r)
			i := pick.Index
			if out.stopped && i == 1 {
				out.servedAfterStop++
			}
			primary[i].AddUnit(pick.Propensity)
			for j := range primary {
				primary[j].AddExpected(w[j])
			}
			if r.Float64() < sc.primary[i] {
				primary[i].AddOutcome(pick.Propensity, 0, 1, true)
			}
			if r.Float64() < sc.guard[i] {
				guard[i].AddOutcome(pick.Propensity, 0, 1, true)
			}
		}
		// The decision loop: guardrails first, then the decision on the
		// primary metric with the stopped arms.
		gin := Input{Metric: Binary, Arms: MetricArms(primary, guard), Settings: set}
		verdicts, err := CheckGuardrail(sc.strategy, "refunds", gin, rule, 1)
		if err != nil {
			t.Fatal(err)
		}
		if verdicts[0].Tripped {
			t.Fatal("the control tripped")
		}
		if verdicts[1].Tripped && !out.stopped {
			out.stopped, out.stoppedAt = true, n+sc.batch // the recorded trip
		}
		Constrain(primary, map[string]bool{"treatment": out.stopped}, map[string][]GuardrailVerdict{"refunds": verdicts})
		winner, _, err := Decide(strat, Input{Metric: Binary, Arms: primary, Settings: set, State: st})
		if err != nil {
			t.Fatal(err)
		}
		if winner != nil && *winner == "treatment" {
			out.treatmentWon = true
		}
		if winner != nil || (out.stopped && out.servedAfterStop > 0) {
			break
		}
	}
	return out
}

type guardrailRates struct {
	stopped, won, servedAfterStop float64
	runs                          int
	// medianStop is the median number of units at the trip, over the runs
	// that tripped.
	medianStop int
}

func simulateGuardrail(t *testing.T, sc guardrailScenario, runs int, seed uint64) guardrailRates {
	var g guardrailRates
	g.runs = runs
	var at []int
	for k := range runs {
		o := runGuardrail(t, sc, seed+uint64(k))
		if o.stopped {
			g.stopped++
			at = append(at, o.stoppedAt)
		}
		if o.treatmentWon {
			g.won++
		}
		if o.servedAfterStop > 0 {
			g.servedAfterStop++
		}
	}
	if len(at) > 0 {
		slices.Sort(at)
		g.medianStop = at[len(at)/2]
	}
	g.stopped /= float64(runs)
	g.won /= float64(runs)
	g.servedAfterStop /= float64(runs)
	return g
}

// harmful: the treatment converts 20% better on the primary metric, so the
// bandit moves traffic to it, but raises refunds by 40%, twice the allowed
// 20%. equal: refunds the same. boundary: refunds exactly 20% higher, the
// allowed limit, where an uncorrected test peeked at after every batch
// trips far more often than α.
var guardrailScenarios = map[string]guardrailScenario{
	"harmful":  {strategy: "adaptive", primary: [2]float64{0.10, 0.12}, guard: [2]float64{0.10, 0.14}, maxDegradation: 0.2, horizon: 60000, batch: 200},
	"equal":    {strategy: "adaptive", primary: [2]float64{0.10, 0.12}, guard: [2]float64{0.10, 0.10}, maxDegradation: 0.2, horizon: 60000, batch: 200},
	"boundary": {strategy: "adaptive", primary: [2]float64{0.10, 0.10}, guard: [2]float64{0.10, 0.12}, maxDegradation: 0.2, horizon: 60000, batch: 200},
}

// TestGuardrailSimulation is the claim: a variant better on the
// primary metric but worse on a guardrail by twice the allowed degradation
// is stopped in ≥ 95% of runs and never declared the winner; one within the
// allowed degradation is stopped in ≤ 5% of runs.
func TestGuardrailSimulation(t *testing.T) {
	if raceEnabled {
		t.Skip("statistical simulation; run without -race")
	}
	const runs = 200
	h := simulateGuardrail(t, guardrailScenarios["harmful"], runs, 1)
	e := simulateGuardrail(t, guardrailScenarios["equal"], runs, 10_001)
	b := simulateGuardrail(t, guardrailScenarios["boundary"], runs, 20_001)
	t.Logf("harmful: stopped %.3f (median at %d units), treatment won %.3f, served after its stop %.3f (%d runs)", h.stopped, h.medianStop, h.won, h.servedAfterStop, runs)
	t.Logf("equal: stopped %.3f, treatment declared the winner %.3f (%d runs); boundary: stopped %.3f (%d runs)", e.stopped, e.won, runs, b.stopped, runs)
	if h.stopped < 0.95 {
		t.Errorf("harmful treatment stopped in %.3f of runs, want ≥ 0.95", h.stopped)
	}
	if h.won > 0 {
		t.Errorf("harmful treatment declared the winner in %.3f of runs, want never", h.won)
	}
	if h.servedAfterStop > 0 {
		t.Errorf("a stopped treatment got traffic in %.3f of runs, want none", h.servedAfterStop)
	}
	if e.stopped > 0.05 {
		t.Errorf("treatment equal on the guardrail stopped in %.3f of runs, want ≤ 0.05", e.stopped)
	}
	if b.stopped > 0.05 {
		t.Errorf("treatment at the allowed degradation stopped in %.3f of runs, want ≤ 0.05", b.stopped)
	}
}

// TestStoppedArmNeverWins: an arm a guardrail stopped is out of the running
// however clearly it leads on the primary metric, gets weight 0, and the
// control cannot be stopped.
func TestStoppedArmNeverWins(t *testing.T) {
	set := DefaultSettings()
	in := fixedInput(set, []string{"control", "green"}, [2]int64{5000, 500}, [2]int64{5000, 900})
	strat, _ := Lookup("adaptive")
	if w, _, err := Decide(strat, in); err != nil || w == nil || *w != "green" {
		t.Fatalf("without a trip: winner %v, %v; want green", w, err)
	}
	in.Arms[1].Stopped = true
	w, d, err := Decide(strat, in)
	if err != nil || w != nil {
		t.Fatalf("stopped green: winner %v, %v; want none", w, err)
	}
	t.Log(d.Reason)
	res, err := Analyze(strat, in)
	if err != nil || res.Winner != nil {
		t.Fatalf("Analyze: winner %v, %v", res.Winner, err)
	}
	if res.Variants[1].Weight != 0 || res.Variants[0].Weight != 1 {
		t.Errorf("weights %v %v, want 1 and 0", res.Variants[0].Weight, res.Variants[1].Weight)
	}
	plan, err := strat.Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		if p := plan.Pick(r); p.Index == 1 {
			t.Fatal("a stopped arm was picked")
		}
	}
	// Three arms: the stopped one neither wins nor blocks the others.
	in3 := fixedInput(set, []string{"control", "green", "blue"}, [2]int64{5000, 500}, [2]int64{5000, 900}, [2]int64{5000, 700})
	in3.Arms[1].Stopped = true
	if w, d, err := Decide(strat, in3); err != nil || w == nil || *w != "blue" {
		t.Errorf("three arms, green stopped: winner %v (%s), %v; want blue", w, d.Reason, err)
	}
	in.Arms[1].Stopped, in.Arms[0].Stopped = false, true
	if _, _, err := Decide(strat, in); err == nil {
		t.Error("a stopped control was accepted")
	}
}

// TestUnprovenArmDoesNotWin: an arm whose guardrail is undecided keeps its
// traffic but is not declared the winner, and the control keeps its
// guardrail share meanwhile.
func TestUnprovenArmDoesNotWin(t *testing.T) {
	set := DefaultSettings()
	set.GuardrailControlShare = 0.2
	in := fixedInput(set, []string{"control", "green"}, [2]int64{5000, 500}, [2]int64{5000, 900})
	in.Arms[1].Unproven = "refunds undecided"
	strat, _ := Lookup("adaptive")
	if w, d, err := Decide(strat, in); err != nil || w != nil {
		t.Fatalf("unproven green: winner %v (%s), %v; want none", w, d.Reason, err)
	}
	plan, err := strat.Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	if w := plan.Weights(); w[0] < 0.2 || w[1] < 0.5 {
		t.Errorf("weights %v: want the control ≥ 0.2 and green to keep the rest", w)
	}
}

// TestCheckGuardrailDirections: both directions trip on clear harm, never
// the control, and not on a difference within the allowed degradation.
func TestCheckGuardrailDirections(t *testing.T) {
	set := DefaultSettings()
	for _, tc := range []struct {
		name     string
		dir      string
		conv     int64
		trip, ok bool
	}{
		{"decrease, 50% higher", Decrease, 1500, true, false},
		{"decrease, equal", Decrease, 1000, false, true},
		{"decrease, lower", Decrease, 700, false, true},
		{"increase, 50% lower", Increase, 500, true, false},
		{"increase, equal", Increase, 1000, false, true},
		{"decrease, 15% higher (allowed 20%)", Decrease, 1150, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := fixedInput(set, []string{"control", "green"}, [2]int64{10000, 1000}, [2]int64{10000, tc.conv})
			v, err := CheckGuardrail("adaptive", "refunds", in, GuardrailRule{Direction: tc.dir, MaxDegradation: 0.2}, 1)
			if err != nil {
				t.Fatal(err)
			}
			if v[0].Tripped || v[0].Safe {
				t.Errorf("control: %+v", v[0])
			}
			if v[1].Tripped != tc.trip || v[1].Safe != tc.ok {
				t.Errorf("green: %+v, want tripped %v safe %v", v[1], tc.trip, tc.ok)
			}
		})
	}
	if _, err := CheckGuardrail("adaptive", "x", fixedInput(set, []string{"a", "b"}, [2]int64{10, 1}, [2]int64{10, 1}), GuardrailRule{Direction: "up", MaxDegradation: 0.1}, 1); err == nil {
		t.Error("a bad direction was accepted")
	}
}
