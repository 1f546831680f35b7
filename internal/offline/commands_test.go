package offline

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/samplit/samplit/internal/engine"
)

func run(f func([]string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := f(args, &out, &errb)
	return code, out.String(), errb.String()
}

func analyze(args []string, o, e *bytes.Buffer) int  { return Analyze(args, o, e) }
func simulate(args []string, o, e *bytes.Buffer) int { return Simulate(args, o, e) }

func TestAnalyzeJSON(t *testing.T) {
	code, out, errs := run(analyze, "--metric", "binary", "--variant", "control:5000:500", "--variant", "green:5000:625", "--control", "control", "--json")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	vs := doc["variants"].([]any)
	var keys []string
	for k := range vs[0].(map[string]any) {
		keys = append(keys, k)
	}
	want := []string{"ci_high", "ci_low", "conversions", "diff_ci_high", "diff_ci_low", "expected_loss", "key", "lift", "lift_ci_high", "lift_ci_low", "mean", "p_best", "p_value", "sum", "units", "weight"}
	if diff := cmp.Diff(want, sorted(keys)); diff != "" {
		t.Errorf("variant fields (-want +got):\n%s", diff)
	}
	if doc["winner"] != "green" || doc["decision"].(map[string]any)["state"] != "winner_found" {
		t.Errorf("winner %v decision %v", doc["winner"], doc["decision"])
	}
	if g := vs[1].(map[string]any); g["lift"].(float64) != 0.25 || vs[0].(map[string]any)["lift"] != nil {
		t.Errorf("lifts: %v, %v", vs[0].(map[string]any)["lift"], g["lift"])
	}
}

func sorted(xs []string) []string {
	for i := range xs {
		for j := i + 1; j < len(xs); j++ {
			if xs[j] < xs[i] {
				xs[i], xs[j] = xs[j], xs[i]
			}
		}
	}
	return xs
}

func TestAnalyzeTableAndContinuous(t *testing.T) {
	code, out, _ := run(analyze, "--variant", "control:5000:500", "--variant", "green:5000:625")
	if code != 0 || !strings.Contains(out, "green") || !strings.Contains(out, "decision: winner_found: green beats control: +25.0% [") {
		t.Errorf("exit %d, table:\n%s", code, out)
	}
	code, out, errs := run(analyze, "--metric", "continuous", "--variant", "a:100:1000:12000", "--variant", "b:100:1100:14000", "--json")
	if code != 0 || !strings.Contains(out, `"metric": "continuous"`) {
		t.Errorf("continuous: exit %d %s %s", code, out, errs)
	}
}

func TestAnalyzeBadInput(t *testing.T) {
	cases := map[string][]string{
		"negative units":    {"--variant", "a:-1:0", "--variant", "b:10:1"},
		"conv above units":  {"--variant", "a:10:11", "--variant", "b:10:1"},
		"one variant":       {"--variant", "a:10:1"},
		"unparseable":       {"--variant", "a:ten:1", "--variant", "b:10:1"},
		"wrong field count": {"--variant", "a:10", "--variant", "b:10:1"},
		"bad metric":        {"--metric", "ratio", "--variant", "a:10:1", "--variant", "b:10:1"},
		"unknown control":   {"--variant", "a:10:1", "--variant", "b:10:1", "--control", "c"},
		"duplicate":         {"--variant", "a:10:1", "--variant", "a:10:1"},
		"unknown flag":      {"--frobnicate"},
		"bad sumsq":         {"--metric", "continuous", "--variant", "a:10:100:5", "--variant", "b:10:1:1"},
	}
	for name, args := range cases {
		code, out, errs := run(analyze, args...)
		if code != 2 || out != "" || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "samplit analyze: ") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", name, code, out, errs)
		}
	}
}

func TestSimulateDeterministicJSON(t *testing.T) {
	args := []string{"--rates", "0.10,0.12,0.11", "--strategy", "adaptive", "--horizon", "2000", "--runs", "8", "--seed", "7", "--json"}
	code, out1, errs := run(simulate, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// Different parallelism must not change the result.
	res, err := RunSimulation(SimConfig{Rates: []float64{0.10, 0.12, 0.11}, Strategy: "adaptive", Horizon: 2000, Runs: 8, Seed: 7, Batch: 100, Look: 100, Workers: 1,
		Settings: engine.Settings{MinSamples: 100, WeightFloor: engine.DefaultWeightFloorFor("adaptive")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if diff := cmp.Diff(out1, string(b)+"\n"); diff != "" {
		t.Errorf("one worker vs many (-cmd +1 worker):\n%s", diff)
	}
	var doc map[string]any
	json.Unmarshal([]byte(out1), &doc)
	var keys []string
	for k := range doc {
		keys = append(keys, k)
	}
	want := []string{"best_arm_share", "correct_winner_rate", "declared_rate", "horizon", "leader_correct_rate", "no_difference_rate",
		"regret_mean", "regret_se", "runs", "strategy", "units_to_decision_mean", "wrong_winner_share"}
	if diff := cmp.Diff(want, sorted(keys)); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	for _, bad := range [][]string{{"--rates", "0.1"}, {"--rates", "0.1,1.5"}, {"--rates", "0.1,0.2", "--strategy", "nope"}, {"--rates", "0.1,0.2", "--runs", "0"}, {}} {
		if code, _, errs := run(simulate, bad...); code != 2 || strings.Count(errs, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", bad, code, errs)
		}
	}
}
