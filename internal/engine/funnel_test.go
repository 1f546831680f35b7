package engine

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// twoStepFunnel is landing (a, b) → signup (counted) → purchase, where b
// sends more units to signup (1800 vs 1200 of 3000) but fewer of them buy
// (180 vs 300 end to end): a difference the anytime-valid test of a step's
// winner shows at these counts (at a third of them it does not yet).
func twoStepFunnel(strategy string) FunnelInput {
	return FunnelInput{Strategy: strategy, Settings: Settings{MinSamples: 100},
		Steps: []FunnelStepInput{
			{Key: "landing", Arms: evenlyLogged([]FunnelArm{
				{Key: "a", Control: true, Units: 3000, Conversions: 300, Advanced: 1200, Open: 3},
				{Key: "b", Units: 3000, Conversions: 180, Advanced: 1800, Open: 2},
			})},
			{Key: "signup", Arms: []FunnelArm{{Units: 3000, Conversions: 480, Advanced: 480}}},
			{Key: "purchase", Arms: []FunnelArm{{Units: 480, Conversions: 480}}},
		},
		Paths: []FunnelPath{
			{Variants: []string{"a", "", ""}, Units: 3000, Conversions: 300},
			{Variants: []string{"b", "", ""}, Units: 3000, Conversions: 180},
		},
	}
}

// evenlyLogged fills in the arms' inverse-propensity sums as if every unit
// of the step had been served each variant with the same probability.
func evenlyLogged(arms []FunnelArm) []FunnelArm {
	var n int64
	for _, a := range arms {
		n += a.Units
	}
	p := 1 / float64(len(arms))
	for i := range arms {
		a := &arms[i]
		a.InvP, a.InvP2 = float64(a.Units)/p, float64(a.Units)/(p*p)
		a.ConvInvP, a.ConvInvP2 = float64(a.Conversions)/p, float64(a.Conversions)/(p*p)
		a.AdvInvP, a.AdvInvP2 = float64(a.Advanced)/p, float64(a.Advanced)/(p*p)
		a.Expected, a.ExpectedSquares, a.InvExpected = float64(n)*p, float64(n)*p*p, float64(n)/p
	}
	return arms
}

func TestAnalyzeFunnelStrategiesDisagree(t *testing.T) {
	ms, err := AnalyzeFunnel(twoStepFunnel(MultiStep))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := AnalyzeFunnel(twoStepFunnel(PerStep))
	if err != nil {
		t.Fatal(err)
	}
	if w := ms.Steps[0].Winner; w == nil || *w != "a" {
		t.Errorf("multi_step winner %v, want a", w)
	}
	if w := ps.Steps[0].Winner; w == nil || *w != "b" {
		t.Errorf("per_step winner %v, want b", w)
	}
	// Both report the same end-to-end statistics; only weights and
	// decisions follow the strategy's objective.
	if ms.Steps[0].Variants[0].PBest != ps.Steps[0].Variants[0].PBest || ms.Steps[0].Variants[0].PBest < 0.99 {
		t.Errorf("end-to-end P(best) of a: %v vs %v", ms.Steps[0].Variants[0].PBest, ps.Steps[0].Variants[0].PBest)
	}
	if ps.Steps[0].Variants[1].Weight < 0.99 || ms.Steps[0].Variants[0].Weight < 0.99 {
		t.Errorf("weights: per_step b %v, multi_step a %v", ps.Steps[0].Variants[1].Weight, ms.Steps[0].Variants[0].Weight)
	}
	if ms.Decision.State != StateWinnerFound || ms.MattersMost == nil || ms.MattersMost.Step != "landing" {
		t.Errorf("decision %v, matters most %v", ms.Decision, ms.MattersMost)
	}
	if ms.TotalUnits != 6000 || ms.Conversions != 480 || ms.Steps[0].OpenUnits != 5 {
		t.Errorf("totals %d %d open %d", ms.TotalUnits, ms.Conversions, ms.Steps[0].OpenUnits)
	}
	if d := *ms.Steps[1].DropOff; d != 0.5 {
		t.Errorf("drop-off to signup %v, want 0.5", d)
	}
	if ms.LeadingPath == nil || ms.LeadingPath.Variants["landing"] != "a" {
		t.Errorf("leading path %+v", ms.LeadingPath)
	}
}

func TestPlanFunnelFollowsObjective(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ strategy, want string }{{MultiStep, "a"}, {PerStep, "b"}} {
		plans, err := PlanFunnel(twoStepFunnel(tc.strategy))
		if err != nil {
			t.Fatal(err)
		}
		if plans[1] != nil || plans[2] != nil {
			t.Errorf("%s: plans for steps without variants", tc.strategy)
		}
		n := 0
		for range 1000 {
			if plans[0].Pick(r).Key == tc.want {
				n++
			}
		}
		if n < 980 {
			t.Errorf("%s picked %s %d times in 1000", tc.strategy, tc.want, n)
		}
	}
}

func TestAnalyzeFunnelInvalid(t *testing.T) {
	in := twoStepFunnel("adaptive")
	if _, err := AnalyzeFunnel(in); err == nil {
		t.Error("accepted an experiment strategy")
	}
	in = twoStepFunnel(MultiStep)
	in.Steps[0].Arms[0].Conversions = 6000
	if _, err := AnalyzeFunnel(in); err == nil {
		t.Error("accepted conversions above units")
	}
}

// benchFunnel is 5 steps with 4 variants each and a goal, with 10⁶ units
// entering, and every one of the 4⁵ = 1024 complete paths seen.
func benchFunnel() FunnelInput {
	in := FunnelInput{Strategy: MultiStep}
	units := int64(1_000_000)
	for k := range 5 {
		st := FunnelStepInput{Key: fmt.Sprintf("step%d", k)}
		for v := range 4 {
			n := units / 4
			st.Arms = append(st.Arms, FunnelArm{Key: fmt.Sprintf("v%d", v), Units: n,
				Conversions: n / int64(20+v), Advanced: n * int64(8-v) / 10, Open: n / 100})
		}
		in.Steps = append(in.Steps, st)
		units = units * 7 / 10
	}
	in.Steps = append(in.Steps, FunnelStepInput{Key: "goal", Arms: []FunnelArm{{Units: 50000, Conversions: 50000}}})
	for p := range 1024 {
		path := make([]string, 6)
		for k := range 5 {
			path[k] = fmt.Sprintf("v%d", p>>(2*k)&3)
		}
		in.Paths = append(in.Paths, FunnelPath{Variants: path, Units: 1_000_000 / 1024, Conversions: int64(40 + p%17)})
	}
	return in
}

// BenchmarkAnalyzeFunnel5x4 is the results computation of issue 5: 5 steps ×
// 4 variants, 10⁶ units, 1024 paths, from counters (required: < 50 ms).
func BenchmarkAnalyzeFunnel5x4(b *testing.B) {
	in := benchFunnel()
	for b.Loop() {
		if _, err := AnalyzeFunnel(in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFunnelWinnerNeedsPropensities: counters without logged propensities
// (written before they were kept) give a step no winner, however clear its
// posterior, and the decision says why.
func TestFunnelWinnerNeedsPropensities(t *testing.T) {
	in := twoStepFunnel(MultiStep)
	for i := range in.Steps[0].Arms {
		a := &in.Steps[0].Arms[i]
		a.InvP, a.InvP2, a.ConvInvP, a.ConvInvP2, a.AdvInvP, a.AdvInvP2 = 0, 0, 0, 0, 0, 0
		a.Expected, a.ExpectedSquares, a.InvExpected = 0, 0, 0
	}
	res, err := AnalyzeFunnel(in)
	if err != nil {
		t.Fatal(err)
	}
	sr := res.Steps[0]
	if sr.Winner != nil || sr.Decision.State != StateCollecting || !strings.Contains(sr.Decision.Reason, "propensities") {
		t.Errorf("winner %v, decision %+v", sr.Winner, sr.Decision)
	}
	if sr.Variants[0].PBest < 0.99 {
		t.Errorf("P(best) of a %v: the posterior still favours it", sr.Variants[0].PBest)
	}
}

// TestFunnelDecision: a step in no_difference is decided, so it does not
// hold the funnel in collecting; the funnel is no_difference only when no
// step has a winner, and steps without variants (nil decision) do not count.
func TestFunnelDecision(t *testing.T) {
	a := "a"
	won := FunnelStepResult{Key: "landing", Winner: &a, Decision: &Decision{State: StateWinnerFound}}
	same := FunnelStepResult{Key: "signup", Decision: &Decision{State: StateNoDifference}}
	open := FunnelStepResult{Key: "pricing", Decision: &Decision{State: StateCollecting}}
	plain := FunnelStepResult{Key: "done"}
	for _, tc := range []struct {
		name   string
		steps  []FunnelStepResult
		state  string
		reason string
	}{
		{"winners", []FunnelStepResult{won, plain}, StateWinnerFound, "every step with variants has a winner (1 of 1)"},
		{"no difference", []FunnelStepResult{same, plain}, StateNoDifference, "no step's variants differ by min_effect or more (signup)"},
		{"both", []FunnelStepResult{won, same, plain}, StateWinnerFound, "every step with variants is decided: winners at landing; no difference at signup"},
		{"waiting", []FunnelStepResult{same, open, plain}, StateCollecting, "1 of 2 steps with variants decided (no difference at signup); waiting for pricing"},
		{"nothing decided", []FunnelStepResult{open, plain}, StateCollecting, "0 of 1 steps with variants decided; waiting for pricing"},
		{"no variants", []FunnelStepResult{plain}, StateCollecting, "no step has variants: the funnel is only counted"},
	} {
		if got := FunnelDecision(tc.steps); got.State != tc.state || got.Reason != tc.reason {
			t.Errorf("%s: %+v, want %s %q", tc.name, got, tc.state, tc.reason)
		}
	}
}
