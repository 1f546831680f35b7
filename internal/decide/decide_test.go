package decide_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/api"
	"github.com/samplit/samplit/internal/apikey"
	"github.com/samplit/samplit/internal/decide"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/seal"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/backend"
	"github.com/samplit/samplit/internal/store/dbtest"
	"github.com/samplit/samplit/internal/webhook"
	"github.com/samplit/samplit/internal/webhook/webhooktest"
)

// every is the decision loops' period in these tests. The bound checked is
// the (an event within twice the period of its data); 200 ms made
// that bound 400 ms of wall time, which a loaded 2-core CI machine under
// -race exceeded now and then, so the period is longer than the server's
// would need.
const every = 500 * time.Millisecond

// env is a server over one database with several in-process replicas'
// decision loops: the API (nobody reads results), the webhook worker,
// and a receiver subscribed to every event.
type env struct {
	t    *testing.T
	st   store.Store
	base string
	key  string
	recv *webhooktest.Receiver
	ws   string
}

// loops is how many decision loops (replicas) run over the database. Zero
// is the mutation "decisions only on read": the tests must fail.
var loops = 3

func newEnv(t *testing.T, dsn string) *env {
	t.Helper()
	ctx := t.Context()
	st, err := backend.Open(ctx, dsn, backend.Options{AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var m [seal.KeySize]byte
	_, _ = rand.Read(m[:])
	k, err := seal.NewKey(m[:])
	if err != nil {
		t.Fatal(err)
	}
	ring, err := seal.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	experiments := optimize.NewExperiments(st, ring, time.Now, logger, optimize.Options{})
	funnels := optimize.NewFunnels(st, time.Now, logger, optimize.Options{})
	campaigns := optimize.NewCampaigns(st, time.Now, logger, optimize.Options{}, optimize.CampaignHooks{})
	t.Cleanup(func() { experiments.Close(); funnels.Close(); campaigns.Close() })
	key, _, err := apikey.Bootstrap(ctx, st, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ws, err := st.GetWorkspaceByName(ctx, apikey.DefaultWorkspace)
	if err != nil {
		t.Fatal(err)
	}
	services := &optimize.Services{Experiments: experiments, Funnels: funnels, Campaigns: campaigns}
	handler := api.NewServer(api.Deps{
		Store: st, Optimizers: services,
		Webhooks: webhook.NewService(st, ring, time.Now, true, nil), Logger: logger, Now: time.Now,
	}, api.Options{})
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)

	worker := webhook.NewWorker(st, ring, webhook.Options{AllowPrivate: true, Logger: logger})
	var wg sync.WaitGroup
	wctx, stop := context.WithCancel(context.Background())
	wg.Go(func() { worker.Run(wctx) })
	for i := range loops {
		l := decide.New(st, decide.Optimizers{Services: services},
			decide.Options{Every: every, Owner: fmt.Sprintf("replica-%d", i+1), Logger: logger, Evaluated: worker.Kick})
		wg.Go(func() { l.Run(wctx) })
	}
	t.Cleanup(func() { stop(); wg.Wait() })

	e := &env{t: t, st: st, base: srv.URL, key: key, recv: webhooktest.New(t), ws: ws.ID}
	e.call("POST", "/v1/webhooks", map[string]any{"url": e.recv.URL, "events": []string{
		"experiment.completed", "experiment.winner_found", "experiment.srm_detected", "experiment.no_difference",
		"experiment.guardrail_tripped", "funnel.winner_found", "funnel.no_difference", "campaign.winner_found", "campaign.no_difference", "campaign.guardrail_tripped"}}, nil)
	return e
}

// with returns e for the (sub)test t.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// call sends a request with the admin key and decodes the 2xx answer.
func (e *env) call(method, path string, body, out any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(e.t.Context(), method, e.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		e.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// assignAll assigns the units in batches and returns each unit's variant.
func (e *env) assignAll(exp string, units []string) map[string]string {
	out := map[string]string{}
	for len(units) > 0 {
		n := min(1000, len(units))
		var res struct {
			Assignments []struct {
				UnitID  string  `json:"unit_id"`
				Variant *string `json:"variant"`
			} `json:"assignments"`
		}
		e.call("POST", "/v1/experiments/"+exp+"/assign", map[string]any{"unit_ids": units[:n]}, &res)
		for _, a := range res.Assignments {
			out[a.UnitID] = *a.Variant
		}
		units = units[n:]
	}
	return out
}

// convert sends one conversion per unit, in batches.
func (e *env) convert(exp string, units []string) {
	for len(units) > 0 {
		n := min(1000, len(units))
		var evs []map[string]any
		for _, u := range units[:n] {
			evs = append(evs, map[string]any{"unit_id": u})
		}
		e.call("POST", "/v1/experiments/"+exp+"/events", map[string]any{"events": evs}, nil)
		units = units[n:]
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	return out
}

// clearWinner feeds an experiment 2,000 units, then (in one call, so that
// the decision becomes true at one moment) the conversions that make b
// the clear winner: 30% against 10%. It returns when the data was
// acknowledged.
func (e *env) clearWinner(exp string) time.Time {
	rng := mrand.New(mrand.NewPCG(1, 2))
	variants := e.assignAll(exp, names(exp, 2000))
	var conv []string
	for u, v := range variants {
		p := 0.10
		if v == "b" {
			p = 0.30
		}
		if rng.Float64() < p {
			conv = append(conv, u)
		}
	}
	e.convert(exp, conv)
	return time.Now()
}

// TestDecisionsWithoutReaders: with nobody reading results, the server
// decides by itself within two rounds of the data that makes a decision
// true, and each decision arrives once although three loops (replicas)
// evaluate.
func TestDecisionsWithoutReaders(t *testing.T) {
	dbtest.EachBackend(t, "decide_", func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		variants := []map[string]any{{"key": "control", "control": true}, {"key": "b"}}

		t.Run("winner", func(t *testing.T) {
			e := e.with(t)
			e.call("POST", "/v1/experiments", map[string]any{"key": "win", "metric": "binary", "strategy": "adaptive",
				"variants": variants, "settings": map[string]any{"seed": 3}, "start": true}, nil)
			at := e.clearWinner("win")
			got := e.recv.Await(t, "experiment.winner_found", "win", 10*time.Second)
			t.Logf("experiment.winner_found arrived %v after the data", got.At.Sub(at))
			if d := got.At.Sub(at); d > 2*every {
				t.Errorf("experiment.winner_found arrived %v after the data, want within %v", d, 2*every)
			}
			e.recv.Once(t, "experiment.winner_found", "win", 4*every)
		})

		t.Run("auto_complete", func(t *testing.T) {
			e := e.with(t)
			e.call("POST", "/v1/experiments", map[string]any{"key": "auto", "metric": "binary", "strategy": "adaptive",
				"variants": variants, "settings": map[string]any{"seed": 4, "auto_complete": true}, "start": true}, nil)
			at := e.clearWinner("auto")
			got := e.recv.Await(t, "experiment.completed", "auto", 10*time.Second)
			t.Logf("experiment.completed arrived %v after the data", got.At.Sub(at))
			var exp struct {
				Status string  `json:"status"`
				Winner *string `json:"winner"`
			}
			e.call("GET", "/v1/experiments/auto", nil, &exp)
			if exp.Status != "completed" || exp.Winner == nil || *exp.Winner != "b" {
				t.Fatalf("experiment %+v, want completed with winner b", exp)
			}
			served := e.assignAll("auto", names("after", 50))
			for u, v := range served {
				if v != "b" {
					t.Fatalf("unit %s served %s after auto_complete, want the winner b", u, v)
				}
			}
			e.recv.Once(t, "experiment.completed", "auto", 4*every)
			e.recv.Once(t, "experiment.winner_found", "auto", 4*every)
		})

		t.Run("srm", func(t *testing.T) {
			e := e.with(t)
			e.call("POST", "/v1/experiments", map[string]any{"key": "srm", "metric": "binary", "strategy": "sequential",
				"variants": variants, "start": true}, nil)
			// Units the API never assigned reach the counters (as when
			// assignments are lost between the decision and the client):
			// every one on control under a 50/50 split.
			exp, err := e.st.GetExperiment(t.Context(), e.ws, "srm")
			if err != nil {
				t.Fatal(err)
			}
			b := store.AssignBatch{WorkspaceID: e.ws, ExperimentID: exp.ID,
				Weights: map[string]float64{exp.Variants[0].ID: 0.5, exp.Variants[1].ID: 0.5}}
			for _, u := range names("srm", 300) {
				b.Items = append(b.Items, store.Assignment{UnitID: u, VariantID: exp.Variants[0].ID, Propensity: 0.5, Epoch: 1, AssignedAt: time.Now()})
			}
			if _, err := e.st.Assign(t.Context(), []store.AssignBatch{b}); err != nil {
				t.Fatal(err)
			}
			at := time.Now()
			got := e.recv.Await(t, "experiment.srm_detected", "srm", 10*time.Second)
			t.Logf("experiment.srm_detected arrived %v after the data", got.At.Sub(at))
			e.recv.Once(t, "experiment.srm_detected", "srm", 4*every)
		})

		t.Run("guardrail", func(t *testing.T) {
			e := e.with(t)
			e.call("POST", "/v1/experiments", map[string]any{"key": "grd", "metric": "binary", "strategy": "adaptive",
				"variants": variants, "settings": map[string]any{"seed": 6}, "start": true,
				"metrics": []map[string]any{{"key": "refunds", "type": "binary", "role": "guardrail", "direction": "decrease", "max_degradation": 0.1}}}, nil)
			// b refunds 40% of its units, control 5%: one call, so that the
			// trip becomes true at one moment.
			rng := mrand.New(mrand.NewPCG(7, 8))
			var evs []map[string]any
			for u, v := range e.assignAll("grd", names("grd", 1000)) {
				p := 0.05
				if v == "b" {
					p = 0.40
				}
				if rng.Float64() < p {
					evs = append(evs, map[string]any{"unit_id": u, "metric": "refunds"})
				}
			}
			e.call("POST", "/v1/experiments/grd/events", map[string]any{"events": evs}, nil)
			at := time.Now()
			got := e.recv.Await(t, "experiment.guardrail_tripped", "grd/b", 10*time.Second)
			t.Logf("experiment.guardrail_tripped arrived %v after the data", got.At.Sub(at))
			if d := got.At.Sub(at); d > 2*every {
				t.Errorf("experiment.guardrail_tripped arrived %v after the data, want within %v", d, 2*every)
			}
			served := e.assignAll("grd", names("grd-after", 200))
			for u, v := range served {
				if v == "b" {
					t.Fatalf("unit %s got the tripped variant b", u)
				}
			}
			e.recv.Once(t, "experiment.guardrail_tripped", "grd/b", 4*every)
		})

		t.Run("campaign", func(t *testing.T) {
			e := e.with(t)
			e.call("POST", "/v1/campaigns", map[string]any{"key": "cmp", "channel": "email", "objective": "click",
				"audience_size": 100000, "start": true,
				"variants": []map[string]any{{"key": "s1"}, {"key": "s2"}, {"key": "s3"}},
				"settings": map[string]any{"seed": 5, "min_samples": 50, "guardrail": map[string]any{"event": "unsubscribe", "max_rate": 0.01}}}, nil)
			var sends struct {
				Sends []struct{ Recipient, Variant string } `json:"sends"`
			}
			e.call("POST", "/v1/campaigns/cmp/sends", map[string]any{"recipients": names("r", 900)}, &sends)
			// s2 gets the clicks; s3 unsubscribes far above 1%.
			var evs []map[string]any
			unsubs := 0
			for _, s := range sends.Sends {
				switch {
				case s.Variant == "s2":
					evs = append(evs, map[string]any{"recipient": s.Recipient, "type": "click"})
				case s.Variant == "s3" && unsubs < 40:
					evs = append(evs, map[string]any{"recipient": s.Recipient, "type": "unsubscribe"})
					unsubs++
				}
			}
			e.call("POST", "/v1/campaigns/cmp/events", map[string]any{"events": evs}, nil)
			at := time.Now()
			trip := e.recv.Await(t, "campaign.guardrail_tripped", "cmp/s3", 10*time.Second)
			win := e.recv.Await(t, "campaign.winner_found", "cmp", 10*time.Second)
			t.Logf("campaign.guardrail_tripped arrived %v, campaign.winner_found %v after the data", trip.At.Sub(at), win.At.Sub(at))
			e.recv.Once(t, "campaign.guardrail_tripped", "cmp/s3", 4*every)
			e.recv.Once(t, "campaign.winner_found", "cmp", 4*every)
		})

		t.Run("campaign no_difference", func(t *testing.T) {
			e := e.with(t)
			e.call("POST", "/v1/campaigns", map[string]any{"key": "csame", "channel": "email", "objective": "click", "start": true,
				"variants": []map[string]any{{"key": "s1"}, {"key": "s2"}},
				"settings": map[string]any{"seed": 5, "weight_floor": 0.45, "min_effect": 0.5}}, nil)
			// Every other recipient clicks, whatever its subject
			// (TestCampaignMinEffect in internal/api ends in no_difference
			// within 2,000 sends).
			for wave := range 4 {
				var sends struct {
					Sends []struct{ Recipient, Variant string } `json:"sends"`
				}
				e.call("POST", "/v1/campaigns/csame/sends", map[string]any{"recipients": names(fmt.Sprintf("w%d-", wave), 500)}, &sends)
				var evs []map[string]any
				for i, s := range sends.Sends {
					if i%2 == 0 {
						evs = append(evs, map[string]any{"recipient": s.Recipient, "type": "click"})
					}
				}
				e.call("POST", "/v1/campaigns/csame/events", map[string]any{"events": evs}, nil)
			}
			at := time.Now()
			got := e.recv.Await(t, "campaign.no_difference", "csame", 10*time.Second)
			t.Logf("campaign.no_difference arrived %v after the data", got.At.Sub(at))
			e.recv.Once(t, "campaign.no_difference", "csame", 4*every)
		})

		t.Run("funnel", func(t *testing.T) {
			e := e.with(t)
			e.call("POST", "/v1/funnels", map[string]any{"key": "fnl", "start": true,
				"settings": map[string]any{"min_samples": 10, "seed": 3},
				"steps":    []map[string]any{{"key": "landing", "variants": []map[string]any{{"key": "a"}, {"key": "b"}}}, {"key": "done"}}}, nil)
			// Units of a always convert, b's never; the step's winner needs
			// the anytime-valid test on the units' propensities, which a
			// difference this large passes after about a hundred units.
			var winners []string
			for i := 0; i < 300; i++ {
				u := fmt.Sprintf("f%d", i)
				var got struct {
					Variant *string `json:"variant"`
				}
				e.call("POST", "/v1/funnels/fnl/progress", map[string]any{"unit_id": u, "step": "landing"}, &got)
				if *got.Variant == "a" {
					winners = append(winners, u)
				}
			}
			for _, u := range winners {
				e.call("POST", "/v1/funnels/fnl/progress", map[string]any{"unit_id": u, "step": "done"}, nil)
			}
			at := time.Now()
			got := e.recv.Await(t, "funnel.winner_found", "fnl/landing", 10*time.Second)
			t.Logf("funnel.winner_found arrived %v after the data", got.At.Sub(at))
			e.recv.Once(t, "funnel.winner_found", "fnl/landing", 4*every)
		})

		t.Run("funnel no_difference", func(t *testing.T) {
			e := e.with(t)
			e.call("POST", "/v1/funnels", map[string]any{"key": "fsame", "start": true,
				"settings": map[string]any{"min_samples": 10, "seed": 3, "weight_floor": 0.45, "min_effect": 0.5},
				"steps":    []map[string]any{{"key": "landing", "variants": []map[string]any{{"key": "a"}, {"key": "b"}}}, {"key": "done"}}}, nil)
			// Every other unit converts, whatever its variant: within ±50%
			// the step's variants provably do not differ after a few
			// hundred units (TestFunnelStepNoDifference in internal/api).
			for i := 0; i < 1000; i++ {
				u := fmt.Sprintf("s%d", i)
				e.call("POST", "/v1/funnels/fsame/progress", map[string]any{"unit_id": u, "step": "landing"}, nil)
				if i%2 == 0 {
					e.call("POST", "/v1/funnels/fsame/progress", map[string]any{"unit_id": u, "step": "done"}, nil)
				}
			}
			at := time.Now()
			got := e.recv.Await(t, "funnel.no_difference", "fsame/landing", 10*time.Second)
			t.Logf("funnel.no_difference arrived %v after the data", got.At.Sub(at))
			e.recv.Once(t, "funnel.no_difference", "fsame/landing", 4*every)
		})
	})
}
