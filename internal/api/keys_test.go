package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

func TestKeysAPI(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		created := e.must(201, "POST", "/v1/keys", e.admin,
			`{"name":"website","scope":"assign","allowed_origins":["https://shop.example","http://127.0.0.1:8081"]}`).JSON(t)
		plain, _ := created["key"].(string)
		if !strings.HasPrefix(plain, "sk_") || created["scope"] != "assign" || created["name"] != "website" {
			t.Fatalf("created = %v", created)
		}
		if diff := cmp.Diff([]any{"https://shop.example", "http://127.0.0.1:8081"}, created["allowed_origins"]); diff != "" {
			t.Errorf("allowed_origins (-want +got):\n%s", diff)
		}
		kid := created["id"].(string)
		// The new key works for what its scope allows.
		e.createExperiment("exp", e.admin, true)
		e.must(200, "POST", "/v1/experiments/exp/assign", plain, `{"unit_id":"u1"}`)
		e.must(403, "GET", "/v1/experiments", plain, "")

		w := e.must(201, "POST", "/v1/keys", e.admin, `{"scope":"write"}`).JSON(t)
		if w["name"] != "write key" || len(w["allowed_origins"].([]any)) != 0 {
			t.Errorf("defaults: %v", w)
		}

		// The list never shows a key, and pages.
		list := e.must(200, "GET", "/v1/keys", e.admin, "").JSON(t)
		items := list["items"].([]any)
		if len(items) != 3 || list["next_cursor"] != nil {
			t.Fatalf("list = %v", list)
		}
		for _, it := range items {
			if _, ok := it.(map[string]any)["key"]; ok {
				t.Errorf("the list shows a key: %v", it)
			}
		}
		p1 := e.must(200, "GET", "/v1/keys?limit=2", e.admin, "").JSON(t)
		p2 := e.must(200, "GET", "/v1/keys?limit=2&cursor="+p1["next_cursor"].(string), e.admin, "").JSON(t)
		if len(p1["items"].([]any)) != 2 || len(p2["items"].([]any)) != 1 || p2["next_cursor"] != nil {
			t.Errorf("pages: %v / %v", p1, p2)
		}

		// Revocation: at once on this replica (the key was cached by the
		// assign above), listed with revoked_at, twice is fine.
		e.must(204, "DELETE", "/v1/keys/"+kid, e.admin, "")
		e.must(401, "POST", "/v1/experiments/exp/assign", plain, `{"unit_id":"u1"}`)
		e.must(204, "DELETE", "/v1/keys/"+kid, e.admin, "")
		e.must(404, "DELETE", "/v1/keys/key_nothere", e.admin, "")
		e.must(404, "DELETE", "/v1/keys/whk_other", e.admin, "")
		list = e.must(200, "GET", "/v1/keys", e.admin, "").JSON(t)
		var revoked int
		for _, it := range list["items"].([]any) {
			if it.(map[string]any)["revoked_at"] != nil {
				revoked++
			}
		}
		if revoked != 1 {
			t.Errorf("%d revoked keys listed, want 1", revoked)
		}

		// Admin only, and scoped to the workspace.
		write := w["key"].(string)
		e.must(403, "GET", "/v1/keys", write, "")
		e.must(403, "POST", "/v1/keys", write, `{"scope":"assign"}`)
		other := e.must(201, "POST", "/v1/workspaces", e.admin, `{"name":"other"}`).JSON(t)["admin_key"].(string)
		if n := len(e.must(200, "GET", "/v1/keys", other, "").JSON(t)["items"].([]any)); n != 1 {
			t.Errorf("the other workspace lists %d keys, want its own 1", n)
		}
		e.must(404, "DELETE", "/v1/keys/"+w["id"].(string), other, "")
		e.must(200, "GET", "/v1/experiments", write, "")

		// Deleting the key making the call is allowed.
		self := e.must(201, "POST", "/v1/keys", e.admin, `{"scope":"admin"}`).JSON(t)
		e.must(204, "DELETE", "/v1/keys/"+self["id"].(string), self["key"].(string), "")
		e.must(401, "GET", "/v1/keys", self["key"].(string), "")
	})
}

func TestCreateKeyInvalid(t *testing.T) {
	e := newEnv(t, "sqlite", Options{})
	for _, tc := range []struct {
		name, body, field string
	}{
		{"no scope", `{"name":"x"}`, "scope"},
		{"unknown scope", `{"scope":"root"}`, "scope"},
		{"origins on a write key", `{"scope":"write","allowed_origins":["https://a.example"]}`, "allowed_origins"},
		{"origins on an admin key", `{"scope":"admin","allowed_origins":["https://a.example"]}`, "allowed_origins"},
		{"a path", `{"scope":"assign","allowed_origins":["https://a.example/"]}`, "allowed_origins[0]"},
		{"a wildcard", `{"scope":"assign","allowed_origins":["https://*.example"]}`, "allowed_origins[0]"},
		{"no scheme", `{"scope":"assign","allowed_origins":["shop.example"]}`, "allowed_origins[0]"},
		{"another scheme", `{"scope":"assign","allowed_origins":["ftp://shop.example"]}`, "allowed_origins[0]"},
		{"upper case", `{"scope":"assign","allowed_origins":["https://Shop.example"]}`, "allowed_origins[0]"},
		{"default port", `{"scope":"assign","allowed_origins":["https://shop.example:443"]}`, "allowed_origins[0]"},
		{"user info", `{"scope":"assign","allowed_origins":["https://u@shop.example"]}`, "allowed_origins[0]"},
		{"query", `{"scope":"assign","allowed_origins":["https://shop.example?x"]}`, "allowed_origins[0]"},
		{"empty", `{"scope":"assign","allowed_origins":[""]}`, "allowed_origins[0]"},
		{"null origin", `{"scope":"assign","allowed_origins":["null"]}`, "allowed_origins[0]"},
		{"empty port", `{"scope":"assign","allowed_origins":["http://a.example:"]}`, "allowed_origins[0]"},
		{"repeated", `{"scope":"assign","allowed_origins":["https://a.example","https://a.example"]}`, "allowed_origins[1]"},
		{"bad name", `{"scope":"assign","name":" x"}`, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.must(422, "POST", "/v1/keys", e.admin, tc.body)
			if got := r.fields(t); !slices.Contains(got, tc.field) {
				t.Errorf("fields = %v, want %s", got, tc.field)
			}
		})
	}
	var many []string
	for i := range MaxAllowedOrigins + 1 {
		many = append(many, fmt.Sprintf("%q", fmt.Sprintf("https://n%d.example", i)))
	}
	e.must(422, "POST", "/v1/keys", e.admin, `{"scope":"assign","allowed_origins":[`+strings.Join(many, ",")+`]}`)
	e.must(400, "POST", "/v1/keys", e.admin, `{"scope":"assign","allowed_origins":"https://a.example"}`)
	e.must(400, "POST", "/v1/keys", e.admin, `{"scope":"assign","extra":1}`)
	r := e.must(400, "POST", "/v1/keys", e.admin, `{"scope":"assign","allowed_origins":["https://a.example",7]}`)
	if got := r.fields(t); !slices.Contains(got, "allowed_origins") {
		t.Errorf("a number among the origins: fields %v", got)
	}
	e.must(201, "POST", "/v1/keys", e.admin, `{"scope":"assign","allowed_origins":["http://[::1]:3000","https://xn--bcher-kva.example"]}`)
}

func TestBrowserRequests(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		const origin = "http://127.0.0.1:8081"
		e.createExperiment("exp", e.admin, true)
		browser := e.must(201, "POST", "/v1/keys", e.admin,
			`{"scope":"assign","allowed_origins":["`+origin+`"]}`).JSON(t)["key"].(string)
		plainAssign := e.key(e.defaultWorkspace(), store.ScopeAssign)
		write := e.key(e.defaultWorkspace(), store.ScopeWrite)

		// Allowed: the page may read the answer.
		r := e.must(200, "POST", "/v1/experiments/exp/assign", browser, `{"unit_id":"u1"}`, "Origin", origin)
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("Access-Control-Allow-Origin = %q", got)
		}
		if !slices.Contains(r.Header.Values("Vary"), "Origin") {
			t.Errorf("Vary = %q", r.Header.Values("Vary"))
		}
		r = e.must(202, "POST", "/v1/experiments/exp/events", browser, `{"unit_id":"u1"}`, "Origin", origin)
		if r.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Error("events: no Access-Control-Allow-Origin")
		}
		// An error of an allowed request is readable too.
		r = e.must(404, "POST", "/v1/experiments/nope/assign", browser, `{"unit_id":"u1"}`, "Origin", origin)
		if r.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Error("404: no Access-Control-Allow-Origin")
		}

		// Refused: another origin, an assign key without origins, a write
		// key, an admin key; and nothing is stored.
		for _, tc := range []struct{ name, key, origin string }{
			{"other origin", browser, "http://127.0.0.1:9999"},
			{"origin with a path", browser, origin + "/"},
			{"null origin", browser, "null"},
			{"assign key without origins", plainAssign, origin},
			{"write key", write, origin},
			{"admin key", e.admin, origin},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, path := range []string{"/v1/experiments/exp/assign", "/v1/experiments/exp/events"} {
					r := e.must(403, "POST", path, tc.key, `{"unit_id":"u2"}`, "Origin", tc.origin)
					if _, ok := r.Header["Access-Control-Allow-Origin"]; ok {
						t.Errorf("%s: a refusal carries Access-Control-Allow-Origin", path)
					}
					if r.Header.Get("Content-Type") != "application/problem+json" {
						t.Errorf("%s: Content-Type = %q", path, r.Header.Get("Content-Type"))
					}
				}
			})
		}
		e.must(403, "GET", "/v1/experiments", e.admin, "", "Origin", origin)
		res := e.must(200, "GET", "/v1/experiments/exp/results", e.admin, "").JSON(t)
		if res["total_units"] != 1.0 {
			t.Errorf("refused requests moved the counts: %v units", res["total_units"])
		}
		// Without Origin every key works as before.
		e.must(200, "POST", "/v1/experiments/exp/assign", write, `{"unit_id":"u3"}`)
		e.must(200, "POST", "/v1/experiments/exp/assign", browser, `{"unit_id":"u3"}`)
	})
}

func TestPreflight(t *testing.T) {
	e := newEnv(t, "sqlite", Options{})
	const origin = "https://shop.example"
	for _, path := range []string{"/v1/experiments/x/assign", "/v1/experiments/x/events", "/v1/funnels/f/progress", "/v1/campaigns/c/events"} {
		r := e.must(http.StatusNoContent, "OPTIONS", path, "", "", "Origin", origin,
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type")
		want := map[string]string{
			"Access-Control-Allow-Origin":  origin,
			"Access-Control-Allow-Methods": "POST",
			"Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key",
			"Access-Control-Max-Age":       "600",
		}
		for h, v := range want {
			if got := r.Header.Get(h); got != v {
				t.Errorf("%s: %s = %q, want %q", path, h, got, v)
			}
		}
	}
	// Other routes answer no preflight.
	e.must(405, "OPTIONS", "/v1/experiments", "", "", "Origin", origin)
}

// TestAssignNamesTheControl: the answer for one unit names the control
// (the SDKs' fallback); a batch's items do not.
func TestAssignNamesTheControl(t *testing.T) {
	e := newEnv(t, "sqlite", Options{})
	e.must(201, "POST", "/v1/experiments", e.admin, `{"key":"c","metric":"binary","start":true,
		"variants":[{"key":"grey","control":true,"payload":{"color":"grey"}},{"key":"green"}]}`)
	one := e.must(200, "POST", "/v1/experiments/c/assign", e.admin, `{"unit_id":"u1"}`).JSON(t)
	want := map[string]any{"variant": "grey", "payload": map[string]any{"color": "grey"}}
	if diff := cmp.Diff(want, one["control"]); diff != "" {
		t.Errorf("control (-want +got):\n%s", diff)
	}
	many := e.must(200, "POST", "/v1/experiments/c/assign", e.admin, `{"unit_ids":["u1","u2"]}`).JSON(t)
	for _, a := range many["assignments"].([]any) {
		if _, ok := a.(map[string]any)["control"]; ok {
			t.Errorf("a batch item names the control: %v", a)
		}
	}
	// Without a marked control the first variant is the control.
	e.createExperiment("first", e.admin, true)
	r := e.must(200, "POST", "/v1/experiments/first/assign", e.admin, `{"unit_id":"u1"}`).JSON(t)
	if diff := cmp.Diff(map[string]any{"variant": "control", "payload": nil}, r["control"]); diff != "" {
		t.Errorf("default control (-want +got):\n%s", diff)
	}
}

// TestRevocationReachesOtherReplicas: a key revoked through one replica is
// refused at once there, and by another replica that had it cached within
// keyCacheTTL (the time openapi.yaml documents).
func TestRevocationReachesOtherReplicas(t *testing.T) {
	a := newEnv(t, "sqlite", Options{})
	b := a.restart(optimize.Options{})
	a.createExperiment("exp", a.admin, true)
	created := a.must(201, "POST", "/v1/keys", a.admin, `{"scope":"assign"}`).JSON(t)
	plain := created["key"].(string)
	b.must(200, "POST", "/v1/experiments/exp/assign", plain, `{"unit_id":"u1"}`) // cached on b now
	revoked := time.Now()
	a.must(204, "DELETE", "/v1/keys/"+created["id"].(string), a.admin, "")
	a.must(401, "POST", "/v1/experiments/exp/assign", plain, `{"unit_id":"u1"}`)
	for {
		if b.req("POST", "/v1/experiments/exp/assign", plain, `{"unit_id":"u1"}`).Status == 401 {
			break
		}
		if since := time.Since(revoked); since > keyCacheTTL+500*time.Millisecond {
			t.Fatalf("the other replica still accepts the key %v after its revocation", since)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
