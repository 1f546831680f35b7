// Package storetest is the conformance suite every store.Store must pass.
//
// One suite for every backend, in the manner of Flipt's storage tests: the
// SQLite and PostgreSQL packages (and a run through pgbouncer) call Run with
// a function that opens a fresh, migrated, empty store, so that what one
// backend does the other must do too. Each test opens its own store and runs
// in parallel with the others.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

// Run runs every conformance test against stores made by open. open must
// return a fresh, migrated store with no rows, and close it when t ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Ping", testPing},
		{"Workspaces", testWorkspaces},
		{"WorkspaceWithKeyIsAtomic", testWorkspaceWithKeyAtomic},
		{"Keys", testKeys},
		{"KeyPagesAndOrigins", testKeyPagesAndOrigins},
		{"CreateGetExperiment", testCreateGetExperiment},
		{"ExperimentConflicts", testExperimentConflicts},
		{"ListExperiments", testListExperiments},
		{"TransitionExperiment", testTransition},
		{"ConcurrentTransitions", testConcurrentTransitions},
		{"DeclareWinner", testDeclareWinner},
		{"Assign", testAssign},
		{"AssignIsolation", testAssignIsolation},
		{"AssignConcurrent", testAssignConcurrent},
		{"AssignLargeBatch", testAssignLargeBatch},
		{"BinaryEvents", testBinaryEvents},
		{"ContinuousEvents", testContinuousEvents},
		{"EventIsolation", testEventIsolation},
		{"EventBatchesInOneCall", testEventBatches},
		{"EventsConcurrentBinary", testEventsConcurrentBinary},
		{"EventsConcurrentContinuous", testEventsConcurrentContinuous},
		{"Buckets", testBuckets},
		{"CounterShards", testCounterShards},
		{"FinishedCounters", testFinishedCounters},
		{"DecisionStatistics", testDecisionStatistics},
		{"States", testStates},
		{"StatesConcurrent", testStatesConcurrent},
		{"ListStates", testListStates},
		{"Idempotency", testIdempotency},
		{"FunnelsCRUD", testFunnelsCRUD},
		{"FunnelProgress", testFunnelProgress},
		{"FunnelProgressBatch", testFunnelProgressBatch},
		{"FunnelProgressBatchAsCalls", testFunnelProgressBatchAsCalls},
		{"FunnelProgressConcurrent", testFunnelProgressConcurrent},
		{"WebhooksCRUD", testWebhooksCRUD},
		{"WebhookReseal", testWebhookReseal},
		{"Outbox", testOutbox},
		{"DeliveryLeases", testDeliveryLeases},
		{"CampaignsCRUD", testCampaignsCRUD},
		{"CampaignSends", testCampaignSends},
		{"CampaignEvents", testCampaignEvents},
		{"CampaignEventsBulk", testCampaignEventsBulk},
		{"CampaignDelays", testCampaignDelays},
		{"CampaignTestSums", testCampaignTestSums},
		{"DecideLeases", testDecideLeases},
		{"DecideLeasesConcurrent", testDecideLeasesConcurrent},
		{"Segments", testSegments},
		{"Layers", testLayers},
		{"ConversionWindow", testConversionWindow},
		{"Sessions", testSessions},
		{"Prune", testPrune},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// t0 is the suite's clock: whole microseconds, as stored.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

// wantCode fails the test unless err carries the code.
func wantCode(t *testing.T, err error, code apperr.Code, what string) {
	t.Helper()
	if !apperr.Is(err, code) {
		t.Fatalf("%s: got error %v, want code %s", what, err, code)
	}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func diff(t *testing.T, what string, want, got any, opts ...cmp.Option) {
	t.Helper()
	if d := cmp.Diff(want, got, opts...); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func newWorkspace(t *testing.T, s store.Store, name string) store.Workspace {
	t.Helper()
	ws := store.Workspace{ID: id.New(id.Workspace), Name: name, CreatedAt: t0}
	must(t, s.CreateWorkspace(t.Context(), ws), "create workspace")
	return ws
}

func ptr[T any](v T) *T { return &v }

// newExperiment returns an unsaved running experiment with variants named
// by keys, the first the control.
func newExperiment(ws store.Workspace, key string, metric store.Metric, keys ...string) store.Experiment {
	if len(keys) == 0 {
		keys = []string{"control", "treatment"}
	}
	e := store.Experiment{
		ID: id.New(id.Experiment), WorkspaceID: ws.ID, Key: key, Name: "Experiment " + key,
		Kind: store.KindStandard, Metric: metric, Strategy: "thompson", Status: store.StatusRunning,
		Settings: store.Settings{
			MinSamples: 100, DecisionThreshold: 0.95, LossThreshold: 0.01, WeightFloor: 0.05,
			Alpha: 0.05, Traffic: 1, Seed: ptr(int64(42)), ControlShare: ptr(0.5), AutoComplete: true,
			Gamma: ptr(0.99),
		},
		CreatedAt: t0, UpdatedAt: t0, StartedAt: ptr(t0),
	}
	for i, k := range keys {
		e.Variants = append(e.Variants, store.Variant{
			ID: id.New(id.Variant), Key: k, Name: "Variant " + k, Control: i == 0,
			Payload: json.RawMessage(fmt.Sprintf(`{"color":%q}`, k)), Position: i,
		})
	}
	return e
}

func createExperiment(t *testing.T, s store.Store, ws store.Workspace, key string, metric store.Metric, keys ...string) store.Experiment {
	t.Helper()
	e := newExperiment(ws, key, metric, keys...)
	must(t, s.CreateExperiment(t.Context(), e), "create experiment")
	return e
}

// assign assigns the units to variant v of e, one batch, and returns the
// outcomes.
func assign(t *testing.T, s store.Store, e store.Experiment, v int, at time.Time, units ...string) []store.Assigned {
	t.Helper()
	b := store.AssignBatch{WorkspaceID: e.WorkspaceID, ExperimentID: e.ID, Weights: evenWeights(e)}
	for _, u := range units {
		b.Items = append(b.Items, store.Assignment{
			UnitID: u, VariantID: e.Variants[v].ID, Propensity: 1 / float64(len(e.Variants)), Epoch: 1, AssignedAt: at,
		})
	}
	out, err := s.Assign(t.Context(), []store.AssignBatch{b})
	must(t, err, "assign")
	return out[0]
}

func evenWeights(e store.Experiment) map[string]float64 {
	w := map[string]float64{}
	for _, v := range e.Variants {
		w[v.ID] = 1 / float64(len(e.Variants))
	}
	return w
}

func counters(t *testing.T, s store.Store, e store.Experiment) map[string]store.Counters {
	t.Helper()
	cs, err := s.Counters(t.Context(), e.WorkspaceID, e.ID)
	must(t, err, "counters")
	out := map[string]store.Counters{}
	for _, c := range cs {
		out[c.VariantID] = c
	}
	return out
}

// approx compares floats to a relative 1e-9: sums are added in different
// orders by different backends.
var approx = cmpopts.EquateApprox(1e-9, 1e-9)

// classic compares only the counters charts and the posterior use; the
// statistics of the decision tests are checked by testDecisionStatistics.
var classic = cmpopts.IgnoreFields(store.Counters{}, "ExpectedSq", "InvExpected", "InvP", "InvP2", "YInvP", "YInvP2", "Y2InvP2",
	"Positive", "Negative", "LogSum", "LogSumSq")

func testPing(t *testing.T, s store.Store) {
	must(t, s.Ping(t.Context()), "ping")
}

func testWorkspaces(t *testing.T, s store.Store) {
	ctx := t.Context()
	n, err := s.CountWorkspaces(ctx)
	must(t, err, "count")
	if n != 0 {
		t.Fatalf("CountWorkspaces of an empty store = %d", n)
	}
	a := newWorkspace(t, s, "acme")
	got, err := s.GetWorkspace(ctx, a.ID)
	must(t, err, "get")
	diff(t, "GetWorkspace", a, got)
	got, err = s.GetWorkspaceByName(ctx, "acme")
	must(t, err, "get by name")
	diff(t, "GetWorkspaceByName", a, got)

	_, err = s.GetWorkspace(ctx, id.New(id.Workspace))
	wantCode(t, err, apperr.NotFound, "GetWorkspace of unknown id")
	_, err = s.GetWorkspaceByName(ctx, "nobody")
	wantCode(t, err, apperr.NotFound, "GetWorkspaceByName of unknown name")
	err = s.CreateWorkspace(ctx, store.Workspace{ID: id.New(id.Workspace), Name: "acme", CreatedAt: t0})
	wantCode(t, err, apperr.Conflict, "CreateWorkspace with a taken name")
	err = s.CreateWorkspace(ctx, store.Workspace{ID: a.ID, Name: "other", CreatedAt: t0})
	wantCode(t, err, apperr.Conflict, "CreateWorkspace with a taken id")

	b := store.Workspace{ID: id.New(id.Workspace), Name: "beta", CreatedAt: t0.Add(time.Second)}
	k := store.APIKey{ID: id.New(id.Key), WorkspaceID: b.ID, Name: "bootstrap", Scope: store.ScopeAdmin,
		Lookup: "lk_beta", Hash: []byte{1, 2, 3}, CreatedAt: t0}
	must(t, s.CreateWorkspaceWithKey(ctx, b, k), "create workspace with key")
	gotKey, err := s.KeyByLookup(ctx, "lk_beta")
	must(t, err, "key by lookup")
	diff(t, "bootstrap key", k, gotKey)
	n, err = s.CountWorkspaces(ctx)
	must(t, err, "count")
	if n != 2 {
		t.Errorf("CountWorkspaces = %d, want 2", n)
	}
}

func testWorkspaceWithKeyAtomic(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	must(t, s.CreateKey(ctx, store.APIKey{ID: id.New(id.Key), WorkspaceID: a.ID, Name: "k", Scope: store.ScopeAdmin,
		Lookup: "taken", Hash: []byte{1}, CreatedAt: t0}), "create key")
	b := store.Workspace{ID: id.New(id.Workspace), Name: "beta", CreatedAt: t0}
	err := s.CreateWorkspaceWithKey(ctx, b, store.APIKey{ID: id.New(id.Key), WorkspaceID: b.ID, Name: "k",
		Scope: store.ScopeAdmin, Lookup: "taken", Hash: []byte{1}, CreatedAt: t0})
	wantCode(t, err, apperr.Conflict, "CreateWorkspaceWithKey with a taken lookup")
	_, err = s.GetWorkspace(ctx, b.ID)
	wantCode(t, err, apperr.NotFound, "workspace of a failed CreateWorkspaceWithKey")
}

func testKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	b := newWorkspace(t, s, "beta")
	var keysA []store.APIKey
	for i, scope := range []store.Scope{store.ScopeAdmin, store.ScopeWrite, store.ScopeAssign} {
		k := store.APIKey{ID: id.New(id.Key), WorkspaceID: a.ID, Name: fmt.Sprintf("key %d", i), Scope: scope,
			Lookup: fmt.Sprintf("lk_a%d", i), Hash: []byte{byte(i), 0xff, 0}, CreatedAt: t0.Add(time.Duration(i) * time.Second)}
		must(t, s.CreateKey(ctx, k), "create key")
		keysA = append(keysA, k)
	}
	kb := store.APIKey{ID: id.New(id.Key), WorkspaceID: b.ID, Name: "b", Scope: store.ScopeAdmin,
		Lookup: "lk_b", Hash: []byte{9}, CreatedAt: t0}
	must(t, s.CreateKey(ctx, kb), "create key")

	got, err := s.ListKeys(ctx, a.ID)
	must(t, err, "list keys")
	diff(t, "ListKeys(a)", keysA, got)
	got, err = s.ListKeys(ctx, b.ID)
	must(t, err, "list keys")
	diff(t, "ListKeys(b)", []store.APIKey{kb}, got)

	k, err := s.KeyByLookup(ctx, "lk_a1")
	must(t, err, "key by lookup")
	diff(t, "KeyByLookup", keysA[1], k)
	_, err = s.KeyByLookup(ctx, "lk_none")
	wantCode(t, err, apperr.NotFound, "KeyByLookup of unknown lookup")

	dup := kb
	dup.ID = id.New(id.Key)
	wantCode(t, s.CreateKey(ctx, dup), apperr.Conflict, "CreateKey with a taken lookup")
	orphan := store.APIKey{ID: id.New(id.Key), WorkspaceID: id.New(id.Workspace), Name: "x", Scope: store.ScopeAdmin,
		Lookup: "lk_orphan", Hash: []byte{1}, CreatedAt: t0}
	wantCode(t, s.CreateKey(ctx, orphan), apperr.NotFound, "CreateKey in an unknown workspace")

	// Revoking from another workspace finds nothing and changes nothing.
	wantCode(t, s.RevokeKey(ctx, b.ID, keysA[0].ID, t0), apperr.NotFound, "RevokeKey across workspaces")
	wantCode(t, s.RevokeKey(ctx, a.ID, id.New(id.Key), t0), apperr.NotFound, "RevokeKey of unknown key")
	at := t0.Add(time.Hour)
	must(t, s.RevokeKey(ctx, a.ID, keysA[0].ID, at), "revoke")
	must(t, s.RevokeKey(ctx, a.ID, keysA[0].ID, at.Add(time.Hour)), "revoke again")
	k, err = s.KeyByLookup(ctx, keysA[0].Lookup)
	must(t, err, "key by lookup")
	if k.RevokedAt == nil || !k.RevokedAt.Equal(at) {
		t.Errorf("RevokedAt = %v, want %v (the first revocation)", k.RevokedAt, at)
	}
	k, err = s.KeyByLookup(ctx, keysA[1].Lookup)
	must(t, err, "key by lookup")
	if k.RevokedAt != nil {
		t.Errorf("revoking one key revoked another")
	}
}

// testKeyPagesAndOrigins covers what POST/GET/DELETE /v1/keys need: allowed
// origins stored and read back in order, one key by id within its workspace,
// and pages by id.
func testKeyPagesAndOrigins(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	b := newWorkspace(t, s, "beta")
	var keys []store.APIKey
	for i := range 5 {
		k := store.APIKey{ID: id.New(id.Key), WorkspaceID: a.ID, Name: fmt.Sprintf("web %d", i), Scope: store.ScopeAssign,
			Lookup: fmt.Sprintf("lk_o%d", i), Hash: []byte{byte(i)}, CreatedAt: t0}
		if i%2 == 0 {
			k.AllowedOrigins = []string{"https://shop.example", "http://127.0.0.1:8081", fmt.Sprintf("https://n%d.example", i)}
		}
		must(t, s.CreateKey(ctx, k), "create key")
		keys = append(keys, k)
	}
	must(t, s.CreateKey(ctx, store.APIKey{ID: id.New(id.Key), WorkspaceID: b.ID, Name: "b", Scope: store.ScopeAssign,
		Lookup: "lk_ob", Hash: []byte{9}, CreatedAt: t0, AllowedOrigins: []string{"https://b.example"}}), "create key")

	got, err := s.GetKey(ctx, a.ID, keys[2].ID)
	must(t, err, "get key")
	diff(t, "GetKey", keys[2], got)
	got, err = s.KeyByLookup(ctx, keys[0].Lookup)
	must(t, err, "key by lookup")
	diff(t, "KeyByLookup with origins", keys[0], got)
	_, err = s.GetKey(ctx, b.ID, keys[2].ID)
	wantCode(t, err, apperr.NotFound, "GetKey across workspaces")
	_, err = s.GetKey(ctx, a.ID, id.New(id.Key))
	wantCode(t, err, apperr.NotFound, "GetKey of unknown key")

	var pages [][]store.APIKey
	after := ""
	for range 10 { // bounded: 5 keys in pages of 2
		page, err := s.ListKeysPage(ctx, a.ID, store.ListParams{Limit: 2, After: after})
		must(t, err, "list keys page")
		if len(page) == 0 {
			break
		}
		pages = append(pages, page)
		after = page[len(page)-1].ID
	}
	diff(t, "ListKeysPage pages", [][]store.APIKey{keys[0:2], keys[2:4], keys[4:5]}, pages)

	// A revoked key keeps its origins and still lists.
	at := t0.Add(time.Minute)
	must(t, s.RevokeKey(ctx, a.ID, keys[0].ID, at), "revoke")
	got, err = s.GetKey(ctx, a.ID, keys[0].ID)
	must(t, err, "get revoked key")
	want := keys[0]
	want.RevokedAt = &at
	diff(t, "GetKey of a revoked key", want, got)
}

func testCreateGetExperiment(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	b := newWorkspace(t, s, "beta")
	e := newExperiment(a, "checkout-button", store.MetricBinary, "control", "green", "blue")
	e.Status = store.StatusDraft
	e.StartedAt = nil
	e.Variants[2].Payload = json.RawMessage(`null`)
	e.Settings.Seed = nil
	must(t, s.CreateExperiment(ctx, e), "create")

	got, err := s.GetExperiment(ctx, a.ID, e.ID)
	must(t, err, "get by id")
	diff(t, "GetExperiment by id", e, got)
	got, err = s.GetExperiment(ctx, a.ID, "checkout-button")
	must(t, err, "get by key")
	diff(t, "GetExperiment by key", e, got)

	_, err = s.GetExperiment(ctx, b.ID, e.ID)
	wantCode(t, err, apperr.NotFound, "GetExperiment by id from another workspace")
	_, err = s.GetExperiment(ctx, b.ID, e.Key)
	wantCode(t, err, apperr.NotFound, "GetExperiment by key from another workspace")
	_, err = s.GetExperiment(ctx, a.ID, "nope")
	wantCode(t, err, apperr.NotFound, "GetExperiment of unknown ref")

	// A key that equals another experiment's id does not shadow it.
	shadow := newExperiment(a, e.ID, store.MetricContinuous)
	must(t, s.CreateExperiment(ctx, shadow), "create shadow")
	got, err = s.GetExperiment(ctx, a.ID, e.ID)
	must(t, err, "get by id")
	if got.ID != e.ID {
		t.Errorf("GetExperiment(%s) found %s by key, want the experiment with that id", e.ID, got.ID)
	}

	// An empty payload is stored as JSON null.
	n := newExperiment(a, "no-payload", store.MetricBinary)
	n.Variants[0].Payload = nil
	must(t, s.CreateExperiment(ctx, n), "create")
	got, err = s.GetExperiment(ctx, a.ID, n.ID)
	must(t, err, "get")
	if string(got.Variants[0].Payload) != "null" {
		t.Errorf("nil payload stored as %q, want null", got.Variants[0].Payload)
	}
}

func testExperimentConflicts(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	b := newWorkspace(t, s, "beta")
	createExperiment(t, s, a, "exp", store.MetricBinary)
	dup := newExperiment(a, "exp", store.MetricBinary)
	wantCode(t, s.CreateExperiment(ctx, dup), apperr.Conflict, "CreateExperiment with a taken key")
	// The failed create left nothing behind, not even its variants.
	_, err := s.GetExperiment(ctx, a.ID, dup.ID)
	wantCode(t, err, apperr.NotFound, "experiment of a failed create")
	// The same key in another workspace is another experiment.
	createExperiment(t, s, b, "exp", store.MetricBinary)

	bad := newExperiment(a, "dup-variants", store.MetricBinary, "x", "x")
	wantCode(t, s.CreateExperiment(ctx, bad), apperr.Conflict, "CreateExperiment with duplicate variant keys")
	_, err = s.GetExperiment(ctx, a.ID, bad.ID)
	wantCode(t, err, apperr.NotFound, "experiment with duplicate variant keys")

	orphan := newExperiment(store.Workspace{ID: id.New(id.Workspace)}, "orphan", store.MetricBinary)
	wantCode(t, s.CreateExperiment(ctx, orphan), apperr.NotFound, "CreateExperiment in an unknown workspace")
}

func testListExperiments(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	b := newWorkspace(t, s, "beta")
	var all []store.Experiment
	for i := range 7 {
		e := newExperiment(a, fmt.Sprintf("exp-%d", i), store.MetricBinary)
		if i%3 == 0 {
			e.Status = store.StatusPaused
		}
		must(t, s.CreateExperiment(ctx, e), "create")
		all = append(all, e)
	}
	createExperiment(t, s, b, "other", store.MetricBinary)
	slices.SortFunc(all, func(x, y store.Experiment) int { return cmpString(x.ID, y.ID) })

	var got []store.Experiment
	after := ""
	for range 10 {
		page, err := s.ListExperiments(ctx, a.ID, store.ListParams{Limit: 3, After: after})
		must(t, err, "list")
		if len(page) > 3 {
			t.Fatalf("page of %d items, limit 3", len(page))
		}
		got = append(got, page...)
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].ID
	}
	diff(t, "paged ListExperiments", all, got)

	paused, err := s.ListExperiments(ctx, a.ID, store.ListParams{Status: store.StatusPaused})
	must(t, err, "list paused")
	var want []store.Experiment
	for _, e := range all {
		if e.Status == store.StatusPaused {
			want = append(want, e)
		}
	}
	diff(t, "ListExperiments(status=paused)", want, paused)

	// Newest first (the dashboard's order), paged the other way.
	var newest []store.Experiment
	after = ""
	for range 10 {
		page, err := s.ListExperiments(ctx, a.ID, store.ListParams{Limit: 3, After: after, Newest: true})
		must(t, err, "list newest first")
		newest = append(newest, page...)
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].ID
	}
	reversed := slices.Clone(all)
	slices.Reverse(reversed)
	diff(t, "paged ListExperiments(newest first)", reversed, newest)

	other, err := s.ListExperiments(ctx, b.ID, store.ListParams{})
	must(t, err, "list b")
	if len(other) != 1 || other[0].Key != "other" {
		t.Errorf("ListExperiments(b) = %d items, want only b's", len(other))
	}
	none, err := s.ListExperiments(ctx, id.New(id.Workspace), store.ListParams{})
	must(t, err, "list unknown workspace")
	if len(none) != 0 {
		t.Errorf("ListExperiments of an unknown workspace = %d items", len(none))
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testTransition(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	b := newWorkspace(t, s, "beta")
	e := newExperiment(a, "exp", store.MetricBinary)
	e.Status, e.StartedAt = store.StatusDraft, nil
	must(t, s.CreateExperiment(ctx, e), "create")

	t1 := t0.Add(time.Minute)
	got, err := s.TransitionExperiment(ctx, a.ID, e.ID, store.Transition{
		From: []store.Status{store.StatusDraft}, To: store.StatusRunning, At: t1})
	must(t, err, "start")
	want := e
	want.Status, want.StartedAt, want.UpdatedAt = store.StatusRunning, &t1, t1
	diff(t, "started experiment", want, got)

	// Pause and resume keep the first StartedAt.
	t2, t3 := t1.Add(time.Minute), t1.Add(2*time.Minute)
	_, err = s.TransitionExperiment(ctx, a.ID, e.ID, store.Transition{
		From: []store.Status{store.StatusRunning}, To: store.StatusPaused, At: t2})
	must(t, err, "pause")
	got, err = s.TransitionExperiment(ctx, a.ID, e.ID, store.Transition{
		From: []store.Status{store.StatusPaused}, To: store.StatusRunning, At: t3})
	must(t, err, "resume")
	if !got.StartedAt.Equal(t1) {
		t.Errorf("StartedAt after resume = %v, want %v", got.StartedAt, t1)
	}

	// Wrong status: Conflict, and nothing changes.
	_, err = s.TransitionExperiment(ctx, a.ID, e.ID, store.Transition{
		From: []store.Status{store.StatusDraft}, To: store.StatusRunning, At: t3.Add(time.Hour)})
	wantCode(t, err, apperr.Conflict, "transition from the wrong status")
	// Another workspace: NotFound, not Conflict, whatever the status.
	_, err = s.TransitionExperiment(ctx, b.ID, e.ID, store.Transition{
		From: []store.Status{store.StatusRunning}, To: store.StatusPaused, At: t3})
	wantCode(t, err, apperr.NotFound, "transition from another workspace")
	_, err = s.TransitionExperiment(ctx, a.ID, id.New(id.Experiment), store.Transition{
		From: []store.Status{store.StatusRunning}, To: store.StatusPaused, At: t3})
	wantCode(t, err, apperr.NotFound, "transition of an unknown experiment")
	got, err = s.GetExperiment(ctx, a.ID, e.ID)
	must(t, err, "get")
	if got.Status != store.StatusRunning || !got.UpdatedAt.Equal(t3) {
		t.Errorf("after failed transitions: status %s, updated %v; want running, %v", got.Status, got.UpdatedAt, t3)
	}

	// Complete with a fixed winner.
	t4 := t3.Add(time.Hour)
	got, err = s.TransitionExperiment(ctx, a.ID, e.ID, store.Transition{
		From: []store.Status{store.StatusRunning, store.StatusPaused}, To: store.StatusCompleted, At: t4,
		Winner: ptr("treatment"), Fixed: true})
	must(t, err, "complete")
	want = e
	want.Status, want.StartedAt, want.CompletedAt, want.UpdatedAt = store.StatusCompleted, &t1, &t4, t4
	want.Winner, want.WinnerFixed = "treatment", true
	diff(t, "completed experiment", want, got)
	again, err := s.GetExperiment(ctx, a.ID, e.ID)
	must(t, err, "get")
	diff(t, "stored completed experiment", want, again)

	// Archive without a winner keeps the winner.
	got, err = s.TransitionExperiment(ctx, a.ID, e.ID, store.Transition{
		From: []store.Status{store.StatusCompleted}, To: store.StatusArchived, At: t4.Add(time.Hour)})
	must(t, err, "archive")
	if got.Winner != "treatment" || !got.WinnerFixed || !got.CompletedAt.Equal(t4) {
		t.Errorf("archive changed winner or completion: %+v", got)
	}
}

func testConcurrentTransitions(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	e := createExperiment(t, s, a, "exp", store.MetricBinary)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.TransitionExperiment(ctx, a.ID, e.ID, store.Transition{
				From: []store.Status{store.StatusRunning}, To: store.StatusPaused, At: t0.Add(time.Duration(i) * time.Second)})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !apperr.Is(err, apperr.Conflict):
			t.Errorf("concurrent transition: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent running→paused transitions succeeded, want 1", ok, n)
	}
}

func testDeclareWinner(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	b := newWorkspace(t, s, "beta")
	e := createExperiment(t, s, a, "exp", store.MetricBinary, "control", "v1", "v2", "v3")

	_, err := s.DeclareWinner(ctx, b.ID, e.ID, "v1", t0)
	wantCode(t, err, apperr.NotFound, "DeclareWinner from another workspace")
	_, err = s.DeclareWinner(ctx, a.ID, id.New(id.Experiment), "v1", t0)
	wantCode(t, err, apperr.NotFound, "DeclareWinner of an unknown experiment")

	const n = 12
	var wg sync.WaitGroup
	set := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			set[i], errs[i] = s.DeclareWinner(ctx, a.ID, e.ID, e.Variants[1+i%3].Key, t0.Add(time.Minute))
		})
	}
	wg.Wait()
	winners := 0
	var winner string
	for i := range n {
		must(t, errs[i], "DeclareWinner")
		if set[i] {
			winners++
			winner = e.Variants[1+i%3].Key
		}
	}
	if winners != 1 {
		t.Fatalf("%d concurrent DeclareWinner calls reported setting the winner, want 1", winners)
	}
	got, err := s.GetExperiment(ctx, a.ID, e.ID)
	must(t, err, "get")
	if got.Winner != winner || got.WinnerFixed {
		t.Errorf("stored winner %q (fixed %v), want %q declared, not fixed", got.Winner, got.WinnerFixed, winner)
	}
	again, err := s.DeclareWinner(ctx, a.ID, e.ID, "control", t0.Add(time.Hour))
	must(t, err, "DeclareWinner again")
	if again {
		t.Errorf("DeclareWinner replaced a recorded winner")
	}
}

func testAssign(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	e := createExperiment(t, s, a, "exp", store.MetricBinary, "control", "treatment")
	other := createExperiment(t, s, a, "other", store.MetricBinary)
	c, tr := e.Variants[0].ID, e.Variants[1].ID
	weights := map[string]float64{c: 0.25, tr: 0.75}

	batch := store.AssignBatch{WorkspaceID: a.ID, ExperimentID: e.ID, Weights: weights, Items: []store.Assignment{
		{UnitID: "u1", VariantID: c, Propensity: 0.25, Epoch: 3, AssignedAt: t0},
		{UnitID: "u2", VariantID: tr, Propensity: 0.75, Epoch: 3, AssignedAt: t0},
		{UnitID: "u1", VariantID: tr, Propensity: 0.75, Epoch: 3, AssignedAt: t0}, // repeated in the batch
	}}
	otherBatch := store.AssignBatch{WorkspaceID: a.ID, ExperimentID: other.ID, Weights: evenWeights(other), Items: []store.Assignment{
		{UnitID: "u1", VariantID: other.Variants[1].ID, Propensity: 0.5, Epoch: 1, AssignedAt: t0},
	}}
	got, err := s.Assign(ctx, []store.AssignBatch{batch, otherBatch})
	must(t, err, "assign")
	u1 := store.Assignment{UnitID: "u1", VariantID: c, Propensity: 0.25, Epoch: 3, AssignedAt: t0}
	u2 := store.Assignment{UnitID: "u2", VariantID: tr, Propensity: 0.75, Epoch: 3, AssignedAt: t0}
	diff(t, "first Assign", [][]store.Assigned{
		{{Assignment: u1, New: true}, {Assignment: u2, New: true}, {Assignment: u1, New: false}},
		{{Assignment: otherBatch.Items[0], New: true}},
	}, got)

	// Sticky: later answers return the first, whatever the new weights say.
	later := store.AssignBatch{WorkspaceID: a.ID, ExperimentID: e.ID, Weights: map[string]float64{c: 0.9, tr: 0.1}, Items: []store.Assignment{
		{UnitID: "u2", VariantID: c, Propensity: 0.9, Epoch: 4, AssignedAt: t0.Add(time.Hour)},
		{UnitID: "u3", VariantID: c, Propensity: 0.9, Epoch: 4, AssignedAt: t0.Add(time.Hour)},
	}}
	got, err = s.Assign(ctx, []store.AssignBatch{later})
	must(t, err, "assign again")
	u3 := later.Items[1]
	diff(t, "second Assign", [][]store.Assigned{{{Assignment: u2}, {Assignment: u3, New: true}}}, got)

	m, err := s.Assignments(ctx, a.ID, e.ID, []string{"u1", "u2", "u3", "u4", "u1"})
	must(t, err, "assignments")
	diff(t, "Assignments", map[string]store.Assignment{"u1": u1, "u2": u2, "u3": u3}, m)
	m, err = s.Assignments(ctx, a.ID, e.ID, nil)
	must(t, err, "assignments of no units")
	if len(m) != 0 {
		t.Errorf("Assignments(nil) = %v", m)
	}

	// Units count new assignments only; Expected adds every variant's
	// weight per new unit: 2 new units at 0.25/0.75, 1 at 0.9/0.1.
	diff(t, "Counters", []store.Counters{
		{VariantID: c, Units: 2, Expected: 2*0.25 + 0.9},
		{VariantID: tr, Units: 1, Expected: 2*0.75 + 0.1},
	}, mustCounters(t, s, e), approx, classic)
	oc := mustCounters(t, s, other)
	if oc[0].Units != 0 || oc[1].Units != 1 {
		t.Errorf("other experiment's counters = %+v", oc)
	}

	// An empty batch is fine.
	_, err = s.Assign(ctx, []store.AssignBatch{{WorkspaceID: a.ID, ExperimentID: e.ID}})
	must(t, err, "empty batch")

	// A variant of another experiment is refused and nothing is stored.
	bad := store.AssignBatch{WorkspaceID: a.ID, ExperimentID: e.ID, Weights: weights, Items: []store.Assignment{
		{UnitID: "u9", VariantID: other.Variants[0].ID, Propensity: 1, Epoch: 1, AssignedAt: t0},
	}}
	if _, err := s.Assign(ctx, []store.AssignBatch{bad}); err == nil {
		t.Errorf("Assign accepted a variant of another experiment")
	}
	m, err = s.Assignments(ctx, a.ID, e.ID, []string{"u9"})
	must(t, err, "assignments")
	if len(m) != 0 {
		t.Errorf("a refused Assign stored %v", m)
	}
}

func mustCounters(t *testing.T, s store.Store, e store.Experiment) []store.Counters {
	t.Helper()
	cs, err := s.Counters(t.Context(), e.WorkspaceID, e.ID)
	must(t, err, "counters")
	return cs
}

func testAssignIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	b := newWorkspace(t, s, "beta")
	e := createExperiment(t, s, a, "exp", store.MetricBinary)
	assign(t, s, e, 0, t0, "u1")

	// Workspace b names a's experiment: NotFound, and nothing is stored.
	_, err := s.Assign(ctx, []store.AssignBatch{{WorkspaceID: b.ID, ExperimentID: e.ID, Weights: evenWeights(e),
		Items: []store.Assignment{{UnitID: "u2", VariantID: e.Variants[0].ID, Propensity: 1, Epoch: 1, AssignedAt: t0}}}})
	wantCode(t, err, apperr.NotFound, "Assign from another workspace")
	_, err = s.Assignments(ctx, b.ID, e.ID, []string{"u1"})
	wantCode(t, err, apperr.NotFound, "Assignments from another workspace")
	_, err = s.Counters(ctx, b.ID, e.ID)
	wantCode(t, err, apperr.NotFound, "Counters from another workspace")
	_, err = s.Buckets(ctx, b.ID, e.ID, t0.Add(-time.Hour), t0.Add(time.Hour))
	wantCode(t, err, apperr.NotFound, "Buckets from another workspace")
	_, err = s.Counters(ctx, a.ID, id.New(id.Experiment))
	wantCode(t, err, apperr.NotFound, "Counters of an unknown experiment")

	// One failing batch rolls back the whole call.
	ok := store.AssignBatch{WorkspaceID: a.ID, ExperimentID: e.ID, Weights: evenWeights(e),
		Items: []store.Assignment{{UnitID: "u3", VariantID: e.Variants[0].ID, Propensity: 1, Epoch: 1, AssignedAt: t0}}}
	bad := ok
	bad.WorkspaceID = b.ID
	_, err = s.Assign(ctx, []store.AssignBatch{ok, bad})
	wantCode(t, err, apperr.NotFound, "Assign with one foreign batch")
	m, err := s.Assignments(ctx, a.ID, e.ID, []string{"u2", "u3"})
	must(t, err, "assignments")
	if len(m) != 0 {
		t.Errorf("a failed Assign call stored %v", m)
	}
	if c := counters(t, s, e); c[e.Variants[0].ID].Units != 1 {
		t.Errorf("units = %d after failed calls, want 1", c[e.Variants[0].ID].Units)
	}

	// A statement that fails in the middle of the transaction (an unknown
	// variant: the insert's foreign key on SQLite, the counters' on
	// PostgreSQL, whose assignments have none) or at its end (weights
	// naming an unknown variant: the counters' foreign key, sent with the
	// COMMIT on PostgreSQL's pipeline) fails the call and undoes all of it,
	// even the statements that succeeded before it.
	other := createExperiment(t, s, a, "other", store.MetricBinary)
	unknownVariant := ok
	unknownVariant.Items = []store.Assignment{{UnitID: "u4", VariantID: other.Variants[0].ID, Propensity: 1, Epoch: 1, AssignedAt: t0}}
	_, err = s.Assign(ctx, []store.AssignBatch{ok, unknownVariant})
	wantCode(t, err, apperr.Invalid, "Assign naming another experiment's variant")
	unknownWeight := ok
	unknownWeight.Weights = map[string]float64{e.Variants[0].ID: 0.5, other.Variants[0].ID: 0.5}
	_, err = s.Assign(ctx, []store.AssignBatch{unknownWeight})
	wantCode(t, err, apperr.Invalid, "Assign with weights of another experiment's variant")
	m, err = s.Assignments(ctx, a.ID, e.ID, []string{"u3", "u4"})
	must(t, err, "assignments")
	if len(m) != 0 {
		t.Errorf("failed Assign calls stored %v", m)
	}
	if c := counters(t, s, e); c[e.Variants[0].ID].Units != 1 {
		t.Errorf("units = %d after failed calls, want 1", c[e.Variants[0].ID].Units)
	}
	// The store still works after the failures (the connection was not
	// left inside a failed transaction).
	assign(t, s, e, 0, t0, "u5")
	if c := counters(t, s, e); c[e.Variants[0].ID].Units != 2 {
		t.Errorf("units = %d after one more assignment, want 2", c[e.Variants[0].ID].Units)
	}
}

// testAssignConcurrent has many goroutines race to assign the same units to
// different variants: each unit ends with one variant that every caller was
// told, and is counted once.
func testAssignConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	e := createExperiment(t, s, a, "exp", store.MetricBinary, "a", "b", "c")
	const workers, units = 8, 60
	var wg sync.WaitGroup
	results := make([][]store.Assigned, workers)
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			b := store.AssignBatch{WorkspaceID: a.ID, ExperimentID: e.ID, Weights: evenWeights(e)}
			for i := range units {
				// Each worker walks the units from a different start, so
				// batches overlap in every order.
				u := (i + w*7) % units
				b.Items = append(b.Items, store.Assignment{UnitID: fmt.Sprintf("u%03d", u),
					VariantID: e.Variants[(u+w)%3].ID, Propensity: 1.0 / 3, Epoch: int64(w), AssignedAt: t0})
				if len(b.Items) == 10 || i == units-1 {
					out, err := s.Assign(ctx, []store.AssignBatch{b})
					if err != nil {
						errs[w] = err
						return
					}
					results[w] = append(results[w], out[0]...)
					b.Items = nil
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err, "concurrent assign")
	}
	stored, err := s.Assignments(ctx, a.ID, e.ID, unitNames(units))
	must(t, err, "assignments")
	if len(stored) != units {
		t.Fatalf("%d units stored, want %d", len(stored), units)
	}
	news := 0
	for _, rs := range results {
		for _, r := range rs {
			if r.New {
				news++
			}
			if want := stored[r.UnitID]; !reflect.DeepEqual(r.Assignment, want) {
				t.Errorf("unit %s: a caller was told %+v, stored %+v", r.UnitID, r.Assignment, want)
			}
		}
	}
	if news != units {
		t.Errorf("%d answers were new, want %d (one per unit)", news, units)
	}
	var total int64
	var expected float64
	perVariant := map[string]int64{}
	for _, as := range stored {
		perVariant[as.VariantID]++
	}
	for _, c := range mustCounters(t, s, e) {
		total += c.Units
		expected += c.Expected
		if c.Units != perVariant[c.VariantID] {
			t.Errorf("variant %s: counter %d units, %d stored", c.VariantID, c.Units, perVariant[c.VariantID])
		}
	}
	if total != units || math.Abs(expected-units) > 1e-6 {
		t.Errorf("counters: %d units, %g expected; want %d, %d", total, expected, units, units)
	}
}

func unitNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("u%03d", i)
	}
	return out
}

// testAssignLargeBatch crosses the store's multi-row statement sizes.
func testAssignLargeBatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	e := createExperiment(t, s, a, "exp", store.MetricContinuous)
	const n = 1200
	units := make([]string, n)
	for i := range units {
		units[i] = fmt.Sprintf("unit-%05d", i)
	}
	got := assign(t, s, e, 1, t0, units[:700]...)
	for _, r := range got {
		if !r.New {
			t.Fatalf("unit %s not new", r.UnitID)
		}
	}
	got = assign(t, s, e, 0, t0, units...)
	for i, r := range got {
		wantNew := i >= 700
		if r.New != wantNew || r.UnitID != units[i] {
			t.Fatalf("item %d: unit %s new=%v, want unit %s new=%v", i, r.UnitID, r.New, units[i], wantNew)
		}
	}
	var events []store.Event
	for i, u := range units {
		events = append(events, store.Event{UnitID: u, Value: float64(i % 10), IdempotencyKey: "k" + u, At: t0})
	}
	res, err := recordEvents(ctx, s, a.ID, e.ID, store.MetricContinuous, events)
	must(t, err, "record")
	for i, r := range res {
		if r.Outcome != store.OutcomeAccepted {
			t.Fatalf("event %d: %+v", i, r)
		}
	}
	c := counters(t, s, e)
	if c[e.Variants[0].ID].Units != 500 || c[e.Variants[1].ID].Units != 700 {
		t.Errorf("units = %d, %d; want 500, 700", c[e.Variants[0].ID].Units, c[e.Variants[1].ID].Units)
	}
	if got := c[e.Variants[0].ID].Conversions + c[e.Variants[1].ID].Conversions; got != n {
		t.Errorf("conversions = %d, want %d", got, n)
	}
}

// testEventBatches checks a group commit: batches of several experiments
// (one of them twice) in one call, results returned in the order given.
func testEventBatches(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	b1 := createExperiment(t, s, a, "zeta", store.MetricBinary)
	b2 := createExperiment(t, s, a, "alpha", store.MetricContinuous)
	assign(t, s, b1, 0, t0, "u1")
	assign(t, s, b2, 1, t0, "u1")
	at := t0.Add(time.Minute)
	res, err := s.RecordEvents(ctx, []store.EventBatch{
		{WorkspaceID: a.ID, ExperimentID: b1.ID, Metric: store.MetricBinary, Events: []store.Event{{UnitID: "u1", Value: 1, At: at}}},
		{WorkspaceID: a.ID, ExperimentID: b2.ID, Metric: store.MetricContinuous, Events: []store.Event{{UnitID: "u1", Value: 2, At: at}, {UnitID: "u9", Value: 1, At: at}}},
		{WorkspaceID: a.ID, ExperimentID: b1.ID, Metric: store.MetricBinary, Events: []store.Event{{UnitID: "u1", Value: 1, At: at}}},
		{WorkspaceID: a.ID, ExperimentID: b2.ID, Metric: store.MetricContinuous, Events: []store.Event{{UnitID: "u1", Value: 3, At: at}}},
	})
	must(t, err, "record batches")
	diff(t, "outcomes", [][]store.EventResult{
		{{Outcome: store.OutcomeAccepted}},
		{{Outcome: store.OutcomeAccepted}, {Outcome: store.OutcomeRejected, Reason: "unit was never assigned in this experiment"}},
		{{Outcome: store.OutcomeDuplicate, Reason: "unit already converted"}},
		{{Outcome: store.OutcomeAccepted}},
	}, res)
	diff(t, "continuous counters", []store.Counters{
		{VariantID: b2.Variants[0].ID, Expected: 0.5},
		{VariantID: b2.Variants[1].ID, Units: 1, Conversions: 1, Sum: 5, SumSq: 25, Expected: 0.5},
	}, mustCounters(t, s, b2), approx, classic)

	// One failing batch (another workspace's experiment) fails the call:
	// nothing of it is stored, not even the valid batch before it.
	other := newWorkspace(t, s, "other")
	_, err = s.RecordEvents(ctx, []store.EventBatch{
		{WorkspaceID: a.ID, ExperimentID: b2.ID, Metric: store.MetricContinuous, Events: []store.Event{{UnitID: "u1", Value: 100, At: at}}},
		{WorkspaceID: other.ID, ExperimentID: b1.ID, Metric: store.MetricBinary, Events: []store.Event{{UnitID: "u1", Value: 1, At: at}}},
	})
	wantCode(t, err, apperr.NotFound, "a batch of another workspace's experiment")
	if c := mustCounters(t, s, b2); c[1].Sum != 5 {
		t.Errorf("a failed call stored part of its batches: sum %v, want 5", c[1].Sum)
	}
}

func testBinaryEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	e := createExperiment(t, s, a, "exp", store.MetricBinary)
	c, tr := e.Variants[0].ID, e.Variants[1].ID
	assign(t, s, e, 0, t0, "u1", "u2")
	assign(t, s, e, 1, t0, "u3")

	at := t0.Add(time.Minute)
	res, err := recordEvents(ctx, s, a.ID, e.ID, store.MetricBinary, []store.Event{
		{UnitID: "u1", Value: 1, At: at},
		{UnitID: "u1", Value: 1, At: at},                           // converts once
		{UnitID: "nobody", Value: 1, IdempotencyKey: "k0", At: at}, // never assigned
		{UnitID: "u3", Value: 1, IdempotencyKey: "k1", At: at},
		{UnitID: "u2", Value: 1, IdempotencyKey: "k1", At: at}, // key repeated in the batch
	})
	must(t, err, "record")
	diff(t, "outcomes", []store.EventResult{
		{Outcome: store.OutcomeAccepted},
		{Outcome: store.OutcomeDuplicate, Reason: "unit already converted"},
		{Outcome: store.OutcomeRejected, Reason: "unit was never assigned in this experiment"},
		{Outcome: store.OutcomeAccepted},
		{Outcome: store.OutcomeDuplicate, Reason: "idempotency key already used"},
	}, res)

	res, err = recordEvents(ctx, s, a.ID, e.ID, store.MetricBinary, []store.Event{
		{UnitID: "u1", Value: 1, At: at},                       // converted in an earlier call
		{UnitID: "u2", Value: 1, IdempotencyKey: "k1", At: at}, // key used in an earlier call
		{UnitID: "u2", Value: 1, IdempotencyKey: "k2", At: at},
	})
	must(t, err, "record again")
	diff(t, "outcomes of the second call", []store.EventResult{
		{Outcome: store.OutcomeDuplicate, Reason: "unit already converted"},
		{Outcome: store.OutcomeDuplicate, Reason: "idempotency key already used"},
		{Outcome: store.OutcomeAccepted},
	}, res)

	// Without idempotency keys the store does not read the units before
	// its UPDATE: the outcomes must be the same as if it had.
	res, err = recordEvents(ctx, s, a.ID, e.ID, store.MetricBinary, []store.Event{
		{UnitID: "nobody", Value: 1, At: at},
		{UnitID: "nobody", Value: 1, At: at}, // every event of an unassigned unit is rejected
		{UnitID: "u1", Value: 1, At: at},     // converted in an earlier call
		{UnitID: "u3", Value: 1, At: at},
		{UnitID: "u3", Value: 1, At: at},
	})
	must(t, err, "record without keys")
	diff(t, "outcomes of the call without keys", []store.EventResult{
		{Outcome: store.OutcomeRejected, Reason: "unit was never assigned in this experiment"},
		{Outcome: store.OutcomeRejected, Reason: "unit was never assigned in this experiment"},
		{Outcome: store.OutcomeDuplicate, Reason: "unit already converted"},
		{Outcome: store.OutcomeDuplicate, Reason: "unit already converted"},
		{Outcome: store.OutcomeDuplicate, Reason: "unit already converted"},
	}, res)
	diff(t, "Counters", []store.Counters{
		{VariantID: c, Units: 2, Conversions: 2, Sum: 2, SumSq: 2, Expected: 1.5},
		{VariantID: tr, Units: 1, Conversions: 1, Sum: 1, SumSq: 1, Expected: 1.5},
	}, mustCounters(t, s, e), approx, classic)

	// A rejected event's key was not spent: once the unit is assigned, the
	// same event is accepted.
	assign(t, s, e, 1, t0, "nobody")
	res, err = recordEvents(ctx, s, a.ID, e.ID, store.MetricBinary, []store.Event{
		{UnitID: "nobody", Value: 1, IdempotencyKey: "k0", At: at}})
	must(t, err, "record retried")
	diff(t, "retried rejected event", []store.EventResult{{Outcome: store.OutcomeAccepted}}, res)

	res, err = recordEvents(ctx, s, a.ID, e.ID, store.MetricBinary, nil)
	must(t, err, "record nothing")
	if len(res) != 0 {
		t.Errorf("RecordEvents(nil) = %v", res)
	}
	_, err = recordEvents(ctx, s, a.ID, e.ID, store.Metric("nonsense"), []store.Event{{UnitID: "u1", Value: 1, At: at}})
	wantCode(t, err, apperr.Invalid, "RecordEvents with an unknown metric")
}

func testContinuousEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	e := createExperiment(t, s, a, "revenue", store.MetricContinuous)
	c, tr := e.Variants[0].ID, e.Variants[1].ID
	assign(t, s, e, 0, t0, "u1", "u2")
	assign(t, s, e, 1, t0, "u3")

	at := t0.Add(time.Minute)
	res, err := recordEvents(ctx, s, a.ID, e.ID, store.MetricContinuous, []store.Event{
		{UnitID: "u1", Value: 2, At: at},
		{UnitID: "u1", Value: 3, IdempotencyKey: "a", At: at},
		{UnitID: "u3", Value: 10.5, At: at},
	})
	must(t, err, "record")
	for i, r := range res {
		if r.Outcome != store.OutcomeAccepted {
			t.Errorf("event %d: %+v", i, r)
		}
	}
	res, err = recordEvents(ctx, s, a.ID, e.ID, store.MetricContinuous, []store.Event{
		{UnitID: "u1", Value: 4, At: at},                      // u1: 5 → 9
		{UnitID: "u1", Value: 4, IdempotencyKey: "a", At: at}, // duplicate key
		{UnitID: "u2", Value: 0, At: at},                      // a zero value still counts the unit
		{UnitID: "u3", Value: -0.5, At: at},                   // a refund: 10.5 → 10
	})
	must(t, err, "record again")
	diff(t, "outcomes", []store.EventResult{
		{Outcome: store.OutcomeAccepted},
		{Outcome: store.OutcomeDuplicate, Reason: "idempotency key already used"},
		{Outcome: store.OutcomeAccepted},
		{Outcome: store.OutcomeAccepted},
	}, res)
	// SumSq is over units of the unit's total: u1 9² + u2 0²; u3 10².
	diff(t, "Counters", []store.Counters{
		{VariantID: c, Units: 2, Conversions: 2, Sum: 9, SumSq: 81, Expected: 1.5},
		{VariantID: tr, Units: 1, Conversions: 1, Sum: 10, SumSq: 100, Expected: 1.5},
	}, mustCounters(t, s, e), approx, classic)
}

func testEventIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	b := newWorkspace(t, s, "beta")
	e := createExperiment(t, s, a, "exp", store.MetricBinary)
	other := createExperiment(t, s, a, "other", store.MetricBinary)
	assign(t, s, e, 0, t0, "u1")
	assign(t, s, other, 0, t0, "u1")

	_, err := recordEvents(ctx, s, b.ID, e.ID, store.MetricBinary, []store.Event{{UnitID: "u1", Value: 1, At: t0}})
	wantCode(t, err, apperr.NotFound, "RecordEvents from another workspace")
	if c := counters(t, s, e); c[e.Variants[0].ID].Conversions != 0 {
		t.Errorf("an event from another workspace was counted")
	}
	// Idempotency keys are scoped to the experiment.
	for _, x := range []store.Experiment{e, other} {
		res, err := recordEvents(ctx, s, a.ID, x.ID, store.MetricBinary, []store.Event{{UnitID: "u1", Value: 1, IdempotencyKey: "same", At: t0}})
		must(t, err, "record")
		diff(t, "outcome", []store.EventResult{{Outcome: store.OutcomeAccepted}}, res)
	}
}

// testEventsConcurrentBinary: many callers convert the same units at once;
// each unit is accepted once and counted once.
func testEventsConcurrentBinary(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	e := createExperiment(t, s, a, "exp", store.MetricBinary)
	const units, workers = 40, 6
	names := unitNames(units)
	assign(t, s, e, 0, t0, names[:units/2]...)
	assign(t, s, e, 1, t0, names[units/2:]...)

	var wg sync.WaitGroup
	accepted := make([]map[string]int, workers)
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			accepted[w] = map[string]int{}
			for start := 0; start < units; start += 8 {
				var evs []store.Event
				for i := start; i < min(start+8, units); i++ {
					evs = append(evs, store.Event{UnitID: names[(i+w*5)%units], Value: 1, At: t0})
				}
				res, err := recordEvents(ctx, s, a.ID, e.ID, store.MetricBinary, evs)
				if err != nil {
					errs[w] = err
					return
				}
				for i, r := range res {
					if r.Outcome == store.OutcomeAccepted {
						accepted[w][evs[i].UnitID]++
					}
				}
			}
		})
	}
	wg.Wait()
	total := map[string]int{}
	for w := range workers {
		must(t, errs[w], "concurrent record")
		for u, n := range accepted[w] {
			total[u] += n
		}
	}
	for _, u := range names {
		if total[u] != 1 {
			t.Errorf("unit %s accepted %d times, want 1", u, total[u])
		}
	}
	for _, c := range mustCounters(t, s, e) {
		if c.Conversions != units/2 || c.Sum != units/2 {
			t.Errorf("variant %s: %d conversions, sum %g; want %d", c.VariantID, c.Conversions, c.Sum, units/2)
		}
	}
}

// testEventsConcurrentContinuous: concurrent callers add values to the same
// units, some with idempotency keys that collide across callers; counters
// equal exactly what was acknowledged, sums of squares included.
func testEventsConcurrentContinuous(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	e := createExperiment(t, s, a, "revenue", store.MetricContinuous)
	const units, workers, rounds = 10, 6, 8
	names := unitNames(units)
	assign(t, s, e, 0, t0, names[:units/2]...)
	assign(t, s, e, 1, t0, names[units/2:]...)

	var mu sync.Mutex
	perUnit := map[string]float64{}
	events := map[string]int{}
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				var evs []store.Event
				for i := range units {
					ev := store.Event{UnitID: names[(i+w)%units], Value: float64(1 + (i+w+r)%4), At: t0.Add(time.Duration(r) * time.Minute)}
					if i%3 == 0 {
						// The same key from every worker: one of them wins.
						ev.IdempotencyKey = fmt.Sprintf("r%d-u%d", r, (i+w)%units)
					}
					evs = append(evs, ev)
				}
				res, err := recordEvents(ctx, s, a.ID, e.ID, store.MetricContinuous, evs)
				if err != nil {
					errs[w] = err
					return
				}
				mu.Lock()
				for i, r := range res {
					if r.Outcome == store.OutcomeAccepted {
						perUnit[evs[i].UnitID] += evs[i].Value
						events[evs[i].UnitID]++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err, "concurrent record")
	}
	stored, err := s.Assignments(ctx, a.ID, e.ID, names)
	must(t, err, "assignments")
	want := map[string]*store.Counters{}
	for _, v := range e.Variants {
		// Every unit was assigned at weight ½ (assign).
		want[v.ID] = &store.Counters{VariantID: v.ID, Units: units / 2, Expected: units / 2,
			ExpectedSq: float64(units) / 4, InvExpected: 2 * units, InvP: units, InvP2: 2 * units}
	}
	for u, total := range perUnit {
		c := want[stored[u].VariantID]
		c.Sum += total
		c.SumSq += total * total
		c.Conversions++
		c.YInvP += 2 * total
		c.YInvP2 += 4 * total
		c.Y2InvP2 += 4 * total * total
		switch {
		case total > 0:
			c.Positive++
			c.LogSum += math.Log(total)
			c.LogSumSq += math.Log(total) * math.Log(total)
		case total < 0:
			c.Negative++
		}
	}
	got := mustCounters(t, s, e)
	diff(t, "counters after concurrent events", []store.Counters{*want[e.Variants[0].ID], *want[e.Variants[1].ID]}, got, approx)
}

func testBuckets(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	e := createExperiment(t, s, a, "exp", store.MetricContinuous)
	c, tr := e.Variants[0].ID, e.Variants[1].ID
	h0 := t0.Truncate(time.Hour)
	h1, h2 := h0.Add(time.Hour), h0.Add(2*time.Hour)

	assign(t, s, e, 0, h0.Add(5*time.Minute), "u1", "u2")
	assign(t, s, e, 1, h1.Add(59*time.Minute), "u3")
	_, err := recordEvents(ctx, s, a.ID, e.ID, store.MetricContinuous, []store.Event{
		{UnitID: "u1", Value: 2, At: h1.Add(time.Minute)},
		{UnitID: "u3", Value: 3, At: h2},
	})
	must(t, err, "record")
	_, err = recordEvents(ctx, s, a.ID, e.ID, store.MetricContinuous, []store.Event{
		{UnitID: "u1", Value: 1, At: h2.Add(time.Minute)}, // u1: 2 → 3, sumsq +5
	})
	must(t, err, "record")

	got, err := s.Buckets(ctx, a.ID, e.ID, h0, h2.Add(time.Hour))
	must(t, err, "buckets")
	diff(t, "Buckets", []store.Bucket{
		{Hour: h0, Counters: store.Counters{VariantID: c, Units: 2, Expected: 1}},
		{Hour: h0, Counters: store.Counters{VariantID: tr, Expected: 1}},
		{Hour: h1, Counters: store.Counters{VariantID: c, Conversions: 1, Sum: 2, SumSq: 4, Expected: 0.5}},
		{Hour: h1, Counters: store.Counters{VariantID: tr, Units: 1, Expected: 0.5}},
		{Hour: h2, Counters: store.Counters{VariantID: c, Sum: 1, SumSq: 5}},
		{Hour: h2, Counters: store.Counters{VariantID: tr, Conversions: 1, Sum: 3, SumSq: 9}},
	}, got, approx)

	// [from, to) is half open.
	got, err = s.Buckets(ctx, a.ID, e.ID, h1, h2)
	must(t, err, "buckets")
	if len(got) != 2 || !got[0].Hour.Equal(h1) || !got[1].Hour.Equal(h1) {
		t.Errorf("Buckets[h1, h2) = %+v, want h1's two", got)
	}
	got, err = s.Buckets(ctx, a.ID, e.ID, h2.Add(time.Hour), h2.Add(5*time.Hour))
	must(t, err, "buckets")
	if len(got) != 0 {
		t.Errorf("Buckets of an empty range = %+v", got)
	}
	// The hourly buckets add up to the counters.
	all, err := s.Buckets(ctx, a.ID, e.ID, h0.Add(-24*time.Hour), h2.Add(24*time.Hour))
	must(t, err, "buckets")
	sum := map[string]store.Counters{}
	for _, b := range all {
		x := sum[b.VariantID]
		x.VariantID = b.VariantID
		x.Units += b.Units
		x.Conversions += b.Conversions
		x.Sum += b.Sum
		x.SumSq += b.SumSq
		x.Expected += b.Expected
		sum[b.VariantID] = x
	}
	diff(t, "sum of buckets", []store.Counters{sum[c], sum[tr]}, mustCounters(t, s, e), approx, classic)
}

func testStates(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	e := createExperiment(t, s, a, "exp", store.MetricBinary)
	_, err := s.LoadState(ctx, e.ID)
	wantCode(t, err, apperr.NotFound, "LoadState before any save")

	v1 := store.SealedState{ExperimentID: e.ID, KeyID: "k1", Blob: []byte{0, 1, 2, 0xff}, Version: 1, UpdatedAt: t0}
	must(t, s.SaveState(ctx, v1), "save v1")
	got, err := s.LoadState(ctx, e.ID)
	must(t, err, "load")
	diff(t, "LoadState", v1, got)

	wantCode(t, s.SaveState(ctx, v1), apperr.Conflict, "SaveState of version 1 again")
	v3 := store.SealedState{ExperimentID: e.ID, KeyID: "k1", Blob: []byte("three"), Version: 3, UpdatedAt: t0}
	wantCode(t, s.SaveState(ctx, v3), apperr.Conflict, "SaveState skipping a version")
	v2 := store.SealedState{ExperimentID: e.ID, KeyID: "k2", Blob: []byte("two"), Version: 2, UpdatedAt: t0.Add(time.Second)}
	must(t, s.SaveState(ctx, v2), "save v2")
	got, err = s.LoadState(ctx, e.ID)
	must(t, err, "load")
	diff(t, "LoadState after v2", v2, got)

	// Version 2 of a state that was never saved: none counts as 0.
	f := createExperiment(t, s, a, "fresh", store.MetricBinary)
	wantCode(t, s.SaveState(ctx, store.SealedState{ExperimentID: f.ID, KeyID: "k", Blob: []byte{1}, Version: 2, UpdatedAt: t0}),
		apperr.Conflict, "SaveState of version 2 with none stored")
	wantCode(t, s.SaveState(ctx, store.SealedState{ExperimentID: id.New(id.Experiment), KeyID: "k", Blob: []byte{1}, Version: 1, UpdatedAt: t0}),
		apperr.NotFound, "SaveState of an unknown experiment")
	if err := s.SaveState(ctx, store.SealedState{ExperimentID: f.ID, KeyID: "k", Blob: []byte{1}, Version: 0, UpdatedAt: t0}); err == nil {
		t.Errorf("SaveState accepted version 0")
	}
}

func testStatesConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	e := createExperiment(t, s, a, "exp", store.MetricBinary)
	for version := int64(1); version <= 3; version++ {
		const n = 6
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				errs[i] = s.SaveState(ctx, store.SealedState{ExperimentID: e.ID, KeyID: "k",
					Blob: []byte{byte(i)}, Version: version, UpdatedAt: t0})
			})
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
			} else if !apperr.Is(err, apperr.Conflict) {
				t.Fatalf("SaveState: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("version %d: %d concurrent saves won, want 1", version, wins)
		}
	}
}

func testListStates(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	var want []store.SealedState
	for i := range 5 {
		e := createExperiment(t, s, a, fmt.Sprintf("exp-%d", i), store.MetricBinary)
		st := store.SealedState{ExperimentID: e.ID, KeyID: "k", Blob: []byte{byte(i)}, Version: 1, UpdatedAt: t0}
		must(t, s.SaveState(ctx, st), "save")
		want = append(want, st)
	}
	createExperiment(t, s, a, "stateless", store.MetricBinary)
	slices.SortFunc(want, func(x, y store.SealedState) int { return cmpString(x.ExperimentID, y.ExperimentID) })
	var got []store.SealedState
	after := ""
	for range 10 {
		page, err := s.ListStates(ctx, after, 2)
		must(t, err, "list states")
		got = append(got, page...)
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].ExperimentID
	}
	diff(t, "paged ListStates", want, got)
}

func testIdempotency(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	b := newWorkspace(t, s, "beta")
	rec := store.IdempotencyRecord{WorkspaceID: a.ID, Key: "key-1", Fingerprint: "POST /v1/x sha256:aa", CreatedAt: t0}
	old := t0.Add(-24 * time.Hour)

	got, err := s.ClaimIdempotency(ctx, rec, old)
	must(t, err, "claim")
	if got != nil {
		t.Fatalf("first claim returned %+v, want nil", got)
	}
	// While in flight, a second claim sees the first.
	retry := rec
	retry.Fingerprint, retry.CreatedAt = "other", t0.Add(time.Second)
	got, err = s.ClaimIdempotency(ctx, retry, old)
	must(t, err, "claim in flight")
	diff(t, "in-flight record", &store.IdempotencyRecord{WorkspaceID: a.ID, Key: "key-1", Fingerprint: rec.Fingerprint, CreatedAt: t0}, got,
		cmpopts.EquateEmpty())
	// Keys are scoped per workspace.
	got, err = s.ClaimIdempotency(ctx, store.IdempotencyRecord{WorkspaceID: b.ID, Key: "key-1", Fingerprint: "b", CreatedAt: t0}, old)
	must(t, err, "claim in b")
	if got != nil {
		t.Errorf("workspace b saw workspace a's key: %+v", got)
	}

	body := []byte(`{"id":"exp_1"}`)
	must(t, s.FinishIdempotency(ctx, a.ID, "key-1", 201, body), "finish")
	must(t, s.ReleaseIdempotency(ctx, a.ID, "key-1"), "release a finished record") // keeps it
	got, err = s.ClaimIdempotency(ctx, retry, old)
	must(t, err, "claim finished")
	diff(t, "finished record", &store.IdempotencyRecord{WorkspaceID: a.ID, Key: "key-1", Fingerprint: rec.Fingerprint,
		Done: true, Status: 201, Body: body, CreatedAt: t0}, got)

	// An expired record is replaced by the new claim.
	got, err = s.ClaimIdempotency(ctx, store.IdempotencyRecord{WorkspaceID: a.ID, Key: "key-1", Fingerprint: "new", CreatedAt: t0.Add(48 * time.Hour)},
		t0.Add(time.Hour))
	must(t, err, "claim expired")
	if got != nil {
		t.Fatalf("claim of an expired key returned %+v, want nil", got)
	}
	got, err = s.ClaimIdempotency(ctx, rec, t0)
	must(t, err, "claim")
	if got == nil || got.Fingerprint != "new" || got.Done {
		t.Errorf("after replacing, record = %+v, want the new in-flight claim", got)
	}

	// Releasing an in-flight claim lets a retry run.
	must(t, s.ReleaseIdempotency(ctx, b.ID, "key-1"), "release")
	got, err = s.ClaimIdempotency(ctx, store.IdempotencyRecord{WorkspaceID: b.ID, Key: "key-1", Fingerprint: "b2", CreatedAt: t0}, old)
	must(t, err, "claim after release")
	if got != nil {
		t.Errorf("claim after release returned %+v, want nil", got)
	}
	must(t, s.ReleaseIdempotency(ctx, b.ID, "never-claimed"), "release of an unknown key")
	wantCode(t, s.FinishIdempotency(ctx, b.ID, "never-claimed", 200, nil), apperr.NotFound, "FinishIdempotency of an unclaimed key")

	// Concurrent claims: exactly one wins.
	const n = 8
	var wg sync.WaitGroup
	wins := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			r, err := s.ClaimIdempotency(ctx, store.IdempotencyRecord{WorkspaceID: a.ID, Key: "race", Fingerprint: "f", CreatedAt: t0}, old)
			wins[i], errs[i] = r == nil, err
		})
	}
	wg.Wait()
	count := 0
	for i := range n {
		must(t, errs[i], "concurrent claim")
		if wins[i] {
			count++
		}
	}
	if count != 1 {
		t.Errorf("%d concurrent claims won, want 1", count)
	}
}

// recordEvents records one batch through the batched RecordEvents.
func recordEvents(ctx context.Context, s store.Store, workspaceID, experimentID string, metric store.Metric, events []store.Event) ([]store.EventResult, error) {
	res, err := s.RecordEvents(ctx, []store.EventBatch{{WorkspaceID: workspaceID, ExperimentID: experimentID, Metric: metric, Events: events}})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// testDecisionStatistics checks the counters of the anytime-valid tests and of
// the revenue model against values worked out by hand: Σ w², Σ 1/w of the
// logged weights over every new unit, and over each variant's units Σ 1/p,
// Σ 1/p², Σ y/p, Σ y/p², Σ y²/p² and the log-normal statistics of the unit
// totals, through assignments, repeated events and a total going negative.
func testDecisionStatistics(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWorkspace(t, s, "acme")
	e := createExperiment(t, s, a, "rev", store.MetricContinuous, "control", "treatment")
	c, tr := e.Variants[0].ID, e.Variants[1].ID
	_, err := s.Assign(ctx, []store.AssignBatch{{WorkspaceID: a.ID, ExperimentID: e.ID, Weights: map[string]float64{c: 0.25, tr: 0.75},
		Items: []store.Assignment{
			{UnitID: "u1", VariantID: c, Propensity: 0.25, Epoch: 1, AssignedAt: t0},
			{UnitID: "u2", VariantID: tr, Propensity: 0.75, Epoch: 1, AssignedAt: t0},
		}}})
	must(t, err, "assign")
	_, err = s.Assign(ctx, []store.AssignBatch{{WorkspaceID: a.ID, ExperimentID: e.ID, Weights: map[string]float64{c: 0.5, tr: 0.5},
		Items: []store.Assignment{{UnitID: "u3", VariantID: c, Propensity: 0.5, Epoch: 2, AssignedAt: t0}}}})
	must(t, err, "assign")
	at := t0.Add(time.Minute)
	// u1: 2 then +3 (total 5, in two calls); u2: 4 then −6 (total −2); u3 nothing.
	for _, evs := range [][]store.Event{
		{{UnitID: "u1", Value: 2, At: at}, {UnitID: "u2", Value: 4, At: at}},
		{{UnitID: "u1", Value: 3, At: at}, {UnitID: "u2", Value: -6, At: at}},
	} {
		_, err := recordEvents(ctx, s, a.ID, e.ID, store.MetricContinuous, evs)
		must(t, err, "record")
	}
	l5 := math.Log(5)
	diff(t, "Counters", []store.Counters{
		{VariantID: c, Units: 2, Conversions: 1, Sum: 5, SumSq: 25, Expected: 0.25 + 0.25 + 0.5,
			ExpectedSq: 0.0625*2 + 0.25, InvExpected: 4 + 4 + 2,
			InvP: 4 + 2, InvP2: 16 + 4, YInvP: 5 * 4, YInvP2: 5 * 16, Y2InvP2: 25 * 16,
			Positive: 1, LogSum: l5, LogSumSq: l5 * l5},
		{VariantID: tr, Units: 1, Conversions: 1, Sum: -2, SumSq: 4, Expected: 0.75 + 0.75 + 0.5,
			ExpectedSq: 0.5625*2 + 0.25, InvExpected: 2/0.75 + 2,
			InvP: 1 / 0.75, InvP2: 1 / 0.5625, YInvP: -2 / 0.75, YInvP2: -2 / 0.5625, Y2InvP2: 4 / 0.5625,
			Negative: 1},
	}, mustCounters(t, s, e), approx)
}
