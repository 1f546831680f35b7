package optimize

import (
	"testing"

	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/store"
)

// TestDecisionSettingsReachTheEngine: a funnel's and a campaign's alpha and
// min_effect are their tests' level and no_difference margin; zero (stored
// before the settings existed) means the engine's defaults.
func TestDecisionSettingsReachTheEngine(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  engine.Settings
		want [2]float64
	}{
		{"funnel", funnelSettings(store.FunnelSettings{Alpha: 0.01, MinEffect: 0.3}), [2]float64{0.01, 0.3}},
		{"funnel stored before", funnelSettings(store.FunnelSettings{}), [2]float64{engine.DefaultAlpha, engine.DefaultMinEffect}},
		{"campaign", CampaignEngineSettings(store.CampaignSettings{Alpha: 0.02, MinEffect: 0.2}), [2]float64{0.02, 0.2}},
		{"campaign stored before", CampaignEngineSettings(store.CampaignSettings{}), [2]float64{engine.DefaultAlpha, engine.DefaultMinEffect}},
	} {
		if got := [2]float64{tc.got.Alpha, tc.got.MinEffect}; got != tc.want {
			t.Errorf("%s: alpha, min_effect = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestPriorLiftSDReachesTheEngine: an experiment's prior on lifts is its
// decision rule's.
func TestPriorLiftSDReachesTheEngine(t *testing.T) {
	if got := engineSettings(store.Settings{PriorLiftSD: 0.03}).PriorLiftSD; got != 0.03 {
		t.Errorf("prior_lift_sd %v, want 0.03", got)
	}
}
