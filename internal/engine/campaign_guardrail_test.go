package engine

import (
	"math"
	"testing"
)

// TestGuardrailLogEReference: the e-value against an independent computation (mpmath
// at 40–60 digits: the closed form with the regularized incomplete beta for small
// counts, the integral of the likelihood ratio over the truncated prior for large
// ones), limit 0.005.
func TestGuardrailLogEReference(t *testing.T) {
	for _, tt := range []struct {
		events, trials int64
		want           float64
	}{
		{0, 1, -0.0105725410955},
		{1, 9, 1.01956681317},
		{1, 100, 0.0158235121529},
		{3, 200, 1.05459470921},
		{10, 1000, 1.12451762976},
		{5, 1000, -1.81463943903},
		{20, 2000, 2.77227029841},
		{0, 100_000, -8.14581811313},
		{600, 100_000, 5.69757385142},
		{1000, 1000, 4668.47661212},
		{5_000_000, 1_000_000_000, -9.41787670487},
		{5_100_000, 1_000_000_000, 989.741766826},
		{6_000_000, 1_000_000_000, 94423.669358},
	} {
		got := GuardrailLogE(tt.events, tt.trials, 0.005)
		if math.Abs(got-tt.want) > 1e-8*(1+math.Abs(tt.want)) {
			t.Errorf("log E(%d of %d) = %.12g, want %.12g", tt.events, tt.trials, got, tt.want)
		}
	}
}

func TestGuardrailTest(t *testing.T) {
	g := Guardrail{MaxRate: 0.005, Confidence: DefaultGuardrailConfidence}
	for _, tt := range []struct {
		name           string
		events, trials int64
		trips          bool
	}{
		{"no data is no evidence", 0, 0, false},
		{"one unsubscribe among the first 9 sends", 1, 9, false},
		{"two among the first 9 (e-value 10)", 2, 9, false},
		{"three among the first 9", 3, 9, true},
		{"at the limit", 50, 10_000, false},
		{"1.5× the limit, 2,000 sends", 15, 2000, false},
		{"3× the limit, 1,000 sends", 15, 1000, true},
		{"below the limit, a billion sends", 4_000_000, 1_000_000_000, false},
		{"just above the limit, a billion sends", 5_100_000, 1_000_000_000, true},
	} {
		logE, trips := g.Test(tt.events, tt.trials)
		if trips != tt.trips || math.IsNaN(logE) {
			t.Errorf("%s: log e-value %v, trips %v; want trips %v", tt.name, logE, trips, tt.trips)
		}
	}
	if l, _ := g.Test(0, 0); l != 0 {
		t.Errorf("no data: log e-value %v, want 0", l)
	}
}

// TestGuardrailLogEMonotone: more events among as many trials is more evidence;
// more trials without an event is less (what keeps late events on the safe side).
func TestGuardrailLogEMonotone(t *testing.T) {
	for _, n := range []int64{10, 100, 1000, 100_000, 10_000_000} {
		prev := math.Inf(-1)
		last := int64(-1)
		for _, k := range []int64{0, 1, 2, n / 200, n / 100, n / 50, n / 10} {
			if k <= last {
				continue
			}
			last = k
			l := GuardrailLogE(k, n, 0.005)
			if l < prev || math.IsNaN(l) {
				t.Errorf("n = %d: log E(%d) = %v after %v", n, k, l, prev)
			}
			prev = max(prev, l)
			if more := GuardrailLogE(k, n+n/10+1, 0.005); more > l && !(math.IsInf(more, -1) && math.IsInf(l, -1)) {
				t.Errorf("%d events: log E %v with %d trials, %v with more", k, l, n, more)
			}
		}
	}
}

func TestAnalyzeCampaignGuardrail(t *testing.T) {
	g := &Guardrail{MaxRate: 0.005, Confidence: 0.95}
	in := CampaignInput{Metric: Binary, Mode: CampaignWaves, Guardrail: g, Arms: []CampaignArm{
		{Key: "new", Trials: 0},
		{Key: "calm", Trials: 5000, Successes: 100, GuardEvents: 20, GuardTrials: 5000},
		{Key: "hot", Trials: 1000, Successes: 40, GuardEvents: 15, GuardTrials: 1000},
	}}
	a, err := AnalyzeCampaign(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Tripped) != 1 || a.Tripped[0] != "hot" {
		t.Errorf("tripped %v, want [hot]", a.Tripped)
	}
	for _, v := range a.Variants {
		gs := v.Guardrail
		if gs == nil || math.Abs(gs.PValue-math.Min(1, 1/gs.EValue)) > 1e-12 || gs.PValue < 0 || gs.PValue > 1 {
			t.Fatalf("%s: %+v", v.Key, gs)
		}
		switch v.Key {
		case "new":
			if gs.EValue != 1 || gs.PValue != 1 || gs.Tripped {
				t.Errorf("no data: %+v", gs)
			}
		case "calm":
			if gs.EValue >= 1 || gs.Tripped {
				t.Errorf("below the limit: %+v", gs)
			}
		case "hot":
			if gs.EValue < 20 || gs.PValue > 0.05 || !gs.Tripped || v.Weight != 0 {
				t.Errorf("3× the limit: %+v, weight %v", gs, v.Weight)
			}
		}
	}
}
