package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samplit/samplit/client"
	"github.com/samplit/samplit/internal/api"
)

// fault is what faults does to one matching request.
type fault struct {
	// status answers with this status (and a problem body, or the HTML of
	// a proxy when html is set) without reaching the API; 0 passes the
	// request through.
	status     int
	html       bool
	retryAfter string
	// drop runs the request on the API, throws the response away and
	// closes the connection: the server did the work, the client never
	// hears of it.
	drop bool
}

var (
	pass        = fault{}
	unavailable = fault{status: http.StatusServiceUnavailable}
	gatewayDown = fault{status: http.StatusBadGateway, html: true}
	timeout     = fault{status: http.StatusGatewayTimeout}
	drop        = fault{drop: true}
)

// faults sits in front of the API and applies its plan, one fault per
// matching request in order, then lets the rest through. It records every
// matching request's Idempotency-Key and User-Agent.
type faults struct {
	match func(*http.Request) bool
	plan  []fault

	mu     sync.Mutex
	hits   int
	keys   []string
	agents []string
}

// route matches requests by method and path suffix.
func route(method, suffix string) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.Method == method && strings.HasSuffix(r.URL.Path, suffix) }
}

func (f *faults) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !f.match(r) {
			next.ServeHTTP(w, r)
			return
		}
		f.mu.Lock()
		i := f.hits
		f.hits++
		f.keys = append(f.keys, r.Header.Get(client.IdempotencyHeader))
		f.agents = append(f.agents, r.Header.Get("User-Agent"))
		ft := pass // the plan is read under the lock: tests reset it between calls
		if i < len(f.plan) {
			ft = f.plan[i]
		}
		f.mu.Unlock()
		switch {
		case ft.drop:
			next.ServeHTTP(httptest.NewRecorder(), r)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			conn.Close()
		case ft.status != 0:
			if ft.retryAfter != "" {
				w.Header().Set("Retry-After", ft.retryAfter)
			}
			if ft.html {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(ft.status)
				fmt.Fprint(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
				return
			}
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(ft.status)
			fmt.Fprintf(w, `{"type":"%sunavailable","title":"Service unavailable","status":%d,"detail":"try later","request_id":%q}`,
				client.ProblemTypeBase, ft.status, r.Header.Get("X-Request-Id"))
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (f *faults) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits
}

// sleeps records the waits between attempts instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// faultyServer is a real server behind f, and a client of it whose waits
// between attempts are recorded in s. The client opens a connection per
// request so that net/http's own retry of requests on reused connections
// stays out of the counts.
func faultyServer(t *testing.T, f *faults, opts ...client.Option) (*testServer, *client.Client, *sleeps) {
	t.Helper()
	srv := newTestServer(t, serverConfig{wrap: f.wrap})
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	c := srv.client(t, append([]client.Option{client.WithHTTPClient(hc), client.WithRetry(4, 100*time.Millisecond)}, opts...)...)
	s := &sleeps{}
	client.SetSleep(c, s.sleep)
	return srv, c, s
}

func TestRetryDroppedEventsCountOnce(t *testing.T) {
	t.Parallel()
	f := &faults{match: route("POST", "/events"), plan: []fault{drop, unavailable}}
	_, c, s := faultyServer(t, f)
	ctx := t.Context()
	createBinary(t, c, "btn")
	units := []string{"u1", "u2", "u3", "u4", "u5"}
	if _, err := c.AssignMany(ctx, "btn", units); err != nil {
		t.Fatal(err)
	}
	var events []client.Event
	for _, u := range units {
		events = append(events, client.Event{UnitID: u, IdempotencyKey: "order-" + u})
	}
	res, err := c.TrackMany(ctx, "btn", events)
	if err != nil {
		t.Fatal(err)
	}
	// The first attempt was recorded; the one that got through found every
	// key seen before.
	if res.Accepted != 0 || res.Duplicates != 5 || len(res.Rejected) != 0 {
		t.Errorf("result %+v: want 5 duplicates", res)
	}
	if f.count() != 3 || len(s.all()) != 2 {
		t.Errorf("%d attempts, %d waits; want 3 and 2", f.count(), len(s.all()))
	}
	r, err := c.Results(ctx, "btn")
	if err != nil {
		t.Fatal(err)
	}
	var conv int64
	for _, v := range r.Variants {
		conv += v.Conversions
	}
	if conv != 5 {
		t.Errorf("%d conversions counted, want 5", conv)
	}

	// One event with a key is retried too.
	f.mu.Lock()
	f.hits, f.plan = 0, []fault{drop}
	f.mu.Unlock()
	one, err := c.Track(ctx, "btn", client.Event{UnitID: "u1", IdempotencyKey: "order-u1-again"})
	if err != nil || one.Accepted+one.Duplicates != 1 || f.count() != 2 {
		t.Errorf("single keyed event: %+v, %v after %d attempts", one, err, f.count())
	}
}

func TestNoRetryWithoutIdempotency(t *testing.T) {
	t.Parallel()
	f := &faults{match: route("POST", "/events")}
	_, c, s := faultyServer(t, f)
	ctx := t.Context()
	createBinary(t, c, "btn")
	if _, err := c.AssignMany(ctx, "btn", []string{"u1", "u2", "u3"}); err != nil {
		t.Fatal(err)
	}
	reset := func(plan ...fault) {
		f.mu.Lock()
		f.hits, f.plan = 0, plan
		f.mu.Unlock()
	}

	// A 503 is returned as it is.
	reset(unavailable)
	_, err := c.Track(ctx, "btn", client.Event{UnitID: "u1"})
	if client.StatusOf(err) != http.StatusServiceUnavailable || f.count() != 1 {
		t.Errorf("event without key after a 503: %v, %d attempts; want the 503 after 1", err, f.count())
	}
	// A dropped connection: a network error, sent once, and counted once
	// since the server did receive it.
	reset(drop)
	_, err = c.Track(ctx, "btn", client.Event{UnitID: "u2"})
	if err == nil || client.StatusOf(err) != 0 || f.count() != 1 {
		t.Errorf("event without key, dropped: %v, %d attempts; want a network error after 1", err, f.count())
	}
	// A batch with one event without a key is not retried either.
	reset(unavailable)
	_, err = c.TrackMany(ctx, "btn", []client.Event{{UnitID: "u3", IdempotencyKey: "k3"}, {UnitID: "u1"}})
	if client.StatusOf(err) != http.StatusServiceUnavailable || f.count() != 1 {
		t.Errorf("batch with an unkeyed event: %v after %d attempts", err, f.count())
	}
	if len(s.all()) != 0 {
		t.Errorf("waited %v before retries that must not happen", s.all())
	}
	r, err := c.Results(ctx, "btn")
	if err != nil {
		t.Fatal(err)
	}
	var conv int64
	for _, v := range r.Variants {
		conv += v.Conversions
	}
	if conv != 1 {
		t.Errorf("%d conversions, want 1 (u2's dropped event)", conv)
	}
}

func TestRetryCreateIsIdempotent(t *testing.T) {
	t.Parallel()
	f := &faults{match: route("POST", "/v1/experiments"), plan: []fault{drop, timeout}}
	srv, c, _ := faultyServer(t, f, client.WithUserAgent("checkout-service/2"))
	ctx := t.Context()
	e := createBinary(t, c, "once")
	if f.count() != 3 || f.keys[0] == "" || f.keys[0] != f.keys[1] || f.keys[1] != f.keys[2] {
		t.Errorf("%d attempts with keys %q: want 3 with one key", f.count(), f.keys)
	}
	if f.agents[0] != "checkout-service/2" {
		t.Errorf("User-Agent %q", f.agents[0])
	}
	page, err := c.ListExperiments(ctx, client.ListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].ID != e.ID {
		t.Errorf("%d experiments after a retried creation; want 1 with id %s", len(page.Items), e.ID)
	}

	// Each creation gets its own key.
	createBinary(t, c, "twice")
	if f.keys[3] == f.keys[0] {
		t.Error("two creations shared an Idempotency-Key")
	}
	// A key of the caller's: the same request again gets the first answer,
	// another request with it is refused.
	req := client.CreateExperimentRequest{Key: "mine", Variants: []client.VariantSpec{{Key: "a"}, {Key: "b"}}}
	first, err := c.CreateExperiment(ctx, req, client.WithIdempotencyKey("job-42"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.CreateExperiment(ctx, req, client.WithIdempotencyKey("job-42"))
	if err != nil || second.ID != first.ID {
		t.Errorf("repeat with the same key: %+v, %v; want experiment %s", second, err, first.ID)
	}
	if got := f.keys[len(f.keys)-1]; got != "job-42" {
		t.Errorf("sent key %q, want job-42", got)
	}
	req.Key = "other"
	if _, err := c.CreateExperiment(ctx, req, client.WithIdempotencyKey("job-42")); !client.IsInvalid(err) {
		t.Errorf("the key with another request: %v, want a 422", err)
	}
	// A key whose creation failed replays the failure, and the client does
	// not retry the 409.
	before := f.count()
	if _, err := client.New(srv.URL, srv.Admin).CreateExperiment(ctx, client.CreateExperimentRequest{Key: "once", Variants: req.Variants}); !client.IsConflict(err) || f.count() != before+1 {
		t.Errorf("creating a taken key: %v after %d attempts", err, f.count()-before)
	}
}

func TestRetryTransition(t *testing.T) {
	t.Parallel()
	f := &faults{match: route("POST", "/pause"), plan: []fault{drop}}
	_, c, _ := faultyServer(t, f)
	createBinary(t, c, "btn")
	// Without the key, the retry would find the experiment paused already
	// and answer 409; with it, it gets the first response.
	e, err := c.PauseExperiment(t.Context(), "btn")
	if err != nil || e.Status != client.StatusPaused || f.count() != 2 {
		t.Errorf("pause: %+v, %v after %d attempts", e, err, f.count())
	}
}

func TestRetryReadsAndAssignments(t *testing.T) {
	t.Parallel()
	f := &faults{match: func(r *http.Request) bool { return true }}
	_, c, s := faultyServer(t, f)
	ctx := t.Context()
	reset := func(plan ...fault) {
		f.mu.Lock()
		f.hits, f.plan = 0, plan
		f.mu.Unlock()
	}
	createBinary(t, c, "btn")

	reset(unavailable, gatewayDown, timeout)
	if _, err := c.Results(ctx, "btn"); err != nil || f.count() != 4 {
		t.Errorf("results after 503, 502, 504: %v after %d attempts", err, f.count())
	}
	// Backoff with equal jitter: in [d/2, d] for d = 100ms, 200ms, 400ms.
	for i, d := range s.all() {
		hi := 100 * time.Millisecond << i
		if d < hi/2 || d > hi {
			t.Errorf("wait %d: %v, want between %v and %v", i+1, d, hi/2, hi)
		}
	}

	reset(drop)
	a, err := c.Assign(ctx, "btn", "u1")
	if err != nil || f.count() != 2 {
		t.Fatalf("assign after a dropped connection: %v after %d attempts", err, f.count())
	}
	// The dropped attempt made the assignment; the retry returned it.
	if a.New {
		t.Errorf("assignment %+v: the retry should find the first attempt's assignment", a)
	}
	reset(drop)
	if as, err := c.AssignMany(ctx, "btn", []string{"u1", "u2"}); err != nil || len(as) != 2 || as[0].Variant != a.Variant {
		t.Errorf("assign many after a dropped connection: %+v, %v", as, err)
	}

	reset(unavailable, unavailable, unavailable, unavailable, unavailable)
	_, err = c.GetExperiment(ctx, "btn", client.WithRequestID("trace-123"))
	e := apiError(t, err)
	if e.Status != 503 || f.count() != 4 || e.RequestID != "trace-123" {
		t.Errorf("after every attempt failed: %v (request id %q) after %d attempts; want the 503 after 4", err, e.RequestID, f.count())
	}

	reset()
	if _, err := c.GetExperiment(ctx, "nope"); !client.IsNotFound(err) || f.count() != 1 {
		t.Errorf("404: %v after %d attempts; want no retry", err, f.count())
	}

	// Funnel progress is sticky, so retried.
	if _, err := c.CreateFunnel(ctx, signup("fun", true)); err != nil {
		t.Fatal(err)
	}
	reset(drop, unavailable)
	p, err := c.Progress(ctx, "fun", client.ProgressRequest{UnitID: "u1", Step: "landing"})
	if err != nil || p.New || f.count() != 3 {
		t.Errorf("progress: %+v, %v after %d attempts", p, err, f.count())
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	f := &faults{match: route("GET", "/results")}
	_, c, s := faultyServer(t, f)
	ctx := t.Context()
	createBinary(t, c, "btn")
	reset := func(plan ...fault) {
		f.mu.Lock()
		f.hits, f.plan = 0, plan
		f.mu.Unlock()
		s.mu.Lock()
		s.d = nil
		s.mu.Unlock()
	}

	reset(fault{status: 429, retryAfter: "3"})
	if _, err := c.Results(ctx, "btn"); err != nil || f.count() != 2 {
		t.Fatalf("after a 429: %v after %d attempts", err, f.count())
	}
	if got := s.all(); len(got) != 1 || got[0] != 3*time.Second {
		t.Errorf("waited %v, want the 3s of Retry-After", got)
	}

	reset(fault{status: 503, retryAfter: time.Now().Add(5 * time.Second).UTC().Format(http.TimeFormat)})
	if _, err := c.Results(ctx, "btn"); err != nil {
		t.Fatal(err)
	}
	if got := s.all(); len(got) != 1 || got[0] < 3*time.Second || got[0] > 5*time.Second {
		t.Errorf("waited %v, want about 5s (an HTTP-date Retry-After)", got)
	}

	// Longer than MaxRetryDelay: no wait, the 429 at once.
	reset(fault{status: 429, retryAfter: "3600"})
	if _, err := c.Results(ctx, "btn"); !client.IsRateLimited(err) || f.count() != 1 || len(s.all()) != 0 {
		t.Errorf("an hour's Retry-After: %v after %d attempts and waits %v", err, f.count(), s.all())
	}

	// Cancelled while waiting: the context's error, and the last failure.
	reset(unavailable)
	cctx, cancel := context.WithCancel(ctx)
	client.SetSleep(c, func(ctx context.Context, d time.Duration) error { cancel(); return ctx.Err() })
	_, err := c.Results(cctx, "btn")
	if !errors.Is(err, context.Canceled) || client.StatusOf(err) != 503 || f.count() != 1 {
		t.Errorf("cancelled while waiting: %v after %d attempts", err, f.count())
	}
}

// TestRetryRateLimit runs against the server's real per-key rate limiter:
// a burst of one request, a token back every 200 ms, and Retry-After: 1.
func TestRetryRateLimit(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{opts: api.Options{RateLimit: 5, RateBurst: 1}})
	c := srv.client(t)
	var mu sync.Mutex
	var waits []time.Duration
	client.SetSleep(c, func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		time.Sleep(250 * time.Millisecond) // enough for a token, less than the second asked
		return nil
	})
	for i := range 3 {
		if _, err := c.ListExperiments(t.Context(), client.ListParams{}); err != nil {
			t.Fatalf("list %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(waits) == 0 || waits[0] != time.Second {
		t.Errorf("waits %v: want at least one of the server's Retry-After: 1", waits)
	}
}

func TestBackoff(t *testing.T) {
	c := client.New("http://localhost", "k", client.WithRetry(10, 100*time.Millisecond))
	for range 100 {
		for attempt, hi := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 30: client.MaxRetryDelay} {
			if d := client.Backoff(c, attempt); d < hi/2 || d > hi {
				t.Fatalf("backoff %d = %v, want in [%v, %v]", attempt, d, hi/2, hi)
			}
		}
	}
}

func TestRetryOff(t *testing.T) {
	t.Parallel()
	f := &faults{match: route("GET", "/v1/experiments/btn"), plan: []fault{gatewayDown}}
	_, c, _ := faultyServer(t, f, client.WithRetry(1, 0))
	createBinary(t, c, "btn")
	_, err := c.GetExperiment(t.Context(), "btn")
	e := apiError(t, err)
	// Not a problem: the status, its text, and the start of the body.
	if e.Status != 502 || e.Title != "Bad Gateway" || e.Code() != "" || !strings.Contains(e.Detail, "502 Bad Gateway") || f.count() != 1 {
		t.Errorf("proxy error page: %+v after %d attempts", e, f.count())
	}
	if e.RequestID != "" {
		t.Errorf("request id %q from a proxy that sent none", e.RequestID)
	}
}
