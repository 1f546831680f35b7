package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/samplit/samplit/internal/apikey"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/seal"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/backend"
	"github.com/samplit/samplit/internal/store/dbtest"
)

// env is one API server over HTTP on a real store, with the bootstrap admin
// key of its first workspace. Every response it receives is validated
// against the OpenAPI document (see validatingTransport), so every test is
// also a test of the document.
type env struct {
	t      testing.TB
	srv    *server
	http   *httptest.Server
	store  store.Store
	client *http.Client
	logs   *syncBuffer
	reg    *prometheus.Registry
	admin  string // admin key of the "default" workspace
	// ring seals the optimizer state; opt serves standard experiments.
	ring *seal.Keyring
	opt  *optimize.Experiments
}

// syncBuffer is a log sink safe for the server's goroutines.
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

// backends lists the stores the API tests run on: SQLite always, and
// PostgreSQL when SAMPLIT_TEST_POSTGRES_URL is set, each test in a fresh
// schema.
func backends(t testing.TB) []string {
	b := []string{"sqlite"}
	if dbtest.HasPostgres(t) {
		b = append(b, "postgres")
	}
	return b
}

// eachBackend runs f once per backend as a subtest.
func eachBackend(t *testing.T, opts Options, f func(t *testing.T, e *env)) {
	for _, b := range backends(t) {
		t.Run(b, func(t *testing.T) {
			f(t, newEnv(t, b, opts))
		})
	}
}

// openStore opens a fresh, migrated store of the backend.
func openStore(t testing.TB, kind string) store.Store {
	t.Helper()
	ctx := context.Background()
	dsn := dbtest.SQLite(t)
	if kind == "postgres" {
		dsn = dbtest.PostgresSchema(t, "api_test_")
	}
	st, err := backend.Open(ctx, dsn, backend.Options{AutoMigrate: true})
	if err != nil {
		t.Fatalf("open %s store: %v", kind, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newEnv(t testing.TB, kind string, opts Options) *env {
	t.Helper()
	return newEnvWith(t, kind, opts, optimize.Options{})
}

// newEnvWith is newEnv with options for the standard experiment optimizer
// (e.g. a short RefreshEvery so that a test sees the allocation learn).
func newEnvWith(t testing.TB, kind string, opts Options, oo optimize.Options) *env {
	t.Helper()
	st := openStore(t, kind)
	admin, created, err := apikey.Bootstrap(context.Background(), st, "", time.Now())
	if err != nil || !created {
		t.Fatalf("bootstrap: created=%v err=%v", created, err)
	}
	return serveEnv(t, st, admin, testKeyring(t), opts, oo)
}

// testKeyring returns a keyring with one fresh random state key.
func testKeyring(t testing.TB) *seal.Keyring {
	t.Helper()
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
	return ring
}

// serveEnv starts a server (with its own optimizer) over the store.
func serveEnv(t testing.TB, st store.Store, admin string, ring *seal.Keyring, opts Options, oo optimize.Options) *env {
	t.Helper()
	logs := &syncBuffer{}
	var sink io.Writer = logs
	if _, ok := t.(*testing.B); ok {
		// A benchmark's log would grow without bound, and copying it
		// took a tenth of the profile of BenchmarkAssignNewUnit.
		sink = io.Discard
	}
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewJSONHandler(sink, nil))
	opt := optimize.NewExperiments(st, ring, time.Now, logger, oo)
	srv := newServer(Deps{Store: st, Optimizers: &optimize.Services{Experiments: opt}, Logger: logger, Now: time.Now, Registry: reg}, opts)
	hs := httptest.NewServer(srv)
	// Cleanups run last-in first-out: the listener closes, then the
	// optimizer commits what is queued, then (registered earlier) the store
	// closes.
	t.Cleanup(opt.Close)
	t.Cleanup(hs.Close)
	e := &env{t: t, srv: srv, http: hs, store: st, logs: logs, reg: reg, admin: admin, ring: ring, opt: opt}
	e.client = &http.Client{Transport: &validatingTransport{t: t, srv: srv, next: http.DefaultTransport}}
	return e
}

// restart returns a second server over the same database, key and state
// key, with an optimizer of its own and nothing in memory: what a restart
// or another replica sees.
func (e *env) restart(oo optimize.Options) *env {
	e.t.Helper()
	return serveEnv(e.t, e.store, e.admin, e.ring, Options{}, oo)
}

// response is what a test looks at.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map.
func (r response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// fields returns the field names of a problem's errors.
func (r response) fields(t testing.TB) []string {
	t.Helper()
	var p problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("not a problem: %v\n%s", err, r.Body)
	}
	out := []string{}
	for _, f := range p.Errors {
		out = append(out, f.Field)
	}
	return out
}

// req sends a request with the key (none when empty) and the body (none
// when empty) and extra headers as name, value pairs.
func (e *env) req(method, path, key, body string, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequest(method, e.http.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.client.Do(r)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// must sends the request and fails the test unless the status is want.
func (e *env) must(want int, method, path, key, body string, headers ...string) response {
	e.t.Helper()
	r := e.req(method, path, key, body, headers...)
	if r.Status != want {
		e.t.Fatalf("%s %s: status %d, want %d\n%s", method, path, r.Status, want, r.Body)
	}
	return r
}

// key stores a new key with the scope in the workspace and returns it.
func (e *env) key(workspaceID string, scope store.Scope) string {
	e.t.Helper()
	plain, k := apikey.New(workspaceID, string(scope), scope, time.Now())
	if err := e.store.CreateKey(context.Background(), k); err != nil {
		e.t.Fatal(err)
	}
	return plain
}

// defaultWorkspace returns the id of the bootstrap workspace.
func (e *env) defaultWorkspace() string {
	e.t.Helper()
	ws, err := e.store.GetWorkspaceByName(context.Background(), apikey.DefaultWorkspace)
	if err != nil {
		e.t.Fatal(err)
	}
	return ws.ID
}

// count returns how many experiments the workspace has, read from the store.
func (e *env) count(workspaceID string) int {
	e.t.Helper()
	list, err := e.store.ListExperiments(context.Background(), workspaceID, store.ListParams{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(list)
}

// createExperiment creates a simple two-variant experiment with the key.
func (e *env) createExperiment(key, apiKey string, start bool) map[string]any {
	e.t.Helper()
	body := fmt.Sprintf(`{"key":%q,"metric":"binary","variants":[{"key":"control"},{"key":"green"}],"start":%v}`, key, start)
	return e.must(http.StatusCreated, "POST", "/v1/experiments", apiKey, body).JSON(e.t)
}

// openAPIDoc loads the served document once for all tests.
var openAPIDoc = sync.OnceValues(func() (*openapi3.T, error) {
	raw, err := openAPIJSON()
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is invalid: %w", err)
	}
	return doc, nil
})

// validatingTransport checks every response of a matched route against the
// OpenAPI document: its status must be documented for the operation and
// its body must match the schema. The operation is found with the server's
// own ServeMux, so routing in the test is the routing of the server.
type validatingTransport struct {
	t    testing.TB
	srv  *server
	next http.RoundTripper
}

func (vt *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := vt.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	_, pattern := vt.srv.mux.Handler(req)
	if pattern == "" || pattern == "/" {
		return resp, nil // not a route of the API (a 404 or 405 problem)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := validateResponse(req, pattern, resp.StatusCode, resp.Header, body); err != nil {
		vt.t.Errorf("%s %s → %d does not match the OpenAPI document: %v\nbody: %s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
	return resp, nil
}

// validateResponse validates one response of the route pattern.
func validateResponse(req *http.Request, pattern string, status int, header http.Header, body []byte) error {
	doc, err := openAPIDoc()
	if err != nil {
		return err
	}
	method, path, _ := strings.Cut(pattern, " ")
	item := doc.Paths.Value(path)
	if item == nil {
		return fmt.Errorf("path %s not documented", path)
	}
	op := item.GetOperation(method)
	if op == nil {
		return fmt.Errorf("%s %s not documented", method, path)
	}
	params := map[string]string{}
	ps, rs := strings.Split(path, "/"), strings.Split(req.URL.Path, "/")
	for i := range ps {
		if strings.HasPrefix(ps[i], "{") && i < len(rs) {
			params[strings.Trim(ps[i], "{}")] = rs[i]
		}
	}
	route := &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	input.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), input)
}
