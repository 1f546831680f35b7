package dashboard

import (
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/samplit/samplit/internal/store"
)

// settingRE reads one line of the decision settings: its key and its value,
// without the muted hint that follows.
var settingRE = regexp.MustCompile(`<dd data-setting="([a-z0-9_]+)">([^<]*)`)

// shownSettings returns the decision settings a page shows, by key.
func shownSettings(body string) map[string]string {
	out := map[string]string{}
	for _, m := range settingRE.FindAllStringSubmatch(body, -1) {
		out[m[1]] = strings.TrimSpace(html.UnescapeString(m[2]))
	}
	return out
}

// TestDecisionSettingsShown: the experiment page shows the decision
// settings in effect, those chosen at creation and the defaults of the
// others, in the words of a person reading them (a margin of ±10%, a prior
// N(0, 5%)).
func TestDecisionSettingsShown(t *testing.T) {
	e := newEnv(t)
	variants := []map[string]any{{"key": "a"}, {"key": "b"}}
	var strict, plain struct{ ID string }
	e.api("POST", "/v1/experiments", e.admin, map[string]any{"key": "strict", "variants": variants,
		"settings": map[string]any{"alpha": 0.01, "min_effect": 0.1, "prior_lift_sd": 0.05}}, 201, &strict)
	e.api("POST", "/v1/experiments", e.admin, map[string]any{"key": "plain", "variants": variants}, 201, &plain)
	var unlearned struct{ ID string }
	e.api("POST", "/v1/experiments", e.admin, map[string]any{"key": "unlearned", "variants": variants,
		"settings": map[string]any{"learn_prior": false}}, 201, &unlearned)
	b := e.browser()
	b.signIn(e.admin)
	defaults := map[string]string{
		"strategy": "adaptive", "alpha": "0.05 (95% confidence)", "min_effect": "±5%", "prior_lift_sd": "learned",
		"decision_threshold": "95%", "loss_threshold": "0.001", "min_samples": "100", "weight_floor": "1%",
		"auto_complete": "no", "control_share": "none", "tau2": "0.001",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range defaults {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name, id string
		want     map[string]string
	}{
		{"chosen at creation", strict.ID, with("alpha", "0.01 (99% confidence)", "min_effect", "±10%", "prior_lift_sd", "N(0, 5%)")},
		{"defaults", plain.ID, defaults},
		{"learning off", unlearned.ID, with("prior_lift_sd", "none")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := b.get("/experiments/" + tc.id)
			if p.Status != 200 {
				t.Fatalf("status %d\n%s", p.Status, p.Body)
			}
			if diff := cmp.Diff(tc.want, shownSettings(p.Body)); diff != "" {
				t.Errorf("decision settings mismatch (-want +got):\n%s", diff)
			}
			// The results say which prior is in effect: the set one, and
			// none learned in a workspace without completed experiments.
			set := tc.id == strict.ID
			if shown := strings.Contains(p.Body, `id="prior"`); shown != set || (set && !strings.Contains(p.Body, "set for this experiment: N(0, 5%)")) {
				t.Errorf("prior in the results shown %v, want %v", shown, set)
			}
		})
	}
}

// TestDecisionSettingsInEffect: what decisionSettings shows is what the
// engine applies, including the zeros of experiments stored before alpha
// and min_effect were (the engine's defaults), and the settings of one
// strategy only where they apply or were set.
func TestDecisionSettingsInEffect(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	for _, tc := range []struct {
		name string
		e    store.Experiment
		want map[string]string
	}{
		{
			name: "zeros stored before the settings existed",
			e:    store.Experiment{Strategy: "adaptive", Settings: store.Settings{MinSamples: 100, DecisionThreshold: 0.95, LossThreshold: 0.001}},
			want: map[string]string{"alpha": "0.05 (95% confidence)", "min_effect": "±5%", "prior_lift_sd": "learned", "weight_floor": "0%"},
		},
		{
			name: "typed precisely",
			e: store.Experiment{Strategy: "explore", Settings: store.Settings{Alpha: 0.001, MinEffect: 0.0125, PriorLiftSD: 0.03,
				DecisionThreshold: 0.9999, WeightFloor: 0.05, ControlShare: f(0.5), Tau2: f(0.01), Gamma: f(0.99), AutoComplete: true}},
			want: map[string]string{"alpha": "0.001 (99.9% confidence)", "min_effect": "±1.25%", "prior_lift_sd": "N(0, 3%)",
				"decision_threshold": "99.99%", "weight_floor": "5%", "control_share": "50%", "tau2": "0.01",
				"epsilon": "5", "gamma": "0.99 per hour", "auto_complete": "yes"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			for _, s := range decisionSettings(tc.e) {
				if _, ok := tc.want[s.Key]; ok {
					got[s.Key] = s.Value
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("settings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCampaignAndFunnelDecisionSettingsShown: a campaign's and a funnel's
// pages show the settings of their winner and no_difference rule, which
// only the API sets, in effect (the campaign's and the funnel's own
// defaults for the others).
func TestCampaignAndFunnelDecisionSettingsShown(t *testing.T) {
	e := newEnv(t)
	var c, f struct{ ID string }
	e.api("POST", "/v1/campaigns", e.admin, map[string]any{
		"key": "subjects", "channel": "email", "objective": "click",
		"variants": []map[string]any{{"key": "s1", "payload": map[string]any{"subject": "Hello"}}, {"key": "s2", "payload": map[string]any{"subject": "Hi"}}},
		"settings": map[string]any{"alpha": 0.02, "min_effect": 0.2, "prior_lift_sd": 0.04},
	}, 201, &c)
	var plain struct{ ID string }
	e.api("POST", "/v1/campaigns", e.admin, map[string]any{
		"key": "plain", "channel": "email", "objective": "click",
		"variants": []map[string]any{{"key": "s1", "payload": map[string]any{"subject": "Hello"}}, {"key": "s2", "payload": map[string]any{"subject": "Hi"}}},
	}, 201, &plain)
	e.api("POST", "/v1/funnels", e.admin, map[string]any{
		"key": "signup", "settings": map[string]any{"min_effect": 0.3},
		"steps": []map[string]any{{"key": "landing", "variants": []map[string]any{{"key": "a"}, {"key": "b"}}}, {"key": "done"}},
	}, 201, &f)
	b := e.browser()
	b.signIn(e.admin)
	for _, tc := range []struct {
		path string
		want map[string]string
	}{
		{"/campaigns/" + c.ID, map[string]string{"alpha": "0.02 (98% confidence)", "min_effect": "±20%", "prior_lift_sd": "N(0, 4%)",
			"decision_threshold": "95%", "loss_threshold": "0.001", "min_samples": "100", "weight_floor": "1%"}},
		// Campaigns learn a prior from the workspace's completed ones by
		// default; funnels do not.
		{"/campaigns/" + plain.ID, map[string]string{"alpha": "0.05 (95% confidence)", "min_effect": "±5%", "prior_lift_sd": "learned",
			"decision_threshold": "95%", "loss_threshold": "0.001", "min_samples": "100", "weight_floor": "1%"}},
		{"/funnels/" + f.ID, map[string]string{"alpha": "0.05 (95% confidence)", "min_effect": "±30%", "prior_lift_sd": "none",
			"decision_threshold": "95%", "loss_threshold": "0.001", "min_samples": "100", "weight_floor": "1%"}},
	} {
		p := b.get(tc.path)
		if p.Status != 200 {
			t.Fatalf("%s: status %d", tc.path, p.Status)
		}
		if diff := cmp.Diff(tc.want, shownSettings(p.Body)); diff != "" {
			t.Errorf("%s: decision settings mismatch (-want +got):\n%s", tc.path, diff)
		}
	}
}
