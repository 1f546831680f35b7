package dashboard

import (
	"bytes"
	"database/sql"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/dbtest"
)

// on returns the same browser (its cookies) talking to another replica.
func (b *browser) on(e *env) *browser { return &browser{e: e, client: b.client} }

// signedIn reports whether the browser's session opens the experiments page.
func (b *browser) signedIn() bool {
	b.e.t.Helper()
	p := b.get("/experiments")
	switch p.Status {
	case http.StatusOK:
		return true
	case http.StatusSeeOther:
		return false
	}
	b.e.t.Fatalf("GET /experiments: status %d\n%s", p.Status, p.Body)
	return false
}

// TestSessionsAcrossReplicas: two replicas over one database and no sticky
// sessions. A sign-in on one is a session on the other, with the same CSRF
// token; a sign-out on either ends it on both. The database holds neither
// the cookie's token nor the API key.
func TestSessionsAcrossReplicas(t *testing.T) {
	dbtest.EachBackend(t, "dashboard_", func(t *testing.T, dsn string) {
		a := newEnvOn(t, dsn, Options{})
		b := newEnvOn(t, dsn, Options{})
		onA := a.browser()
		onA.signIn(a.admin)
		onB := onA.on(b)
		if !onB.signedIn() {
			t.Fatalf("a session started on replica A is unknown on replica B")
		}
		if ca, cb := onA.csrf(), onB.csrf(); ca != cb {
			t.Errorf("CSRF token differs between replicas: %q and %q", ca, cb)
		}
		// A form posted to B with A's page's token works.
		p := onB.post("/keys", url.Values{"csrf": {onA.csrf()}, "name": {"from B"}, "scope": {"write"}})
		if p.Status != http.StatusCreated {
			t.Fatalf("POST /keys on B: status %d\n%s", p.Status, p.Body)
		}

		// Nothing in the database opens the session or reveals the key.
		u, _ := url.Parse(a.srv.URL)
		var token string
		for _, c := range onA.client.Jar.Cookies(u) {
			if c.Name == cookieName {
				token = c.Value
			}
		}
		if token == "" {
			t.Fatalf("no session cookie")
		}
		db := a.st.(interface{ WriteDB() *sql.DB }).WriteDB()
		rows, err := db.QueryContext(t.Context(), `SELECT token_hash, key_id, workspace_id, sealed_key FROM dashboard_sessions`)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var hash, sealed []byte
			var keyID, ws string
			if err := rows.Scan(&hash, &keyID, &ws, &sealed); err != nil {
				t.Fatal(err)
			}
			n++
			for _, col := range [][]byte{hash, sealed, []byte(keyID), []byte(ws)} {
				if bytes.Contains(col, []byte(token)) || bytes.Contains(col, []byte(a.admin)) {
					t.Errorf("a session row holds the token or the API key in the clear")
				}
			}
		}
		rows.Close()
		if n != 1 {
			t.Errorf("%d session rows, want 1", n)
		}

		// Sign out on B: the session is gone on A too.
		if p := onB.post("/signout", url.Values{"csrf": {onB.csrf()}}); p.Status != http.StatusSeeOther {
			t.Fatalf("sign-out on B: status %d", p.Status)
		}
		// The browser dropped its cookie at sign-out; a copy of the
		// cookie taken before must not work either.
		stale := a.browser()
		stale.client.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: token, Path: "/"}})
		if stale.signedIn() {
			t.Errorf("the session signed out on B still works on A")
		}
		if onA.signedIn() {
			t.Errorf("replica A still has the session signed out on B")
		}
	})
}

// TestSessionsPerKey: a key holds at most SessionsPerKey sessions, its
// oldest ended by a new sign-in; sign-ins with one key, however many, never
// end another key's session (today's admin must not be signed out by a
// script signing in with a write key).
func TestSessionsPerKey(t *testing.T) {
	dbtest.EachBackend(t, "dashboard_", func(t *testing.T, dsn string) {
		e := newEnvOn(t, dsn, Options{SessionsPerKey: 3})
		admin := e.browser()
		admin.signIn(e.admin)
		write := e.key(e.defaultWorkspace(), store.ScopeWrite)
		var bs []*browser
		for range 12 {
			b := e.browser()
			b.signIn(write)
			bs = append(bs, b)
		}
		if !admin.signedIn() {
			t.Fatalf("12 sign-ins with another key ended the admin's session")
		}
		for i, b := range bs {
			if got, want := b.signedIn(), i >= len(bs)-3; got != want {
				t.Errorf("write-key session %d signed in = %v, want %v (the newest 3 stay)", i, got, want)
			}
		}
		var n int
		db := e.st.(interface{ WriteDB() *sql.DB }).WriteDB()
		if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM dashboard_sessions`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 4 {
			t.Errorf("%d sessions stored, want 4 (the admin's and three)", n)
		}
	})
}

// TestSignInFailLimit: an address that fails to sign in too often gets
// 429 with Retry-After, even for a good key, until its budget refills.
func TestSignInFailLimit(t *testing.T) {
	e := newEnvOn(t, dbtest.SQLite(t), Options{AuthFailLimit: 3})
	b := e.browser()
	for range 3 {
		if p := b.post("/signin", url.Values{"key": {"sk_live_wrongwrongwrong"}}); p.Status != http.StatusUnauthorized {
			t.Fatalf("bad sign-in: status %d", p.Status)
		}
	}
	p := b.post("/signin", url.Values{"key": {e.admin}})
	if p.Status != http.StatusTooManyRequests {
		t.Fatalf("sign-in after 3 failures: status %d, want 429", p.Status)
	}
	if ra, err := strconv.Atoi(p.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 20 {
		t.Errorf("Retry-After %q, want the seconds until a failure is allowed again (20)", p.Header.Get("Retry-After"))
	}
	if !strings.Contains(p.Body, "Too many failed sign-ins") {
		t.Errorf("the page does not say why:\n%s", p.Body)
	}
}
