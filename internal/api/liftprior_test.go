package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/optimize"
)

// TestLearnedPrior: a workspace's completed experiments teach it the spread
// of true lifts (engine.LearnLiftPrior), shown in a new experiment's
// results, unless the experiment turns learning off. The history is twenty
// continuous experiments whose two variants are alike to within a percent
// (values 10 and 11 alternating in both), so the learned spread is well
// under a percent; a tenfold lift is still declared under it (the model's
// component for rare large lifts: without it the tight prior would hold
// the winner back as a coin toss). The engine's tests show the prior
// holding borderline winners back; this one the plumbing, both databases.
func TestLearnedPrior(t *testing.T) {
	eachBackendWith(t, fastRefresh, func(t *testing.T, e *env) {
		newExperiment := func(key, settings string) {
			e.experiment(fmt.Sprintf(`{"key":%q,"metric":"binary","strategy":"uniform","start":true,
				"settings":{"seed":5,"min_samples":50%s},"variants":[{"key":"control"},{"key":"green"}]}`, key, settings))
			e.convertWhere(key, key, 300, func(v string, i int) bool {
				return (v == "green" && i%5 == 0) || (v == "control" && i%50 == 0)
			})
		}
		for h := range engine.MinLiftHistory {
			key := fmt.Sprintf("h%d", h)
			e.experiment(fmt.Sprintf(`{"key":%q,"metric":"continuous","strategy":"uniform","start":true,"variants":[{"key":"a"},{"key":"b"}]}`, key))
			as := e.assign(key, e.admin, units(key, 100))
			seen := map[string]int{}
			var evs []eventIn
			for _, a := range as {
				v := 10.0 + float64(seen[*a.Variant]%2)
				seen[*a.Variant]++
				evs = append(evs, eventIn{UnitID: a.UnitID, Value: &v})
			}
			e.events(key, e.admin, evs)
			if h == engine.MinLiftHistory-1 {
				// One comparison short: no prior yet.
				newExperiment("early", "")
				if p := e.results("early").Prior; p != nil {
					t.Fatalf("%d completed experiments: prior %+v, want none", h, p)
				}
			}
			e.must(200, "POST", "/v1/experiments/"+key+"/complete", e.admin, "")
		}

		newExperiment("learned", "")
		newExperiment("flat", `,"learn_prior":false`)
		learned, flat := e.results("learned"), e.results("flat")
		// Until both decide: the learned prior may need a round more than
		// the flat one (one run declared flat at 300 units each, learned
		// not yet), which is the prior doing its work, not a failure.
		collecting := func() bool {
			return flat.Decision.State == engine.StateCollecting || learned.Decision.State == engine.StateCollecting
		}
		for round := 0; collecting() && round < 20; round++ {
			for _, key := range []string{"learned", "flat"} {
				e.convertWhere(key, fmt.Sprintf("%s-%d", key, round), 300, func(v string, i int) bool {
					return (v == "green" && i%5 == 0) || (v == "control" && i%50 == 0)
				})
			}
			learned, flat = e.results("learned"), e.results("flat")
		}
		t.Logf("%d units each: learned prior %+v: %s; learning off: %s", flat.TotalUnits, learned.Prior, learned.Decision.Reason, flat.Decision.Reason)
		if p := learned.Prior; p == nil || p.Source != "learned" || p.Comparisons != engine.MinLiftHistory || !(p.LiftSD > 0 && p.LiftSD < 0.01) {
			t.Fatalf("prior after %d completed experiments: %+v, want learned from as many comparisons, under 1%%", engine.MinLiftHistory, p)
		}
		if learned.Decision.State != engine.StateWinnerFound {
			t.Errorf("with the learned prior: %+v, want the tenfold lift declared", learned.Decision)
		}
		if flat.Prior != nil || flat.Decision.State != engine.StateWinnerFound {
			t.Errorf("learn_prior false: prior %+v, decision %+v", flat.Prior, flat.Decision)
		}
		x := e.must(200, "GET", "/v1/experiments/flat", e.admin, "").JSON(t)["settings"].(map[string]any)
		y := e.must(200, "GET", "/v1/experiments/learned", e.admin, "").JSON(t)["settings"].(map[string]any)
		if x["learn_prior"] != false || y["learn_prior"] != true {
			t.Errorf("learn_prior read back %v and %v, want false and true", x["learn_prior"], y["learn_prior"])
		}
	})
}

// TestLearnPriorSetting: learn_prior must be a boolean; a bad value is a
// 400 naming the field and stores nothing; null is the default, true.
func TestLearnPriorSetting(t *testing.T) {
	e := newEnv(t, "sqlite", Options{})
	body := func(v string) string {
		return `{"key":"p","variants":[{"key":"a"},{"key":"b"}],"settings":{"learn_prior":` + v + `}}`
	}
	for _, bad := range []string{`"yes"`, `1`} {
		r := e.must(400, "POST", "/v1/experiments", e.admin, body(bad))
		if fields := r.fields(t); !slices.Contains(fields, "settings.learn_prior") {
			t.Errorf("learn_prior %s: fields %v", bad, fields)
		}
	}
	if n := e.count(e.defaultWorkspace()); n != 0 {
		t.Errorf("%d experiments stored by bad requests", n)
	}
	got := e.must(201, "POST", "/v1/experiments", e.admin, body("null")).JSON(t)["settings"].(map[string]any)
	if got["learn_prior"] != true {
		t.Errorf("learn_prior null: %v, want true", got["learn_prior"])
	}
}

// TestCampaignLearnedPrior: campaigns learn their prior from the
// workspace's completed campaigns (each variant's click rate against its
// first variant's): none with 19 comparisons, one from 20 at once after
// the 20th completion, none when the campaign turns learning off; both
// databases.
func TestCampaignLearnedPrior(t *testing.T) {
	eachCampaignBackend(t, func(t *testing.T, e *env, _ *clock) {
		prior := func(key string) *optimize.LiftPrior {
			return decodeInto[optimize.CampaignResults](t, e.must(http.StatusOK, "GET", "/v1/campaigns/"+key+"/results", e.admin, "")).Prior
		}
		for h := range engine.MinLiftHistory {
			key := fmt.Sprintf("h%d", h)
			e.must(http.StatusCreated, "POST", "/v1/campaigns", e.admin, campaignBody(key, ""))
			sent, _ := sendAll(e, key, recipients(key+"-", 0, 200))
			n := map[string]int{}
			var evs []string
			for r, v := range sent {
				if n[v]++; n[v]%5 == 0 {
					evs = append(evs, fmt.Sprintf(`{"recipient": %q, "type": "click"}`, r))
				}
			}
			e.must(http.StatusAccepted, "POST", "/v1/campaigns/"+key+"/events", e.admin, `{"events": [`+strings.Join(evs, ",")+`]}`)
			if h == engine.MinLiftHistory-1 {
				e.must(http.StatusCreated, "POST", "/v1/campaigns", e.admin, campaignBody("early", ""))
				if p := prior("early"); p != nil {
					t.Fatalf("%d completed campaigns: prior %+v, want none", h, p)
				}
			}
			e.must(http.StatusOK, "POST", "/v1/campaigns/"+key+"/complete", e.admin, "")
		}
		e.must(http.StatusCreated, "POST", "/v1/campaigns", e.admin, campaignBody("learned", ""))
		e.must(http.StatusCreated, "POST", "/v1/campaigns", e.admin, campaignBody("flat", `, "settings": {"learn_prior": false}`))
		if p := prior("learned"); p == nil || p.Source != "learned" || p.Comparisons != engine.MinLiftHistory || !(p.LiftSD > 0) {
			t.Errorf("prior after %d completed campaigns: %+v, want one learned from as many comparisons", engine.MinLiftHistory, p)
		}
		if p := prior("flat"); p != nil {
			t.Errorf("learn_prior false: prior %+v", p)
		}
		for key, want := range map[string]bool{"learned": true, "flat": false} {
			got := e.must(http.StatusOK, "GET", "/v1/campaigns/"+key, e.admin, "").JSON(t)["settings"].(map[string]any)["learn_prior"]
			if got != want {
				t.Errorf("%s: learn_prior read back %v, want %v", key, got, want)
			}
		}
	})
}
