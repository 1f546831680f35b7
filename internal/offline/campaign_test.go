package offline

import (
	"path/filepath"
	"testing"
	"time"
)

// The committed scenarios at a reduced size (the full runs are
// `samplit simulate --campaign FILE`, reported in docs/campaigns.md).
func loadScenario(t *testing.T, name string) CampaignScenario {
	t.Helper()
	sc, err := LoadCampaignScenario(filepath.Join("..", "..", "examples", "campaigns", name))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestCampaignWavesBeatSplit(t *testing.T) {
	sc := loadScenario(t, "email-subjects.json")
	sc.Audience = 40000
	res, err := RunCampaignSimulation(sc, 30, 1)
	if err != nil {
		t.Fatal(err)
	}
	waves, split := res[0], res[1]
	if waves.Rewards <= split.Rewards || waves.PickedBest < split.PickedBest {
		t.Errorf("waves %+v, split %+v", waves, split)
	}
}

func TestCampaignDiscountingMovesAwaySooner(t *testing.T) {
	sc := loadScenario(t, "push-drift.json")
	sc.Audience, sc.Calls = 20000, 168
	sc.Interval = Duration(2 * 3600e9)
	res, err := RunCampaignSimulation(sc, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	disc, plain := res[0], res[1]
	if disc.SwitchHours == nil || disc.NeverSwitched > plain.NeverSwitched || disc.Rewards <= plain.Rewards {
		t.Errorf("discounted %+v, undiscounted %+v", disc, plain)
	}
	if plain.SwitchHours != nil && *plain.SwitchHours < *disc.SwitchHours {
		t.Errorf("undiscounted switched sooner: %v < %v", *plain.SwitchHours, *disc.SwitchHours)
	}
}

func TestCampaignGuardrailStopsClickbait(t *testing.T) {
	// The full audience: calls of 5,000, so that a split's test gives each
	// variant the ~1,700 sends the anytime-valid guardrail needs to stop a
	// variant at 3× the limit (665 on average when checked every 100 sends;
	// checked once per call, and with late unsubscribes, it needs more).
	sc := loadScenario(t, "guardrail.json")
	res, err := RunCampaignSimulation(sc, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Stopped["clickbait"] < 0.999 || r.Sends["clickbait"] > 0.2*float64(sc.Audience) {
			t.Errorf("%s: %+v", r.Label, r)
		}
	}
}

// TestCampaignLateClicks is the scenario of issue 12: 4 subjects at 2, 2.5,
// 3 and 4% clicks, 10 waves of 2,000 an hour apart, each wave's clicks
// received just after the next wave is sent. Counting each send by the
// probability that its click has arrived, waves earn at least as much as
// split_then_winner and the best subject's share never collapses after a
// wave it led; counting the young sends as failures (raw_counts), it
// collapses in most runs and earns less. Full runs: docs/campaigns.md.
func TestCampaignLateClicks(t *testing.T) {
	statistical(t)
	sc := loadScenario(t, "late-clicks.json")
	// 400 runs: over 60 the split's standard error (10 clicks) exceeds
	// the difference (waves 716.6, split 718.5 on seed 1; over 400, 720.7
	// ± 1.7 against 706.2 ± 4.6).
	res, err := RunCampaignSimulation(sc, 400, 1)
	if err != nil {
		t.Fatal(err)
	}
	waves, split, rawWaves := res[0], res[1], res[2]
	for _, r := range res {
		t.Logf("%-22s clicks %.1f ± %.1f, collapses %d, best share %.2f", r.Label, r.Rewards, r.RewardsSE, r.Collapses, r.BestShare)
	}
	if waves.Rewards < split.Rewards || waves.Rewards < rawWaves.Rewards+3*rawWaves.RewardsSE {
		t.Errorf("waves %.1f, split %.1f, waves on raw counts %.1f", waves.Rewards, split.Rewards, rawWaves.Rewards)
	}
	if waves.Collapses != 0 || rawWaves.Collapses < 200 { // 0 and 281 measured
		t.Errorf("collapses: waves %d, on raw counts %d", waves.Collapses, rawWaves.Collapses)
	}
}

// TestCampaignLateClicks24h: the same campaign with clicks uniform over 24
// hours, reported as they happen. In the first waves an hour-old wave has
// shown about 4% of its clicks, and each subject has 0 to 3; under the
// uniform Beta(1, 1) prior one click made P(best), and the next wave's
// share, jump to 0.5–0.7, and the next few clicks away again: the best
// subject's share collapsed below 10% after it had led in 17 of 400 runs.
// The pooled prior shrinks toward the rate of all subjects: with a
// coefficient of variation of ½ it left 4 of 400 (this test then fails),
// with engine.CampaignPriorCV (¼) none, for 1.4% of the clicks (645.5
// against 654.6; docs/campaigns.md).
func TestCampaignLateClicks24h(t *testing.T) {
	statistical(t)
	sc := loadScenario(t, "late-clicks-24h.json")
	sc.Strategies = sc.Strategies[:2] // waves and split, with the delay model
	res, err := RunCampaignSimulation(sc, 400, 1)
	if err != nil {
		t.Fatal(err)
	}
	waves, split := res[0], res[1]
	for _, r := range res {
		t.Logf("%-22s clicks %.1f ± %.1f, collapses %d, best share %.2f", r.Label, r.Rewards, r.RewardsSE, r.Collapses, r.BestShare)
	}
	if waves.Collapses != 0 {
		t.Errorf("waves collapsed in %d of 400 runs, want none (0 measured; 4 with a prior cv of ½, 17 without the pooled prior)", waves.Collapses)
	}
	if waves.Rewards < split.Rewards+3*split.RewardsSE || waves.Rewards < 640 {
		t.Errorf("waves %.1f ± %.1f clicks, split %.1f ± %.1f (waves measured 645.5, split 623.9)", waves.Rewards, waves.RewardsSE, split.Rewards, split.RewardsSE)
	}
}

// twoSubjects is a campaign of 100,000 sends in 100 hourly calls, opens
// within an hour on average, two subjects at the given open rates, sent in
// waves and as a 20% split (its second phase in the same calls).
func twoSubjects(a, b float64) CampaignScenario {
	return CampaignScenario{Name: "two-subjects", Audience: 100000, Calls: 100, Interval: Duration(time.Hour),
		RewardDelay: Duration(time.Hour), AttributionWindow: Duration(72 * time.Hour),
		Variants: []CampaignSimArm{{Key: "a", Rate: a}, {Key: "b", Rate: b}},
		Strategies: []CampaignSimPolicy{{Label: "waves", Mode: "waves"},
			{Label: "split", Mode: "split_then_winner", TestShare: 0.2, WavesAfterTest: true}}}
}

// TestCampaignWinnersAnytimeValid: a campaign's winner is declared by the
// experiments' rule, the anytime-valid tests on the propensities its sends
// were drawn with, so analysing it before every call does not make a
// winner of a subject no better than the other.
//
// Measured (seed 1, analysed before each of the 100 calls): two identical
// subjects at 20% opens, 300 runs: a winner in 5 runs with waves (1.7%)
// and 5 with the split (1.7%); on the posterior rule campaigns used before,
// in 64% and 54% (the same 300 runs). The bound, 4%, is about three standard errors
// above. At 20% against 24%, 100 runs: waves declared in 51%, the split
// (whose test is an even random split) in 100%, never the worse subject.
func TestCampaignWinnersAnytimeValid(t *testing.T) {
	statistical(t)
	aa, err := RunCampaignSimulation(twoSubjects(0.2, 0.2), 300, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range aa {
		t.Logf("A/A %s: a winner in %.1f%% of runs", r.Label, 100*r.Declared)
		if r.Declared > 0.04 {
			t.Errorf("A/A %s: a winner in %.1f%% of 300 runs, want at most 4%% (measured 1.7%%)", r.Label, 100*r.Declared)
		}
	}
	lift, err := RunCampaignSimulation(twoSubjects(0.2, 0.24), 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range lift {
		t.Logf("20%% vs 24%% %s: a winner in %.0f%% of runs, %.0f%% of them wrong", r.Label, 100*r.Declared, 100*r.WrongWinners)
		want := map[string]float64{"waves": 0.40, "split": 0.95}[r.Label]
		if r.Declared < want || r.WrongWinners > 0 {
			t.Errorf("20%% vs 24%% %s: a winner in %.0f%% of 100 runs (want at least %.0f%%), %.0f%% wrong (want none)",
				r.Label, 100*r.Declared, 100*want, 100*r.WrongWinners)
		}
	}
}

// marginSubjects is two subjects that click at rates a and b, sent to
// 400,000 recipients in 100 hourly calls by waves, with no_difference
// margins of 5% and 20%.
func marginSubjects(a, b float64) CampaignScenario {
	sc := twoSubjects(a, b)
	sc.Name, sc.Audience = "margin", 400000
	sc.Strategies = []CampaignSimPolicy{{Label: "margin 5%", Mode: "waves", MinEffect: new(0.05)},
		{Label: "margin 20%", Mode: "waves", MinEffect: new(0.2)}}
	return sc
}

// TestCampaignNoDifferenceMargin: min_effect is what lets equal subjects
// end, and the claim holds. Measured (seed 1, 100 runs each, analysed before
// each of the 100 calls): at 2% clicks each, no difference was found in 83%
// of runs within ±20% and in none within ±5% (a winner in 1%); at 2% and
// 2.5% (25% apart, just outside ±20% of their mean), never. The bound 70%
// is about three standard errors below 83%.
func TestCampaignNoDifferenceMargin(t *testing.T) {
	statistical(t)
	for _, tc := range []struct {
		rates           [2]float64
		atLeast, atMost map[string]float64 // no_difference shares by policy
	}{
		{[2]float64{0.02, 0.02}, map[string]float64{"margin 20%": 0.70}, map[string]float64{"margin 5%": 0.03}},
		{[2]float64{0.02, 0.025}, nil, map[string]float64{"margin 5%": 0.05, "margin 20%": 0.05}},
	} {
		res, err := RunCampaignSimulation(marginSubjects(tc.rates[0], tc.rates[1]), 100, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			t.Logf("%v clicks, %s: no difference in %.0f%% of runs, a winner in %.0f%%", tc.rates, r.Label, 100*r.NoDifference, 100*r.Declared)
			if lo, ok := tc.atLeast[r.Label]; ok && r.NoDifference < lo {
				t.Errorf("%v, %s: no difference in %.0f%% of runs, want at least %.0f%%", tc.rates, r.Label, 100*r.NoDifference, 100*lo)
			}
			if hi, ok := tc.atMost[r.Label]; ok && r.NoDifference > hi {
				t.Errorf("%v, %s: no difference in %.0f%% of runs, want at most %.0f%%", tc.rates, r.Label, 100*r.NoDifference, 100*hi)
			}
			if tc.rates[0] == tc.rates[1] && r.Declared > 0.05 {
				t.Errorf("%v, %s: a winner in %.0f%% of runs of equal subjects", tc.rates, r.Label, 100*r.Declared)
			}
		}
	}
}
