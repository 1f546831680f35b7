package storetest

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

// testCounterShards writes an experiment's counters in many transactions,
// which a store with sharded counter rows (sqlstore.Dialect.CounterShards)
// spreads over several rows per variant, and checks that every reader sums
// them: the counters, the hourly buckets and the decision loop's watermark
// are exact. Where the store shows its database, it also checks that the
// rows really were spread, so that the sums were needed.
func testCounterShards(t *testing.T, s store.Store) {
	ctx := t.Context()
	ws := newWorkspace(t, s, "shards")
	e := newExperiment(ws, "exp", store.MetricContinuous)
	e.Metrics = []store.MetricDef{{ID: id.New(id.Metric), Key: "revenue", Type: store.MetricContinuous, Role: "secondary", Position: 1, Direction: "increase"}}
	must(t, s.CreateExperiment(ctx, e), "create experiment")
	h0 := t0.Truncate(time.Hour)
	const txs = 40
	for i := range txs {
		// Two units per transaction, one per variant, all in hour h0.
		assign(t, s, e, 0, h0.Add(time.Duration(i)*time.Second), fmt.Sprintf("c%02d", i))
		assign(t, s, e, 1, h0.Add(time.Duration(i)*time.Second), fmt.Sprintf("t%02d", i))
	}
	for i := range txs {
		_, err := recordEvents(ctx, s, ws.ID, e.ID, store.MetricContinuous, []store.Event{
			{UnitID: fmt.Sprintf("c%02d", i), Value: 1, At: h0.Add(30 * time.Minute)},
			{UnitID: fmt.Sprintf("t%02d", i), Value: 2, At: h0.Add(30 * time.Minute)},
			{UnitID: fmt.Sprintf("t%02d", i), Value: 5, At: h0.Add(30 * time.Minute), Metric: "revenue"},
		})
		must(t, err, "record")
	}

	got := mustCounters(t, s, e)
	if len(got) != 2 {
		t.Fatalf("counters: %d rows, want one per variant: %+v", len(got), got)
	}
	for i, sum := range []float64{txs * 1, txs * 2} {
		c := got[i]
		if c.VariantID != e.Variants[i].ID || c.Units != txs || c.Conversions != txs || c.Sum != sum {
			t.Errorf("variant %d: %+v, want %d units, %d conversions, sum %v", i, c, txs, txs, sum)
		}
		// Each transaction assigned one unit under even weights: each
		// variant expected half a unit per transaction.
		if c.Expected != txs {
			t.Errorf("variant %d: expected %v, want %v", i, c.Expected, float64(txs))
		}
	}
	mc, err := s.MetricCounters(ctx, ws.ID, e.ID)
	must(t, err, "metric counters")
	if rev := mc["revenue"]; len(rev) != 2 || rev[0].Conversions != 0 || rev[1].Conversions != txs || rev[1].Sum != 5*txs {
		t.Errorf("metric counters: %+v, want the treatment's %d conversions summing %d", rev, txs, 5*txs)
	}
	buckets, err := s.Buckets(ctx, ws.ID, e.ID, h0, h0.Add(time.Hour))
	must(t, err, "buckets")
	if len(buckets) != 2 || buckets[0].Units != txs || buckets[1].Units != txs || buckets[0].Sum != txs || buckets[1].Sum != 2*txs {
		t.Errorf("buckets of h0: %+v, want one per variant with %d units each", buckets, txs)
	}

	// The watermark moves with every new unit, whichever shard took it.
	before := due(t, s, h0)[e.ID].Version
	assign(t, s, e, 0, h0, "late")
	if after := due(t, s, h0)[e.ID].Version; after <= before {
		t.Errorf("version %d after a new assignment, was %d", after, before)
	}

	db, ok := s.(interface {
		WriteDB() *sql.DB
		CounterShards() int
	})
	if !ok || db.CounterShards() < 2 {
		t.Logf("counters not sharded here (store shows its shards: %v)", ok)
		return
	}
	// Assignments spread their rows; events, which hold the experiment's
	// row lock, write one shard (metric counters only come from events).
	for _, table := range []string{"counters", "buckets"} {
		var shards int
		must(t, db.WriteDB().QueryRowContext(ctx,
			`SELECT COUNT(DISTINCT shard) FROM `+table+` WHERE experiment_id = $1`, e.ID).Scan(&shards), "count shards")
		if shards < 2 {
			t.Errorf("%s: %d assignment transactions wrote %d shard(s) of %d", table, 2*txs, shards, db.CounterShards())
		}
	}
	// Only events write metric counters, to shard 0, so their reader's sum
	// is needed only when rows are in other shards: move them to shard 1
	// (as a migration or a future writer might) and add one more event.
	_, err = db.WriteDB().ExecContext(ctx, `UPDATE metric_counters SET shard = 1 WHERE metric_id = $1`, e.Metrics[0].ID)
	must(t, err, "move metric counters to shard 1")
	_, err = recordEvents(ctx, s, ws.ID, e.ID, store.MetricContinuous, []store.Event{
		{UnitID: "t00", Value: 5, At: h0.Add(30 * time.Minute), Metric: "revenue"},
	})
	must(t, err, "record")
	mc, err = s.MetricCounters(ctx, ws.ID, e.ID)
	must(t, err, "metric counters")
	if rev := mc["revenue"]; len(rev) != 2 || rev[1].Conversions != txs || rev[1].Sum != 5*(txs+1) {
		t.Errorf("metric counters over two shards: %+v, want the treatment's %d conversions summing %d", rev, txs, 5*(txs+1))
	}
}
