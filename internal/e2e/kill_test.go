package e2e

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Sizes of the kill test: units assigned before the load (each event of the
// load converts one of them), and the concurrent clients.
const (
	killUnits         = 30_000
	killSingleClients = 4  // send one event per request
	killBatchClients  = 4  // send 1 to killMaxBatch events per request
	killAssignClients = 2  // assign new units one at a time
	killMaxBatch      = 60 // keeps the pool of units from running dry before the kill
	killSeed          = 20260417
)

// What the load knows of each event (one per unit of the pool).
const (
	unsent   int32 = iota // never put on the wire: must not be counted
	inFlight              // sent, no 202 seen (the kill cut it, or it came after)
	acked                 // 202 received: must be counted
)

// TestKill9 kills a real server process with SIGKILL at a seeded random
// moment while concurrent clients send events (singly and in batches) and
// assign new units, restarts it over the same database, and checks the
// contract's durability promise exactly: every acknowledged event and
// assignment is there, nothing unsent is, and re-sending the unacknowledged
// events with their idempotency keys brings the total to exactly the number
// of distinct events sent.
func TestKill9(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testKill9(t, backend) })
	}
}

func unitName(i int) string { return fmt.Sprintf("u-%06d", i) }

func testKill9(t *testing.T, backend string) {
	dsn := dsnFor(t, backend)
	srv := startServer(t, backend+"-1", dsn)
	rng := rand.New(rand.NewPCG(killSeed, 1))

	var exp experiment
	srv.must(t, "POST", "/v1/experiments", map[string]any{
		"key": "kill", "metric": "binary", "strategy": "adaptive",
		"variants": []map[string]any{{"key": "control", "control": true}, {"key": "green"}},
		"settings": map[string]any{"seed": 7, "min_samples": 1000000},
		"start":    true,
	}, &exp)
	const ref = "/v1/experiments/kill"

	// The pool of units the events convert, assigned in batches of 1000.
	setupStart := time.Now()
	for start := 0; start < killUnits; start += 1000 {
		ids := make([]string, 1000)
		for i := range ids {
			ids[i] = unitName(start + i)
		}
		var got assignments
		srv.must(t, "POST", ref+"/assign", map[string]any{"unit_ids": ids}, &got)
		if len(got.Assignments) != len(ids) {
			t.Fatalf("batch assign returned %d assignments for %d units", len(got.Assignments), len(ids))
		}
	}

	t.Logf("%d units assigned in %v", killUnits, time.Since(setupStart))

	// The load. Every event has its own unit and idempotency key, so each
	// is exactly one conversion.
	state := make([]atomic.Int32, killUnits)
	var next atomic.Int64 // next unit of the pool to convert
	take := func(n int) (int, int) {
		hi := int(next.Add(int64(n)))
		lo := hi - n
		return lo, min(hi, killUnits)
	}
	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		assignAcked = map[string]string{} // unit → variant, 200 received
		assignSent  []string              // every unit put on the wire
		failures    atomic.Int64          // non-2xx answers (must be none)
		ackedCount  atomic.Int64          // events acknowledged so far
	)
	ctx := t.Context()
	sendEvents := func(lo, hi int, single bool) bool {
		evs := make([]event, 0, hi-lo)
		for u := lo; u < hi; u++ {
			state[u].Store(inFlight)
			evs = append(evs, event{UnitID: unitName(u), IdempotencyKey: "key-" + unitName(u)})
		}
		var out eventsOutcome
		var status int
		var err error
		if single {
			status, err = srv.call(ctx, "POST", ref+"/events", evs[0], &out)
		} else {
			status, err = srv.call(ctx, "POST", ref+"/events", map[string]any{"events": evs}, &out)
		}
		if err != nil {
			if status != 0 {
				failures.Add(1)
				t.Errorf("events during the load: %v", err)
			}
			return false // the server is gone
		}
		if out.Accepted != len(evs) || out.Duplicates != 0 || len(out.Rejected) != 0 {
			t.Errorf("events %d..%d: got %+v, want all %d accepted", lo, hi, out, len(evs))
		}
		for u := lo; u < hi; u++ {
			state[u].Store(acked)
		}
		ackedCount.Add(int64(hi - lo))
		return true
	}
	for c := range killSingleClients + killBatchClients {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(killSeed, uint64(100+c)))
			for {
				single := c < killSingleClients
				n := 1
				if !single {
					n = 1 + r.IntN(killMaxBatch)
				}
				lo, hi := take(n)
				if lo >= hi || !sendEvents(lo, hi, single) {
					return
				}
			}
		})
	}
	for c := range killAssignClients {
		wg.Go(func() {
			for i := 0; ; i++ {
				u := fmt.Sprintf("new-%d-%d", c, i)
				mu.Lock()
				assignSent = append(assignSent, u)
				mu.Unlock()
				var a assignment
				status, err := srv.call(ctx, "POST", ref+"/assign", map[string]any{"unit_id": u}, &a)
				if err != nil {
					if status != 0 {
						failures.Add(1)
						t.Errorf("assign during the load: %v", err)
					}
					return
				}
				if a.Variant == nil || !a.New {
					t.Errorf("assign %s: got %+v, want a new assignment", u, a)
				}
				mu.Lock()
				assignAcked[u] = *a.Variant
				mu.Unlock()
			}
		})
	}

	// Kill at a seeded moment of the load, without warning: once the load
	// is under way (the first events acknowledged, so that a slow start of
	// a backend cannot leave nothing to check), after a seeded delay.
	deadline := time.Now().Add(15 * time.Second)
	for ackedCount.Load() < 20 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	delay := 200*time.Millisecond + time.Duration(rng.Int64N(int64(800*time.Millisecond)))
	time.Sleep(delay)
	srv.kill()
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d requests failed during the load", failures.Load())
	}

	var sentUnits, ackedUnits, inFlightUnits []string
	for u := range state {
		switch state[u].Load() {
		case acked:
			ackedUnits = append(ackedUnits, unitName(u))
			sentUnits = append(sentUnits, unitName(u))
		case inFlight:
			inFlightUnits = append(inFlightUnits, unitName(u))
			sentUnits = append(sentUnits, unitName(u))
		}
	}
	var assignInFlight []string
	for _, u := range assignSent {
		if _, ok := assignAcked[u]; !ok {
			assignInFlight = append(assignInFlight, u)
		}
	}
	t.Logf("killed %v after the first acknowledgements: events acknowledged %d, in flight %d, unsent %d; new-unit assignments acknowledged %d, in flight %d",
		delay, len(ackedUnits), len(inFlightUnits), killUnits-len(sentUnits), len(assignAcked), len(assignInFlight))
	if len(ackedUnits) == 0 {
		t.Fatal("no event was acknowledged before the kill: the load did not start")
	}
	if len(sentUnits) == killUnits {
		t.Fatal("the pool of units ran dry before the kill: raise killUnits")
	}

	// Restart over the same database.
	restart := time.Now()
	srv = startServer(t, backend+"-2", dsn)
	t.Logf("restarted in %v", time.Since(restart))
	defer func() { t.Logf("checked in %v", time.Since(restart)) }()

	// 1. The counts after the restart: every acknowledged event, perhaps
	// some that were in flight, and nothing else.
	var res results
	srv.must(t, "GET", ref+"/results", nil, &res)
	conv := res.conversions()
	t.Logf("after restart: conversions %d (acknowledged %d + %d of the %d in flight), units %d",
		conv, len(ackedUnits), conv-int64(len(ackedUnits)), len(inFlightUnits), res.TotalUnits)
	if conv < int64(len(ackedUnits)) || conv > int64(len(sentUnits)) {
		t.Errorf("conversions after restart = %d, want between %d acknowledged and %d sent", conv, len(ackedUnits), len(sentUnits))
	}
	minUnits := int64(killUnits + len(assignAcked))
	if res.TotalUnits < minUnits || res.TotalUnits > minUnits+int64(len(assignInFlight)) {
		t.Errorf("units after restart = %d, want between %d and %d", res.TotalUnits, minUnits, minUnits+int64(len(assignInFlight)))
	}

	// 2. Unit by unit: re-sending each acknowledged event with its
	// idempotency key is a duplicate, so each was stored.
	resend := func(units []string) (accepted, duplicates int) {
		for lo := 0; lo < len(units); lo += 1000 {
			hi := min(lo+1000, len(units))
			evs := make([]event, 0, hi-lo)
			for _, u := range units[lo:hi] {
				evs = append(evs, event{UnitID: u, IdempotencyKey: "key-" + u})
			}
			var out eventsOutcome
			srv.must(t, "POST", ref+"/events", map[string]any{"events": evs}, &out)
			if len(out.Rejected) > 0 {
				t.Errorf("re-sent events rejected: %+v", out.Rejected[:min(3, len(out.Rejected))])
			}
			accepted += out.Accepted
			duplicates += out.Duplicates
		}
		return accepted, duplicates
	}
	if acc, dup := resend(ackedUnits); acc != 0 || dup != len(ackedUnits) {
		t.Errorf("re-sending the %d acknowledged events: %d accepted, %d duplicates; want every one a duplicate", len(ackedUnits), acc, dup)
	}
	// 3. The events in flight at the kill, re-sent as a client retries
	// them: the ones the server had committed are duplicates, the others
	// count now.
	acc, dup := resend(inFlightUnits)
	t.Logf("re-sending the %d in flight: %d committed before the kill (duplicates), %d counted now", len(inFlightUnits), dup, acc)
	if acc+dup != len(inFlightUnits) || int64(dup) != conv-int64(len(ackedUnits)) {
		t.Errorf("re-sending %d in-flight events: %d accepted + %d duplicates; want %d duplicates (the ones counted at restart)",
			len(inFlightUnits), acc, dup, conv-int64(len(ackedUnits)))
	}
	srv.must(t, "GET", ref+"/results", nil, &res)
	if got := res.conversions(); got != int64(len(sentUnits)) {
		t.Errorf("final conversions = %d, want exactly the %d distinct events sent", got, len(sentUnits))
	}

	// 4. Acknowledged assignments are sticky across the restart; the ones
	// in flight are made now if they were lost, and then every unit is
	// counted once.
	check := func(units []string, wantOld bool) {
		if len(units) == 0 {
			return
		}
		var got assignments
		srv.must(t, "POST", ref+"/assign", map[string]any{"unit_ids": units}, &got)
		for i, a := range got.Assignments {
			if !wantOld {
				continue
			}
			if a.New || a.Variant == nil || *a.Variant != assignAcked[units[i]] {
				t.Errorf("unit %s after restart: got %+v, want variant %s (not new)", units[i], a, assignAcked[units[i]])
			}
		}
	}
	var ackedAssign []string
	for u := range assignAcked {
		ackedAssign = append(ackedAssign, u)
	}
	for lo := 0; lo < len(ackedAssign); lo += 1000 {
		check(ackedAssign[lo:min(lo+1000, len(ackedAssign))], true)
	}
	check(assignInFlight, false)
	srv.must(t, "GET", ref+"/results", nil, &res)
	if want := int64(killUnits + len(assignSent)); res.TotalUnits != want {
		t.Errorf("final units = %d, want exactly %d (the pool and every new unit sent)", res.TotalUnits, want)
	}
}
