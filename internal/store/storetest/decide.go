package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/store"
)

// due returns what DueForDecision lists at now (nothing stale), by id.
func due(t *testing.T, s store.Store, now time.Time) map[string]store.DecideObject {
	t.Helper()
	objs, err := s.DueForDecision(t.Context(), now, time.Time{}, 100)
	must(t, err, "due for decision")
	out := map[string]store.DecideObject{}
	for _, o := range objs {
		out[o.ID] = o
	}
	return out
}

func ids(objs []store.DecideObject) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.ID
	}
	slices.Sort(out)
	return out
}

func claimAll(t *testing.T, s store.Store, owner string, now, until time.Time) []store.DecideObject {
	t.Helper()
	objs, err := s.DueForDecision(t.Context(), now, time.Time{}, 100)
	must(t, err, "due for decision")
	got, err := s.ClaimForDecision(t.Context(), owner, objs, now, until)
	must(t, err, "claim for decision")
	return got
}

func finishAll(t *testing.T, s store.Store, owner string, objs []store.DecideObject, at time.Time) {
	t.Helper()
	for _, o := range objs {
		must(t, s.FinishDecision(t.Context(), owner, o, at), "finish decision")
	}
}

// testDecideLeases checks the decision loop's watermark and leases: which
// objects are due, that writes of data make them due again, that a lease
// keeps other owners out until it expires (or is renewed), and that a
// finished evaluation is recorded only by the lease's owner.
func testDecideLeases(t *testing.T, s store.Store) {
	ctx := t.Context()
	ws := newWorkspace(t, s, "decide")
	e := createExperiment(t, s, ws, "exp", store.MetricBinary)
	f := createFunnel(t, s, ws, "fnl")
	c := createCampaign(t, s, ws, "cmp")
	draft := newExperiment(ws, "draft", store.MetricBinary)
	draft.Status, draft.StartedAt = store.StatusDraft, nil
	must(t, s.CreateExperiment(ctx, draft), "create draft")

	now := t0.Add(time.Minute)
	// Every active object is due once, never evaluated; a draft is not.
	got := due(t, s, now)
	diff(t, "due at first", []string{c.ID, e.ID, f.ID}, ids(mapValues(got)))
	diff(t, "kinds", map[string]store.DecideKind{e.ID: store.DecideExperiment, f.ID: store.DecideFunnel, c.ID: store.DecideCampaign},
		map[string]store.DecideKind{e.ID: got[e.ID].Kind, f.ID: got[f.ID].Kind, c.ID: got[c.ID].Kind})
	if got[e.ID].WorkspaceID != ws.ID {
		t.Errorf("workspace %q, want %q", got[e.ID].WorkspaceID, ws.ID)
	}

	// A claims them; B, at the same time, gets none, and they are not due.
	lease := 30 * time.Second
	a := claimAll(t, s, "replica-a", now, now.Add(lease))
	diff(t, "claimed by a", []string{c.ID, e.ID, f.ID}, ids(a))
	b, err := s.ClaimForDecision(ctx, "replica-b", a, now, now.Add(lease))
	must(t, err, "claim by b")
	diff(t, "claimed by b while a holds", []string{}, ids(b))
	diff(t, "due while leased", []string{}, ids(mapValues(due(t, s, now))))

	// Finished: nothing is due until new data arrives.
	finishAll(t, s, "replica-a", a, now)
	diff(t, "due after evaluation", []string{}, ids(mapValues(due(t, s, now))))
	// Stale objects (last evaluated before the bound) are due again.
	stale, err := s.DueForDecision(ctx, now, now.Add(time.Second), 100)
	must(t, err, "due when stale")
	diff(t, "due when stale", []string{c.ID, e.ID, f.ID}, ids(stale))

	// Each kind of write bumps the object's data version.
	before := map[string]int64{e.ID: a[0].Version}
	for _, o := range a {
		before[o.ID] = o.Version
	}
	assign(t, s, e, 0, now, "u1")
	reach(t, s, f, "u1", 0, 0, now, 0)
	send(t, s, c, 0, now, "r1")
	got = due(t, s, now)
	diff(t, "due after data", []string{c.ID, e.ID, f.ID}, ids(mapValues(got)))
	for _, o := range got {
		if o.Version <= before[o.ID] {
			t.Errorf("%s: version %d after a write, was %d", o.ID, o.Version, before[o.ID])
		}
	}
	a = claimAll(t, s, "replica-a", now, now.Add(lease))
	finishAll(t, s, "replica-a", a, now)
	_, err = recordEvents(ctx, s, ws.ID, e.ID, store.MetricBinary, []store.Event{{UnitID: "u1", At: now}})
	must(t, err, "record events")
	campaignEvents(t, s, c, store.CampaignEvent{Recipient: "r1", Type: store.CampaignClick, At: now})
	got = due(t, s, now)
	diff(t, "due after events", []string{c.ID, e.ID}, ids(mapValues(got)))

	// A lease that expires is taken over; the old owner can then neither
	// renew it nor record an evaluation.
	a = claimAll(t, s, "replica-a", now, now.Add(lease))
	diff(t, "claimed again", []string{c.ID, e.ID}, ids(a))
	later := now.Add(lease / 2)
	n, err := s.RenewDecisionLeases(ctx, "replica-a", ids(a), later.Add(lease))
	must(t, err, "renew")
	if n != 2 {
		t.Errorf("renewed %d leases, want 2", n)
	}
	if b := claimAll(t, s, "replica-b", now.Add(lease+time.Second), now.Add(2*lease)); len(b) != 0 {
		t.Errorf("replica b claimed %v before the renewed lease expired", ids(b))
	}
	expired := later.Add(lease + time.Second)
	b = claimAll(t, s, "replica-b", expired, expired.Add(lease))
	diff(t, "taken over after expiry", []string{c.ID, e.ID}, ids(b))
	n, err = s.RenewDecisionLeases(ctx, "replica-a", ids(a), expired.Add(lease))
	must(t, err, "renew lost leases")
	if n != 0 {
		t.Errorf("replica a renewed %d leases it had lost", n)
	}
	finishAll(t, s, "replica-a", a, expired)
	if got := due(t, s, expired.Add(lease+time.Second)); len(got) != 2 {
		t.Errorf("an evaluation by a replica that lost the lease was recorded: due %v", ids(mapValues(got)))
	}
	finishAll(t, s, "replica-b", b, expired)
	diff(t, "due after b finished", []string{}, ids(mapValues(due(t, s, expired))))

	// The recorded version never goes back: finishing an older version
	// after a newer one leaves the object evaluated.
	assign(t, s, e, 1, expired, "u2")
	newer := due(t, s, expired)[e.ID]
	old := newer
	old.Version--
	got1, err := s.ClaimForDecision(ctx, "replica-a", []store.DecideObject{newer}, expired, expired.Add(lease))
	must(t, err, "claim")
	finishAll(t, s, "replica-a", got1, expired)
	got1, err = s.ClaimForDecision(ctx, "replica-a", []store.DecideObject{old}, expired, expired.Add(lease))
	must(t, err, "claim")
	finishAll(t, s, "replica-a", got1, expired)
	diff(t, "due after an older version finished", []string{}, ids(mapValues(due(t, s, expired))))

	// A released lease is claimable at once, and the object is still due
	// (nothing was recorded); a release by another owner changes nothing.
	assign(t, s, e, 0, expired, "u4")
	got1, err = s.ClaimForDecision(ctx, "replica-a", []store.DecideObject{due(t, s, expired)[e.ID]}, expired, expired.Add(lease))
	must(t, err, "claim")
	must(t, s.ReleaseDecision(ctx, "replica-b", e.ID), "release by another owner")
	diff(t, "due after another owner's release", []string{}, ids(mapValues(due(t, s, expired))))
	must(t, s.ReleaseDecision(ctx, "replica-a", e.ID), "release")
	diff(t, "due after release", []string{e.ID}, ids(mapValues(due(t, s, expired))))
	got1 = claimAll(t, s, "replica-b", expired, expired.Add(lease))
	diff(t, "claimed after release", []string{e.ID}, ids(got1))
	finishAll(t, s, "replica-b", got1, expired)

	// Paused objects are evaluated, completed ones are not.
	_, err = s.TransitionExperiment(ctx, ws.ID, e.ID, store.Transition{From: []store.Status{store.StatusRunning}, To: store.StatusPaused, At: expired})
	must(t, err, "pause")
	_, err = s.TransitionCampaign(ctx, ws.ID, c.ID, store.Transition{From: []store.Status{store.StatusRunning}, To: store.StatusCompleted, At: expired})
	must(t, err, "complete")
	assign(t, s, e, 0, expired, "u3") // data of a paused experiment (as a test may write it)
	send(t, s, c, 0, expired, "r2")
	diff(t, "due: paused yes, completed no", []string{e.ID}, ids(mapValues(due(t, s, expired))))
}

// testDecideLeasesConcurrent lets owners claim the same due objects at
// once: each object is leased to exactly one of them.
func testDecideLeasesConcurrent(t *testing.T, s store.Store) {
	ws := newWorkspace(t, s, "decide-concurrent")
	var all []string
	for i := range 12 {
		all = append(all, createExperiment(t, s, ws, fmt.Sprintf("e%02d", i), store.MetricBinary).ID)
	}
	slices.Sort(all)
	now := t0.Add(time.Minute)
	objs, err := s.DueForDecision(t.Context(), now, time.Time{}, 100)
	must(t, err, "due")
	const owners = 6
	got := make([][]store.DecideObject, owners)
	errs := make([]error, owners)
	var wg sync.WaitGroup
	for i := range owners {
		wg.Go(func() {
			got[i], errs[i] = s.ClaimForDecision(t.Context(), fmt.Sprintf("owner-%d", i), objs, now, now.Add(time.Minute))
		})
	}
	wg.Wait()
	var claimed []string
	for i := range owners {
		must(t, errs[i], "concurrent claim")
		claimed = append(claimed, ids(got[i])...)
	}
	slices.Sort(claimed)
	diff(t, "objects claimed once each", all, claimed)
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
