package engine_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/samplit/samplit/internal/engine"
)

// Two variants served 50/50 (each unit logged with its propensity ½, as the
// server does): 1,000 units each, 100 and 125 conversions. The posterior is
// 96% sure green is better, but the anytime-valid interval of the difference
// still includes zero, so there is no winner yet.
func ExampleAnalyze() {
	s, _ := engine.Lookup("uniform")
	arms := []engine.Arm{{Key: "control", Control: true}, {Key: "green"}}
	for i, conv := range []int{100, 125} {
		for u := range 1000 {
			arms[i].AddUnit(0.5)
			if u < conv {
				arms[i].AddOutcome(0.5, 0, 1, true)
			}
		}
	}
	for range 2000 {
		arms[0].AddExpected(0.5)
		arms[1].AddExpected(0.5)
	}
	res, err := engine.Analyze(s, engine.Input{Metric: engine.Binary, Arms: arms, Settings: engine.DefaultSettings()})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, v := range res.Variants {
		fmt.Printf("%-7s mean %.3f  95%% CI [%.4f, %.4f]  P(best) %.4f  loss %.5f  weight %.4f\n",
			v.Key, v.Mean, v.CILow, v.CIHigh, v.PBest, v.ExpectedLoss, v.Weight)
	}
	g := res.Variants[1]
	fmt.Printf("lift %.3f [%.3f, %.3f]\n", *g.Lift, *g.LiftCILow, *g.LiftCIHigh)
	fmt.Printf("difference %.3f, always-valid [%.3f, %.3f], p = %.2f\n", g.Mean-res.Variants[0].Mean, *g.DiffLow, *g.DiffHigh, *g.PValue)
	fmt.Println(res.Decision.State+":", res.Decision.Reason)
	// Output:
	// control mean 0.100  95% CI [0.0829, 0.1202]  P(best) 0.0386  loss 0.02517  weight 0.5000
	// green   mean 0.125  95% CI [0.1059, 0.1470]  P(best) 0.9614  loss 0.00022  weight 0.5000
	// lift 0.250 [-0.024, 0.602]
	// difference 0.025, always-valid [-0.022, 0.072], p = 0.64
	// collecting: no winner yet: green leads (vs control: +25.0% [−22.2%, +72.2%]); a winner needs its always-valid 95.0% interval above zero against every variant
}

// With a control share of 20% and a floor of 5%, the control gets exactly 0.2 and the
// others share the rest by P(best), each keeping at least 0.05.
func ExamplePlan_Pick() {
	s, _ := engine.Lookup("adaptive")
	plan, _ := s.Plan(engine.Input{
		Metric: engine.Binary,
		Arms: []engine.Arm{
			{Key: "control", Control: true, Units: 1000, Conversions: 100},
			{Key: "green", Units: 1000, Conversions: 125},
			{Key: "blue", Units: 1000, Conversions: 110},
		},
		Settings: engine.Settings{WeightFloor: 0.05, ControlShare: 0.2}.WithDefaults(),
	})
	r := rand.New(rand.NewPCG(42, 0))
	p := plan.Pick(r)
	fmt.Printf("%s %.4f\n", p.Key, p.Propensity)
	fmt.Printf("%.4f\n", plan.Weights())
	// Output:
	// green 0.6455
	// [0.2000 0.6455 0.1545]
}

// A 50/50 test that received 5,000 and 5,300 units: a sample ratio mismatch.
func ExampleSRMPValue() {
	p := engine.SRMPValue([]int64{5000, 5300}, []float64{0.5, 0.5})
	fmt.Printf("p = %.4f, alert: %v\n", p, p < engine.SRMAlertP)
	// Output: p = 0.0031, alert: false
}

// Summarize describes a breakdown segment's arms from their counters alone.
func ExampleSummarize() {
	arms := []engine.Arm{{Key: "control", Units: 1000, Conversions: 100}, {Key: "green", Units: 1000, Conversions: 130}}
	for i, s := range engine.Summarize(engine.Binary, arms, engine.Settings{}.WithDefaults()) {
		fmt.Printf("%s mean %.3f ci [%.3f, %.3f] p_best %.2f\n", arms[i].Key, s.Mean, s.CILow, s.CIHigh, s.PBest)
	}
	// Output:
	// control mean 0.100 ci [0.083, 0.120] p_best 0.02
	// green mean 0.130 ci [0.111, 0.152] p_best 0.98
}
