package optimize_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

// slowCounters is the real store whose Counters, once armed, waits until
// released: a rebuild of the allocation caught in the middle.
type slowCounters struct {
	store.Store
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (s *slowCounters) Counters(ctx context.Context, workspaceID, experimentID string) ([]store.Counters, error) {
	s.mu.Lock()
	armed := s.armed
	s.armed = false
	s.mu.Unlock()
	if armed {
		close(s.entered)
		<-s.release
	}
	return s.Store.Counters(ctx, workspaceID, experimentID)
}

// TestRefreshDoesNotStallAssignments: while one request rebuilds a stale
// allocation (reading the counters, writing the next epoch), the others are
// served from the allocation being replaced instead of queueing behind the
// rebuild, which under load made every request in flight wait once per
// RefreshEvery. The rebuilding request gets the new epoch. Holding the
// experiment's lock through the rebuild (the code before) deadlocks the
// second request here, and the test fails at its timeout.
func TestRefreshDoesNotStallAssignments(t *testing.T) {
	st := &slowCounters{Store: openStore(t), entered: make(chan struct{}), release: make(chan struct{})}
	clock := time.Now()
	var clockMu sync.Mutex
	now := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	x := optimize.NewExperiments(st, keyring(t, newKey(t)), now, nil, optimize.Options{RefreshEvery: time.Second})
	t.Cleanup(x.Close)
	e := experiment(t, st, "adaptive")
	epoch := func(unit string) int64 {
		t.Helper()
		got, err := st.Store.Assignments(context.Background(), e.WorkspaceID, e.ID, []string{unit})
		if err != nil {
			t.Fatal(err)
		}
		return got[unit].Epoch
	}
	mustAssign(t, x, e, "u-0")
	firstEpoch := epoch("u-0")

	clockMu.Lock()
	clock = clock.Add(2 * time.Second) // the allocation is now stale
	clockMu.Unlock()
	st.mu.Lock()
	st.armed = true
	st.mu.Unlock()

	rebuilt := make(chan struct{})
	go func() {
		defer close(rebuilt)
		if _, err := x.Assign(context.Background(), e, []string{"u-1"}); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-st.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the stale allocation was not rebuilt")
	}
	// The rebuild is stuck in Counters. Another request must be served now,
	// from the allocation being replaced.
	served := make(chan struct{})
	go func() {
		defer close(served)
		if _, err := x.Assign(context.Background(), e, []string{"u-2", "u-3"}); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-served:
		for _, u := range []string{"u-2", "u-3"} {
			if got := epoch(u); got != firstEpoch {
				t.Errorf("%s served under epoch %d during the rebuild, want the old allocation's %d", u, got, firstEpoch)
			}
		}
	case <-time.After(10 * time.Second):
		close(st.release)
		t.Fatal("an assignment waited for another request's rebuild of the allocation")
	}
	close(st.release)
	<-rebuilt
	if got := epoch("u-1"); got != firstEpoch+1 {
		t.Errorf("the rebuilding request got epoch %d, want %d", got, firstEpoch+1)
	}
	// And the next request is served from the new allocation.
	mustAssign(t, x, e, "u-4")
	if got := epoch("u-4"); got != firstEpoch+1 {
		t.Errorf("after the rebuild: epoch %d, want %d", got, firstEpoch+1)
	}
}

// TestRefreshAfterForgetIsNotInstalled: an allocation dropped while another
// request was rebuilding it (a guardrail trip recorded meanwhile) is not
// replaced by that rebuild, which read what came before the drop: the
// rebuilding request builds again, and so the unit it assigns carries the
// epoch after the rebuild it threw away. Without the generation check the
// stale rebuild is installed and served.
func TestRefreshAfterForgetIsNotInstalled(t *testing.T) {
	st := &slowCounters{Store: openStore(t), entered: make(chan struct{}), release: make(chan struct{})}
	clock := time.Now()
	var clockMu sync.Mutex
	now := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	x := optimize.NewExperiments(st, keyring(t, newKey(t)), now, nil, optimize.Options{RefreshEvery: time.Second})
	t.Cleanup(x.Close)
	e := experiment(t, st, "adaptive")
	epoch := func(unit string) int64 {
		t.Helper()
		got, err := st.Store.Assignments(context.Background(), e.WorkspaceID, e.ID, []string{unit})
		if err != nil {
			t.Fatal(err)
		}
		return got[unit].Epoch
	}
	mustAssign(t, x, e, "u-0")
	firstEpoch := epoch("u-0")

	clockMu.Lock()
	clock = clock.Add(2 * time.Second)
	clockMu.Unlock()
	st.mu.Lock()
	st.armed = true
	st.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := x.Assign(context.Background(), e, []string{"u-1"}); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-st.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the stale allocation was not rebuilt")
	}
	optimize.ForgetPolicy(x, e.ID)
	close(st.release)
	<-done
	if got := epoch("u-1"); got != firstEpoch+2 {
		t.Errorf("u-1 assigned under epoch %d, want %d (the rebuild begun before the drop discarded, another made)", got, firstEpoch+2)
	}
}
