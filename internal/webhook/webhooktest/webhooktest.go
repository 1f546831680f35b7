// Package webhooktest is a real webhook endpoint on loopback for tests that
// check what the server tells its subscribers: it records every delivery
// with its type, the object it is about and when it arrived.
package webhooktest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Delivery is one request the receiver got.
type Delivery struct {
	ID   string // the webhook-id header: one per recorded event
	Type string
	// What is the object's key, then "/step" and "/variant" when the event
	// names them ("signup/landing", "cmp/s3").
	What string
	At   time.Time
}

// Receiver is the endpoint. Verify, when set before deliveries arrive,
// checks each request's signature; Unverified counts the failures.
type Receiver struct {
	URL string

	srv *httptest.Server
	mu  sync.Mutex
	got []Delivery
	// verify and unverified are under mu: the verifier is set once the
	// endpoint's secret is known, after the server has started.
	verify     func(http.Header, []byte) error
	unverified int
}

// New starts a receiver, closed when the test ends.
func New(t testing.TB) *Receiver {
	r := &Receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var p struct {
			Type string `json:"type"`
			Data struct {
				Experiment struct{ Key string } `json:"experiment"`
				Funnel     struct{ Key string } `json:"funnel"`
				Campaign   struct{ Key string } `json:"campaign"`
				Step       string               `json:"step"`
				Variant    string               `json:"variant"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &p)
		what := p.Data.Experiment.Key + p.Data.Funnel.Key + p.Data.Campaign.Key
		for _, s := range []string{p.Data.Step, p.Data.Variant} {
			if s != "" {
				what += "/" + s
			}
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.verify != nil && r.verify(req.Header, body) != nil {
			r.unverified++
		}
		r.got = append(r.got, Delivery{ID: req.Header.Get("webhook-id"), Type: p.Type, What: what, At: time.Now()})
	}))
	r.URL = r.srv.URL
	t.Cleanup(r.srv.Close)
	return r
}

// VerifyWith checks the signature of every later delivery with verify.
func (r *Receiver) VerifyWith(verify func(http.Header, []byte) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verify = verify
}

// Unverified is the number of deliveries whose signature failed.
func (r *Receiver) Unverified() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unverified
}

// Of returns the deliveries of the event type about what.
func (r *Receiver) Of(typ, what string) []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Delivery
	for _, g := range r.got {
		if g.Type == typ && g.What == what {
			out = append(out, g)
		}
	}
	return out
}

// Await waits for a delivery of the type about what and returns the first;
// the test fails after timeout.
func (r *Receiver) Await(t testing.TB, typ, what string, timeout time.Duration) Delivery {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if got := r.Of(typ, what); len(got) > 0 {
			return got[0]
		}
	}
	t.Fatalf("no %s about %s within %v", typ, what, timeout)
	return Delivery{}
}

// Once waits settle (some rounds of the deciders), then checks that the
// event arrived under exactly one webhook-id: it was recorded once, however
// many replicas evaluated it (a retried delivery keeps its id).
func (r *Receiver) Once(t testing.TB, typ, what string, settle time.Duration) {
	t.Helper()
	time.Sleep(settle)
	got := r.Of(typ, what)
	ids := map[string]bool{}
	for _, g := range got {
		ids[g.ID] = true
	}
	if len(ids) != 1 {
		t.Errorf("%s about %s recorded %d times, want once: %+v", typ, what, len(ids), got)
	}
}
