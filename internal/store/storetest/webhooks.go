package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

func newEvent(typ store.EventType, ws string, at time.Time) store.OutboxEvent {
	return store.OutboxEvent{ID: id.New(id.Event), WorkspaceID: ws, Type: typ, Data: json.RawMessage(`{"n":1}`), CreatedAt: at}
}

func createWebhook(t *testing.T, s store.Store, ws store.Workspace, types ...store.EventType) store.Webhook {
	t.Helper()
	w := store.Webhook{
		ID: id.New(id.Webhook), WorkspaceID: ws.ID, URL: "https://example.com/hook", Description: "d",
		Events: types, Enabled: true, SecretKeyID: "k1", Secret: []byte("sealed-1"), CreatedAt: t0, UpdatedAt: t0,
	}
	must(t, s.CreateWebhook(t.Context(), w), "create webhook")
	return w
}

// deliveriesOf returns the endpoint's deliveries by event id.
func deliveriesOf(t *testing.T, s store.Store, ws, hook string) map[string]store.Delivery {
	t.Helper()
	list, err := s.ListDeliveries(t.Context(), ws, hook, store.ListParams{Limit: 1000})
	must(t, err, "list deliveries")
	out := map[string]store.Delivery{}
	for _, d := range list {
		out[d.EventID] = d
	}
	return out
}

// testWebhooksCRUD: endpoints are scoped by workspace, keep their sealed
// secrets, rotate them, and update their subscriptions.
func testWebhooksCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := newWorkspace(t, s, "a"), newWorkspace(t, s, "b")
	w := createWebhook(t, s, a, store.EventExperimentWinnerFound, store.EventExperimentStarted)
	got, err := s.GetWebhook(ctx, a.ID, w.ID)
	must(t, err, "get webhook")
	w.Events = []store.EventType{store.EventExperimentStarted, store.EventExperimentWinnerFound} // sorted
	diff(t, "webhook", w, got)
	_, err = s.GetWebhook(ctx, b.ID, w.ID)
	wantCode(t, err, apperr.NotFound, "get from another workspace")
	wantCode(t, s.DeleteWebhook(ctx, b.ID, w.ID), apperr.NotFound, "delete from another workspace")

	list, err := s.ListWebhooks(ctx, b.ID, store.ListParams{})
	must(t, err, "list b")
	if len(list) != 0 {
		t.Fatalf("workspace b lists %d webhooks", len(list))
	}

	off, url := false, "https://example.org/x"
	up, err := s.UpdateWebhook(ctx, a.ID, w.ID, store.WebhookPatch{URL: &url, Enabled: &off, Events: []store.EventType{store.EventPing}, At: t0.Add(time.Minute)})
	must(t, err, "update")
	if up.URL != url || up.Enabled || len(up.Events) != 1 || up.Events[0] != store.EventPing || !up.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("updated webhook: %+v", up)
	}

	rot, err := s.RotateWebhookSecret(ctx, a.ID, w.ID, store.SecretRotation{KeyID: "k2", Secret: []byte("sealed-2"), PrevUntil: t0.Add(24 * time.Hour), At: t0})
	must(t, err, "rotate")
	if rot.SecretKeyID != "k2" || string(rot.Secret) != "sealed-2" || rot.PrevKeyID != "k1" || string(rot.PrevSecret) != "sealed-1" ||
		rot.PrevUntil == nil || !rot.PrevUntil.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("rotated webhook: %+v", rot)
	}
	_, err = s.RotateWebhookSecret(ctx, b.ID, w.ID, store.SecretRotation{KeyID: "k3", Secret: []byte("x"), At: t0})
	wantCode(t, err, apperr.NotFound, "rotate from another workspace")

	must(t, s.DeleteWebhook(ctx, a.ID, w.ID), "delete")
	_, err = s.GetWebhook(ctx, a.ID, w.ID)
	wantCode(t, err, apperr.NotFound, "get deleted")
}

// testOutbox: an event becomes one delivery per enabled, subscribed
// endpoint of its workspace, written with the change that causes it and
// only if that change commits.
func testOutbox(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := newWorkspace(t, s, "a"), newWorkspace(t, s, "b")
	started := createWebhook(t, s, a, store.EventExperimentStarted, store.EventExperimentWinnerFound)
	winners := createWebhook(t, s, a, store.EventExperimentWinnerFound)
	off := createWebhook(t, s, a, store.EventExperimentStarted)
	no := false
	_, err := s.UpdateWebhook(ctx, a.ID, off.ID, store.WebhookPatch{Enabled: &no, At: t0})
	must(t, err, "disable")
	other := createWebhook(t, s, b, store.EventExperimentStarted)

	e := newExperiment(a, "exp", store.MetricBinary)
	e.Status, e.StartedAt = store.StatusDraft, nil
	must(t, s.CreateExperiment(ctx, e), "create experiment")

	// A transition that does not apply (draft → paused needs running)
	// writes no event.
	failed := newEvent(store.EventExperimentPaused, "", t0)
	_, err = s.TransitionExperiment(ctx, a.ID, e.ID, store.Transition{From: []store.Status{store.StatusRunning}, To: store.StatusPaused, At: t0,
		Events: []store.OutboxEvent{failed}})
	wantCode(t, err, apperr.Conflict, "pause a draft")

	ev := newEvent(store.EventExperimentStarted, "", t0)
	_, err = s.TransitionExperiment(ctx, a.ID, e.ID, store.Transition{From: []store.Status{store.StatusDraft}, To: store.StatusRunning, At: t0,
		Events: []store.OutboxEvent{ev}})
	must(t, err, "start")

	// The winner event is written by the one DeclareWinner that sets it.
	w1, w2 := newEvent(store.EventExperimentWinnerFound, "", t0), newEvent(store.EventExperimentWinnerFound, "", t0)
	set, err := s.DeclareWinner(ctx, a.ID, e.ID, "treatment", t0, w1)
	must(t, err, "declare")
	again, err := s.DeclareWinner(ctx, a.ID, e.ID, "control", t0, w2)
	must(t, err, "declare again")
	if !set || again {
		t.Fatalf("DeclareWinner set %v then %v", set, again)
	}
	srm1, srm2 := newEvent(store.EventExperimentSRMDetected, "", t0), newEvent(store.EventExperimentSRMDetected, "", t0)
	set, err = s.MarkSRM(ctx, a.ID, e.ID, t0, srm1)
	must(t, err, "mark SRM")
	again, err = s.MarkSRM(ctx, a.ID, e.ID, t0.Add(time.Hour), srm2)
	must(t, err, "mark SRM again")
	if !set || again {
		t.Fatalf("MarkSRM set %v then %v", set, again)
	}
	// The backlog: started and winner to the first endpoint, winner to
	// the second; nothing for the disabled one or another workspace's.
	bl, err := s.DeliveryBacklog(ctx, t0.Add(time.Hour))
	must(t, err, "backlog")
	if bl.Pending != 3 || bl.OldestDue <= 0 || bl.OldestDue > time.Hour {
		t.Errorf("DeliveryBacklog = %+v, want 3 pending, due within the hour", bl)
	}
	if bl, _ := s.DeliveryBacklog(ctx, t0.Add(-time.Hour)); bl.OldestDue != 0 {
		t.Errorf("DeliveryBacklog before anything is due = %+v, want nothing overdue", bl)
	}
	got, err := s.GetExperiment(ctx, a.ID, e.ID)
	must(t, err, "get experiment")
	if got.SRMAlertedAt == nil || !got.SRMAlertedAt.Equal(t0) {
		t.Errorf("SRMAlertedAt = %v, want %v", got.SRMAlertedAt, t0)
	}
	_, err = s.MarkSRM(ctx, b.ID, e.ID, t0)
	wantCode(t, err, apperr.NotFound, "MarkSRM from another workspace")
	// no_difference likewise: recorded once, events written only then.
	set, err = s.MarkNoDifference(ctx, a.ID, e.ID, t0)
	must(t, err, "mark no difference")
	again, err = s.MarkNoDifference(ctx, a.ID, e.ID, t0.Add(time.Hour))
	must(t, err, "mark no difference again")
	if !set || again {
		t.Fatalf("MarkNoDifference set %v then %v", set, again)
	}
	if got, err := s.GetExperiment(ctx, a.ID, e.ID); err != nil || got.NoDifferenceAt == nil || !got.NoDifferenceAt.Equal(t0) {
		t.Errorf("NoDifferenceAt = %v (%v), want %v", got.NoDifferenceAt, err, t0)
	}
	_, err = s.MarkNoDifference(ctx, b.ID, e.ID, t0)
	wantCode(t, err, apperr.NotFound, "MarkNoDifference from another workspace")

	wantEvents := func(hook store.Webhook, ws string, want ...store.OutboxEvent) {
		t.Helper()
		got := deliveriesOf(t, s, ws, hook.ID)
		if len(got) != len(want) {
			t.Errorf("webhook %s has %d deliveries, want %d: %v", hook.ID, len(got), len(want), got)
		}
		for _, ev := range want {
			d, ok := got[ev.ID]
			if !ok {
				t.Errorf("webhook %s: no delivery of %s (%s)", hook.ID, ev.ID, ev.Type)
				continue
			}
			if d.Status != store.DeliveryPending || d.EventType != ev.Type || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(ev.CreatedAt) || len(d.AttemptLog) != 0 {
				t.Errorf("delivery of %s: %+v", ev.Type, d)
			}
		}
	}
	wantEvents(started, a.ID, ev, w1)
	wantEvents(winners, a.ID, w1)
	wantEvents(off, a.ID)
	wantEvents(other, b.ID)

	// Emitted with a creation, and directly.
	e2 := newExperiment(a, "exp2", store.MetricBinary)
	ev2 := newEvent(store.EventExperimentStarted, "", t0)
	must(t, s.CreateExperiment(ctx, e2, ev2), "create with event")
	ev3 := newEvent(store.EventExperimentStarted, b.ID, t0)
	must(t, s.EmitEvents(ctx, ev3), "emit")
	wantEvents(started, a.ID, ev, w1, ev2)
	wantEvents(other, b.ID, ev3)

	// A failing creation (duplicate key) writes no event.
	dup := newExperiment(a, "exp2", store.MetricBinary)
	wantCode(t, s.CreateExperiment(ctx, dup, newEvent(store.EventExperimentStarted, "", t0)), apperr.Conflict, "duplicate key")
	wantEvents(started, a.ID, ev, w1, ev2)

	// An event of another workspace cannot ride on this one's change.
	err = s.CreateExperiment(ctx, newExperiment(a, "exp3", store.MetricBinary), newEvent(store.EventExperimentStarted, b.ID, t0))
	if err == nil {
		t.Errorf("an event of workspace b was written with a change of workspace a")
	}
	wantEvents(other, b.ID, ev3)

	// The ping of a test goes to its endpoint only, subscribed or not.
	d, err := s.TestWebhook(ctx, a.ID, winners.ID, newEvent(store.EventPing, "", t0))
	must(t, err, "test webhook")
	if d.EventType != store.EventPing || d.WebhookID != winners.ID || d.Status != store.DeliveryPending {
		t.Errorf("test delivery: %+v", d)
	}
	_, err = s.TestWebhook(ctx, b.ID, winners.ID, newEvent(store.EventPing, "", t0))
	wantCode(t, err, apperr.NotFound, "test another workspace's webhook")
}

// testDeliveryLeases: concurrent claimers never hold the same delivery,
// leases expire, attempts are logged and move deliveries on, and an endpoint
// is disabled only when it failed for a delivery's whole schedule.
func testDeliveryLeases(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "a")
	hook := createWebhook(t, s, a, store.EventPing)
	const n = 40
	var evs []store.OutboxEvent
	for range n {
		evs = append(evs, newEvent(store.EventPing, a.ID, t0))
	}
	must(t, s.EmitEvents(ctx, evs...), "emit")

	due, err := s.DeliveriesDue(ctx, t0.Add(-time.Second))
	must(t, err, "due before")
	if due {
		t.Errorf("deliveries due before their time")
	}
	now := t0.Add(time.Second)
	due, err = s.DeliveriesDue(ctx, now)
	must(t, err, "due")
	if !due {
		t.Fatalf("no delivery due")
	}

	// Four claimers at once: every delivery is leased exactly once.
	var mu sync.Mutex
	owners := map[string]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("w%d", i)
			for {
				got, err := s.ClaimDeliveries(ctx, owner, now, now.Add(time.Minute), 3, nil)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, c := range got {
					if prev, dup := owners[c.ID]; dup {
						errs <- fmt.Errorf("delivery %s claimed by %s and %s", c.ID, prev, owner)
					}
					owners[c.ID] = owner
					if c.Webhook.URL != hook.URL || string(c.Webhook.Secret) != "sealed-1" || c.Event.Type != store.EventPing || string(c.Event.Data) != `{"n":1}` {
						errs <- fmt.Errorf("claimed delivery lacks its event or endpoint: %+v", c)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(owners) != n {
		t.Fatalf("%d deliveries claimed, want %d", len(owners), n)
	}
	due, err = s.DeliveriesDue(ctx, now)
	must(t, err, "due while leased")
	if due {
		t.Errorf("leased deliveries reported due")
	}
	// After the lease, they can be claimed again (the worker died).
	later := now.Add(2 * time.Minute)
	again, err := s.ClaimDeliveries(ctx, "w9", later, later.Add(time.Minute), n, nil)
	must(t, err, "claim after lease")
	if len(again) != n {
		t.Fatalf("after the lease: %d claimed, want %d", len(again), n)
	}
	// Skipped endpoints are not claimed; released deliveries are claimable.
	must(t, s.ReleaseDelivery(ctx, "w9", again[0].ID), "release")
	skipped, err := s.ClaimDeliveries(ctx, "w8", later, later.Add(time.Minute), n, []string{hook.ID})
	must(t, err, "claim skipping")
	if len(skipped) != 0 {
		t.Errorf("claimed %d deliveries of a skipped endpoint", len(skipped))
	}
	one, err := s.ClaimDeliveries(ctx, "w8", later, later.Add(time.Minute), n, nil)
	must(t, err, "claim released")
	if len(one) != 1 || one[0].ID != again[0].ID {
		t.Fatalf("claimed %d after a release, want the released one", len(one))
	}

	// An attempt by a worker that lost the lease is logged but changes
	// nothing; the holder's failure schedules the next attempt.
	next := later.Add(time.Hour)
	fail := store.AttemptOutcome{Attempt: store.DeliveryAttempt{At: later, StatusCode: 500, Latency: 1500 * time.Microsecond, Error: "answered 500"}, NextAttemptAt: &next}
	_, err = s.RecordAttempt(ctx, "w9", one[0].ID, fail)
	must(t, err, "record by a former owner")
	disabled, err := s.RecordAttempt(ctx, "w8", one[0].ID, fail)
	must(t, err, "record failure")
	if disabled {
		t.Errorf("endpoint disabled after one failure")
	}
	d, err := s.GetDelivery(ctx, a.ID, hook.ID, one[0].ID)
	must(t, err, "get delivery")
	if d.Status != store.DeliveryPending || d.Attempts != 1 || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(next) || len(d.AttemptLog) != 2 {
		t.Fatalf("after a failure: %+v", d)
	}
	if a0 := d.AttemptLog[0]; a0.StatusCode != 500 || a0.Latency != 1500*time.Microsecond || a0.Error != "answered 500" || !a0.At.Equal(later) {
		t.Errorf("attempt logged as %+v", a0)
	}
	w, err := s.GetWebhook(ctx, a.ID, hook.ID)
	must(t, err, "get webhook")
	if w.FailingSince == nil || !w.FailingSince.Equal(later) {
		t.Errorf("FailingSince = %v, want %v", w.FailingSince, later)
	}

	// Success of another delivery clears the failing streak.
	ok := store.AttemptOutcome{Attempt: store.DeliveryAttempt{At: later, StatusCode: 204}, Succeeded: true}
	_, err = s.RecordAttempt(ctx, "w9", again[1].ID, ok)
	must(t, err, "record success")
	w, _ = s.GetWebhook(ctx, a.ID, hook.ID)
	if w.FailingSince != nil {
		t.Errorf("FailingSince = %v after a success", w.FailingSince)
	}
	d, _ = s.GetDelivery(ctx, a.ID, hook.ID, again[1].ID)
	if d.Status != store.DeliverySucceeded || d.NextAttemptAt != nil {
		t.Errorf("after success: %+v", d)
	}

	// The final failure of the delivery whose first failed attempt began
	// the streak disables the endpoint; due deliveries of a disabled
	// endpoint are not claimed, and a retry of its deliveries is refused.
	last := next.Add(72 * time.Hour)
	one, err = s.ClaimDeliveries(ctx, "w8", next, next.Add(time.Minute), 1, nil)
	must(t, err, "claim")
	for i, at := range []time.Time{next, last} {
		if i == 1 {
			one, err = s.ClaimDeliveries(ctx, "w8", last, last.Add(time.Minute), 1, nil)
			must(t, err, "claim")
		}
		if len(one) != 1 {
			t.Fatalf("claimed %d", len(one))
		}
		o := store.AttemptOutcome{Attempt: store.DeliveryAttempt{At: at, Error: "timed out"}}
		if i == 0 {
			retry := last
			o.NextAttemptAt = &retry
		}
		disabled, err = s.RecordAttempt(ctx, "w8", one[0].ID, o)
		must(t, err, "record")
		if disabled != (i == 1) {
			t.Errorf("attempt %d: disabled = %v", i, disabled)
		}
	}
	d, _ = s.GetDelivery(ctx, a.ID, hook.ID, one[0].ID)
	if d.Status != store.DeliveryFailed || d.NextAttemptAt != nil {
		t.Errorf("after the last attempt: %+v", d)
	}
	w, _ = s.GetWebhook(ctx, a.ID, hook.ID)
	if w.Enabled || w.DisabledReason == "" {
		t.Errorf("endpoint after failing for its schedule: enabled %v, reason %q", w.Enabled, w.DisabledReason)
	}
	rest, err := s.ClaimDeliveries(ctx, "w7", last.Add(time.Hour), last.Add(2*time.Hour), n, nil)
	must(t, err, "claim from a disabled endpoint")
	if len(rest) != 0 {
		t.Errorf("claimed %d deliveries of a disabled endpoint", len(rest))
	}
	_, err = s.RetryDelivery(ctx, a.ID, hook.ID, d.ID, last)
	wantCode(t, err, apperr.Conflict, "retry on a disabled endpoint")

	// Enabling clears the reason; a retry makes the delivery due again.
	yes := true
	w, err = s.UpdateWebhook(ctx, a.ID, hook.ID, store.WebhookPatch{Enabled: &yes, At: last})
	must(t, err, "enable")
	if !w.Enabled || w.DisabledReason != "" || w.FailingSince != nil {
		t.Errorf("enabled endpoint: %+v", w)
	}
	d, err = s.RetryDelivery(ctx, a.ID, hook.ID, d.ID, last)
	must(t, err, "retry")
	if d.Status != store.DeliveryPending || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(last) {
		t.Errorf("retried delivery: %+v", d)
	}
	_, err = s.RetryDelivery(ctx, a.ID, hook.ID, id.New(id.Delivery), last)
	wantCode(t, err, apperr.NotFound, "retry an unknown delivery")

	// Deleting the endpoint deletes its deliveries; an attempt recorded
	// after that is dropped quietly.
	must(t, s.DeleteWebhook(ctx, a.ID, hook.ID), "delete")
	_, err = s.RecordAttempt(ctx, "w7", d.ID, ok)
	must(t, err, "record after delete")
	_, err = s.ListDeliveries(ctx, a.ID, hook.ID, store.ListParams{})
	wantCode(t, err, apperr.NotFound, "deliveries of a deleted webhook")
}

// testWebhookReseal: the maintenance listing spans workspaces, and a reseal
// applies only while the row's secrets are under the key ids the caller
// read, so a concurrent secret rotation is never overwritten.
func testWebhookReseal(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := newWorkspace(t, s, "a"), newWorkspace(t, s, "b")
	wa := createWebhook(t, s, a, store.EventPing)
	wb := createWebhook(t, s, b, store.EventPing)
	all, err := s.ListAllWebhooks(ctx, "", 10)
	must(t, err, "list all")
	if len(all) != 2 {
		t.Fatalf("ListAllWebhooks = %d webhooks, want 2 (both workspaces)", len(all))
	}
	after, err := s.ListAllWebhooks(ctx, all[0].ID, 10)
	must(t, err, "list after")
	if len(after) != 1 || after[0].ID != all[1].ID {
		t.Fatalf("ListAllWebhooks after %s = %v", all[0].ID, after)
	}

	next := wa
	next.SecretKeyID, next.Secret = "k2", []byte("sealed-2")
	ok, err := s.ResealWebhook(ctx, next, "k0-stale", "")
	must(t, err, "stale reseal")
	if ok {
		t.Fatal("a reseal with stale key ids was applied")
	}
	ok, err = s.ResealWebhook(ctx, next, wa.SecretKeyID, wa.PrevKeyID)
	must(t, err, "reseal")
	got, err := s.GetWebhook(ctx, a.ID, wa.ID)
	must(t, err, "get")
	if !ok || got.SecretKeyID != "k2" || string(got.Secret) != "sealed-2" {
		t.Fatalf("reseal applied %v, row %s %q", ok, got.SecretKeyID, got.Secret)
	}
	other, err := s.GetWebhook(ctx, b.ID, wb.ID)
	must(t, err, "get other")
	if other.SecretKeyID != wb.SecretKeyID {
		t.Fatal("a reseal changed another webhook")
	}
}
