package e2e

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/store/dbtest"
)

const (
	replicaCount   = 3
	replicaUnits   = 450
	replicaWorkers = 16
	replicaSeed    = 99
)

// TestReplicas runs three samplit processes over one PostgreSQL database
// and drives the same units through all of them at once: each unit is
// assigned by the three replicas concurrently, and each conversion is sent
// to the three concurrently (twice with one idempotency key, once without
// any). Afterwards every unit has one variant, the same from every replica,
// exactly one of the three assignments made it and exactly one of the three
// conversions counted; every replica reports the counts that were
// acknowledged, variant by variant; and with a clearly better variant the
// winner is declared once (one "winner found" among the three logs, however
// many replicas asked for results at once) and is the same everywhere.
func TestReplicas(t *testing.T) {
	dsn := dbtest.PostgresSchema(t, "e2e_")
	binary(t) // build before the replicas start together

	// The replicas start together: migrations and the bootstrap key race.
	reps := make([]*server, replicaCount)
	errs := make([]error, replicaCount)
	var wg sync.WaitGroup
	for i := range reps {
		wg.Go(func() { reps[i], errs[i] = launch(t, fmt.Sprintf("replica-%d", i+1), dsn) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	var exp experiment
	reps[0].must(t, "POST", "/v1/experiments", map[string]any{
		"key": "replicas", "metric": "binary", "strategy": "adaptive",
		"variants": []map[string]any{{"key": "control", "control": true}, {"key": "a"}, {"key": "b"}},
		// A floor keeps every variant above min_samples while Thompson
		// sampling moves traffic to b.
		"settings": map[string]any{"seed": 5, "min_samples": 30, "weight_floor": 0.1, "loss_threshold": 0.01},
		"start":    true,
	}, &exp)
	const ref = "/v1/experiments/replicas"

	var (
		mu          sync.Mutex
		variantOf   = map[string]string{} // unit → variant every replica answered
		units       = map[string]int64{}  // variant → units assigned
		conversions = map[string]int64{}  // variant → conversions acknowledged
		bad         atomic.Int64
	)
	fail := func(format string, args ...any) {
		if bad.Add(1) <= 10 {
			t.Errorf(format, args...)
		}
	}
	loadStart := time.Now()
	work := make(chan int)
	for range replicaWorkers {
		wg.Go(func() {
			for u := range work {
				unit := fmt.Sprintf("r-%04d", u)
				// Assign through every replica at once.
				got := make([]assignment, replicaCount)
				errs := make([]error, replicaCount)
				var inner sync.WaitGroup
				for i, r := range reps {
					inner.Go(func() {
						_, errs[i] = r.call(t.Context(), "POST", ref+"/assign", map[string]any{"unit_id": unit}, &got[i])
					})
				}
				inner.Wait()
				news := 0
				for i := range reps {
					if errs[i] != nil {
						fail("assign %s on replica %d: %v", unit, i+1, errs[i])
						return
					}
					if got[i].Variant == nil || *got[i].Variant != *got[0].Variant {
						fail("unit %s: replicas answered %v", unit, got)
						return
					}
					if got[i].New {
						news++
					}
				}
				if news != 1 {
					fail("unit %s: %d replicas said new, want exactly 1", unit, news)
				}
				v := *got[0].Variant

				// b always converts, the others one time in ten (seeded by
				// unit), so that b is clearly best.
				converts := v == "b" || rand.New(rand.NewPCG(replicaSeed, uint64(u))).IntN(10) == 0
				accepted := 0
				if converts {
					outs := make([]eventsOutcome, replicaCount)
					for i, r := range reps {
						ev := event{UnitID: unit}
						if i < 2 {
							ev.IdempotencyKey = "conv-" + unit
						}
						inner.Go(func() {
							_, errs[i] = r.call(t.Context(), "POST", ref+"/events", ev, &outs[i])
						})
					}
					inner.Wait()
					for i, o := range outs {
						if errs[i] != nil {
							fail("event of %s on replica %d: %v", unit, i+1, errs[i])
							return
						}
						if o.Accepted+o.Duplicates != 1 || len(o.Rejected) != 0 {
							fail("event of %s on replica %d: %+v, want accepted or duplicate", unit, i+1, o)
						}
						accepted += o.Accepted
					}
					if accepted != 1 {
						fail("unit %s: %d of 3 concurrent conversions counted, want exactly 1", unit, accepted)
					}
				}
				mu.Lock()
				variantOf[unit] = v
				units[v]++
				conversions[v] += int64(accepted)
				mu.Unlock()
			}
		})
	}
	for u := range replicaUnits {
		work <- u
	}
	close(work)
	wg.Wait()
	if bad.Load() > 0 {
		t.FailNow()
	}
	t.Logf("load done in %v: units by variant %v, conversions acknowledged %v", time.Since(loadStart), units, conversions)

	// Every replica knows every unit's variant.
	all := make([]string, 0, len(variantOf))
	for u := range variantOf {
		all = append(all, u)
	}
	for i, r := range reps {
		var got assignments
		r.must(t, "POST", ref+"/assign", map[string]any{"unit_ids": all}, &got)
		for j, a := range got.Assignments {
			if a.New || a.Variant == nil || *a.Variant != variantOf[all[j]] {
				t.Errorf("replica %d, unit %s: %+v, want %s (not new)", i+1, all[j], a, variantOf[all[j]])
				break
			}
		}
	}

	// Results from all replicas at once: the same counts, and one winner
	// recorded once.
	res := make([]results, replicaCount)
	for i, r := range reps {
		wg.Go(func() { _, errs[i] = r.call(t.Context(), "GET", ref+"/results", nil, &res[i]) })
	}
	wg.Wait()
	for i := range reps {
		if errs[i] != nil {
			t.Fatalf("results on replica %d: %v", i+1, errs[i])
		}
		r := res[i]
		if r.TotalUnits != replicaUnits {
			t.Errorf("replica %d: total_units = %d, want %d", i+1, r.TotalUnits, replicaUnits)
		}
		for _, v := range r.Variants {
			if v.Units != units[v.Key] || v.Conversions != conversions[v.Key] {
				t.Errorf("replica %d, variant %s: units %d conversions %d, want %d and %d",
					i+1, v.Key, v.Units, v.Conversions, units[v.Key], conversions[v.Key])
			}
		}
		if r.Winner == nil || *r.Winner != "b" || r.Decision.State != "winner_found" {
			t.Errorf("replica %d: winner %v, decision %+v; want b, winner_found", i+1, r.Winner, r.Decision)
		}
	}
	for i, r := range reps {
		var e experiment
		r.must(t, "GET", ref, nil, &e)
		if e.Winner == nil || *e.Winner != "b" {
			t.Errorf("replica %d: experiment winner %v, want b", i+1, e.Winner)
		}
		// Asking again changes nothing.
		var again results
		r.must(t, "GET", ref+"/results", nil, &again)
		if again.Winner == nil || *again.Winner != "b" {
			t.Errorf("replica %d: winner on a second look %v, want b", i+1, again.Winner)
		}
	}
	// The log line is written before the response, but read by another
	// goroutine of this process: give the readers a moment.
	declared := 0
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		declared = 0
		for _, r := range reps {
			declared += r.winnerLines()
		}
		if declared > 0 {
			time.Sleep(200 * time.Millisecond) // a second one would have shown by now
			declared = 0
			for _, r := range reps {
				declared += r.winnerLines()
			}
			break
		}
	}
	if declared != 1 {
		t.Errorf("%d replicas logged \"winner found\", want exactly 1 (the decision is recorded once)", declared)
	}
}
