package decide_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/decide"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/backend"
	"github.com/samplit/samplit/internal/store/dbtest"
)

// fakeEvaluator counts evaluations; fail, when set, makes them fail.
type fakeEvaluator struct {
	mu    sync.Mutex
	calls map[string]int
	fail  func(id string) error
}

func (f *fakeEvaluator) note(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[id]++
	if f.fail != nil {
		return f.fail(id)
	}
	return nil
}

func (f *fakeEvaluator) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

func (f *fakeEvaluator) Experiment(_ context.Context, e *store.Experiment) error { return f.note(e.ID) }
func (f *fakeEvaluator) Funnel(_ context.Context, fn *store.Funnel) error        { return f.note(fn.ID) }
func (f *fakeEvaluator) Campaign(_ context.Context, c *store.Campaign) error     { return f.note(c.ID) }

// TestRoundEvaluatesOnlyNewData: a round evaluates an object once per
// change of its data (idle objects cost nothing), again when its last
// evaluation is stale, never while another replica holds its lease, and a
// failed evaluation is retried when its lease expires, not at every round.
func TestRoundEvaluatesOnlyNewData(t *testing.T) {
	ctx := t.Context()
	st, err := backend.Open(ctx, dbtest.SQLite(t), backend.Options{AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ws := store.Workspace{ID: id.New(id.Workspace), Name: "w", CreatedAt: time.Now()}
	if err := st.CreateWorkspace(ctx, ws); err != nil {
		t.Fatal(err)
	}
	e := store.Experiment{ID: id.New(id.Experiment), WorkspaceID: ws.ID, Key: "e", Name: "e", Kind: store.KindStandard,
		Metric: store.MetricBinary, Strategy: "adaptive", Status: store.StatusRunning, CreatedAt: time.Now(), UpdatedAt: time.Now(),
		Variants: []store.Variant{{ID: id.New(id.Variant), Key: "a", Payload: []byte("null")}, {ID: id.New(id.Variant), Key: "b", Payload: []byte("null"), Position: 1}}}
	if err := st.CreateExperiment(ctx, e); err != nil {
		t.Fatal(err)
	}
	assign := func(unit string) {
		t.Helper()
		_, err := st.Assign(ctx, []store.AssignBatch{{WorkspaceID: ws.ID, ExperimentID: e.ID,
			Weights: map[string]float64{e.Variants[0].ID: 0.5, e.Variants[1].ID: 0.5},
			Items:   []store.Assignment{{UnitID: unit, VariantID: e.Variants[0].ID, Propensity: 0.5, Epoch: 1, AssignedAt: time.Now()}}}})
		if err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ev := &fakeEvaluator{}
	opts := decide.Options{Every: time.Second, Stale: time.Hour, Now: clock}
	opts.Owner = "a"
	a := decide.New(st, ev, opts)
	opts.Owner = "b"
	b := decide.New(st, ev, opts)
	round := func(l *decide.Loop, want int) {
		t.Helper()
		n, err := l.Round(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Fatalf("%s evaluated %d objects, want %d", l.Owner(), n, want)
		}
	}

	round(a, 1) // never evaluated
	round(a, 0) // idle
	round(b, 0)
	assign("u1")
	assign("u2")
	round(b, 1) // two writes, one evaluation
	round(a, 0)
	if got := ev.count(e.ID); got != 2 {
		t.Fatalf("%d evaluations, want 2", got)
	}
	advance(2 * time.Hour) // stale
	round(a, 1)
	round(b, 0)

	// A failed evaluation keeps its lease: not retried by anyone until the
	// lease (3 s) expires.
	ev.fail = func(string) error { return errors.New("database on fire") }
	assign("u3")
	round(a, 0)
	round(a, 0)
	round(b, 0)
	if got := ev.count(e.ID); got != 4 {
		t.Fatalf("%d evaluations, want 4 (one failed, not retried)", got)
	}
	ev.fail = nil
	advance(4 * time.Second)
	round(b, 1)
	round(a, 0)

	// A replica that stops in the middle of an evaluation gives its lease
	// back: another one evaluates the object at its next round, not after
	// the lease.
	assign("u4")
	cctx, cancel := context.WithCancel(ctx)
	ev.fail = func(string) error { cancel(); return context.Canceled }
	if n, _ := a.Round(cctx); n != 0 {
		t.Fatalf("a stopped replica evaluated %d", n)
	}
	ev.fail = nil
	round(b, 1)
}

// dueAnyway is the store with DueForDecision also listing the objects in
// extra, as a replica whose list was read just before they completed would.
type dueAnyway struct {
	decide.Store
	extra []store.DecideObject
}

func (d dueAnyway) DueForDecision(ctx context.Context, now, staleBefore time.Time, limit int) ([]store.DecideObject, error) {
	due, err := d.Store.DueForDecision(ctx, now, staleBefore, limit)
	return append(due, d.extra...), err
}

// TestCompletedCampaignsAreNotEvaluated: once a campaign is completed the
// loop leaves it alone, whatever happens to its data afterwards (late
// events still arrive and bump its data version), however stale its last
// evaluation gets, and even when a replica had listed it as due just before
// it completed. Re-evaluating it could record a decision about a campaign
// that is over (a winner or a guardrail trip on its late events).
func TestCompletedCampaignsAreNotEvaluated(t *testing.T) {
	dbtest.EachBackend(t, "decide_", func(t *testing.T, dsn string) {
		ctx := t.Context()
		st, err := backend.Open(ctx, dsn, backend.Options{AutoMigrate: true})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ws := store.Workspace{ID: id.New(id.Workspace), Name: "w-" + id.New("x")[2:], CreatedAt: time.Now()}
		if err := st.CreateWorkspace(ctx, ws); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		now := time.Now().UTC()
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
		c := store.Campaign{ID: id.New(id.Campaign), WorkspaceID: ws.ID, Key: "c", Name: "c",
			Channel: "email", Objective: "click", Mode: "waves", AudienceSize: 100, Status: store.StatusRunning,
			CreatedAt: now, UpdatedAt: now, StartedAt: &now,
			Settings: store.CampaignSettings{TestShare: 0.2, AttributionWindow: 24 * time.Hour, MinSamples: 10,
				DecisionThreshold: 0.95, LossThreshold: 0.01, WeightFloor: 0.01},
			Variants: []store.Variant{
				{ID: id.New(id.Variant), Key: "x", Name: "x", Payload: []byte("null"), Position: 0},
				{ID: id.New(id.Variant), Key: "y", Name: "y", Payload: []byte("null"), Position: 1}}}
		if err := st.CreateCampaign(ctx, c); err != nil {
			t.Fatal(err)
		}
		send := func(r string) {
			t.Helper()
			if _, err := st.RecordSends(ctx, store.SendBatch{WorkspaceID: ws.ID, CampaignID: c.ID, ExpectSent: -1, At: clock(),
				Items: []store.Send{{Recipient: r, VariantID: c.Variants[0].ID}}}); err != nil {
				t.Fatal(err)
			}
		}
		click := func(r string) {
			t.Helper()
			res, err := st.RecordCampaignEvents(ctx, []store.CampaignEventBatch{{WorkspaceID: ws.ID, CampaignID: c.ID,
				Window: c.Settings.AttributionWindow, Objective: "click", ReceivedAt: clock(),
				Items: []store.CampaignEvent{{Recipient: r, Type: "click", At: clock()}}}})
			if err != nil || res[0][0].Outcome != store.OutcomeAccepted {
				t.Fatalf("click of %s: %v %+v", r, err, res)
			}
		}
		ev := &fakeEvaluator{}
		l := decide.New(st, ev, decide.Options{Every: time.Second, Stale: time.Hour, Now: clock, Owner: "a"})
		rounds := func(l *decide.Loop) {
			t.Helper()
			for range 3 {
				if _, err := l.Round(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}

		send("r1")
		rounds(l)
		if got := ev.count(c.ID); got != 1 {
			t.Fatalf("a running campaign with new data was evaluated %d times, want 1", got)
		}
		advance(time.Minute)
		if _, err := st.TransitionCampaign(ctx, ws.ID, c.ID, store.Transition{
			From: []store.Status{store.StatusRunning, store.StatusPaused}, To: store.StatusCompleted, At: clock()}); err != nil {
			t.Fatal(err)
		}
		// Its data keeps changing: a click of a send made before the end.
		click("r1")
		rounds(l)
		advance(2 * time.Hour) // its last evaluation is stale
		rounds(l)
		if got := ev.count(c.ID); got != 1 {
			t.Errorf("a completed campaign was evaluated again: %d evaluations, want 1", got)
		}
		// Nor is it listed (idle loops read nothing of it), stale or not.
		due, err := st.DueForDecision(ctx, clock(), clock().Add(time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range due {
			if o.ID == c.ID {
				t.Errorf("a completed campaign is listed as due: %+v", o)
			}
		}

		// A replica that listed it as due before it completed claims it,
		// finds it completed and does not evaluate it.
		stale := decide.New(dueAnyway{st, []store.DecideObject{{Kind: store.DecideCampaign, ID: c.ID, WorkspaceID: ws.ID, Version: 1 << 40}}},
			ev, decide.Options{Every: time.Second, Stale: time.Hour, Now: clock, Owner: "b"})
		rounds(stale)
		if got := ev.count(c.ID); got != 1 {
			t.Errorf("a completed campaign listed as due was evaluated: %d evaluations, want 1", got)
		}
	})
}
