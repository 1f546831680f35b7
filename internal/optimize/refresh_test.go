package optimize_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

// gate holds the first call that passes it after arm until release is
// closed: a rebuild caught in the middle of its read.
type gate struct {
	mu      sync.Mutex
	armed   bool
	entered chan struct{} // closed when the held call arrives
	release chan struct{} // closed to let it go
}

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) arm() {
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
}

func (g *gate) pass() {
	g.mu.Lock()
	armed := g.armed
	g.armed = false
	g.mu.Unlock()
	if armed {
		close(g.entered)
		<-g.release
	}
}

// slowCounters is the real store whose Counters passes a gate.
type slowCounters struct {
	store.Store
	*gate
}

func (s *slowCounters) Counters(ctx context.Context, workspaceID, experimentID string) ([]store.Counters, error) {
	s.pass()
	return s.Store.Counters(ctx, workspaceID, experimentID)
}

// rebuildCaught is an experiment whose allocation one request (assigning
// u-1) is rebuilding, held inside the rebuild's read of the counters until
// st.release is closed; rebuilt is closed when that request returns.
type rebuildCaught struct {
	x          *optimize.Experiments
	st         *slowCounters
	e          *store.Experiment
	firstEpoch int64 // the epoch of the allocation being replaced
	rebuilt    chan struct{}
}

// epoch returns the epoch unit was assigned under, as stored.
func (r *rebuildCaught) epoch(t *testing.T, unit string) int64 {
	t.Helper()
	got, err := r.st.Store.Assignments(context.Background(), r.e.WorkspaceID, r.e.ID, []string{unit})
	if err != nil {
		t.Fatal(err)
	}
	return got[unit].Epoch
}

// meanwhile runs f while the rebuild is held and waits for it to return;
// if it does not (f waits for the rebuild), the rebuild is let go, both are
// waited for (so that neither reports after the test) and the test fails
// with what.
func (r *rebuildCaught) meanwhile(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		close(r.st.release)
		<-done
		<-r.rebuilt
		t.Fatal(what)
	}
}

func catchRebuild(t *testing.T) *rebuildCaught {
	t.Helper()
	r := &rebuildCaught{st: &slowCounters{Store: openStore(t), gate: newGate()}, rebuilt: make(chan struct{})}
	clock := time.Now()
	var clockMu sync.Mutex
	now := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	r.x = optimize.NewExperiments(r.st, keyring(t, newKey(t)), now, nil, optimize.Options{RefreshEvery: time.Second})
	t.Cleanup(r.x.Close)
	r.e = experiment(t, r.st, "adaptive")
	mustAssign(t, r.x, r.e, "u-0")
	r.firstEpoch = r.epoch(t, "u-0")

	clockMu.Lock()
	clock = clock.Add(2 * time.Second) // the allocation is now stale
	clockMu.Unlock()
	r.st.arm()
	go func() {
		defer close(r.rebuilt)
		if _, err := r.x.Assign(context.Background(), r.e, []string{"u-1"}); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-r.st.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the stale allocation was not rebuilt")
	}
	return r
}

// TestRefreshDoesNotStallAssignments: while one request rebuilds a stale
// allocation (reading the counters, writing the next epoch), the others are
// served from the allocation being replaced instead of queueing behind the
// rebuild, which under load made every request in flight wait once per
// RefreshEvery. The rebuilding request gets the new epoch. Holding the
// experiment's lock through the rebuild (the code before) makes the second
// request wait for the first, and the test fails at its timeout.
func TestRefreshDoesNotStallAssignments(t *testing.T) {
	r := catchRebuild(t)
	r.meanwhile(t, "an assignment waited for another request's rebuild of the allocation", func() {
		if _, err := r.x.Assign(context.Background(), r.e, []string{"u-2", "u-3"}); err != nil {
			t.Error(err)
		}
	})
	for _, u := range []string{"u-2", "u-3"} {
		if got := r.epoch(t, u); got != r.firstEpoch {
			t.Errorf("%s served under epoch %d during the rebuild, want the old allocation's %d", u, got, r.firstEpoch)
		}
	}
	close(r.st.release)
	<-r.rebuilt
	if got := r.epoch(t, "u-1"); got != r.firstEpoch+1 {
		t.Errorf("the rebuilding request got epoch %d, want %d", got, r.firstEpoch+1)
	}
	// And the next request is served from the new allocation.
	mustAssign(t, r.x, r.e, "u-4")
	if got := r.epoch(t, "u-4"); got != r.firstEpoch+1 {
		t.Errorf("after the rebuild: epoch %d, want %d", got, r.firstEpoch+1)
	}
}

// TestRefreshAfterForgetIsNotInstalled: an allocation dropped while another
// request was rebuilding it (a guardrail trip recorded meanwhile) is not
// replaced by that rebuild, which read what came before the drop: the
// rebuilding request builds again, and so the unit it assigns carries the
// epoch after the rebuild it threw away. Without the generation check the
// stale rebuild is installed and served.
func TestRefreshAfterForgetIsNotInstalled(t *testing.T) {
	r := catchRebuild(t)
	r.meanwhile(t, "dropping the allocation waited for the rebuild", func() { optimize.ForgetPolicy(r.x, r.e.ID) })
	close(r.st.release)
	<-r.rebuilt
	if got := r.epoch(t, "u-1"); got != r.firstEpoch+2 {
		t.Errorf("u-1 assigned under epoch %d, want %d (the rebuild begun before the drop discarded, another made)", got, r.firstEpoch+2)
	}
}

// slowFunnelCounts is the real store whose FunnelCounts passes a gate.
type slowFunnelCounts struct {
	store.Store
	*gate
}

func (s *slowFunnelCounts) FunnelCounts(ctx context.Context, workspaceID, funnelID string, now time.Time) (store.FunnelCounts, error) {
	s.pass()
	return s.Store.FunnelCounts(ctx, workspaceID, funnelID, now)
}

// TestFunnelRefreshDoesNotStallProgress: as for experiments, while one
// request rebuilds a funnel's stale plans the others are served the plans
// being replaced. Holding the funnel's lock through the rebuild (the code
// before) makes the second request wait, and the test fails at its timeout.
func TestFunnelRefreshDoesNotStallProgress(t *testing.T) {
	st := &slowFunnelCounts{Store: openStore(t), gate: newGate()}
	ctx := context.Background()
	e := lateExperiment(t, st.Store, 1, 0, 2) // for its workspace
	f := landingFunnel(id.New(id.Funnel), e.WorkspaceID, "refresh", 2,
		store.FunnelSettings{MinSamples: 100, DecisionThreshold: 0.95, LossThreshold: 0.001})
	if err := st.CreateFunnel(ctx, f); err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	c.set(time.Now())
	x := optimize.NewFunnels(st, c.now, nil, optimize.Options{RefreshEvery: time.Second})
	t.Cleanup(x.Close)
	progress := func(unit string) {
		if _, err := x.Progress(ctx, &f, unit, "landing", 0); err != nil {
			t.Error(err)
		}
	}
	progress("u-0")
	c.set(c.now().Add(2 * time.Second)) // the plans are now stale
	st.arm()
	rebuilt := make(chan struct{})
	go func() { defer close(rebuilt); progress("u-1") }()
	select {
	case <-st.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the stale plans were not rebuilt")
	}
	done := make(chan struct{})
	go func() { defer close(done); progress("u-2") }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		close(st.release)
		<-done
		<-rebuilt
		t.Fatal("a unit's progress waited for another request's rebuild of the funnel's plans")
	}
	close(st.release)
	<-rebuilt
}
