package engine

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestApportionFollowsWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	w := []float64{0.5, 0.3, 0.2}
	for _, n := range []int{1, 7, 1000} {
		got := make([]int, len(w))
		for _, i := range Apportion(r, w, n) {
			got[i]++
		}
		for i := range w {
			if want := w[i] * float64(n); math.Abs(float64(got[i])-want) >= 1 {
				t.Errorf("n=%d arm %d: %d, want %.1f ± 1", n, i, got[i], want)
			}
		}
	}
}

func TestGuardrailProbability(t *testing.T) {
	for _, tt := range []struct {
		name           string
		events, trials int64
		low, high      float64
	}{
		{"no data is no evidence", 0, 0, 0, 0.5},
		{"far above the limit", 15, 1000, 0.999, 1},
		{"below the limit", 2, 1000, 0, 0.2},
	} {
		if p := GuardrailProbability(tt.events, tt.trials, 0.005); p < tt.low || p > tt.high {
			t.Errorf("%s: %v not in [%v, %v]", tt.name, p, tt.low, tt.high)
		}
	}
}

func TestDiscountSlotsHalveEveryHalfLife(t *testing.T) {
	now := time.Date(2026, 1, 8, 0, 0, 0, 0, time.UTC)
	slots := []CampaignSlot{{Start: now.Add(-7 * 24 * time.Hour), Trials: 100, Successes: 10}, {Start: now, Trials: 10, Successes: 1}}
	got := DiscountSlots(slots, now, 7*24*time.Hour)
	if math.Abs(got.Trials-60) > 1e-9 || math.Abs(got.Successes-6) > 1e-9 {
		t.Errorf("%+v, want 60 trials and 6 successes", got)
	}
	if g := DiscountGamma(7 * 24 * time.Hour); math.Abs(math.Pow(g, 168)-0.5) > 1e-12 {
		t.Errorf("gamma %v", g)
	}
}

func TestSplitAllocation(t *testing.T) {
	in := CampaignInput{Metric: Binary, Mode: CampaignSplit, TestSends: 10, Sent: 7,
		Arms: []CampaignArm{{Key: "a", Trials: 4, Successes: 0}, {Key: "b", Trials: 3, Successes: 3}}}
	a, err := AnalyzeCampaign(in)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]int{}
	for _, i := range a.Allocate(rand.New(rand.NewPCG(1, 1)), 8) {
		got[i]++
	}
	// Three test sends continue the round robin (b, a, b), then five go to the leader b.
	if got[0] != 1 || got[1] != 7 {
		t.Errorf("allocation %v", got)
	}
}

// TestCampaignWinnerNeedsTestedSends: however clear the posterior, a
// campaign none of whose sends was drawn at random declares no winner, and
// says why; with the same counts drawn evenly at random it does.
func TestCampaignWinnerNeedsTestedSends(t *testing.T) {
	in := CampaignInput{Metric: Binary, Mode: CampaignWaves, Settings: Settings{MinSamples: 100}, Arms: []CampaignArm{
		{Key: "a", Trials: 5000, Successes: 1000}, {Key: "b", Trials: 5000, Successes: 1300}}}
	an, err := AnalyzeCampaign(in)
	if err != nil {
		t.Fatal(err)
	}
	if an.Winner != nil || !strings.Contains(an.Decision.Reason, "drawn at random") {
		t.Errorf("untested: winner %v, decision %+v", an.Winner, an.Decision)
	}
	for i := range in.Arms {
		a := &in.Arms[i]
		// Every one of the 10,000 sends had probability ½ of either.
		n, c := float64(a.Trials), float64(a.Successes)
		a.Test = Arm{Units: a.Trials, Sum: c, SumSquares: c, InvP: 2 * n, InvP2: 4 * n, YInvP: 2 * c, YInvP2: 4 * c, Y2InvP2: 4 * c,
			Expected: 5000, ExpectedSquares: 2500, InvExpected: 20000}
	}
	if an, err = AnalyzeCampaign(in); err != nil {
		t.Fatal(err)
	}
	if an.Winner == nil || *an.Winner != "b" || an.Decision.State != StateWinnerFound {
		t.Errorf("tested: winner %v, decision %+v", an.Winner, an.Decision)
	}
}
