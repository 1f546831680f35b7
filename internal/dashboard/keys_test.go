package dashboard

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/samplit/samplit/internal/store"
)

var newKeyRE = regexp.MustCompile(`id="new-key" readonly value="(sk_[^"]+)"`)

func TestKeysPage(t *testing.T) {
	e := newEnv(t)
	e.createExperiment(e.admin, "exp", "control", "green")
	var other struct {
		AdminKey string `json:"admin_key"`
	}
	e.api("POST", "/v1/workspaces", e.admin, map[string]any{"name": "other"}, 201, &other)
	e.api("POST", "/v1/keys", other.AdminKey, map[string]any{"name": "their-secret-site", "scope": "assign"}, 201, nil)

	b := e.browser()
	b.signIn(e.admin)
	list := b.get("/keys")
	if list.Status != 200 || strings.Contains(list.Body, "their-secret-site") {
		t.Fatalf("list: status %d", list.Status)
	}
	if n := len(tags(list.Body, "tr", "data-key=")); n != 1 {
		t.Fatalf("%d keys listed, want the bootstrap key", n)
	}
	csrf := b.csrf()

	// Invalid origins: the API's reasons, the form kept.
	bad := b.post("/keys", url.Values{"csrf": {csrf}, "name": {"shop"}, "origins": {"https://shop.example/path\nftp://x.example"}})
	if bad.Status != http.StatusUnprocessableEntity || !strings.Contains(bad.Body, "https://shop.example/path: must be an origin") ||
		!strings.Contains(bad.Body, "http or https") || !strings.Contains(bad.Body, `value="shop"`) {
		t.Fatalf("invalid form: status %d\n%s", bad.Status, bad.Body)
	}

	// A key for a website, shown once.
	ok := b.post("/keys", url.Values{"csrf": {csrf}, "name": {"shop"}, "origins": {"https://shop.example\r\nhttp://127.0.0.1:3000\n"}})
	m := newKeyRE.FindStringSubmatch(ok.Body)
	if ok.Status != http.StatusCreated || m == nil {
		t.Fatalf("create: status %d\n%s", ok.Status, ok.Body)
	}
	plain := m[1]
	// Newest first: the key just made is on top.
	rows := tags(ok.Body, "tr", "data-key=")
	if len(rows) != 2 || rows[0]["data-scope"] != "assign" || !strings.Contains(ok.Body, "<code>http://127.0.0.1:3000</code>") {
		t.Fatalf("rows after create: %v", rows)
	}
	if strings.Contains(b.get("/keys").Body, plain) {
		t.Fatal("the key is shown again")
	}
	// It works from its origin.
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/experiments/exp/assign", strings.NewReader(`{"unit_id":"u1"}`))
	req.Header.Set("Authorization", "Bearer "+plain)
	req.Header.Set("Origin", "https://shop.example")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Fatalf("assign from the page's origin: %d %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
	}

	// Revoke it, without and then with the CSRF token.
	kid := rows[0]["data-key"]
	if p := b.post("/keys/"+kid+"/revoke", url.Values{}); p.Status != http.StatusForbidden {
		t.Fatalf("revoke without token: %d", p.Status)
	}
	p := b.post("/keys/"+kid+"/revoke", url.Values{"csrf": {csrf}})
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/keys?done=revoked" {
		t.Fatalf("revoke: %d %q\n%s", p.Status, p.Header.Get("Location"), p.Body)
	}
	after := b.get("/keys?done=revoked")
	for _, r := range tags(after.Body, "tr", "data-key=") {
		if r["data-key"] == kid && r["data-revoked"] != "true" {
			t.Errorf("not shown revoked: %v", r)
		}
	}
	e.api("POST", "/v1/experiments/exp/assign", plain, map[string]any{"unit_id": "u1"}, 401, nil)
	if p := b.post("/keys/key_nothere/revoke", url.Values{"csrf": {csrf}}); p.Status != http.StatusNotFound {
		t.Errorf("revoke unknown: %d", p.Status)
	}

	// A write key is told it needs an admin key.
	w := e.browser()
	w.signIn(e.key(e.defaultWorkspace(), store.ScopeWrite))
	if r := w.get("/keys"); r.Status != http.StatusForbidden || !strings.Contains(r.Body, "need an admin key") {
		t.Errorf("write key: %d", r.Status)
	}
}
