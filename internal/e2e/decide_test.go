package e2e

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	samplit "github.com/samplit/samplit/client"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/backend"
	"github.com/samplit/samplit/internal/store/dbtest"
	"github.com/samplit/samplit/internal/webhook/webhooktest"
)

// decideEvery is the replicas' --decide-every in these tests, and
// decideLease the lease that implies (3 × decide-every, internal/decide).
// The bound checked is the (an event within twice the period of
// its data); with 200 ms that is 400 ms of wall time for three real
// binaries on a loaded 2-core machine, hence a longer period. settle is how
// long Once waits for a duplicate that should not come.
const (
	decideEvery = 500 * time.Millisecond
	decideLease = 3 * decideEvery
	settle      = 4 * decideEvery
)

// decideCluster is three replicas with a short --decide-every over one
// PostgreSQL database, a receiver subscribed to every decision, and nobody
// reading results.
type decideCluster struct {
	dsn  string
	reps []*server
	recv *webhooktest.Receiver
}

func startDecideCluster(t *testing.T) *decideCluster {
	t.Setenv("SAMPLIT_DECIDE_EVERY", decideEvery.String())
	t.Setenv("SAMPLIT_WEBHOOK_ALLOW_PRIVATE", "true")
	c := &decideCluster{dsn: dbtest.PostgresSchema(t, "e2e_"), reps: make([]*server, replicaCount)}
	binary(t)
	errs := make([]error, replicaCount)
	var wg sync.WaitGroup
	for i := range c.reps {
		wg.Go(func() { c.reps[i], errs[i] = launch(t, fmt.Sprintf("replica-%d", i+1), c.dsn) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c.recv = webhooktest.New(t)
	var hook struct {
		Secret string `json:"secret"`
	}
	c.reps[0].must(t, "POST", "/v1/webhooks", map[string]any{"url": c.recv.URL, "events": []string{
		"experiment.completed", "experiment.winner_found", "experiment.srm_detected",
		"funnel.winner_found", "campaign.winner_found", "campaign.guardrail_tripped"}}, &hook)
	c.recv.VerifyWith(func(h http.Header, body []byte) error {
		return samplit.VerifyWebhook(hook.Secret, h, body, time.Now())
	})
	return c
}

// clearWinner assigns 2,000 units through every replica in turn, then
// reports, in one call, the conversions that make b the clear winner (30%
// against 10%), and returns when they were acknowledged.
func (c *decideCluster) clearWinner(t *testing.T, key string) time.Time {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var conv []event
	for batch := range 4 {
		units := make([]string, 500)
		for i := range units {
			units[i] = fmt.Sprintf("%s-%d-%d", key, batch, i)
		}
		var got assignments
		c.reps[batch%len(c.reps)].must(t, "POST", "/v1/experiments/"+key+"/assign", map[string]any{"unit_ids": units}, &got)
		for _, a := range got.Assignments {
			p := 0.10
			if *a.Variant == "b" {
				p = 0.30
			}
			if rng.Float64() < p {
				conv = append(conv, event{UnitID: a.UnitID})
			}
		}
	}
	c.reps[1].must(t, "POST", "/v1/experiments/"+key+"/events", map[string]any{"events": conv}, nil)
	return time.Now()
}

func (c *decideCluster) experiment(t *testing.T, key, strategy string, settings map[string]any) {
	t.Helper()
	c.reps[0].must(t, "POST", "/v1/experiments", map[string]any{"key": key, "metric": "binary", "strategy": strategy,
		"variants": []map[string]any{{"key": "control", "control": true}, {"key": "b"}}, "settings": settings, "start": true}, nil)
}

// TestDecideReplicas: three replicas over PostgreSQL decide by themselves,
// with nobody reading results, and each decision is sent exactly once:
// a winner within twice --decide-every of the data, auto_complete, an SRM
// alert, a campaign's guardrail trip and winner, a funnel step's winner.
func TestDecideReplicas(t *testing.T) {
	c := startDecideCluster(t)

	t.Run("winner", func(t *testing.T) {
		c.experiment(t, "d-win", "adaptive", map[string]any{"seed": 3})
		at := c.clearWinner(t, "d-win")
		got := c.recv.Await(t, "experiment.winner_found", "d-win", 10*time.Second)
		t.Logf("experiment.winner_found arrived %v after the data", got.At.Sub(at))
		if d := got.At.Sub(at); d > 2*decideEvery {
			t.Errorf("experiment.winner_found arrived %v after the data, want within %v", d, 2*decideEvery)
		}
		c.recv.Once(t, "experiment.winner_found", "d-win", settle)
		// The replicas' /metrics count what their loops evaluated.
		var ok float64
		for _, r := range c.reps {
			ok += metric(t, r, `samplit_decide_evaluations_total{kind="experiment",outcome="ok"}`)
		}
		if ok < 1 {
			t.Errorf("samplit_decide_evaluations_total of experiments %v on the replicas, want at least 1", ok)
		}
	})

	t.Run("auto_complete", func(t *testing.T) {
		c.experiment(t, "d-auto", "adaptive", map[string]any{"seed": 4, "auto_complete": true})
		at := c.clearWinner(t, "d-auto")
		got := c.recv.Await(t, "experiment.completed", "d-auto", 10*time.Second)
		t.Logf("experiment.completed (auto_complete) arrived %v after the data", got.At.Sub(at))
		for i, r := range c.reps {
			var e experiment
			r.must(t, "GET", "/v1/experiments/d-auto", nil, &e)
			if e.Status != "completed" || e.Winner == nil || *e.Winner != "b" {
				t.Fatalf("replica %d: %+v, want completed with winner b", i+1, e)
			}
			var a assignment
			r.must(t, "POST", "/v1/experiments/d-auto/assign", map[string]any{"unit_id": fmt.Sprintf("late-%d", i)}, &a)
			if a.Variant == nil || *a.Variant != "b" {
				t.Errorf("replica %d served %v after auto_complete, want the winner b", i+1, a.Variant)
			}
		}
		c.recv.Once(t, "experiment.completed", "d-auto", settle)
		c.recv.Once(t, "experiment.winner_found", "d-auto", settle)
	})

	t.Run("srm", func(t *testing.T) {
		c.experiment(t, "d-srm", "sequential", nil)
		// Assignments the API never made reach the database (as when they
		// are lost between the decision and the client): all on control
		// under a 50/50 split.
		st, err := backend.Open(t.Context(), c.dsn, backend.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ws, err := st.GetWorkspaceByName(t.Context(), "default")
		if err != nil {
			t.Fatal(err)
		}
		e, err := st.GetExperiment(t.Context(), ws.ID, "d-srm")
		if err != nil {
			t.Fatal(err)
		}
		b := store.AssignBatch{WorkspaceID: ws.ID, ExperimentID: e.ID, Weights: map[string]float64{e.Variants[0].ID: 0.5, e.Variants[1].ID: 0.5}}
		for i := range 300 {
			b.Items = append(b.Items, store.Assignment{UnitID: fmt.Sprintf("srm-%d", i), VariantID: e.Variants[0].ID, Propensity: 0.5, Epoch: 1, AssignedAt: time.Now()})
		}
		if _, err := st.Assign(t.Context(), []store.AssignBatch{b}); err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		got := c.recv.Await(t, "experiment.srm_detected", "d-srm", 10*time.Second)
		t.Logf("experiment.srm_detected arrived %v after the data", got.At.Sub(at))
		c.recv.Once(t, "experiment.srm_detected", "d-srm", settle)
	})

	t.Run("campaign", func(t *testing.T) {
		c.reps[0].must(t, "POST", "/v1/campaigns", map[string]any{"key": "d-cmp", "channel": "email", "objective": "click",
			"audience_size": 100000, "start": true,
			"variants": []map[string]any{{"key": "s1"}, {"key": "s2"}, {"key": "s3"}},
			"settings": map[string]any{"seed": 5, "min_samples": 50, "guardrail": map[string]any{"event": "unsubscribe", "max_rate": 0.01}}}, nil)
		var evs []map[string]any
		unsubs := 0
		for w, r := range c.reps {
			recipients := make([]string, 300)
			for i := range recipients {
				recipients[i] = fmt.Sprintf("r%d-%d", w, i)
			}
			var sends struct {
				Sends []struct{ Recipient, Variant string } `json:"sends"`
			}
			r.must(t, "POST", "/v1/campaigns/d-cmp/sends", map[string]any{"recipients": recipients}, &sends)
			// s2 gets the clicks; s3 unsubscribes far above 1%.
			for _, s := range sends.Sends {
				switch {
				case s.Variant == "s2":
					evs = append(evs, map[string]any{"recipient": s.Recipient, "type": "click"})
				case s.Variant == "s3" && unsubs < 40:
					evs = append(evs, map[string]any{"recipient": s.Recipient, "type": "unsubscribe"})
					unsubs++
				}
			}
		}
		c.reps[2].must(t, "POST", "/v1/campaigns/d-cmp/events", map[string]any{"events": evs}, nil)
		at := time.Now()
		trip := c.recv.Await(t, "campaign.guardrail_tripped", "d-cmp/s3", 10*time.Second)
		win := c.recv.Await(t, "campaign.winner_found", "d-cmp", 10*time.Second)
		t.Logf("campaign.guardrail_tripped arrived %v and campaign.winner_found %v after the data", trip.At.Sub(at), win.At.Sub(at))
		c.recv.Once(t, "campaign.guardrail_tripped", "d-cmp/s3", settle)
		c.recv.Once(t, "campaign.winner_found", "d-cmp", settle)
	})

	t.Run("funnel", func(t *testing.T) {
		c.reps[0].must(t, "POST", "/v1/funnels", map[string]any{"key": "d-fnl", "start": true,
			"settings": map[string]any{"min_samples": 10, "seed": 3},
			"steps":    []map[string]any{{"key": "landing", "variants": []map[string]any{{"key": "a"}, {"key": "b"}}}, {"key": "done"}}}, nil)
		// Units of a always convert, b's never. A step's winner needs the
		// anytime-valid test on the units' propensities, which a
		// difference this large passes after about a hundred units.
		var converts []string
		for i := range 300 {
			u := fmt.Sprintf("f%d", i)
			var got struct {
				Variant *string `json:"variant"`
			}
			c.reps[i%len(c.reps)].must(t, "POST", "/v1/funnels/d-fnl/progress", map[string]any{"unit_id": u, "step": "landing"}, &got)
			if *got.Variant == "a" {
				converts = append(converts, u)
			}
		}
		for i, u := range converts {
			c.reps[i%len(c.reps)].must(t, "POST", "/v1/funnels/d-fnl/progress", map[string]any{"unit_id": u, "step": "done"}, nil)
		}
		got := c.recv.Await(t, "funnel.winner_found", "d-fnl/landing", 10*time.Second)
		t.Logf("funnel.winner_found arrived at %v", got.At.Format(time.StampMilli))
		c.recv.Once(t, "funnel.winner_found", "d-fnl/landing", settle)
	})

	t.Run("kill the lease holder", func(t *testing.T) { testKillLeaseHolder(t, c) })

	if n := c.recv.Unverified(); n > 0 {
		t.Errorf("%d deliveries failed signature verification", n)
	}
}

// testKillLeaseHolder catches a replica in the middle of recording a
// decision: the test holds an exclusive lock on the outbox table, so the
// replica that leased the experiment blocks on writing winner_found while
// it keeps renewing its lease. The test kills that replica with SIGKILL and
// releases the lock: another replica must take the lease over once it
// expires and record the winner, once.
func testKillLeaseHolder(t *testing.T, c *decideCluster) {
	ctx := t.Context()
	c.experiment(t, "d-kill", "adaptive", map[string]any{"seed": 6})
	db := openDB(t, c.dsn)
	var expID string
	if err := db.QueryRowContext(ctx, `SELECT id FROM experiments WHERE key = 'd-kill'`).Scan(&expID); err != nil {
		t.Fatal(err)
	}
	lock, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(ctx, `LOCK TABLE outbox IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	c.clearWinner(t, "d-kill")

	// Wait for a replica to lease the experiment, and check that it keeps
	// the lease (renewed) while it is stuck.
	owner := func() (string, time.Time) {
		var o string
		var until int64
		err := db.QueryRowContext(ctx, `SELECT lease_owner, lease_until FROM decide_leases WHERE object_id = $1`, expID).Scan(&o, &until)
		if err != nil {
			return "", time.Time{}
		}
		return o, time.UnixMicro(until)
	}
	var holder string
	for deadline := time.Now().Add(10 * time.Second); holder == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no replica leased the experiment within 10s")
		}
		holder, _ = owner()
	}
	time.Sleep(3 * decideLease)
	if o, until := owner(); o != holder || !until.After(time.Now()) {
		t.Fatalf("lease of a stuck replica: owner %q until %v, want %q renewed", o, until, holder)
	}
	var victim *server
	for _, r := range c.reps {
		if strings.Contains(holder, "-"+strconv.Itoa(r.cmd.Process.Pid)+"-") {
			victim = r
		}
	}
	if victim == nil {
		t.Fatalf("lease owner %q is none of the replicas", holder)
	}
	_, until := owner()
	victim.kill()
	killed := time.Now()
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	got := c.recv.Await(t, "experiment.winner_found", "d-kill", 10*time.Second)
	newOwner, _ := owner()
	t.Logf("killed %s holding the lease (until %v after the kill); winner_found arrived %v after the kill",
		victim.name, until.Sub(killed).Round(time.Millisecond), got.At.Sub(killed))
	if d := got.At.Sub(killed); d > decideLease+decideEvery+200*time.Millisecond {
		t.Errorf("winner_found arrived %v after the lease holder was killed, want within the lease (%v) and a round (%v)", d, decideLease, decideEvery)
	}
	if newOwner == holder {
		t.Errorf("the lease is still %q's", holder)
	}
	c.recv.Once(t, "experiment.winner_found", "d-kill", settle)
}

// metric returns the value of the sample (name and labels as exposed) in
// the replica's /metrics, 0 when absent.
func metric(t *testing.T, r *server, sample string) float64 {
	t.Helper()
	resp, err := client.Get(r.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}
