package offline

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/engine"
)

const signupScenario = "../../examples/funnels/signup.json"

// TestFunnelTrap is the reproducible simulation of issue 5: landing b raises
// the signup rate but lowers the purchase rate. multi_step, judging every
// step by the end-to-end conversion, must settle on landing a; per_step,
// judging landing by its next-step rate, settles on b and converts less.
func TestFunnelTrap(t *testing.T) {
	sc, err := LoadFunnelScenario(signupScenario)
	if err != nil {
		t.Fatal(err)
	}
	runs := 20
	if testing.Short() {
		runs = 5
	}
	got := map[string]FunnelSimResult{}
	for _, s := range engine.FunnelStrategies() {
		res, err := RunFunnelSimulation(FunnelSimConfig{Scenario: sc, Strategy: s, Units: 20000, Runs: runs, Seed: 1, Batch: 100})
		if err != nil {
			t.Fatal(err)
		}
		got[s] = res
	}
	ms, ps := got[engine.MultiStep], got[engine.PerStep]
	if ms.BestPath != "landing=a,signup=short" {
		t.Fatalf("truly best path %q", ms.BestPath)
	}
	if ms.BestPathRate < 0.9 {
		t.Errorf("multi_step chose the best path in %.0f%% of runs: %v", 100*ms.BestPathRate, ms.Chosen)
	}
	landingB := 0
	for p, n := range ps.Chosen {
		if strings.HasPrefix(p, "landing=b") {
			landingB += n
		}
	}
	if landingB < runs*9/10 {
		t.Errorf("per_step chose landing b in %d of %d runs: %v", landingB, runs, ps.Chosen)
	}
	if ms.Conversions-ps.Conversions < 5*(ms.ConversionsSE+ps.ConversionsSE) {
		t.Errorf("multi_step %.0f ± %.0f conversions vs per_step %.0f ± %.0f", ms.Conversions, ms.ConversionsSE, ps.Conversions, ps.ConversionsSE)
	}
	// The same funnel with every step's variants listed worst first: a
	// strategy that does not learn, whose ties pick the first variant, would
	// now "choose" the trap; multi_step must still find the best path.
	rev := sc
	rev.Steps = slices.Clone(sc.Steps)
	for i := range rev.Steps {
		rev.Steps[i].Variants = slices.Clone(sc.Steps[i].Variants)
		slices.Reverse(rev.Steps[i].Variants)
	}
	reordered, err := RunFunnelSimulation(FunnelSimConfig{Scenario: rev, Strategy: engine.MultiStep, Units: 20000, Runs: runs, Seed: 1, Batch: 100})
	if err != nil {
		t.Fatal(err)
	}
	if reordered.BestPath != ms.BestPath || reordered.BestPathRate < 0.9 {
		t.Errorf("variants reversed: multi_step chose the best path %q in %.0f%% of runs: %v", reordered.BestPath, 100*reordered.BestPathRate, reordered.Chosen)
	}
	// Same seed, same result, whatever the scheduling.
	again, err := RunFunnelSimulation(FunnelSimConfig{Scenario: sc, Strategy: engine.MultiStep, Units: 20000, Runs: runs, Seed: 1, Batch: 100, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if again.Conversions != ms.Conversions {
		t.Errorf("not reproducible: %v then %v", ms.Conversions, again.Conversions)
	}
}

func TestSimulateFunnelCommand(t *testing.T) {
	var out, errb bytes.Buffer
	code := Simulate([]string{"--funnel", signupScenario, "--runs", "2", "--units", "2000", "--json"}, &out, &errb)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res []FunnelSimResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res) != 2 {
		t.Fatalf("output %v %s", err, out.String())
	}
	if res[0].DeclaredRate != nil || res[0].NoDifferenceRate != nil {
		t.Errorf("decision rates without --look: %+v", res[0])
	}
	// With --look the step decisions are reported; equal landing pages
	// within a wide margin end in no_difference in most runs.
	out.Reset()
	code = Simulate([]string{"--funnel", "../../examples/funnels/equal-landing.json", "--runs", "20", "--look", "100",
		"--min-effect", "0.3", "--strategy", "multi_step"}, &out, &errb)
	if code != ExitOK || !strings.Contains(out.String(), "looked at every 100 units") || !strings.Contains(out.String(), "no difference at a step in") {
		t.Errorf("--look: exit %d, output %s %s", code, out.String(), errb.String())
	}
	for _, bad := range [][]string{{"--look", "-1"}, {"--min-effect", "2"}, {"--alpha", "1.5"}} {
		out.Reset()
		if code := Simulate(append([]string{"--funnel", signupScenario}, bad...), &out, &errb); code != ExitBadInput {
			t.Errorf("%v: exit %d, want %d", bad, code, ExitBadInput)
		}
	}
	out.Reset()
	if code := Simulate([]string{"--funnel=missing.json"}, &out, &errb); code != ExitBadInput {
		t.Errorf("missing file: exit %d", code)
	}
}

func TestScenarioValidation(t *testing.T) {
	for _, bad := range []FunnelScenario{
		{Steps: []ScenarioStep{{Key: "goal"}}},
		{Steps: []ScenarioStep{{Key: "s", Variants: []string{"a", "b"}, Advance: map[string]float64{"s=a": 0.5}}, {Key: "g"}}},
		{Steps: []ScenarioStep{{Key: "s", Variants: []string{"a", "b"}, Advance: map[string]float64{"*": 1.5}}, {Key: "g"}}},
		{Steps: []ScenarioStep{{Key: "s", Variants: []string{"a", "b"}, Advance: map[string]float64{"*": 0.5, "g=x": 0.1}}, {Key: "g"}}},
	} {
		if err := bad.validate(); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

// TestTimedFunnelDelayModel: the trap scenario with conversions arriving
// hours after each step (log-normal between steps, median 4h) and units
// entering over two days. With the server's delay model the units inside
// their window count by the chance their completion has arrived; without
// it they count as not converted so far, the leader (which got the most
// recent units) looks worse than it is, and its share lags. Measured with
// 40 runs of 20,000 units (seed 1): 2643 ± 10 conversions with the model
// against 2531 ± 11 without (400 runs, two seeds: 2640–2641 against
// 2523–2528), the best path chosen in every run by both; the bounds sit
// about two standard errors below (at least 80 more, 95% of the oracle's
// 2760). Once measured on 10 runs, where 2619 ± 21 against 2550 ± 21 failed
// bounds that one seed had passed.
func TestTimedFunnelDelayModel(t *testing.T) {
	if raceEnabled {
		t.Skip("statistical simulation: run without -race")
	}
	sc, err := LoadFunnelScenario(signupScenario)
	if err != nil {
		t.Fatal(err)
	}
	sc.Delay = &DelayDist{Dist: "lognormal", Median: Duration(4 * time.Hour), Sigma: 1}
	sc.Hours, sc.Window = 48, Duration(72*time.Hour)
	got := map[bool]FunnelSimResult{}
	for _, model := range []bool{true, false} {
		res, err := RunFunnelSimulation(FunnelSimConfig{Scenario: sc, Strategy: engine.MultiStep, Units: 20000, Runs: 40, Seed: 1,
			Batch: 100, Settings: engine.Settings{MinSamples: engine.DefaultMinSamples}, NoDelayModel: !model})
		if err != nil {
			t.Fatal(err)
		}
		if res.DelayModel == nil || *res.DelayModel != model || res.SwingRate == nil {
			t.Fatalf("timed result without its delay model or swing rate: %+v", res)
		}
		t.Logf("delay model %v: %.0f ± %.0f conversions, best path in %.0f%% of runs, swings in %.0f%%",
			model, res.Conversions, res.ConversionsSE, 100*res.BestPathRate, 100**res.SwingRate)
		got[model] = res
	}
	with, without := got[true], got[false]
	if with.BestPathRate < 0.9 {
		t.Errorf("with the delay model the best path was chosen in %.0f%% of runs", 100*with.BestPathRate)
	}
	if with.Conversions < without.Conversions+80 {
		t.Errorf("with the delay model %.0f conversions, without %.0f: want at least 80 more", with.Conversions, without.Conversions)
	}
	if with.Conversions < 0.95*with.OracleConversions {
		t.Errorf("with the delay model %.0f conversions, want ≥ 95%% of the oracle's %.0f", with.Conversions, with.OracleConversions)
	}
}

// TestTimedFunnelSwings: the same timed funnel, 400 runs (seed 1). A swing:
// the best path's variant's weight falls below one half after reaching 0.9;
// a collapse (the campaigns' rule): below 10% after being above one half.
// Each bound sits at the count measured here plus about two binomial
// standard errors: 10 swings and 12 collapses measured, at most 16 and 18
// allowed (with outcomes that arrive at once the same funnel swings in
// 0–0.5% of runs). Without the conversions burn-in (FunnelMinConversions)
// it measures 28 swings and 21 collapses; with 30 conversions on every
// variant instead of 30 per variant together, 6 and 11 (the server's test
// says why not that rule). It swung in 27% of 100 runs when first built: a
// unit older than the model's horizon counted every conversion it had shown
// against F relative to the horizon, the horizon moved as soon as one delay
// was seen beyond it, and P(best) rested on a few conversions under the
// uniform prior. Then, measured on 400 runs (docs/funnels.md): the burn-in
// gave the arm short of MinSamples every unit (weight 1, then 0.34), and
// Thompson sampling moved on 4–30 matured conversions per variant. With a
// burn-in serving only the short arms: 43 swings and 86 collapses of 240.
func TestTimedFunnelSwings(t *testing.T) {
	statistical(t)
	sc, err := LoadFunnelScenario(signupScenario)
	if err != nil {
		t.Fatal(err)
	}
	sc.Delay = &DelayDist{Dist: "lognormal", Median: Duration(4 * time.Hour), Sigma: 1}
	sc.Hours, sc.Window = 48, Duration(72*time.Hour)
	const runs = 400
	res, err := RunFunnelSimulation(FunnelSimConfig{Scenario: sc, Strategy: engine.MultiStep, Units: 20000, Runs: runs, Seed: 1,
		Batch: 100, Settings: engine.Settings{MinSamples: engine.DefaultMinSamples}})
	if err != nil {
		t.Fatal(err)
	}
	swings, collapses := runs**res.SwingRate, runs**res.CollapseRate
	t.Logf("%.0f ± %.0f conversions, best path in %.0f%% of runs, %.0f swings and %.0f collapses in %d runs",
		res.Conversions, res.ConversionsSE, 100*res.BestPathRate, swings, collapses, runs)
	if swings > 16 {
		t.Errorf("swings in %.0f of %d runs, want at most 16", swings, runs)
	}
	if collapses > 18 {
		t.Errorf("collapses in %.0f of %d runs, want at most 18", collapses, runs)
	}
	if res.Conversions < 0.95*res.OracleConversions {
		t.Errorf("%.0f conversions, want ≥ 95%% of the oracle's %.0f", res.Conversions, res.OracleConversions)
	}
}

// aaFunnel is landing (a, b, c) → signup (short, long) → purchase with
// variants that do not differ: 30% of landings sign up, 35% of signups buy.
func aaFunnel() FunnelScenario {
	return FunnelScenario{Name: "aa", Steps: []ScenarioStep{
		{Key: "landing", Variants: []string{"a", "b", "c"}, Advance: map[string]float64{"*": 0.3}},
		{Key: "signup", Variants: []string{"short", "long"}, Advance: map[string]float64{"*": 0.35}},
		{Key: "purchase"},
	}}
}

// funnelDecisions runs the funnel with the server's decision rule looked at
// every 100 units and the default settings of a funnel (weight floor 1%).
func funnelDecisions(t *testing.T, sc FunnelScenario, strategy string, units, runs int) FunnelSimResult {
	t.Helper()
	set := engine.Settings{WeightFloor: engine.DefaultAdaptiveWeightFloor}.WithDefaults()
	res, err := RunFunnelSimulation(FunnelSimConfig{Scenario: sc, Strategy: strategy, Units: units, Runs: runs, Seed: 1,
		Batch: 100, Look: 100, Settings: set})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestFunnelStepWinnersAnytimeValid: a step's winner is declared as an
// experiment's, by the anytime-valid tests on the propensities its units
// were served with, so reading the results every 100 units does not make
// winners out of variants that do not differ.
//
// Measured (seed 1, looks every 100 units to 20,000, weight floor 1%):
// with the variants of both steps identical (landing a, b, c; signup short,
// long), some step declared a winner in 9 of 1,000 runs (0.9%, s.e. 0.3%);
// on the posterior rule the funnels used before, in 66% of the same runs. The
// bound, 2%, is the measured rate plus about 3.5 standard errors. In the
// signup trap (landing a converts 30%·46% end to end against b's 45%·23%)
// multi_step declared a step winner in 62 of 300 runs (20.7%), never a
// wrong one; the bound 14% is about three standard errors below.
func TestFunnelStepWinnersAnytimeValid(t *testing.T) {
	statistical(t)
	aa := funnelDecisions(t, aaFunnel(), engine.MultiStep, 20000, 1000)
	t.Logf("A/A: some step declared a winner in %.1f%% of runs", 100**aa.DeclaredRate)
	if *aa.DeclaredRate > 0.02 {
		t.Errorf("A/A: a step winner in %.1f%% of 1,000 runs, want at most 2%% (measured 0.9%%)", 100**aa.DeclaredRate)
	}
	sc, err := LoadFunnelScenario(signupScenario)
	if err != nil {
		t.Fatal(err)
	}
	trap := funnelDecisions(t, sc, engine.MultiStep, 20000, 300)
	t.Logf("signup trap: a step winner in %.1f%% of runs, %.1f%% of them wrong", 100**trap.DeclaredRate, 100**trap.WrongWinnerShare)
	if *trap.DeclaredRate < 0.14 || *trap.WrongWinnerShare > 0 {
		t.Errorf("signup trap: a step winner in %.1f%% of 300 runs (want at least 14%%, measured 20.7%%), %.1f%% of them wrong (want none)",
			100**trap.DeclaredRate, 100**trap.WrongWinnerShare)
	}
}

// TestTimedFunnelStepWinners is TestFunnelStepWinnersAnytimeValid with time:
// units enter over 48 hours and every move to the next step (the goal
// included) takes a log-normal delay (median 2 h, σ 1), so the results read
// every 100 reaches see completions still on their way, as the server's
// do. Measured (seed 1): A/A, some step declared a winner in 2 of 200 runs
// (1.0%); the signup trap, in 19 of 100 runs, never a wrong one. Bounds:
// 3% (the chance of 7 or more of 200 at the untimed rate, 0.9%, is 0.3%),
// and at least 10% of the trap's runs (about 2.3 standard errors below).
func TestTimedFunnelStepWinners(t *testing.T) {
	statistical(t)
	delay := &DelayDist{Dist: "lognormal", Median: Duration(2 * time.Hour), Sigma: 1}
	aa := aaFunnel()
	aa.Delay = delay
	res := funnelDecisions(t, aa, engine.MultiStep, 20000, 200)
	t.Logf("timed A/A: some step declared a winner in %.1f%% of runs", 100**res.DeclaredRate)
	if *res.DeclaredRate > 0.03 {
		t.Errorf("timed A/A: a step winner in %.1f%% of 200 runs, want at most 3%% (measured 1.0%%)", 100**res.DeclaredRate)
	}
	trap, err := LoadFunnelScenario(signupScenario)
	if err != nil {
		t.Fatal(err)
	}
	trap.Delay = delay
	res = funnelDecisions(t, trap, engine.MultiStep, 20000, 100)
	t.Logf("timed trap: a step winner in %.0f%% of runs, %.0f%% of them wrong", 100**res.DeclaredRate, 100**res.WrongWinnerShare)
	if *res.DeclaredRate < 0.10 || *res.WrongWinnerShare > 0 {
		t.Errorf("timed trap: a step winner in %.0f%% of 100 runs (want at least 10%%, measured 19%%), %.0f%% wrong (want none)",
			100**res.DeclaredRate, 100**res.WrongWinnerShare)
	}
}
