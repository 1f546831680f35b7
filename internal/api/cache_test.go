package api

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// blockingFetch counts its calls and holds each until release is closed.
type blockingFetch struct {
	calls   atomic.Int32
	started chan struct{} // one value per call
	release chan struct{}
	v       int
	err     error
}

func newBlockingFetch(v int, err error) *blockingFetch {
	return &blockingFetch{started: make(chan struct{}, 100), release: make(chan struct{}), v: v, err: err}
}

func (f *blockingFetch) fetch(context.Context) (int, error) {
	f.calls.Add(1)
	f.started <- struct{}{}
	<-f.release
	return f.v, f.err
}

// waitStarted waits for a call of f to begin, failing the test after 5 s.
func (f *blockingFetch) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-f.started:
	case <-time.After(5 * time.Second):
		t.Fatal("no read started")
	}
}

func instant(v int) func(context.Context) (int, error) {
	return func(context.Context) (int, error) { return v, nil }
}

// Callers that find an entry missing together make one read: the herd that
// made the first answers on PostgreSQL take up to 307 ms.
func TestCacheMissesShareOneRead(t *testing.T) {
	var c ttlCache[string, int]
	f := newBlockingFetch(7, nil)
	const n = 32
	got := make(chan int, n)
	for range n {
		go func() {
			v, err := c.load(context.Background(), "k", time.Hour, f.fetch)
			if err != nil {
				t.Error(err)
			}
			got <- v
		}()
	}
	f.waitStarted(t)
	// Let the others reach the cache before the read ends.
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.flights["k"] != nil }, "flight")
	time.Sleep(20 * time.Millisecond)
	close(f.release)
	for range n {
		if v := <-got; v != 7 {
			t.Fatalf("got %d, want 7", v)
		}
	}
	if calls := f.calls.Load(); calls != 1 {
		t.Fatalf("%d callers made %d reads, want 1", n, calls)
	}
	if v, _ := c.load(context.Background(), "k", time.Hour, instant(8)); v != 7 {
		t.Fatalf("after the read: %d, want the cached 7", v)
	}
}

// A failed read is each caller's own: the waiting callers read for
// themselves (an unknown key, a cancelled request, a refused address).
func TestCacheFailedReadIsNotShared(t *testing.T) {
	var c ttlCache[string, int]
	f := newBlockingFetch(0, errors.New("boom"))
	leader := make(chan error, 1)
	go func() {
		_, err := c.load(context.Background(), "k", time.Hour, f.fetch)
		leader <- err
	}()
	f.waitStarted(t)
	follower := make(chan int, 1)
	go func() {
		v, err := c.load(context.Background(), "k", time.Hour, instant(5))
		if err != nil {
			t.Error(err)
		}
		follower <- v
	}()
	waitFor(t, func() bool { return len(follower) == 0 }, "follower waiting")
	time.Sleep(20 * time.Millisecond)
	close(f.release)
	if err := <-leader; err == nil {
		t.Fatal("the failed read returned no error")
	}
	if v := <-follower; v != 5 {
		t.Fatalf("follower got %d, want its own read's 5", v)
	}
}

// In the last quarter of an entry's life one caller reads it anew while the
// others are served the cached value; past its expiry it is never served.
func TestCacheRefreshesAheadOfExpiry(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	c := ttlCache[string, int]{now: clk.Now}
	ctx := context.Background()
	if v, _ := c.load(ctx, "k", time.Second, instant(1)); v != 1 {
		t.Fatal(v)
	}
	clk.Advance(700 * time.Millisecond) // before refreshAt (750 ms): served
	if v, _ := c.load(ctx, "k", time.Second, instant(2)); v != 1 {
		t.Fatalf("at 700 ms: %d, want the cached 1", v)
	}
	clk.Advance(100 * time.Millisecond) // 800 ms: the next caller refreshes
	f := newBlockingFetch(3, nil)
	refreshed := make(chan int, 1)
	go func() { v, _ := c.load(ctx, "k", time.Second, f.fetch); refreshed <- v }()
	f.waitStarted(t)
	for range 10 { // the others do not wait for it, nor read
		v, err := c.load(ctx, "k", time.Second, func(context.Context) (int, error) {
			t.Error("a second read during the refresh")
			return 0, nil
		})
		if err != nil || v != 1 {
			t.Fatalf("during the refresh: %d, %v; want the cached 1", v, err)
		}
	}
	close(f.release)
	if v := <-refreshed; v != 3 {
		t.Fatalf("refresher got %d, want 3", v)
	}
	if v, _ := c.load(ctx, "k", time.Second, instant(4)); v != 3 {
		t.Fatalf("after the refresh: %d, want 3", v)
	}
	// Refreshed at 800 ms, so it expires at 1.8 s. A refresh stuck in
	// flight does not keep the old value alive past that.
	clk.Advance(800 * time.Millisecond)
	stuck := newBlockingFetch(5, nil)
	go func() { _, _ = c.load(ctx, "k", time.Second, stuck.fetch) }()
	stuck.waitStarted(t)
	clk.Advance(300 * time.Millisecond) // 1.9 s: expired
	if v, _ := c.load(ctx, "k", time.Second, instant(6)); v != 6 {
		t.Fatalf("past expiry: %d, want a new read (6)", v)
	}
	close(stuck.release)
}

// A refresh that fails drops the entry: a key revoked on another replica is
// refused from then on, not served until it expires.
func TestCacheFailedRefreshDropsEntry(t *testing.T) {
	clk := &clock{t: time.Unix(1e9, 0)}
	c := ttlCache[string, int]{now: clk.Now}
	ctx := context.Background()
	_, _ = c.load(ctx, "k", time.Second, instant(1))
	clk.Advance(800 * time.Millisecond)
	revoked := errors.New("revoked")
	if _, err := c.load(ctx, "k", time.Second, func(context.Context) (int, error) { return 0, revoked }); !errors.Is(err, revoked) {
		t.Fatalf("refresh: %v, want revoked", err)
	}
	reads := 0
	_, err := c.load(ctx, "k", time.Second, func(context.Context) (int, error) { reads++; return 0, revoked })
	if !errors.Is(err, revoked) || reads != 1 {
		t.Fatalf("after the failed refresh: %v with %d reads; want a read that fails", err, reads)
	}
}

// A read in flight when the entry is dropped (a change through this
// replica) does not store what it read before the change.
func TestCacheDeleteDuringReadStoresNothing(t *testing.T) {
	var c ttlCache[string, int]
	f := newBlockingFetch(1, nil)
	done := make(chan struct{})
	go func() { _, _ = c.load(context.Background(), "k", time.Hour, f.fetch); close(done) }()
	f.waitStarted(t)
	c.deleteFunc(func(string, int) bool { return true })
	close(f.release)
	<-done
	if v, _ := c.load(context.Background(), "k", time.Hour, instant(2)); v != 2 {
		t.Fatalf("after a delete during the read: %d, want a new read (2)", v)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
