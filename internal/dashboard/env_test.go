package dashboard

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/api"
	"github.com/samplit/samplit/internal/apikey"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/seal"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/backend"
	"github.com/samplit/samplit/internal/store/dbtest"
	"github.com/samplit/samplit/internal/webhook"
)

// env is the whole server as cmd/samplit assembles it — the API and the
// dashboard over one real SQLite store — listening on a local port.
type env struct {
	t       testing.TB
	st      store.Store
	opt     *optimize.Experiments
	funnels *optimize.Funnels
	camps   *optimize.Campaigns
	dash    *Dashboard
	srv     *httptest.Server
	admin   string // admin key of the "default" workspace
	logs    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, dbtest.SQLite(t), Options{RefreshSeconds: 1})
}

// newEnvOn is newEnv over the database dsn with the options: a second env
// over the same database is a second replica (its admin is "" then: the
// first env's key works on it).
func newEnvOn(t testing.TB, dsn string, opts Options) *env {
	t.Helper()
	ctx := context.Background()
	st, err := backend.Open(ctx, dsn, backend.Options{AutoMigrate: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	admin, _, err := apikey.Bootstrap(ctx, st, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var material [seal.KeySize]byte
	rand.Read(material[:])
	k, err := seal.NewKey(material[:])
	if err != nil {
		t.Fatal(err)
	}
	ring, err := seal.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	// RefreshEvery of 1 ns: the allocation follows the data at once, so a
	// test sees it learn.
	opt := optimize.NewExperiments(st, ring, time.Now, logger, optimize.Options{RefreshEvery: time.Nanosecond})
	funnels := optimize.NewFunnels(st, time.Now, logger, optimize.Options{})
	camps := optimize.NewCampaigns(st, time.Now, logger, optimize.Options{}, optimize.CampaignHooks{})
	services := &optimize.Services{Experiments: opt, Funnels: funnels, Campaigns: camps}
	// allowPrivate: the tests' endpoints are on loopback; no worker runs, so
	// nothing is ever sent to them.
	hooks := webhook.NewService(st, ring, time.Now, true, nil)
	apiHandler := api.NewServer(api.Deps{Store: st, Optimizers: services, Webhooks: hooks, Logger: logger, Now: time.Now}, api.Options{})
	dash := New(Deps{Store: st, Optimizers: services, API: apiHandler, Logger: logger, Now: time.Now}, opts)
	srv := httptest.NewServer(Combine(apiHandler, dash))
	t.Cleanup(opt.Close)
	t.Cleanup(funnels.Close)
	t.Cleanup(camps.Close)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &env{t: t, st: st, opt: opt, funnels: funnels, camps: camps, dash: dash, srv: srv, admin: admin, logs: logs}
}

// key creates a key of the scope in the workspace.
func (e *env) key(workspaceID string, scope store.Scope) string {
	e.t.Helper()
	plain, k := apikey.New(workspaceID, string(scope), scope, time.Now())
	if err := e.st.CreateKey(context.Background(), k); err != nil {
		e.t.Fatal(err)
	}
	return plain
}

func (e *env) defaultWorkspace() string {
	e.t.Helper()
	ws, err := e.st.GetWorkspaceByName(context.Background(), apikey.DefaultWorkspace)
	if err != nil {
		e.t.Fatal(err)
	}
	return ws.ID
}

// api calls the HTTP API with a key and decodes a JSON answer into out
// (when not nil), failing the test on another status than want.
func (e *env) api(method, path, key string, body any, want int, out any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// createExperiment creates a running binary experiment through the API and
// returns its id.
func (e *env) createExperiment(key, expKey string, variants ...string) string {
	e.t.Helper()
	vs := []map[string]any{}
	for _, v := range variants {
		vs = append(vs, map[string]any{"key": v})
	}
	var out struct{ ID string }
	e.api("POST", "/v1/experiments", key, map[string]any{
		"key": expKey, "name": "Test " + expKey, "variants": vs, "start": true,
		"settings": map[string]any{"min_samples": 20, "seed": 7},
	}, 201, &out)
	return out.ID
}

// feed assigns n units and converts each with the rate of its variant.
func (e *env) feed(key, ref, prefix string, n int, rates map[string]float64) {
	e.t.Helper()
	units := make([]string, n)
	for i := range units {
		units[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	var as struct {
		Assignments []struct {
			UnitID  string  `json:"unit_id"`
			Variant *string `json:"variant"`
		}
	}
	e.api("POST", "/v1/experiments/"+ref+"/assign", key, map[string]any{"unit_ids": units}, 200, &as)
	seen := map[string]int{}
	var events []map[string]any
	for _, a := range as.Assignments {
		if a.Variant == nil {
			continue
		}
		v := *a.Variant
		seen[v]++
		// Deterministic: the first rate·count of each variant's units convert.
		if float64(seen[v]%100) < rates[v]*100 {
			events = append(events, map[string]any{"unit_id": a.UnitID})
		}
	}
	if len(events) > 0 {
		e.api("POST", "/v1/experiments/"+ref+"/events", key, map[string]any{"events": events}, 202, nil)
	}
}

// browser is one person's browser: a cookie jar, and redirects not followed
// so that tests see them.
type browser struct {
	e      *env
	client *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type response struct {
	Status int
	Header http.Header
	Body   string
}

func (b *browser) do(req *http.Request) response {
	b.e.t.Helper()
	res, err := b.client.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Header: res.Header, Body: string(body)}
}

func (b *browser) get(path string) response {
	b.e.t.Helper()
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	return b.do(req)
}

// post sends a form, with extra headers (say, Sec-Fetch-Site) when given.
func (b *browser) post(path string, form url.Values, headers ...string) response {
	b.e.t.Helper()
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

// signIn signs in with the key and fails the test unless it works.
func (b *browser) signIn(key string) {
	b.e.t.Helper()
	p := b.post("/signin", url.Values{"key": {key}})
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/experiments" {
		b.e.t.Fatalf("sign-in: status %d, location %q\n%s", p.Status, p.Header.Get("Location"), p.Body)
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token the forms of the page carry.
func (b *browser) csrf() string {
	b.e.t.Helper()
	p := b.get("/experiments")
	m := csrfRE.FindStringSubmatch(p.Body)
	if m == nil {
		b.e.t.Fatalf("no csrf token on the page:\n%s", p.Body)
	}
	return m[1]
}

var attrRE = regexp.MustCompile(`([a-z][a-z-]*)="([^"]*)"`)

// attrs parses the attributes of a start tag's text.
func attrs(tag string) map[string]string {
	m := map[string]string{}
	for _, a := range attrRE.FindAllStringSubmatch(tag, -1) {
		m[a[1]] = html.UnescapeString(a[2])
	}
	return m
}

// chart returns the text of the <svg data-chart="name"> element of the page.
func chart(t testing.TB, body, name string) string {
	t.Helper()
	i := strings.Index(body, `data-chart="`+name+`"`)
	if i < 0 {
		t.Fatalf("no %s chart on the page", name)
	}
	start := strings.LastIndex(body[:i], "<svg")
	end := strings.Index(body[i:], "</svg>")
	return body[start : i+end]
}

// tags returns the attributes of every start tag of the element name whose
// text contains marker.
func tags(s, element, marker string) []map[string]string {
	re := regexp.MustCompile(`<` + element + `\b[^>]*>`)
	var out []map[string]string
	for _, tag := range re.FindAllString(s, -1) {
		if strings.Contains(tag, marker) {
			out = append(out, attrs(tag))
		}
	}
	return out
}
