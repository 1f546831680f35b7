package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/store"
)

func (e *env) createWebhook(key, u string) string {
	e.t.Helper()
	var out struct{ ID string }
	e.api("POST", "/v1/webhooks", key, map[string]any{"url": u, "events": []string{"experiment.started", "campaign.guardrail_tripped"}, "description": "Slack"}, 201, &out)
	return out.ID
}

func TestWebhookPages(t *testing.T) {
	e := newEnv(t)
	ws := e.defaultWorkspace()
	ours := e.createWebhook(e.admin, "https://127.0.0.1:9/ours")
	off := e.createWebhook(e.admin, "https://127.0.0.1:9/off")
	e.api("PATCH", "/v1/webhooks/"+off, e.admin, map[string]any{"enabled": false}, 200, nil)
	var other struct {
		ID       string `json:"id"`
		AdminKey string `json:"admin_key"`
	}
	e.api("POST", "/v1/workspaces", e.admin, map[string]any{"name": "other"}, 201, &other)
	theirs := e.createWebhook(other.AdminKey, "https://127.0.0.1:9/their-secret")

	b := e.browser()
	b.signIn(e.admin)
	list := b.get("/webhooks")
	if list.Status != 200 || strings.Contains(list.Body, "their-secret") {
		t.Fatalf("list: status %d", list.Status)
	}
	rows := tags(list.Body, "tr", "data-webhook=")
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	state := map[string]string{}
	for _, r := range rows {
		state[r["data-webhook"]] = r["data-enabled"]
	}
	if state[ours] != "true" || state[off] != "false" || !strings.Contains(list.Body, "disabled through the API") {
		t.Errorf("states %v", state)
	}

	// A test ping through the button, then one failed attempt recorded as
	// the worker would.
	csrf := b.csrf()
	p := b.post("/webhooks/"+ours+"/test", url.Values{"csrf": {csrf}})
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/webhooks/"+ours+"?done=ping" {
		t.Fatalf("ping: status %d, location %q\n%s", p.Status, p.Header.Get("Location"), p.Body)
	}
	ctx := context.Background()
	now := time.Now()
	claimed, err := e.st.ClaimDeliveries(ctx, "test", now.Add(time.Second), now.Add(time.Minute), 10, nil)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claimed %d: %v", len(claimed), err)
	}
	next := now.Add(time.Hour)
	if _, err := e.st.RecordAttempt(ctx, "test", claimed[0].ID, store.AttemptOutcome{
		Attempt:       store.DeliveryAttempt{At: now, StatusCode: 503, Latency: 123 * time.Millisecond, Error: "HTTP 503"},
		NextAttemptAt: &next,
	}); err != nil {
		t.Fatal(err)
	}
	d := b.get("/webhooks/" + ours + "?done=ping")
	if d.Status != 200 || !strings.Contains(d.Body, "Test ping queued") {
		t.Fatalf("detail: status %d\n%s", d.Status, d.Body)
	}
	dls, err := e.st.ListDeliveries(ctx, ws, ours, store.ListParams{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	got := tags(d.Body, "tr", "data-delivery=")
	if len(got) != len(dls) || len(dls) != 1 {
		t.Fatalf("%d rows, %d deliveries", len(got), len(dls))
	}
	if got[0]["data-delivery"] != dls[0].ID || got[0]["data-status"] != string(dls[0].Status) || got[0]["data-attempts"] != strconv.Itoa(dls[0].Attempts) {
		t.Errorf("row %v, delivery %+v", got[0], dls[0])
	}
	at := tags(d.Body, "li", "data-attempt=")
	if len(at) != 1 || at[0]["data-status-code"] != "503" || at[0]["data-latency-ms"] != "123" || at[0]["data-error"] != "HTTP 503" ||
		!strings.Contains(d.Body, "123 ms") || !strings.Contains(d.Body, "<code>ping</code>") {
		t.Errorf("attempts %v", at)
	}

	// Another workspace's endpoint is a 404, for reading and for the ping.
	for _, path := range []string{"/webhooks/" + theirs, "/webhooks/nope"} {
		if p := b.get(path); p.Status != http.StatusNotFound || strings.Contains(p.Body, "their-secret") {
			t.Errorf("GET %s: status %d", path, p.Status)
		}
	}
	if p := b.post("/webhooks/"+theirs+"/test", url.Values{"csrf": {csrf}}); p.Status != http.StatusNotFound {
		t.Errorf("ping of another workspace's endpoint: status %d", p.Status)
	}
	if n, _ := e.st.ListDeliveries(ctx, other.ID, theirs, store.ListParams{Limit: 10}); len(n) != 0 {
		t.Errorf("their endpoint has %d deliveries", len(n))
	}

	// A write key sees why, not the data.
	w := e.browser()
	w.signIn(e.key(ws, store.ScopeWrite))
	wcsrf := w.csrf()
	for _, path := range []string{"/webhooks", "/webhooks/" + ours} {
		p := w.get(path)
		if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "need an admin key") || strings.Contains(p.Body, "127.0.0.1") {
			t.Errorf("write key, GET %s: status %d\n%s", path, p.Status, p.Body)
		}
	}
	if p := w.post("/webhooks/"+ours+"/test", url.Values{"csrf": {wcsrf}}); p.Status != http.StatusForbidden {
		t.Errorf("write key, ping: status %d", p.Status)
	}
}
