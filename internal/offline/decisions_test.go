package offline

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/engine/stats"
)

// decisionConfig is the setting of docs/decisions.md: a look every 100 units,
// the plan rebuilt every 100 units (as the server rebuilds it from its
// counters), each strategy with its default weight floor.
func decisionConfig(strategy string, rates []float64, horizon, runs int, seed uint64) SimConfig {
	return SimConfig{Rates: rates, Strategy: strategy, Horizon: horizon, Runs: runs, Seed: seed, Batch: 100, Look: 100,
		Settings: engine.Settings{MinSamples: engine.DefaultMinSamples, WeightFloor: engine.DefaultWeightFloorFor(strategy)}}
}

func equalRates(k int, rate float64) []float64 {
	out := make([]float64, k)
	for i := range out {
		out[i] = rate
	}
	return out
}

func binomSE(p float64, n int) float64 { return math.Sqrt(p * (1 - p) / float64(n)) }

// statistical marks a simulation test: skipped under the race detector
// (scripts/test runs it without), see raceEnabled.
func statistical(t *testing.T) {
	if raceEnabled {
		t.Skip("a statistical simulation: run without -race (scripts/test does)")
	}
}

// TestAAFalseWinnersReduced: identical arms, looked at every 100 units up to
// 20,000 units, with fixed seeds. The claim is a false-winner rate of at most
// alpha = 5%; each bound sits near the rate measured here (adaptive 2 in
// 1,000, explore 1 in 1,000, uniform 12 in 400, fast_learning with three arms
// 0 in 400), about two binomial standard errors above it and never above
// alpha, so a change that makes the test looser shows. The broken variants
// fail it: the old posterior rule declares in 57–65% of these runs; the
// inverse-propensity test without the predictable variance in 9.2%
// (adaptive, 400 runs); each arm's variance taken from its own units alone,
// without the pooled floor, in 1.7% of the adaptive runs and 2.2% of the
// ε-greedy ones (uniform 3.5%). The per-pair level without the Bonferroni
// division is caught by TestSimultaneousCoverageAA.
func TestAAFalseWinnersReduced(t *testing.T) {
	statistical(t)
	for _, c := range []struct {
		strategy string
		k, runs  int
		max      float64
	}{{"adaptive", 2, 1000, 0.005}, {"explore", 2, 1000, 0.003}, {"uniform", 2, 400, 0.045}, {"fast_learning", 3, 400, 0.01}} {
		r, err := RunSimulation(decisionConfig(c.strategy, equalRates(c.k, 0.1), 20000, c.runs, 11), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s, %d arms: declared %.4f ± %.4f", c.strategy, c.k, r.DeclaredRate, binomSE(r.DeclaredRate, c.runs))
		if r.DeclaredRate > c.max {
			t.Errorf("%s with %d identical arms declared a winner in %.2f%% of runs (bound %.1f%%, alpha 5%%)", c.strategy, c.k, 100*r.DeclaredRate, 100*c.max)
		}
	}
}

// TestWrongWinnersUnderRealisticLifts: true relative lifts drawn from N(0, 3%)
// (most small, either sign), 400 runs of 20,000 units. What the anytime-valid
// test promises is a per-run bound: a winner in the wrong direction in at
// most alpha/2 of runs; measured here 0 of 400 (adaptive) and 0 (uniform),
// 3 and 0 before each arm's variance had the pooled floor, so at most 2 of
// 400 are allowed. (This count does not tell the floor's absence: the
// A/A test above does.)
// Under the old posterior rule about a quarter of all runs declared the
// worse arm. The share among declared winners that issue 11 asked to keep
// at 5% is logged, not asserted: it is not met at this horizon (6–33% over
// 1,000 runs, docs/decisions.md), and an earlier version of this test that
// asserted it passed only because its seed gave 0 wrong of 8 declared.
func TestWrongWinnersUnderRealisticLifts(t *testing.T) {
	statistical(t)
	const runs = 400
	for _, s := range []string{"adaptive", "uniform"} {
		cfg := decisionConfig(s, []float64{0.1, 0.1}, 20000, runs, 5)
		cfg.LiftSD = 0.03
		r, err := RunSimulation(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		wrong := math.Round(runs * r.DeclaredRate * r.WrongWinnerShare)
		t.Logf("%s: declared %.3f, wrong among declared %.3f, wrong in %.0f of %d runs", s, r.DeclaredRate, r.WrongWinnerShare, wrong, runs)
		if wrong > 2 {
			t.Errorf("%s: a worse arm declared the winner in %.0f of %d runs, want at most 2", s, wrong, runs)
		}
	}
}

// TestPriorLiftSDKeepsWinnersRight: with true relative lifts drawn from
// N(0, 3%) and the decision also asking the posterior under a N(0, 3%) prior
// on lifts (settings.prior_lift_sd = 0.03, the truth of this simulation),
// the declared winners are right as often as the threshold says. Measured
// (uniform, 20,000 units, a look every 100, 2,000 runs, seed 1): 33 runs
// declared, 1 of them the worse arm (3.0%); without the prior 55 declared,
// 5 wrong (9.1%, above the 5% the issue asks for). Ignoring the setting in
// the engine makes the test fail. The counts are small: the bound is the
// issue's 5%, not a value tuned to them.
func TestPriorLiftSDKeepsWinnersRight(t *testing.T) {
	statistical(t)
	const runs = 2000
	cfg := decisionConfig("uniform", []float64{0.1, 0.1}, 20000, runs, 1)
	cfg.LiftSD = 0.03
	cfg.Settings.PriorLiftSD = 0.03
	r, err := RunSimulation(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	declared := math.Round(runs * r.DeclaredRate)
	t.Logf("prior 0.03: declared in %.0f of %d runs, %.1f%% of them wrong", declared, runs, 100*r.WrongWinnerShare)
	if r.WrongWinnerShare > 0.05 || declared < 20 {
		t.Errorf("prior 0.03: %.0f declared, %.1f%% wrong; want at least 20 declared and at most 5%% wrong", declared, 100*r.WrongWinnerShare)
	}
}

// TestLearnedPriorKeepsWinnersRight: the same, with no prior set, but one
// learned (engine.LearnLiftPrior) from 1,000 earlier runs of the same
// design, as the server learns it from a workspace's completed
// experiments. Measured (uniform, 20,000 units, a look every 100, 10,000
// runs, seed 2): a spread of 2.8% learned (the truth is 3%), 197 runs
// declared, 6 of them the worse arm (3.0%). When the learned prior does
// not reach the decision (tried), the same runs declare 392 winners, 9.9%
// of them wrong, and the test fails. The bound is the 5%.
func TestLearnedPriorKeepsWinnersRight(t *testing.T) {
	statistical(t)
	const runs = 10000
	cfg := decisionConfig("uniform", []float64{0.1, 0.1}, 20000, runs, 2)
	cfg.LiftSD = 0.03
	cfg.LearnPrior = 1000
	r, err := RunSimulation(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	declared := math.Round(runs * r.DeclaredRate)
	t.Logf("learned %.4f from %d comparisons: declared in %.0f of %d runs, %.1f%% of them wrong", r.LearnedPriorSD, r.LearnedFrom, declared, runs, 100*r.WrongWinnerShare)
	if r.LearnedFrom != 1000 || r.WrongWinnerShare > 0.05 || declared < 100 {
		t.Errorf("learned prior: %.0f declared, %.1f%% wrong; want at least 100 declared and at most 5%% wrong", declared, 100*r.WrongWinnerShare)
	}
}

// TestNoDifferenceHoldsUnderMonitoring: no_difference is a claim too, made
// at a look every 100 units up to 20,000 under adaptive allocation. With a
// margin of 30% (min_effect 0.3), 400 runs each (seed 3), measured: two
// identical arms at 10% end in no_difference in 99.5% of runs (uniform) and
// 79.5% (adaptive); 10% against 13.5%, whose difference is the margin of
// their mean (it is not within it), in 0% and 0.5% (the claim allows
// alpha/2 = 2.5%). The bounds are about three standard errors from the
// measured shares. Doubling the margin in the engine makes the second case
// end in no_difference in 49% (uniform) and 51.5% (adaptive) of runs, and
// the test fails.
func TestNoDifferenceHoldsUnderMonitoring(t *testing.T) {
	statistical(t)
	const runs = 400
	for _, c := range []struct {
		strategy        string
		rates           []float64
		atLeast, atMost float64
	}{
		{"uniform", []float64{0.1, 0.1}, 0.97, 1},
		{"adaptive", []float64{0.1, 0.1}, 0.73, 1},
		{"uniform", []float64{0.1, 0.135}, 0, 0.02},
		{"adaptive", []float64{0.1, 0.135}, 0, 0.02},
	} {
		cfg := decisionConfig(c.strategy, c.rates, 20000, runs, 3)
		cfg.Settings.MinEffect = 0.3
		r, err := RunSimulation(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s %v: no_difference %.4f ± %.4f, a winner %.4f", c.strategy, c.rates, r.NoDifferenceRate, binomSE(r.NoDifferenceRate, runs), r.DeclaredRate)
		if r.NoDifferenceRate < c.atLeast || r.NoDifferenceRate > c.atMost {
			t.Errorf("%s %v: no_difference in %.2f%% of runs, want %.0f%% to %.0f%%", c.strategy, c.rates, 100*r.NoDifferenceRate, 100*c.atLeast, 100*c.atMost)
		}
	}
}

// zTestUnits is the total sample of a fixed-horizon two-sided z-test at
// level alpha with the given power, equal allocation.
func zTestUnits(p1, p2, alpha, power float64) float64 {
	za, zb := stats.NormalQuantile(1-alpha/2), stats.NormalQuantile(power)
	perArm := (za + zb) * (za + zb) * (p1*(1-p1) + p2*(1-p2)) / ((p2 - p1) * (p2 - p1))
	return 2 * math.Ceil(perArm)
}

// TestReportDecisions produces the tables of docs/decisions.md. The whole
// report takes hours on two shared cores, so it comes in parts that can run
// as separate processes: SAMPLIT_REPORT_PART = aa (A/A), power, lifts, floor,
// or empty for all; SAMPLIT_REPORT_STRATEGIES narrows the A/A part to a
// comma-separated list and SAMPLIT_REPORT_ARMS its numbers of arms. Rows are printed as they come; the seeds are fixed,
// so a row computed twice is the same row.
func TestReportDecisions(t *testing.T) {
	reportOnly(t)
	const runs = 1000
	strategies := []string{"adaptive", "fast_learning", "explore", "ucb1", "uniform", "sequential"}
	part := os.Getenv("SAMPLIT_REPORT_PART")
	want := func(p string) bool { return part == "" || part == p }
	out := func(format string, args ...any) { fmt.Printf(format, args...) }
	if want("aa") {
		aaStrategies := strategies
		if v := os.Getenv("SAMPLIT_REPORT_STRATEGIES"); v != "" {
			aaStrategies = strings.Split(v, ",")
		}
		out("\n### A/A: identical arms at 10%%\n\n| strategy | arms | horizon | runs | declared ± s.e. | no_difference |\n|---|---|---|---|---|---|\n")
		arms := []int{2, 3, 5}
		if v := os.Getenv("SAMPLIT_REPORT_ARMS"); v != "" {
			arms = nil
			for _, f := range strings.Split(v, ",") {
				k, err := strconv.Atoi(f)
				if err != nil {
					t.Fatal(err)
				}
				arms = append(arms, k)
			}
		}
		for _, s := range aaStrategies {
			for _, k := range arms {
				for _, h := range []int{20000, 100000} {
					// With three or five arms the 100,000-unit runs cost most and
					// showed nothing new for the adaptive strategies (0 of 1,000);
					// the fixed-weight ones, where the test is closest to exact,
					// keep them.
					if h > 20000 && k > 2 && s != "uniform" && s != "adaptive" && s != "fast_learning" {
						continue
					}
					r, err := RunSimulation(decisionConfig(s, equalRates(k, 0.1), h, runs, 1), nil)
					if err != nil {
						t.Fatal(err)
					}
					out("| %s | %d | %d | %d | %.4f ± %.4f | %.4f |\n", s, k, h, runs, r.DeclaredRate, binomSE(r.DeclaredRate, runs), r.NoDifferenceRate)
				}
			}
		}
	}
	if want("power") {
		out("\n### Power: one real lift, horizon 20,000, %d runs each (stop at the decision)\n\n", runs)
		out("| rates | strategy | declared (power) | correct | median units to decision | z-test at 80%% power needs |\n|---|---|---|---|---|---|\n")
		for _, rates := range [][]float64{{0.10, 0.12}, {0.10, 0.11}} {
			z := zTestUnits(rates[0], rates[1], 0.05, 0.8)
			for _, s := range strategies {
				cfg := decisionConfig(s, rates, 20000, runs, 2)
				cfg.StopAtDecision = true
				r, err := RunSimulation(cfg, nil)
				if err != nil {
					t.Fatal(err)
				}
				med := "–"
				if r.UnitsToDecision != nil {
					med = fmt.Sprintf("%.0f", r.UnitsToDecisionMedian)
				}
				out("| %v | %s | %.3f | %.3f | %s | %.0f |\n", rates, s, r.DeclaredRate, r.CorrectWinnerRate, med, z)
			}
		}
	}
	if want("lifts") {
		out("\n### Realistic lifts: N(0, 3%%) relative to 10%%, two arms, horizon 20,000, %d runs\n\n| strategy | declared | wrong among declared |\n|---|---|---|\n", runs)
		for _, s := range strategies {
			cfg := decisionConfig(s, []float64{0.1, 0.1}, 20000, runs, 3)
			cfg.LiftSD = 0.03
			r, err := RunSimulation(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			out("| %s | %.3f | %.3f |\n", s, r.DeclaredRate, r.WrongWinnerShare)
		}
	}
	if want("floor") {
		out("\n### The weight floor: power and regret of adaptive at 0.10 vs 0.12, horizon 20,000, %d runs\n\n| weight floor | declared (power) | regret ± s.e. |\n|---|---|---|\n", runs)
		for _, f := range []float64{0, 0.01, 0.05} {
			cfg := decisionConfig("adaptive", []float64{0.10, 0.12}, 20000, runs, 4)
			cfg.Settings.WeightFloor = f
			r, err := RunSimulation(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			out("| %g | %.3f | %.1f ± %.1f |\n", f, r.DeclaredRate, r.Regret, r.RegretSE)
		}
	}
}

// TestReportFloorRegret: Chapelle & Li (K = 10, 0.5 vs 0.4, T = 10⁶) with the
// default weight floor, next to the table without it in docs/engine.md.
func TestReportFloorRegret(t *testing.T) {
	reportOnly(t)
	rates := make([]float64, 10)
	rates[0] = 0.5
	for i := 1; i < 10; i++ {
		rates[i] = 0.4
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| weight floor | regret at 10⁶ ± s.e. |\n|---|---|\n")
	for _, f := range []float64{0, 0.01} {
		r, err := RunSimulation(SimConfig{Rates: rates, Strategy: "adaptive", Horizon: 1_000_000, Runs: 20, Seed: 2011, Batch: 1,
			Settings: engine.Settings{MinSamples: 0, WeightFloor: f}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "| %g | %.0f ± %.0f |\n", f, r.Regret, r.RegretSE)
	}
	t.Log(b.String())
}
