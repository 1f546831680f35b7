package webhook

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/samplit/samplit/client"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/seal"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/backend"
	"github.com/samplit/samplit/internal/store/dbtest"
)

// clock is a settable clock shared by the service, the worker and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a real SQLite store with a workspace, a keyring and a service.
type fixture struct {
	t     *testing.T
	st    store.Store
	ring  *seal.Keyring
	ws    string
	svc   *Service
	clock *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := backend.Open(t.Context(), dbtest.SQLite(t), backend.Options{AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var material [seal.KeySize]byte
	rand.Read(material[:])
	k, _ := seal.NewKey(material[:])
	ring, _ := seal.NewKeyring(k)
	ws := store.Workspace{ID: id.New(id.Workspace), Name: "w", CreatedAt: time.Now()}
	if err := st.CreateWorkspace(t.Context(), ws); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now().UTC()}
	return &fixture{t: t, st: st, ring: ring, ws: ws.ID, clock: c, svc: NewService(st, ring, c.Now, true, nil)}
}

// endpoint registers url for the event types and returns it with its secret.
func (f *fixture) endpoint(url string, types ...store.EventType) (store.Webhook, string) {
	f.t.Helper()
	w, secret, err := f.svc.Create(f.t.Context(), store.Webhook{WorkspaceID: f.ws, URL: url, Events: types})
	if err != nil {
		f.t.Fatal(err)
	}
	return w, secret
}

func (f *fixture) emit(typ store.EventType) store.OutboxEvent {
	f.t.Helper()
	ev := NewEvent(typ, f.ws, f.clock.Now(), map[string]any{"hello": "world"})
	if err := f.st.EmitEvents(f.t.Context(), ev); err != nil {
		f.t.Fatal(err)
	}
	return ev
}

func (f *fixture) worker(opts Options) *Worker {
	if opts.Now == nil {
		opts.Now = f.clock.Now
	}
	opts.AllowPrivate = opts.AllowPrivate || opts.Client == nil
	if opts.PollInterval == 0 {
		opts.PollInterval = 5 * time.Millisecond
	}
	return NewWorker(f.st, f.ring, opts)
}

func (f *fixture) deliveries(hook string) []store.Delivery {
	f.t.Helper()
	list, err := f.st.ListDeliveries(f.t.Context(), f.ws, hook, store.ListParams{Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	return list
}

// drain polls until no delivery is due at the clock's time and none is in
// flight.
func drain(t *testing.T, w *Worker, st store.Store, now func() time.Time) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if err := w.Poll(t.Context()); err != nil {
			t.Fatal(err)
		}
		w.Wait()
		due, err := st.DeliveriesDue(t.Context(), now())
		if err != nil {
			t.Fatal(err)
		}
		if !due {
			return
		}
	}
	t.Fatal("deliveries still due after 20s")
}

// request is what a receiver saw.
type request struct {
	header http.Header
	body   []byte
}

// receiver is a real local HTTP endpoint that records requests and answers
// with what answer returns for the n-th request (from 1).
func receiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) (*httptest.Server, func() []request) {
	var mu sync.Mutex
	var got []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, request{r.Header.Clone(), body})
		n := len(got)
		mu.Unlock()
		answer(n, w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []request {
		mu.Lock()
		defer mu.Unlock()
		return append([]request(nil), got...)
	}
}

func ok(int, http.ResponseWriter, *http.Request) {}

func TestDeliverySignedAndVerified(t *testing.T) {
	f := newFixture(t)
	srv, got := receiver(t, ok)
	hook, secret := f.endpoint(srv.URL+"/hook", store.EventExperimentWinnerFound)
	f.endpoint(srv.URL+"/other", store.EventExperimentStarted) // not subscribed
	ev := f.emit(store.EventExperimentWinnerFound)
	drain(t, f.worker(Options{}), f.st, f.clock.Now)

	reqs := got()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if err := client.VerifyWebhook(secret, r.header, r.body, f.clock.Now()); err != nil {
		t.Fatalf("the client helper refuses the delivery: %v", err)
	}
	if r.header.Get("webhook-id") != ev.ID {
		t.Errorf("webhook-id %q, want the event id %q", r.header.Get("webhook-id"), ev.ID)
	}
	var p Payload
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	if p.ID != ev.ID || p.Type != string(store.EventExperimentWinnerFound) || p.WorkspaceID != f.ws || string(p.Data) != `{"hello":"world"}` || p.CreatedAt == "" {
		t.Errorf("payload %s", r.body)
	}
	tampered := append([]byte(nil), r.body...)
	tampered[len(tampered)-2] = 'X'
	if err := client.VerifyWebhook(secret, r.header, tampered, f.clock.Now()); !errors.Is(err, client.ErrWebhookSignature) {
		t.Errorf("tampered body: %v", err)
	}
	ds := f.deliveries(hook.ID)
	if len(ds) != 1 || ds[0].Status != store.DeliverySucceeded || len(ds[0].AttemptLog) != 1 || ds[0].AttemptLog[0].StatusCode != 200 {
		t.Errorf("delivery log: %+v", ds)
	}
}

func TestRetriesKeepTheWebhookID(t *testing.T) {
	f := newFixture(t)
	const failures = 3
	srv, got := receiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= failures {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		}
	})
	hook, secret := f.endpoint(srv.URL, store.EventExperimentStarted)
	ev := f.emit(store.EventExperimentStarted)
	w := f.worker(Options{Schedule: []time.Duration{time.Second, time.Second, time.Second, time.Second}, Jitter: -1})
	for range failures + 1 {
		drain(t, w, f.st, f.clock.Now)
		f.clock.Add(time.Second)
	}
	reqs := got()
	if len(reqs) != failures+1 {
		t.Fatalf("receiver got %d requests, want %d", len(reqs), failures+1)
	}
	for i, r := range reqs {
		if r.header.Get("webhook-id") != ev.ID {
			t.Errorf("attempt %d: webhook-id %q, want %q", i+1, r.header.Get("webhook-id"), ev.ID)
		}
		if err := client.VerifyWebhook(secret, r.header, r.body, f.clock.Now()); err != nil {
			t.Errorf("attempt %d: %v", i+1, err)
		}
	}
	ds := f.deliveries(hook.ID)
	if len(ds) != 1 || ds[0].Status != store.DeliverySucceeded || len(ds[0].AttemptLog) != failures+1 {
		t.Fatalf("delivery: %+v", ds)
	}
	for i, a := range ds[0].AttemptLog[:failures] {
		if a.StatusCode != 503 || !strings.Contains(a.Error, "503") {
			t.Errorf("attempt %d logged as %+v", i+1, a)
		}
	}
}

func TestHangingEndpointDoesNotBlockOthers(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	hang, _ := receiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	fast, got := receiver(t, ok)
	slowHook, _ := f.endpoint(hang.URL, store.EventExperimentStarted)
	f.endpoint(fast.URL, store.EventExperimentPaused)
	for range 6 { // more than the hanging endpoint may have in flight
		f.emit(store.EventExperimentStarted)
	}
	// The property is an order, not a speed: the fast endpoint is served
	// while every hanging attempt is still hanging (none has timed out).
	// A worker that let the hanging endpoint take all its slots would
	// serve the fast one only after the first timeout.
	const timeout = time.Second
	w := f.worker(Options{Timeout: timeout, Concurrency: 4, PerEndpoint: 2, Schedule: []time.Duration{time.Hour}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	time.Sleep(50 * time.Millisecond) // the hanging endpoint's slots are taken
	start := time.Now()
	f.emit(store.EventExperimentPaused)
	for len(got()) == 0 {
		if time.Since(start) > timeout {
			t.Fatalf("the fast endpoint got nothing within %v while another hangs", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("fast endpoint delivered in %v while the slow one hangs", time.Since(start))
	for _, d := range f.deliveries(slowHook.ID) {
		for _, a := range d.AttemptLog {
			t.Fatalf("the fast endpoint was served only after a hanging attempt ended: %+v", a)
		}
	}

	// The hanging attempts time out and are logged as such.
	deadline := time.Now().Add(10 * time.Second)
	for {
		timedOut := 0
		for _, d := range f.deliveries(slowHook.ID) {
			for _, a := range d.AttemptLog {
				if a.Error == "timed out" && a.StatusCode == 0 {
					timedOut++
				}
			}
		}
		if timedOut == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 6 hanging attempts logged as timed out", timedOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSecretRotationSignsWithBoth(t *testing.T) {
	f := newFixture(t)
	srv, got := receiver(t, ok)
	hook, oldSecret := f.endpoint(srv.URL, store.EventPing)
	_, newSecret, err := f.svc.RotateSecret(t.Context(), f.ws, hook.ID)
	if err != nil {
		t.Fatal(err)
	}
	if newSecret == oldSecret || !strings.HasPrefix(newSecret, SecretPrefix) {
		t.Fatalf("rotation returned %q", newSecret)
	}
	w := f.worker(Options{})
	f.emit(store.EventPing)
	drain(t, w, f.st, f.clock.Now)
	f.clock.Add(RotationOverlap + time.Second)
	f.emit(store.EventPing)
	drain(t, w, f.st, f.clock.Now)

	reqs := got()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests", len(reqs))
	}
	during, after := reqs[0], reqs[1]
	if n := len(strings.Fields(during.header.Get("webhook-signature"))); n != 2 {
		t.Errorf("during the overlap: %d signatures, want 2", n)
	}
	for _, s := range []string{oldSecret, newSecret} {
		if err := client.VerifyWebhook(s, during.header, during.body, f.clock.Now().Add(-RotationOverlap)); err != nil {
			t.Errorf("during the overlap, a receiver with one of the secrets refuses: %v", err)
		}
	}
	if n := len(strings.Fields(after.header.Get("webhook-signature"))); n != 1 {
		t.Errorf("after the overlap: %d signatures, want 1", n)
	}
	if err := client.VerifyWebhook(newSecret, after.header, after.body, f.clock.Now()); err != nil {
		t.Errorf("after the overlap, the new secret: %v", err)
	}
	if err := client.VerifyWebhook(oldSecret, after.header, after.body, f.clock.Now()); err == nil {
		t.Errorf("after the overlap, the old secret still verifies")
	}
}

func TestEndpointDisabledAfterTheSchedule(t *testing.T) {
	f := newFixture(t)
	broken, _ := receiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", 500) })
	healthy, got := receiver(t, ok)
	bad, _ := f.endpoint(broken.URL, store.EventExperimentStarted)
	good, _ := f.endpoint(healthy.URL, store.EventExperimentStarted)
	f.emit(store.EventExperimentStarted)
	schedule := []time.Duration{time.Hour, 24 * time.Hour, 48 * time.Hour}
	w := f.worker(Options{Schedule: schedule, Jitter: -1})
	for _, d := range append([]time.Duration{0}, schedule...) {
		f.clock.Add(d)
		drain(t, w, f.st, f.clock.Now)
	}
	hook, err := f.st.GetWebhook(t.Context(), f.ws, bad.ID)
	if err != nil {
		t.Fatal(err)
	}
	if hook.Enabled || hook.DisabledReason == "" {
		t.Fatalf("endpoint failing for the whole schedule: enabled %v", hook.Enabled)
	}
	ds := f.deliveries(bad.ID)
	if len(ds) != 1 || ds[0].Status != store.DeliveryFailed || len(ds[0].AttemptLog) != len(schedule)+1 {
		t.Fatalf("failed delivery: %+v", ds)
	}
	// The healthy endpoint of the workspace is unaffected: it got its event
	// and gets the next, which the disabled one does not.
	f.emit(store.EventExperimentStarted)
	drain(t, w, f.st, f.clock.Now)
	if n := len(got()); n != 2 {
		t.Errorf("healthy endpoint got %d deliveries, want 2", n)
	}
	if h, _ := f.st.GetWebhook(t.Context(), f.ws, good.ID); !h.Enabled {
		t.Errorf("healthy endpoint disabled")
	}
	if n := len(f.deliveries(bad.ID)); n != 1 {
		t.Errorf("a disabled endpoint was queued a new delivery (%d)", n)
	}
}

// staticResolver resolves names from a map, so tests need no DNS.
type staticResolver map[string][]string

func (r staticResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range r[host] {
		out = append(out, netip.MustParseAddr(s))
	}
	if len(out) == 0 {
		return nil, errors.New("no such host")
	}
	return out, nil
}

func TestCheckURLRefusesPrivateAddresses(t *testing.T) {
	res := staticResolver{
		"hooks.example.com": {"93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"},
		"rebind.example":    {"93.184.215.14", "10.1.2.3"}, // one bad address is enough
		"metadata.example":  {"fd00:ec2::254"},
		"localhost":         {"127.0.0.1", "::1"},
	}
	tests := []struct {
		url     string
		private bool
		ok      bool
	}{
		{"https://hooks.example.com/x", false, true},
		{"https://93.184.215.14/x", false, true},
		{"http://hooks.example.com/x", false, false},
		{"https://127.0.0.1/x", false, false},
		{"https://10.0.0.1/x", false, false},
		{"https://169.254.169.254/latest/meta-data", false, false},
		{"https://[::1]:8443/x", false, false},
		{"https://[fd00:ec2::254]/x", false, false},
		{"https://[::ffff:127.0.0.1]/x", false, false},
		// IPv6 forms that embed a refused IPv4 address (issue 14).
		{"https://[::127.0.0.1]/x", false, false},
		{"https://[::7f00:1]/x", false, false},
		{"https://[::ffff:0:7f00:1]/x", false, false},
		{"https://[2002:7f00:1::]/x", false, false},
		{"https://[2002:a9fe:a9fe::1]/x", false, false},                    // 6to4 of 169.254.169.254
		{"https://[2002:5db8:d70e::1]/x", false, true},                     // 6to4 of a public address
		{"https://[::5db8:d70e]/x", false, true},                           // IPv4-compatible public address
		{"https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x", false, false}, // Teredo
		// Documentation ranges.
		{"https://192.0.2.10/x", false, false},
		{"https://198.51.100.7/x", false, false},
		{"https://203.0.113.5/x", false, false},
		{"https://[2001:db8::1]/x", false, false},
		{"https://100.64.1.1/x", false, false},
		{"https://0.0.0.0/x", false, false},
		{"https://localhost/x", false, false},
		{"https://rebind.example/x", false, false},
		{"https://metadata.example/x", false, false},
		{"https://nowhere.example/x", false, false},
		{"https://user:pw@hooks.example.com/x", false, false},
		{"ftp://hooks.example.com/x", false, false},
		{"/relative", false, false},
		{"http://127.0.0.1:8080/x", true, true},
		{"https://localhost/x", true, true},
	}
	for _, tt := range tests {
		err := CheckURL(t.Context(), tt.url, tt.private, res)
		if (err == nil) != tt.ok {
			t.Errorf("CheckURL(%q, allowPrivate=%v) = %v, want ok=%v", tt.url, tt.private, err, tt.ok)
		}
	}
}

func TestDeliveryRefusesPrivateAddresses(t *testing.T) {
	f := newFixture(t)
	// Registered while private addresses were allowed (or DNS changed
	// since): the delivery-time check on the dialled address still refuses.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a request reached a loopback receiver")
	}))
	defer srv.Close()
	for _, u := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		hook, _ := f.endpoint(u, store.EventPing)
		if _, err := f.svc.Test(t.Context(), f.ws, hook.ID); err != nil {
			t.Fatal(err)
		}
		w := NewWorker(f.st, f.ring, Options{Now: f.clock.Now, Schedule: []time.Duration{time.Hour}}) // AllowPrivate false
		drain(t, w, f.st, f.clock.Now)
		ds := f.deliveries(hook.ID)
		if len(ds) != 1 || len(ds[0].AttemptLog) != 1 || !strings.Contains(ds[0].AttemptLog[0].Error, "refused") {
			t.Errorf("%s: delivery %+v", u, ds)
		}
	}
}

// fakeDue is a store whose only working method is DeliveriesDue: enough to
// watch the worker's polling.
type fakeDue struct {
	store.Webhooks
	polls atomic.Int64
}

func (f *fakeDue) DeliveriesDue(context.Context, time.Time) (bool, error) {
	f.polls.Add(1)
	return false, nil
}

// TestRunPollsAndKicks checks the worker's timing in a synctest bubble:
// one poll at start, one per PollInterval, one at once on Kick, and Run
// returns when its context ends.
func TestRunPollsAndKicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeDue{}
		w := NewWorker(st, nil, Options{PollInterval: time.Second, Client: http.DefaultClient})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx) }()
		synctest.Wait()
		if n := st.polls.Load(); n != 1 {
			t.Fatalf("%d polls at start, want 1", n)
		}
		time.Sleep(3*time.Second + time.Millisecond)
		synctest.Wait()
		if n := st.polls.Load(); n != 4 {
			t.Fatalf("%d polls after 3 intervals, want 4", n)
		}
		w.Kick()
		synctest.Wait()
		if n := st.polls.Load(); n != 5 {
			t.Fatalf("%d polls after a kick, want 5", n)
		}
		cancel()
		<-done
	})
}

// TestJitter checks the spread of the backoff.
func TestJitter(t *testing.T) {
	for _, r := range []float64{0, 0.5, 0.999} {
		w := NewWorker(nil, nil, Options{Rand: func() float64 { return r }, Client: http.DefaultClient})
		d := w.jitter(time.Hour)
		if d < 48*time.Minute || d > 72*time.Minute {
			t.Errorf("jitter(1h) with draw %v = %v, outside ±20%%", r, d)
		}
	}
	var total time.Duration
	for _, d := range DefaultSchedule {
		total += d
	}
	if total < 60*time.Hour || total > 80*time.Hour {
		t.Errorf("the default schedule spans %v, want about 3 days", total)
	}
}

// TestCheckAddrRefusesThisHost: every address of this machine's interfaces
// is refused, public ones included (this check dials nothing).
func TestCheckAddrRefusesThisHost(t *testing.T) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skip("no interface addresses:", err)
	}
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		if err := CheckAddr(p.Addr()); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("CheckAddr(%s) = %v, want a refusal (an address of this host)", p.Addr(), err)
		}
	}
}

// TestHTTPClientDoesNotFollowRedirects: a receiver that answers 3xx must not
// bounce Samplit to another URL (an internal one, say): the redirect is the
// attempt's answer, and its target is never requested.
func TestHTTPClientDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/internal", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/internal", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := NewHTTPClient(5*time.Second, true) // loopback allowed for the test server
	resp, err := c.Post(srv.URL+"/hook", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || followed.Load() != 0 {
		t.Errorf("status %d, redirect target requested %d times; want 307 and never", resp.StatusCode, followed.Load())
	}
}
