package offline

// The tests in this file produce the numbers of docs/engine.md. They are heavy and
// run only when SAMPLIT_REPORT=1, for example:
//
//	SAMPLIT_REPORT=1 go test ./internal/offline -run TestReportRegret -timeout 3h -v
//
// Each writes a Markdown table to the test log.

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/samplit/samplit/internal/engine"
)

func reportOnly(t *testing.T) {
	if os.Getenv("SAMPLIT_REPORT") != "1" {
		t.Skip("set SAMPLIT_REPORT=1 to produce the report numbers")
	}
}

// klBernoulli is KL(Ber(p) ‖ Ber(q)).
func klBernoulli(p, q float64) float64 {
	return p*math.Log(p/q) + (1-p)*math.Log((1-p)/(1-q))
}

// TestReportRegret: Chapelle & Li (2011), K = 10, best arm 0.5, the others 0.5 − ε.
func TestReportRegret(t *testing.T) {
	reportOnly(t)
	runs := 100
	horizon := 1_000_000
	cps := []int{1000, 3162, 10000, 31623, 100000, 316228, 1000000}
	var b strings.Builder
	for _, eps := range []float64{0.1, 0.02} {
		rates := make([]float64, 10)
		rates[0] = 0.5
		for i := 1; i < 10; i++ {
			rates[i] = 0.5 - eps
		}
		lr := 9 * eps / klBernoulli(0.5-eps, 0.5)
		fmt.Fprintf(&b, "\n### ε = %g (Lai–Robbins constant Σ Δ/KL = %.1f)\n\n", eps, lr)
		fmt.Fprintf(&b, "| T | Thompson regret ± s.e. | UCB1 regret ± s.e. |\n|---|---|---|\n")
		res := map[string]SimResult{}
		for _, name := range []string{"adaptive", "ucb1"} {
			r, err := RunSimulation(SimConfig{Rates: rates, Strategy: name, Horizon: horizon, Runs: runs, Seed: 2011, Batch: 1,
				Settings: engine.Settings{MinSamples: 0}, Checkpoints: cps}, nil)
			if err != nil {
				t.Fatal(err)
			}
			res[name] = r
		}
		for i, c := range cps {
			th, ub := res["adaptive"].CheckpointRegret[i], res["ucb1"].CheckpointRegret[i]
			fmt.Fprintf(&b, "| %d | %.1f ± %.1f | %.1f ± %.1f |\n", c, th[0], th[1], ub[0], ub[1])
		}
		for _, name := range []string{"adaptive", "ucb1"} {
			// Least-squares slope of mean regret on ln T over the last four checkpoints
			// (10⁴·⁵ … 10⁶), and the slope between the last two.
			cr := res[name].CheckpointRegret
			var xs, ys []float64
			for i := 3; i < len(cps); i++ {
				xs = append(xs, math.Log(float64(cps[i])))
				ys = append(ys, cr[i][0])
			}
			n := float64(len(xs))
			var sx, sy, sxx, sxy float64
			for i := range xs {
				sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
			}
			slope := (n*sxy - sx*sy) / (n*sxx - sx*sx)
			last := (cr[len(cr)-1][0] - cr[len(cr)-3][0]) / (math.Log(float64(cps[len(cps)-1])) - math.Log(float64(cps[len(cps)-3])))
			fmt.Fprintf(&b, "\n%s: slope per ln T over 10^4.5…10^6 = %.1f; over 10^5…10^6 = %.1f; Lai–Robbins %.1f (ratio %.2f)\n",
				name, slope, last, lr, last/lr)
		}
	}
	t.Log(b.String())
}

// TestReportFastLearning: units to a correct winner_found, fast_learning vs uniform,
// with the same Bayesian decision rule checked every 100 units.
func TestReportFastLearning(t *testing.T) {
	reportOnly(t)
	var b strings.Builder
	fmt.Fprintf(&b, "| rates | strategy | declared | correct winner | units to decision (mean ± s.e.) |\n|---|---|---|---|---|\n")
	for _, rates := range [][]float64{{0.10, 0.13, 0.11}, {0.10, 0.12, 0.11}, {0.05, 0.10, 0.13, 0.11, 0.06}} {
		for _, name := range []string{"fast_learning", "uniform", "adaptive"} {
			r, err := RunSimulation(SimConfig{Rates: rates, Strategy: name, Horizon: 100_000, Runs: 500, Seed: 16, Batch: 1, Look: 100,
				Settings: engine.Settings{MinSamples: 100}, StopAtDecision: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			u := math.NaN()
			if r.UnitsToDecision != nil {
				u = *r.UnitsToDecision
			}
			fmt.Fprintf(&b, "| %v | %s | %.3f | %.3f | %.0f ± %.0f |\n", rates, name, r.DeclaredRate, r.CorrectWinnerRate, u, r.UnitsToDecisionSE)
		}
	}
	t.Log(b.String())
}
