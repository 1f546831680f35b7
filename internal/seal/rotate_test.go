package seal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/store"
)

// fakeStates is an in-memory store.States following the interface's
// contract (version check on save, ordered pages). It stands in for the real
// stores, which are being written at the same time; Rotate must also be run
// against internal/store/sqlite once it exists.
type fakeStates struct {
	mu   sync.Mutex
	rows map[string]store.SealedState
	// beforeSave, when set, runs before each SaveState is applied, without
	// the lock, so that a test can slip a concurrent writer in between
	// Rotate's read and its write.
	beforeSave func(s store.SealedState)
	// saveErr, when set, is returned by SaveState instead of saving.
	saveErr error
	// listErr, when set, is returned by ListStates.
	listErr error
	saves   atomic.Int64
}

var _ store.States = (*fakeStates)(nil)

func newFakeStates() *fakeStates { return &fakeStates{rows: map[string]store.SealedState{}} }

func (f *fakeStates) LoadState(_ context.Context, experimentID string) (store.SealedState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.rows[experimentID]
	if !ok {
		return store.SealedState{}, apperr.New(apperr.NotFound, "no state for experiment %s", experimentID)
	}
	s.Blob = bytes.Clone(s.Blob)
	return s, nil
}

func (f *fakeStates) SaveState(_ context.Context, s store.SealedState) error {
	if f.beforeSave != nil {
		f.beforeSave(s)
	}
	if f.saveErr != nil {
		return f.saveErr
	}
	runtime.Gosched() // widen the window for concurrent savers
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur := f.rows[s.ExperimentID].Version; cur != s.Version-1 {
		return apperr.New(apperr.Conflict, "state of experiment %s is at version %d, not %d", s.ExperimentID, cur, s.Version-1)
	}
	s.Blob = bytes.Clone(s.Blob)
	f.rows[s.ExperimentID] = s
	f.saves.Add(1)
	return nil
}

func (f *fakeStates) ListStates(_ context.Context, after string, limit int) ([]store.SealedState, error) {
	if f.listErr != nil {
		return nil, f.listErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.rows {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var page []store.SealedState
	for _, id := range ids[:min(limit, len(ids))] {
		s := f.rows[id]
		s.Blob = bytes.Clone(s.Blob)
		page = append(page, s)
	}
	return page, nil
}

// put seals plaintext with ring and stores it as the experiment's next version.
func (f *fakeStates) put(t testing.TB, ring *Keyring, experimentID, plaintext string) {
	t.Helper()
	keyID, blob, err := ring.Seal(experimentID, []byte(plaintext))
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	v := f.rows[experimentID].Version + 1
	f.mu.Unlock()
	if err := f.SaveState(t.Context(), store.SealedState{ExperimentID: experimentID, KeyID: keyID, Blob: blob, Version: v}); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeStates) get(t testing.TB, experimentID string) store.SealedState {
	t.Helper()
	s, err := f.LoadState(t.Context(), experimentID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var rotateNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestRotate(t *testing.T) {
	oldKey, newKey, lostKey := testKey(t, 1), testKey(t, 2), testKey(t, 3)
	oldRing, newRing := testRing(t, oldKey), testRing(t, newKey)
	ring := testRing(t, newKey, oldKey) // what rotate-key runs with

	states := newFakeStates()
	// More than two pages of states: old, current, lost key and damaged.
	want := map[string]string{}
	for i := range 250 {
		id := fmt.Sprintf("exp_%03d", i)
		plain := fmt.Sprintf(`{"n":%d}`, i)
		switch {
		case i%5 == 0:
			states.put(t, newRing, id, plain)
		case i == 7 || i == 77:
			states.put(t, testRing(t, lostKey), id, plain)
		case i == 8 || i == 88:
			states.put(t, oldRing, id, plain)
			s := states.get(t, id)
			s.Blob[len(s.Blob)-1] ^= 1
			states.rows[id] = s
		default:
			states.put(t, oldRing, id, plain)
		}
		want[id] = plain
	}
	before := map[string]store.SealedState{}
	for id := range want {
		before[id] = states.get(t, id)
	}

	rep, err := Rotate(t.Context(), states, ring, rotateNow)
	if err != nil {
		t.Fatal(err)
	}
	wantRep := RotateReport{Scanned: 250, Resealed: 196, Current: 50, Failed: 4}
	if got := rep; got.Scanned != wantRep.Scanned || got.Resealed != wantRep.Resealed ||
		got.Current != wantRep.Current || got.Failed != wantRep.Failed || got.Gone != 0 {
		t.Fatalf("report = %v, want %v", rep, wantRep)
	}
	failed := map[string]error{}
	for _, f := range rep.Failures {
		failed[f.ExperimentID] = f.Err
	}
	for id, want := range map[string]error{"exp_007": ErrUnknownKey, "exp_077": ErrUnknownKey, "exp_008": ErrTampered, "exp_088": ErrTampered} {
		if !errors.Is(failed[id], want) {
			t.Errorf("failure of %s = %v, want %v", id, failed[id], want)
		}
	}

	for id, plain := range want {
		s, b := states.get(t, id), before[id]
		if _, bad := failed[id]; bad {
			if s.Version != b.Version || !bytes.Equal(s.Blob, b.Blob) {
				t.Errorf("%s could not be opened but was changed", id)
			}
			continue
		}
		if s.KeyID != newKey.ID() {
			t.Errorf("%s is under key %s, want %s", id, s.KeyID, newKey.ID())
		}
		if got, err := newRing.Open(id, s.KeyID, s.Blob); err != nil || string(got) != plain {
			t.Errorf("%s opens with the new key alone to %q, %v; want %q", id, got, err, plain)
		}
		if b.KeyID == oldKey.ID() && (s.Version != b.Version+1 || !s.UpdatedAt.Equal(rotateNow)) {
			t.Errorf("%s resealed as version %d at %v, want %d at %v", id, s.Version, s.UpdatedAt, b.Version+1, rotateNow)
		}
		if b.KeyID == newKey.ID() && s.Version != b.Version {
			t.Errorf("%s was already current but was rewritten", id)
		}
	}

	// Idempotent: a second run writes nothing.
	saves := states.saves.Load()
	rep, err = Rotate(t.Context(), states, ring, rotateNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Resealed != 0 || rep.Current != 246 || rep.Failed != 4 || rep.Scanned != 250 {
		t.Errorf("second run report = %v, want nothing resealed", rep)
	}
	if n := states.saves.Load() - saves; n != 0 {
		t.Errorf("second run saved %d states, want 0", n)
	}
}

func TestRotateEmptyStore(t *testing.T) {
	rep, err := Rotate(t.Context(), newFakeStates(), testRing(t, testKey(t, 1)), rotateNow)
	if err != nil || rep.Scanned != 0 {
		t.Fatalf("Rotate on an empty store = %v, %v", rep, err)
	}
}

// TestRotateConcurrentSave slips a server's save in between Rotate's read and
// its write, for each thing the server may do meanwhile.
func TestRotateConcurrentSave(t *testing.T) {
	oldKey, newKey := testKey(t, 1), testKey(t, 2)
	oldRing, newRing := testRing(t, oldKey), testRing(t, newKey, oldKey)

	tests := []struct {
		name string
		// server runs once, when Rotate first tries to save exp_1.
		server    func(t *testing.T, f *fakeStates)
		wantRep   RotateReport
		wantPlain string // "" when the row should be gone
		wantVer   int64
	}{
		{
			name:      "server saved under the new key: current, server's content kept",
			server:    func(t *testing.T, f *fakeStates) { f.put(t, newRing, "exp_1", "server v2") },
			wantRep:   RotateReport{Scanned: 1, Current: 1},
			wantPlain: "server v2",
			wantVer:   2,
		},
		{
			name:      "server saved under the old key: resealed from the server's content",
			server:    func(t *testing.T, f *fakeStates) { f.put(t, oldRing, "exp_1", "server v2") },
			wantRep:   RotateReport{Scanned: 1, Resealed: 1},
			wantPlain: "server v2",
			wantVer:   3,
		},
		{
			name: "experiment deleted meanwhile: gone",
			server: func(t *testing.T, f *fakeStates) {
				f.mu.Lock()
				delete(f.rows, "exp_1")
				f.mu.Unlock()
			},
			wantRep: RotateReport{Scanned: 1, Gone: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeStates()
			f.put(t, oldRing, "exp_1", "v1")
			done := false // the server's own save comes through the hook too
			f.beforeSave = func(s store.SealedState) {
				if !done && s.KeyID == newKey.ID() && s.Version == 2 { // Rotate's first attempt
					done = true
					tt.server(t, f)
				}
			}
			rep, err := Rotate(t.Context(), f, newRing, rotateNow)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Scanned != tt.wantRep.Scanned || rep.Resealed != tt.wantRep.Resealed || rep.Current != tt.wantRep.Current ||
				rep.Gone != tt.wantRep.Gone || rep.Failed != 0 {
				t.Fatalf("report = %v, want %v", rep, tt.wantRep)
			}
			if tt.wantPlain == "" {
				return
			}
			s := f.get(t, "exp_1")
			got, err := testRing(t, newKey).Open("exp_1", s.KeyID, s.Blob)
			if err != nil || string(got) != tt.wantPlain || s.Version != tt.wantVer {
				t.Errorf("stored version %d = %q, %v; want version %d = %q", s.Version, got, err, tt.wantVer, tt.wantPlain)
			}
		})
	}
}

func TestRotateGivesUpOnEndlessConflicts(t *testing.T) {
	oldRing, newRing := testRing(t, testKey(t, 1)), testRing(t, testKey(t, 2), testKey(t, 1))
	f := newFakeStates()
	f.put(t, oldRing, "exp_1", "v1")
	f.put(t, oldRing, "exp_2", "v1")
	busy := true
	f.beforeSave = func(s store.SealedState) {
		if busy && s.ExperimentID == "exp_1" && s.KeyID == newRing.PrimaryID() {
			f.put(t, oldRing, "exp_1", "server") // a server that always saves first
		}
	}
	rep, err := Rotate(t.Context(), f, newRing, rotateNow)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 1 || rep.Resealed != 1 || rep.Failures[0].ExperimentID != "exp_1" || !apperr.Is(rep.Failures[0].Err, apperr.Conflict) {
		t.Fatalf("report = %v %v, want exp_1 failed by conflicts and exp_2 resealed", rep, rep.Failures)
	}
	busy = false
	if rep, err := Rotate(t.Context(), f, newRing, rotateNow); err != nil || rep.Resealed != 1 || rep.Current != 1 {
		t.Fatalf("a later run = %v, %v, want exp_1 resealed", rep, err)
	}
}

func TestRotateStopsOnStoreErrors(t *testing.T) {
	oldRing, newRing := testRing(t, testKey(t, 1)), testRing(t, testKey(t, 2), testKey(t, 1))
	down := errors.New("connection refused")

	f := newFakeStates()
	f.put(t, oldRing, "exp_1", "v1")
	f.saveErr = down
	if _, err := Rotate(t.Context(), f, newRing, rotateNow); !errors.Is(err, down) {
		t.Errorf("save failure: error = %v, want %v", err, down)
	}

	f = newFakeStates()
	f.listErr = down
	if _, err := Rotate(t.Context(), f, newRing, rotateNow); !errors.Is(err, down) {
		t.Errorf("list failure: error = %v, want %v", err, down)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Rotate(ctx, newFakeStates(), newRing, rotateNow); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: error = %v, want %v", err, context.Canceled)
	}

	if _, err := Rotate(t.Context(), newFakeStates(), nil, rotateNow); err == nil {
		t.Error("Rotate without a keyring succeeded")
	}
}

// unorderedStates returns the same page forever, as a broken store might.
type unorderedStates struct{ fakeStates }

func (u *unorderedStates) ListStates(ctx context.Context, _ string, limit int) ([]store.SealedState, error) {
	return u.fakeStates.ListStates(ctx, "", limit)
}

func TestRotateRefusesUnorderedPages(t *testing.T) {
	u := &unorderedStates{fakeStates{rows: map[string]store.SealedState{}}}
	u.put(t, testRing(t, testKey(t, 2)), "exp_1", "v1")
	if _, err := Rotate(t.Context(), u, testRing(t, testKey(t, 2)), rotateNow); err == nil {
		t.Fatal("Rotate looped over a store returning pages out of order without an error")
	}
}

// TestRotateWhileServerSaves runs Rotate while a simulated server keeps
// incrementing counters in every state (load, open, change, seal, save,
// retrying on conflict). Afterwards every state is under the new key and no
// increment is lost.
func TestRotateWhileServerSaves(t *testing.T) {
	oldKey, newKey := testKey(t, 1), testKey(t, 2)
	oldRing, ring := testRing(t, oldKey), testRing(t, newKey, oldKey)
	f := newFakeStates()
	const n = 300
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("exp_%03d", i)
		f.put(t, oldRing, ids[i], "0")
	}

	increments := make([]atomic.Int64, n)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; ; i = (i + 7) % n {
				select {
				case <-stop:
					return
				default:
				}
				for { // the server's optimistic update loop
					s, err := f.LoadState(t.Context(), ids[i])
					if err != nil {
						t.Error(err)
						return
					}
					plain, err := ring.Open(ids[i], s.KeyID, s.Blob)
					if err != nil {
						t.Error(err)
						return
					}
					c, _ := strconv.Atoi(string(plain))
					keyID, blob, err := ring.Seal(ids[i], []byte(strconv.Itoa(c+1)))
					if err != nil {
						t.Error(err)
						return
					}
					err = f.SaveState(t.Context(), store.SealedState{ExperimentID: ids[i], KeyID: keyID, Blob: blob, Version: s.Version + 1})
					if err == nil {
						increments[i].Add(1)
						break
					}
					if !apperr.Is(err, apperr.Conflict) {
						t.Error(err)
						return
					}
				}
			}
		})
	}

	rep, err := Rotate(t.Context(), f, ring, rotateNow)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Scanned != n || rep.Failed != 0 || rep.Resealed+rep.Current != n {
		t.Fatalf("report = %v %v", rep, rep.Failures)
	}
	newOnly := testRing(t, newKey)
	for i, id := range ids {
		s := f.get(t, id)
		got, err := newOnly.Open(id, s.KeyID, s.Blob)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if want := strconv.FormatInt(increments[i].Load(), 10); string(got) != want {
			t.Errorf("%s counter = %s, want %s: an update was lost", id, got, want)
		}
	}
	t.Logf("report: %v", rep)
}
