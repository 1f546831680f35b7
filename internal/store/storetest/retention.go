package storetest

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

func newKey(t *testing.T, s store.Store, ws store.Workspace, name string) store.APIKey {
	t.Helper()
	k := store.APIKey{ID: id.New(id.Key), WorkspaceID: ws.ID, Name: name, Scope: store.ScopeAdmin,
		Lookup: "lk_" + name + "_" + ws.ID, Hash: []byte(name), CreatedAt: t0}
	must(t, s.CreateKey(t.Context(), k), "create key")
	return k
}

func newSession(k store.APIKey, token string, at time.Time) store.Session {
	h := sha256.Sum256([]byte(token))
	return store.Session{TokenHash: h[:], KeyID: k.ID, WorkspaceID: k.WorkspaceID, SealedKey: []byte("sealed " + token),
		CreatedAt: at, ExpiresAt: at.Add(8 * time.Hour)}
}

// testSessions: sessions are found by their token's hash until they expire,
// end at sign-out, are capped per key with the oldest evicted, and sign-ins
// with one key never evict another key's session.
func testSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	ws := newWorkspace(t, s, "acme")
	admin := newKey(t, s, ws, "admin")
	other := newKey(t, s, ws, "other")

	a := newSession(admin, "admin-token", t0)
	n, err := s.CreateSession(ctx, a, 3)
	must(t, err, "create session")
	if n != 0 {
		t.Errorf("first session evicted %d", n)
	}
	got, err := s.GetSession(ctx, a.TokenHash, t0.Add(time.Hour))
	must(t, err, "get session")
	diff(t, "session", a, got)
	_, err = s.GetSession(ctx, a.TokenHash, a.ExpiresAt)
	wantCode(t, err, apperr.NotFound, "GetSession at its expiry")
	_, err = s.GetSession(ctx, []byte("nope"), t0)
	wantCode(t, err, apperr.NotFound, "GetSession of an unknown token")
	_, err = s.CreateSession(ctx, newSession(store.APIKey{ID: "key_missing", WorkspaceID: ws.ID}, "x", t0), 3)
	wantCode(t, err, apperr.NotFound, "CreateSession of an unknown key")

	// Many sign-ins with another key: at most 3 of its sessions stay, the
	// newest, and the admin's session is untouched.
	var others []store.Session
	evicted := 0
	for i := range 10 {
		o := newSession(other, fmt.Sprintf("other-%d", i), t0.Add(time.Duration(i+1)*time.Minute))
		n, err := s.CreateSession(ctx, o, 3)
		must(t, err, "create other session")
		evicted += n
		others = append(others, o)
	}
	if evicted != 7 {
		t.Errorf("evicted %d sessions of the other key, want 7", evicted)
	}
	now := t0.Add(time.Hour)
	for i, o := range others {
		_, err := s.GetSession(ctx, o.TokenHash, now)
		if i < 7 {
			wantCode(t, err, apperr.NotFound, fmt.Sprintf("evicted session %d", i))
		} else {
			must(t, err, fmt.Sprintf("session %d among the newest", i))
		}
	}
	_, err = s.GetSession(ctx, a.TokenHash, now)
	must(t, err, "the admin's session after another key's sign-ins")

	must(t, s.DeleteSession(ctx, a.TokenHash), "sign out")
	_, err = s.GetSession(ctx, a.TokenHash, now)
	wantCode(t, err, apperr.NotFound, "GetSession after sign-out")
	must(t, s.DeleteSession(ctx, a.TokenHash), "second sign-out")

	// Expired sessions are pruned; live ones stay.
	res, err := s.Prune(ctx, store.PruneSessions, others[8].ExpiresAt, 100)
	must(t, err, "prune sessions")
	if res["dashboard_sessions"] != 1 {
		t.Errorf("pruned %v, want the one session expired before the cutoff", res)
	}
	for _, o := range others[8:] {
		if _, err := s.GetSession(ctx, o.TokenHash, now); err != nil {
			t.Errorf("live session pruned: %v", err)
		}
	}
}

// testPrune: each kind deletes only rows older than the cutoff, at most
// limit per table per call, and never an event that still has a pending
// delivery.
func testPrune(t *testing.T, s store.Store) {
	ctx := t.Context()
	ws := newWorkspace(t, s, "acme")
	day := 24 * time.Hour
	old, cut, recent := t0, t0.Add(30*day), t0.Add(31*day)

	// Idempotency records: 3 old, 1 recent.
	for i := range 4 {
		at := old
		if i == 3 {
			at = recent
		}
		_, err := s.ClaimIdempotency(ctx, store.IdempotencyRecord{WorkspaceID: ws.ID, Key: fmt.Sprintf("k%d", i), Fingerprint: "f", CreatedAt: at}, at.Add(-day))
		must(t, err, "claim")
	}
	res, err := s.Prune(ctx, store.PruneIdempotency, cut, 2)
	must(t, err, "prune idempotency")
	if res["idempotency"] != 2 {
		t.Errorf("first batch pruned %v, want 2 (the limit)", res)
	}
	res, err = s.Prune(ctx, store.PruneIdempotency, cut, 2)
	must(t, err, "prune idempotency")
	if res["idempotency"] != 1 {
		t.Errorf("second batch pruned %v, want 1", res)
	}
	got, err := s.ClaimIdempotency(ctx, store.IdempotencyRecord{WorkspaceID: ws.ID, Key: "k3", Fingerprint: "g", CreatedAt: recent}, old)
	must(t, err, "claim recent")
	if got == nil || got.Fingerprint != "f" {
		t.Errorf("the recent record was pruned: %+v", got)
	}

	// Event keys: an old key is forgotten (a retry counts again), a recent
	// one still deduplicates.
	e := createExperiment(t, s, ws, "e", store.MetricContinuous)
	assign(t, s, e, 0, old, "u1")
	ev := func(key string, at time.Time) store.EventResult {
		r, err := recordEvents(ctx, s, ws.ID, e.ID, e.Metric, []store.Event{{UnitID: "u1", Value: 1, IdempotencyKey: key, At: at}})
		must(t, err, "record event")
		return r[0]
	}
	ev("old-key", old)
	ev("new-key", recent)
	c := createCampaign(t, s, ws, "c")
	send(t, s, c, 0, old, "r1")
	if _, err := s.RecordCampaignEvents(ctx, []store.CampaignEventBatch{{WorkspaceID: ws.ID, CampaignID: c.ID, Window: time.Hour,
		ReceivedAt: old, Items: []store.CampaignEvent{{Recipient: "r1", Type: "open", At: old, IdempotencyKey: "c-old"}}}}); err != nil {
		t.Fatalf("campaign event: %v", err)
	}
	res, err = s.Prune(ctx, store.PruneEventKeys, cut, 100)
	must(t, err, "prune event keys")
	if res["event_keys"] != 1 || res["campaign_event_keys"] != 1 {
		t.Errorf("pruned %v, want one key of each table", res)
	}
	if r := ev("old-key", recent); r.Outcome == store.OutcomeDuplicate {
		t.Errorf("an old key still deduplicates after pruning: %+v", r)
	}
	if r := ev("new-key", recent); r.Outcome != store.OutcomeDuplicate {
		t.Errorf("a recent key was pruned: retry outcome %+v", r)
	}

	// Webhook history: an old delivered event goes with its delivery and
	// attempt; an old event whose delivery is pending stays; a recent
	// delivered one stays; an old event without subscribers goes.
	hook := createWebhook(t, s, ws, store.EventPing)
	delivered, pending, fresh := newEvent(store.EventPing, ws.ID, old), newEvent(store.EventPing, ws.ID, old), newEvent(store.EventPing, ws.ID, recent)
	lonely := newEvent(store.EventExperimentStarted, ws.ID, old)
	must(t, s.EmitEvents(ctx, delivered, pending, fresh, lonely), "emit")
	finish := func(eventID string, at time.Time) {
		t.Helper()
		claimed, err := s.ClaimDeliveries(ctx, "w", at.Add(time.Second), at.Add(time.Minute), 10, nil)
		must(t, err, "claim")
		for _, cd := range claimed {
			if cd.EventID != eventID {
				must(t, s.ReleaseDelivery(ctx, "w", cd.ID), "release")
				continue
			}
			_, err := s.RecordAttempt(ctx, "w", cd.ID, store.AttemptOutcome{Succeeded: true,
				Attempt: store.DeliveryAttempt{At: at, StatusCode: 200, Latency: time.Millisecond}})
			must(t, err, "record attempt")
		}
	}
	finish(delivered.ID, old)
	finish(fresh.ID, recent)
	res, err = s.Prune(ctx, store.PruneWebhookHistory, cut, 100)
	must(t, err, "prune webhook history")
	want := map[string]int64{"delivery_attempts": 1, "deliveries": 1, "outbox": 2}
	diff(t, "pruned webhook rows", want, res)
	ds := deliveriesOf(t, s, ws.ID, hook.ID)
	if _, ok := ds[delivered.ID]; ok {
		t.Errorf("the old delivered delivery is still listed")
	}
	if d, ok := ds[pending.ID]; !ok || d.Status != store.DeliveryPending {
		t.Errorf("the old pending delivery was pruned: %+v", ds)
	}
	if _, ok := ds[fresh.ID]; !ok {
		t.Errorf("the recent delivery was pruned")
	}
	// The pending one is still claimable with its event.
	claimed, err := s.ClaimDeliveries(ctx, "w2", recent.Add(time.Hour), recent.Add(2*time.Hour), 10, nil)
	must(t, err, "claim after prune")
	if len(claimed) != 1 || claimed[0].EventID != pending.ID || string(claimed[0].Event.Data) != `{"n":1}` {
		t.Errorf("after pruning, claimed %+v, want the pending delivery with its event", claimed)
	}
	if _, err := s.Prune(ctx, store.PruneKind("nope"), cut, 1); err == nil {
		t.Errorf("Prune of an unknown kind did not fail")
	}
}
