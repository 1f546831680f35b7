package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/samplit/samplit/internal/store"
)

// createCampaign creates a running email campaign with variants s1 and s2
// through the API, with a guardrail on unsubscribes, and returns its id.
func (e *env) createCampaign(key, ref string) string {
	e.t.Helper()
	var out struct{ ID string }
	e.api("POST", "/v1/campaigns", key, map[string]any{
		"key": ref, "name": "Campaign " + ref, "channel": "email", "objective": "click", "start": true,
		"variants": []map[string]any{{"key": "s1", "payload": map[string]any{"subject": "Hello"}}, {"key": "s2", "payload": map[string]any{"subject": "Deals"}}},
		"settings": map[string]any{"seed": 2, "guardrail": map[string]any{"event": "unsubscribe", "max_rate": 0.01}},
	}, 201, &out)
	return out.ID
}

// send sends n recipients named prefix0… and returns recipient → variant.
func (e *env) send(key, ref, prefix string, n int) map[string]string {
	e.t.Helper()
	rs := make([]string, n)
	for i := range rs {
		rs[i] = fmt.Sprint(prefix, i)
	}
	var out struct {
		Sends []struct{ Recipient, Variant string }
	}
	e.api("POST", "/v1/campaigns/"+ref+"/sends", key, map[string]any{"recipients": rs}, 200, &out)
	got := map[string]string{}
	for _, s := range out.Sends {
		got[s.Recipient] = s.Variant
	}
	return got
}

// TestCampaignPages feeds a campaign whose s2 trips the guardrail, then
// checks the detail page against the campaign service's results: the table
// cell by cell, the wave chart share by share, and the stop marked in words
// and by a hatch.
func TestCampaignPages(t *testing.T) {
	e := newEnv(t)
	id := e.createCampaign(e.admin, "bf")
	first := e.send(e.admin, "bf", "r", 400)
	var evs []map[string]any
	unsubs := 0
	for r, v := range first {
		if v != "s2" {
			continue
		}
		evs = append(evs, map[string]any{"recipient": r, "type": "click"})
		if unsubs < 20 {
			evs = append(evs, map[string]any{"recipient": r, "type": "unsubscribe"})
			unsubs++
		}
	}
	e.api("POST", "/v1/campaigns/bf/events", e.admin, map[string]any{"events": evs}, 202, nil)
	e.api("GET", "/v1/campaigns/bf/results", e.admin, nil, 200, nil) // the guardrail trips here
	e.send(e.admin, "bf", "q", 100)

	b := e.browser()
	b.signIn(e.admin)
	list := b.get("/campaigns")
	if list.Status != 200 || len(tags(list.Body, "tr", `data-campaign="bf"`)) != 1 || !strings.Contains(list.Body, "stopped: s2") {
		t.Fatalf("list: status %d\n%s", list.Status, list.Body)
	}
	if row := tags(list.Body, "tr", `data-campaign="bf"`)[0]; row["data-sent"] != "500" || row["data-waves"] != "2" {
		t.Errorf("list row %v", row)
	}

	p := b.get("/campaigns/" + id)
	if p.Status != 200 {
		t.Fatalf("detail: status %d\n%s", p.Status, p.Body)
	}
	c, err := e.st.GetCampaign(context.Background(), e.defaultWorkspace(), id)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.camps.Results(context.Background(), &c)
	if err != nil {
		t.Fatal(err)
	}

	rows := tags(p.Body, "tr", "data-variant=")
	if len(rows) != len(res.Variants) {
		t.Fatalf("%d rows, %d variants", len(rows), len(res.Variants))
	}
	for i, v := range res.Variants {
		r := rows[i]
		loss := ""
		if v.ExpectedLoss != nil {
			loss = exact(*v.ExpectedLoss)
		}
		want := map[string]string{
			"data-variant": v.Key, "data-sent": itoa(v.Sent), "data-delivered": itoa(v.Delivered), "data-opens": itoa(v.Opens),
			"data-clicks": itoa(v.Clicks), "data-unsubscribes": itoa(v.Unsubscribes), "data-bounces": itoa(v.Bounces),
			"data-rate": exact(v.Rate), "data-ci-low": exact(v.CILow), "data-ci-high": exact(v.CIHigh),
			"data-p-best": exact(v.PBest), "data-expected-loss": loss, "data-weight": exact(v.Weight),
			"data-stopped": strconv.FormatBool(v.Guardrail != nil && v.Guardrail.Tripped),
		}
		for k, w := range want {
			if r[k] != w {
				t.Errorf("variant %s: %s = %q, want %q", v.Key, k, r[k], w)
			}
		}
	}
	if rows[1]["data-stopped"] != "true" || !strings.Contains(rows[1]["class"], "stopped") || !strings.Contains(p.Body, "stopped by the guardrail") ||
		!strings.Contains(p.Body, "<strong>Guardrail:</strong>") {
		t.Errorf("s2's stop is not marked: %v", rows[1])
	}

	waves := chart(t, p.Body, "waves")
	cols := tags(waves, "g", "data-wave=")
	if len(cols) != len(res.Waves) || len(res.Waves) != 2 {
		t.Fatalf("%d columns, %d waves", len(cols), len(res.Waves))
	}
	segs := tags(waves, "rect", "data-share=")
	k := 0
	for i, w := range res.Waves {
		if cols[i]["data-wave"] != itoa(w.Wave) || cols[i]["data-sends"] != itoa(w.Sends) {
			t.Errorf("column %d = %v, wave %+v", i, cols[i], w)
		}
		got := map[string]float64{}
		for _, v := range res.Variants { // segments are in variant order
			if _, ok := w.Shares[v.Key]; ok {
				got[segs[k]["data-variant"]] = attrFloat(t, segs[k], "data-share")
				k++
			}
		}
		for key, share := range w.Shares {
			if got[key] != share {
				t.Errorf("wave %d: %s share %v, want %v", w.Wave, key, got[key], share)
			}
		}
	}
	if k != len(segs) {
		t.Errorf("%d segments, %d shares", len(segs), k)
	}
	// The second wave went to s1 alone: s2 was stopped.
	if res.Waves[1].Shares["s1"] != 1 || len(tags(waves, "rect", `class="hatch"`)) != 1 {
		t.Errorf("second wave %v; hatches %d", res.Waves[1].Shares, len(tags(waves, "rect", `class="hatch"`)))
	}

	live := b.get("/campaigns/" + id + "/live")
	if live.Status != 200 || !strings.Contains(live.Body, `data-chart="waves"`) || strings.Contains(live.Body, "<html") {
		t.Errorf("live: status %d", live.Status)
	}
}

func TestCampaignLifecycleAndIsolation(t *testing.T) {
	e := newEnv(t)
	var other struct {
		ID       string `json:"id"`
		AdminKey string `json:"admin_key"`
	}
	e.api("POST", "/v1/workspaces", e.admin, map[string]any{"name": "other"}, 201, &other)
	theirs := e.createCampaign(other.AdminKey, "their-secret")
	ours := e.createCampaign(e.admin, "ours")

	b := e.browser()
	b.signIn(e.key(e.defaultWorkspace(), store.ScopeWrite))
	csrf := b.csrf()
	for _, path := range []string{"/campaigns/" + theirs, "/campaigns/their-secret", "/campaigns/" + theirs + "/live"} {
		if p := b.get(path); p.Status != http.StatusNotFound || strings.Contains(p.Body, "their-secret") {
			t.Errorf("GET %s: status %d", path, p.Status)
		}
	}
	if p := b.post("/campaigns/"+theirs+"/pause", url.Values{"csrf": {csrf}}); p.Status != http.StatusNotFound {
		t.Errorf("pause of another workspace's campaign: status %d", p.Status)
	}
	if c, _ := e.st.GetCampaign(context.Background(), other.ID, theirs); c.Status != store.StatusRunning {
		t.Errorf("their campaign is %s", c.Status)
	}
	if l := b.get("/campaigns"); strings.Contains(l.Body, "their-secret") || !strings.Contains(l.Body, ours) {
		t.Error("the list shows another workspace's campaign or misses ours")
	}

	// The buttons go through the API: pause, then a refused pause shows the
	// API's message.
	if p := b.post("/campaigns/"+ours+"/pause", url.Values{}); p.Status != http.StatusForbidden {
		t.Errorf("pause without CSRF token: status %d", p.Status)
	}
	p := b.post("/campaigns/"+ours+"/pause", url.Values{"csrf": {csrf}})
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/campaigns/"+ours+"?done=pause" {
		t.Fatalf("pause: status %d, location %q", p.Status, p.Header.Get("Location"))
	}
	if c, _ := e.st.GetCampaign(context.Background(), e.defaultWorkspace(), ours); c.Status != store.StatusPaused {
		t.Errorf("status %s after pause", c.Status)
	}
	if pg := b.get("/campaigns/" + ours + "?done=pause"); !strings.Contains(pg.Body, "Paused") || !strings.Contains(pg.Body, `action="/campaigns/`+ours+`/resume"`) {
		t.Errorf("paused page lacks its flash or resume button")
	}
	if p := b.post("/campaigns/"+ours+"/pause", url.Values{"csrf": {csrf}}); p.Status != http.StatusConflict || !strings.Contains(p.Body, `role="alert"`) {
		t.Errorf("second pause: status %d", p.Status)
	}
}

// TestCampaignNoDifference drives a campaign whose two subjects click alike
// to the no_difference decision and checks that the page says so, not
// "Collecting data".
func TestCampaignNoDifference(t *testing.T) {
	e := newEnv(t)
	var out struct{ ID string }
	e.api("POST", "/v1/campaigns", e.admin, map[string]any{
		"key": "same", "name": "Same", "channel": "email", "objective": "click", "start": true,
		"variants": []map[string]any{{"key": "s1", "payload": map[string]any{"subject": "Hello"}}, {"key": "s2", "payload": map[string]any{"subject": "Hi"}}},
		"settings": map[string]any{"seed": 3, "min_effect": 0.3, "weight_floor": 0.45}, // near-even waves
	}, 201, &out)
	// Every other recipient of each wave clicks, whatever its subject.
	for wave := range 4 {
		sent := e.send(e.admin, "same", fmt.Sprintf("w%d-", wave), 1000)
		var evs []map[string]any
		for i := 0; i < 1000; i += 2 {
			r := fmt.Sprintf("w%d-%d", wave, i)
			if sent[r] == "" {
				t.Fatalf("%s was not sent", r)
			}
			evs = append(evs, map[string]any{"recipient": r, "type": "click"})
		}
		e.api("POST", "/v1/campaigns/same/events", e.admin, map[string]any{"events": evs}, 202, nil)
	}
	var res struct {
		Decision struct{ State string }
	}
	e.api("GET", "/v1/campaigns/same/results", e.admin, nil, 200, &res)
	if res.Decision.State != "no_difference" {
		t.Fatalf("decision %q, want no_difference", res.Decision.State)
	}
	b := e.browser()
	b.signIn(e.admin)
	p := b.get("/campaigns/" + out.ID)
	if p.Status != 200 || !strings.Contains(p.Body, "No difference") || strings.Contains(p.Body, "Collecting data") {
		t.Errorf("detail page: status %d, no_difference not shown\n%s", p.Status, p.Body)
	}
}
