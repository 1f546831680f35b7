package optimize_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/seal"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/backend"
	"github.com/samplit/samplit/internal/store/dbtest"
)

// The standard experiment optimizer on the real SQLite store: what it
// stores with each assignment, how replicas agree, and its sealed state.

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := backend.Open(t.Context(), dbtest.SQLite(t), backend.Options{AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newKey(t *testing.T) seal.Key {
	t.Helper()
	var m [seal.KeySize]byte
	rand.Read(m[:])
	k, err := seal.NewKey(m[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyring(t *testing.T, primary seal.Key, old ...seal.Key) *seal.Keyring {
	t.Helper()
	r, err := seal.NewKeyring(primary, old...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// optimizer returns an optimizer that rebuilds its allocation on every call
// (so that every call reads, and saves, the sealed state).
func optimizer(t *testing.T, st store.Store, ring *seal.Keyring) *optimize.Experiments {
	t.Helper()
	x := optimize.NewExperiments(st, ring, time.Now, nil, optimize.Options{RefreshEvery: time.Nanosecond})
	t.Cleanup(x.Close)
	return x
}

var workspaceOnce sync.Map // store → workspace id

// experiment stores a running experiment with the strategy and variants a, b, c.
func experiment(t *testing.T, st store.Store, strategy string) *store.Experiment {
	t.Helper()
	ctx := t.Context()
	wsID, ok := workspaceOnce.Load(st)
	if !ok {
		ws := store.Workspace{ID: id.New(id.Workspace), Name: "w", CreatedAt: time.Now()}
		if err := st.CreateWorkspace(ctx, ws); err != nil {
			t.Fatal(err)
		}
		wsID = ws.ID
		workspaceOnce.Store(st, ws.ID)
	}
	seed := int64(1)
	now := time.Now()
	e := store.Experiment{
		ID: id.New(id.Experiment), WorkspaceID: wsID.(string), Key: "e-" + id.New("k")[2:], Name: "e",
		Kind: store.KindStandard, Metric: store.MetricBinary, Strategy: strategy, Status: store.StatusRunning,
		Settings:  store.Settings{MinSamples: 100, DecisionThreshold: 0.95, LossThreshold: 0.001, Alpha: 0.05, Traffic: 1, Seed: &seed},
		CreatedAt: now, UpdatedAt: now, StartedAt: &now,
	}
	for i, k := range []string{"a", "b", "c"} {
		e.Variants = append(e.Variants, store.Variant{ID: id.New(id.Variant), Key: k, Name: k, Control: i == 0, Payload: json.RawMessage("null"), Position: i})
	}
	if err := st.CreateExperiment(ctx, e); err != nil {
		t.Fatal(err)
	}
	return &e
}

func unitIDs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func mustAssign(t *testing.T, x *optimize.Experiments, e *store.Experiment, units ...string) []optimize.Assignment {
	t.Helper()
	as, err := x.Assign(t.Context(), e, units)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// TestAssignmentsLogPropensityAndEpoch: every stored assignment carries the
// probability its variant had and the epoch of the weights, and the
// expected counts add up to the units (what the SRM test relies on).
func TestAssignmentsLogPropensityAndEpoch(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	for _, tc := range []struct {
		strategy string
		fixed    bool // fixed 1/3 weights
	}{{"sequential", true}, {"adaptive", false}} {
		t.Run(tc.strategy, func(t *testing.T) {
			e := experiment(t, st, tc.strategy)
			x := optimizer(t, st, keyring(t, newKey(t)))
			us := unitIDs("u", 300)
			for i := 0; i < len(us); i += 50 { // six calls: six epochs
				mustAssign(t, x, e, us[i:i+50]...)
			}
			stored, err := st.Assignments(ctx, e.WorkspaceID, e.ID, us)
			if err != nil {
				t.Fatal(err)
			}
			epochs := map[int64]bool{}
			for _, u := range us {
				a, ok := stored[u]
				if !ok {
					t.Fatalf("%s has no stored assignment", u)
				}
				if !(a.Propensity > 0 && a.Propensity <= 1) || a.Epoch < 1 {
					t.Errorf("%s: propensity %g, epoch %d", u, a.Propensity, a.Epoch)
				}
				if tc.fixed && math.Abs(a.Propensity-1.0/3) > 1e-12 {
					t.Errorf("%s: propensity %g under fixed 1/3 weights", u, a.Propensity)
				}
				epochs[a.Epoch] = true
			}
			if len(epochs) != 6 {
				t.Errorf("%d epochs among six calls that each rebuilt the allocation", len(epochs))
			}
			cs, err := st.Counters(ctx, e.WorkspaceID, e.ID)
			if err != nil {
				t.Fatal(err)
			}
			var units int64
			var expected float64
			for _, c := range cs {
				units += c.Units
				expected += c.Expected
			}
			if units != 300 || math.Abs(expected-300) > 1e-6 {
				t.Errorf("units %d, expected counts add up to %g; want 300 and 300", units, expected)
			}
		})
	}
}

// TestReplicasAgree: two optimizers over one database (two replicas),
// assigning the same units concurrently, give every unit one variant, and
// exactly one call reports it new.
func TestReplicasAgree(t *testing.T) {
	st := openStore(t)
	e := experiment(t, st, "adaptive")
	ring := keyring(t, newKey(t))
	replicas := []*optimize.Experiments{optimizer(t, st, ring), optimizer(t, st, ring)}
	us := unitIDs("r", 200)

	var mu sync.Mutex
	variant := map[string]string{}
	news := map[string]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			x := replicas[g%2]
			for i := 0; i < len(us); i += 40 {
				// Each goroutine walks the units from another offset.
				chunk := us[(i+g*40)%len(us) : (i+g*40)%len(us)+40]
				as, err := x.Assign(context.Background(), e, chunk)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, a := range as {
					if prev, ok := variant[a.UnitID]; ok && prev != a.Variant.Key {
						t.Errorf("%s got %s and %s", a.UnitID, prev, a.Variant.Key)
					}
					variant[a.UnitID] = a.Variant.Key
					if a.New {
						news[a.UnitID]++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, u := range us {
		if news[u] != 1 {
			t.Errorf("%s reported new %d times", u, news[u])
		}
	}
	r, err := replicas[0].Results(t.Context(), e)
	if err != nil {
		t.Fatal(err)
	}
	if r.TotalUnits != int64(len(us)) {
		t.Errorf("%d units stored, want %d", r.TotalUnits, len(us))
	}
}

// TestAssignRepeatedUnitInOneCall: a unit listed twice gets one draw and is
// new only at its first position.
func TestAssignRepeatedUnitInOneCall(t *testing.T) {
	st := openStore(t)
	e := experiment(t, st, "adaptive")
	x := optimizer(t, st, keyring(t, newKey(t)))
	as := mustAssign(t, x, e, "u1", "u2", "u1", "u1")
	got := []bool{as[0].New, as[1].New, as[2].New, as[3].New}
	if diff := cmp.Diff([]bool{true, true, false, false}, got); diff != "" {
		t.Errorf("new (-want +got):\n%s", diff)
	}
	if as[0].Variant.Key != as[2].Variant.Key || as[0].Variant.Key != as[3].Variant.Key {
		t.Errorf("u1 got %s, %s, %s", as[0].Variant.Key, as[2].Variant.Key, as[3].Variant.Key)
	}
}

// stateOf returns the experiment's stored state and its opened content.
func stateOf(t *testing.T, st store.Store, ring *seal.Keyring, e *store.Experiment) (store.SealedState, map[string]any) {
	t.Helper()
	ss, err := st.LoadState(t.Context(), e.ID)
	if err != nil {
		t.Fatalf("load state: %v", err)
	}
	plain, err := ring.Open(e.ID, ss.KeyID, ss.Blob)
	if err != nil {
		t.Fatalf("open state: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(plain, &m); err != nil {
		t.Fatalf("state is not JSON: %v\n%s", err, plain)
	}
	return ss, m
}

// fails checks that both Assign (of a new unit) and Results fail with an
// error wrapping want.
func fails(t *testing.T, x *optimize.Experiments, e *store.Experiment, want error) {
	t.Helper()
	if _, err := x.Assign(t.Context(), e, []string{"new-" + id.New("u")}); !errors.Is(err, want) {
		t.Errorf("assign: %v, want an error wrapping %q", err, want)
	}
	if _, err := x.Results(t.Context(), e); !errors.Is(err, want) {
		t.Errorf("results: %v, want an error wrapping %q", err, want)
	}
}

func TestSealedState(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	k1 := newKey(t)
	ring := keyring(t, k1)
	e := experiment(t, st, "adaptive")
	x := optimizer(t, st, ring)
	mustAssign(t, x, e, unitIDs("s", 20)...)

	ss, plain := stateOf(t, st, ring, e)
	if ss.KeyID != k1.ID() || ss.Version < 1 {
		t.Errorf("state row: key %s (want %s), version %d", ss.KeyID, k1.ID(), ss.Version)
	}
	if plain["strategy"] != "adaptive" || plain["epoch"] != float64(ss.Version) || len(plain["weights"].([]any)) != 3 {
		t.Errorf("opened state: %v", plain)
	}
	for _, s := range []string{`"epoch"`, `"weights"`, "adaptive", e.ID, `{"`} {
		if bytes.Contains(ss.Blob, []byte(s)) {
			t.Errorf("the stored blob contains %q in plain text", s)
		}
	}

	t.Run("tampered", func(t *testing.T) {
		tests := []struct {
			name string
			at   func(n int) int // offset of the flipped byte in a blob of n bytes
			want error
		}{
			// Envelope: version(1) key id(8) experiment tag(8) nonce(12) ciphertext tag(16).
			{"nonce", func(int) int { return 20 }, seal.ErrTampered},
			{"ciphertext", func(int) int { return 40 }, seal.ErrTampered},
			{"gcm tag", func(n int) int { return n - 1 }, seal.ErrTampered},
			{"experiment tag", func(int) int { return 10 }, seal.ErrWrongExperiment},
			{"version", func(int) int { return 0 }, seal.ErrUnsupportedVersion},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				orig, err := st.LoadState(ctx, e.ID)
				if err != nil {
					t.Fatal(err)
				}
				bad := orig
				bad.Blob = bytes.Clone(orig.Blob)
				bad.Blob[tc.at(len(bad.Blob))] ^= 0x01
				bad.Version = orig.Version + 1
				if err := st.SaveState(ctx, bad); err != nil {
					t.Fatal(err)
				}
				fails(t, x, e, tc.want)
				fails(t, optimizer(t, st, ring), e, tc.want) // a fresh replica too
				// Nothing replaced the bad row behind the error.
				if now, err := st.LoadState(ctx, e.ID); err != nil || now.Version != bad.Version || !bytes.Equal(now.Blob, bad.Blob) {
					t.Errorf("the tampered row changed: version %d, err %v", now.Version, err)
				}
				// Restoring the blob restores service: the failure was the byte.
				orig.Version = bad.Version + 1
				if err := st.SaveState(ctx, orig); err != nil {
					t.Fatal(err)
				}
				mustAssign(t, x, e, "after-"+tc.name)
			})
		}
	})

	t.Run("moved from another experiment", func(t *testing.T) {
		other := experiment(t, st, "adaptive")
		mustAssign(t, x, other, "o1")
		src, err := st.LoadState(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		dst, err := st.LoadState(ctx, other.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SaveState(ctx, store.SealedState{ExperimentID: other.ID, KeyID: src.KeyID, Blob: src.Blob, Version: dst.Version + 1, UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		fails(t, x, other, seal.ErrWrongExperiment)
	})

	t.Run("key not in the ring", func(t *testing.T) {
		fails(t, optimizer(t, st, keyring(t, newKey(t))), e, seal.ErrUnknownKey)
	})
}

// TestRotation: seal.Rotate on the real store re-seals every state under
// the new primary key; servers with the new ring (old key kept for
// reading, or dropped after the rotation) keep working, and the content of
// the state survives.
func TestRotation(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	k1, k2 := newKey(t), newKey(t)
	oldRing := keyring(t, k1)
	x := optimizer(t, st, oldRing)
	es := []*store.Experiment{experiment(t, st, "adaptive"), experiment(t, st, "sequential")}
	before := map[string]map[string]any{}
	for _, e := range es {
		mustAssign(t, x, e, unitIDs("before", 30)...)
		_, before[e.ID] = stateOf(t, st, oldRing, e)
	}

	newRing := keyring(t, k2, k1)
	rep, err := seal.Rotate(ctx, st, newRing, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Resealed != len(es) || rep.Failed != 0 {
		t.Fatalf("rotate: %s %v", rep, rep.Failures)
	}
	onlyNew := keyring(t, k2)
	for _, e := range es {
		ss, after := stateOf(t, st, onlyNew, e)
		if ss.KeyID != k2.ID() {
			t.Errorf("%s: still under key %s", e.ID, ss.KeyID)
		}
		if diff := cmp.Diff(before[e.ID], after); diff != "" {
			t.Errorf("%s: state changed by the rotation (-before +after):\n%s", e.ID, diff)
		}
	}
	if again, err := seal.Rotate(ctx, st, newRing, time.Now()); err != nil || again.Resealed != 0 || again.Current != len(es) {
		t.Errorf("second rotation: %s, %v", again, err)
	}

	for name, ring := range map[string]*seal.Keyring{"new primary, old kept": newRing, "old key dropped": onlyNew} {
		t.Run(name, func(t *testing.T) {
			y := optimizer(t, st, ring)
			for _, e := range es {
				as := mustAssign(t, y, e, append(unitIDs("before", 3), "after-"+name)...)
				if as[0].New || !as[3].New {
					t.Errorf("%s: %+v", e.ID, as)
				}
				if _, err := y.Results(ctx, e); err != nil {
					t.Errorf("%s: results: %v", e.ID, err)
				}
				if ss, err := st.LoadState(ctx, e.ID); err != nil || ss.KeyID != k2.ID() {
					t.Errorf("%s: state saved under %s (%v), want the new primary", e.ID, ss.KeyID, err)
				}
			}
		})
	}
	// A server left with only the old key cannot read the re-sealed state.
	fails(t, optimizer(t, st, oldRing), es[0], seal.ErrUnknownKey)
}

// TestSRMDetectedOnce: a broken assignment path (units stored 80/20 while the
// logged weights said a third each) raises the results' SRM alert, and the
// experiment.srm_detected webhook event is written once, however often the
// results are read.
func TestSRMDetectedOnce(t *testing.T) {
	st := openStore(t)
	x := optimizer(t, st, keyring(t, newKey(t)))
	e := experiment(t, st, "adaptive")
	ctx := t.Context()
	hook := store.Webhook{ID: id.New(id.Webhook), WorkspaceID: e.WorkspaceID, URL: "https://example.com/h",
		Events: []store.EventType{store.EventExperimentSRMDetected}, Enabled: true, SecretKeyID: "k", Secret: []byte("s"),
		CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := st.CreateWebhook(ctx, hook); err != nil {
		t.Fatal(err)
	}
	third := 1.0 / 3
	weights := map[string]float64{e.Variants[0].ID: third, e.Variants[1].ID: third, e.Variants[2].ID: third}
	batch := store.AssignBatch{WorkspaceID: e.WorkspaceID, ExperimentID: e.ID, Weights: weights}
	for i, u := range unitIDs("srm", 1500) {
		v := e.Variants[0].ID // 80% to a, the rest split: far from a third each
		if i%5 == 0 {
			v = e.Variants[1+i%2].ID
		}
		batch.Items = append(batch.Items, store.Assignment{UnitID: u, VariantID: v, Propensity: third, Epoch: 1, AssignedAt: time.Now()})
	}
	if _, err := st.Assign(ctx, []store.AssignBatch{batch}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		res, err := x.Results(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if !res.SRM.Alert || res.SRM.PValue == nil || *res.SRM.PValue >= 0.001 {
			t.Fatalf("srm = %+v, want an alert", res.SRM)
		}
	}
	ds, err := st.ListDeliveries(ctx, e.WorkspaceID, hook.ID, store.ListParams{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].EventType != store.EventExperimentSRMDetected {
		t.Fatalf("deliveries %+v, want one experiment.srm_detected", ds)
	}
}

// TestNoDifferenceRecordedOnce: three equal variants converting half their
// units, with min_effect 0.5 so that 1,500 units suffice: the results say
// no_difference, the decision is recorded once, experiment.no_difference is
// written once however often the results are read, and the results keep
// saying so.
func TestNoDifferenceRecordedOnce(t *testing.T) {
	st := openStore(t)
	x := optimizer(t, st, keyring(t, newKey(t)))
	e := experiment(t, st, "uniform")
	e.Settings.MinEffect = 0.5
	ctx := t.Context()
	hook := store.Webhook{ID: id.New(id.Webhook), WorkspaceID: e.WorkspaceID, URL: "https://example.com/h",
		Events: []store.EventType{store.EventExperimentNoDifference, store.EventExperimentWinnerFound}, Enabled: true, SecretKeyID: "k", Secret: []byte("s"),
		CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := st.CreateWebhook(ctx, hook); err != nil {
		t.Fatal(err)
	}
	third := 1.0 / 3
	weights := map[string]float64{e.Variants[0].ID: third, e.Variants[1].ID: third, e.Variants[2].ID: third}
	batch := store.AssignBatch{WorkspaceID: e.WorkspaceID, ExperimentID: e.ID, Weights: weights}
	events := store.EventBatch{WorkspaceID: e.WorkspaceID, ExperimentID: e.ID, Metric: store.MetricBinary}
	for i, u := range unitIDs("nd", 1500) {
		batch.Items = append(batch.Items, store.Assignment{UnitID: u, VariantID: e.Variants[i%3].ID, Propensity: third, Epoch: 1, AssignedAt: time.Now()})
		if (i/3)%2 == 0 {
			events.Events = append(events.Events, store.Event{UnitID: u, Value: 1, At: time.Now()})
		}
	}
	if _, err := st.Assign(ctx, []store.AssignBatch{batch}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordEvents(ctx, []store.EventBatch{events}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		res, err := x.Results(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if res.Decision.State != engine.StateNoDifference || res.Winner != nil {
			t.Fatalf("decision %+v, winner %v; want no_difference", res.Decision, res.Winner)
		}
	}
	ds, err := st.ListDeliveries(ctx, e.WorkspaceID, hook.ID, store.ListParams{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].EventType != store.EventExperimentNoDifference {
		t.Fatalf("deliveries %+v, want one experiment.no_difference", ds)
	}
	got, err := st.GetExperiment(ctx, e.WorkspaceID, e.ID)
	if err != nil || got.NoDifferenceAt == nil {
		t.Fatalf("no_difference not recorded: %v %+v", err, got)
	}
}
