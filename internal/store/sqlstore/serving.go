package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/store"
)

// ReasonNotAssigned is the reason of an event rejected because its unit has
// no assignment in the experiment.
const ReasonNotAssigned = "unit was never assigned in this experiment"

// ReasonConverted is the reason of a binary event whose unit had converted.
const ReasonConverted = "unit already converted"

// ReasonLate is the reason of an event that came after its unit's
// conversion window.
const ReasonLate = "after the unit's conversion window: stored as late, not counted"

// ReasonDuplicateKey is the reason of an event whose idempotency key was seen.
const ReasonDuplicateKey = "idempotency key already used"

// delta is an increment of one variant's counters, for one hour or overall.
// It is the engine's Arm, whose AddUnit/AddExpected/AddOutcome are the one
// definition of how a unit and an outcome change the sufficient statistics
// (the simulator uses the same functions), so that stored counters and
// simulated ones can never disagree. The engine is a pure leaf package.
type delta = engine.Arm

// bucketKey names one variant's hour.
type bucketKey struct {
	variant string
	hour    int64
}

// increments collects the counter and bucket deltas of one transaction, so
// that each counter row is written once per transaction however many units
// or events touched it.
type increments struct {
	counters map[string]*delta
	buckets  map[bucketKey]*delta
}

func newIncrements() *increments {
	return &increments{counters: map[string]*delta{}, buckets: map[bucketKey]*delta{}}
}

func (in *increments) add(variant string, hour int64, d delta) {
	c := in.counters[variant]
	if c == nil {
		c = &delta{}
		in.counters[variant] = c
	}
	c.Merge(d)
	k := bucketKey{variant, hour}
	b := in.buckets[k]
	if b == nil {
		b = &delta{}
		in.buckets[k] = b
	}
	b.Merge(d)
}

// outcomeTables names where one metric's outcomes are kept: the primary
// metric's in assignments, event_keys and counters (rows keyed by the
// experiment id, with hourly buckets), any other metric's in metric_units,
// metric_event_keys and metric_counters (keyed by the metric's id; no
// buckets). The tables of both have the same columns, so that one code path
// records every metric's events.
type outcomeTables struct {
	parent    string // the experiment's or the metric's id
	parentCol string // experiment_id or metric_id
	units     string
	keys      string
	counters  *upsertSQL // the counters table's upsert, keyed by (parentCol, variant_id, shard)
	buckets   bool
}

func primaryTables(experimentID string) outcomeTables {
	return outcomeTables{parent: experimentID, parentCol: "experiment_id", units: "assignments", keys: "event_keys", counters: &countersUpsert, buckets: true}
}

func metricTables(metricID string) outcomeTables {
	return outcomeTables{parent: metricID, parentCol: "metric_id", units: "metric_units", keys: "metric_event_keys", counters: &metricCountersUpsert}
}

// counterStats are the additive columns of counters and metric_counters.
var counterStats = []string{"units", "conversions", "value_sum", "value_sum_sq", "expected", "expected_sq", "inv_expected",
	"inv_p", "inv_p2", "y_inv_p", "y_inv_p2", "y2_inv_p2", "positive", "negative", "log_sum", "log_sum_sq"}

// bucketStats are the additive columns of buckets.
var bucketStats = []string{"units", "conversions", "value_sum", "value_sum_sq", "expected"}

// counterRow and bucketRow are the VALUES rows of countersUpsert (and
// metricCountersUpsert) and bucketsUpsert: the parent's id, then the
// variant, the hour for buckets, the shard and the stats.
const (
	counterRow = "($1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	bucketRow  = "($1, ?, ?, ?, ?, ?, ?, ?, ?)"
)

// upsertSQL is the "col = col + excluded.col" upsert of a counters table
// (counters, metric_counters, buckets, funnel_counters) around its VALUES
// rows. Each table's is built once (counterUpsert): every group commit
// writes one or two, and rebuilding the SET clause of 16 columns was about
// 40 allocations a group on the writer everything waits for.
type upsertSQL struct{ table, head, tail string }

// counterUpsert is table's upsert: rows keyed by key, adding stats.
func counterUpsert(table string, key, stats []string) upsertSQL {
	keys := strings.Join(key, ", ")
	return upsertSQL{
		table: table,
		head: `INSERT INTO ` + table + ` (` + keys + `, ` + strings.Join(stats, ", ") + `)
		 VALUES `,
		tail: `
		 ON CONFLICT (` + keys + `) DO UPDATE SET ` + addExcluded(table, stats),
	}
}

// with is the statement for the VALUES rows values.
func (u upsertSQL) with(values string) string { return u.head + values + u.tail }

var (
	countersUpsert       = counterUpsert("counters", []string{"experiment_id", "variant_id", "shard"}, counterStats)
	metricCountersUpsert = counterUpsert("metric_counters", []string{"metric_id", "variant_id", "shard"}, counterStats)
	bucketsUpsert        = counterUpsert("buckets", []string{"experiment_id", "variant_id", "hour", "shard"}, bucketStats)
)

// addExcluded is the SET clause of an upsert that adds excluded's cols to
// the table's own: "c = table.c + excluded.c, …".
func addExcluded(table string, cols []string) string {
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = " + table + "." + c + " + excluded." + c
	}
	return strings.Join(set, ",\n")
}

// counterShard picks the shard a transaction adds its increments to (see
// Dialect.CounterShards).
func (s *Store) counterShard() int { return rand.IntN(s.CounterShards()) }

// queueIncrements queues the increments of one metric's counters (and, for
// the primary metric, its hourly buckets) as "col = col + excluded.col"
// upserts, in variant then hour order so that concurrent transactions lock
// counter rows in the same order. wrap turns a statement's error into the
// caller's.
//
// shard is the counter rows' shard (Dialect.CounterShards): one for all
// of the transaction's rows of this object, so that its locks are taken in
// variant (and hour) order like everyone's. A transaction that holds the
// experiment's row lock passes 0, since spreading would only multiply the
// rows: transactions like it queue on that lock anyway.
func (s *Store) queueIncrements(p *pipe, t outcomeTables, in *increments, shard int, wrap func(error) error) {
	if len(in.counters) == 0 {
		return
	}
	parent := t.parent
	rb := newRowsBuilder(parent)
	rb.grow(len(in.counters), counterRow)
	for _, v := range sortedKeys(in.counters) {
		d := in.counters[v]
		rb.add(counterRow, v, shard, d.Units, d.Conversions, d.Sum, d.SumSquares, d.Expected,
			d.ExpectedSquares, d.InvExpected, d.InvP, d.InvP2, d.YInvP, d.YInvP2, d.Y2InvP2, d.Positive, d.Negative, d.LogSum, d.LogSumSquares)
	}
	p.queue(PipeStmt{Query: t.counters.with(rb.String()), Args: rb.args,
		Wrap: func(err error) error { return wrap(fmt.Errorf("update %s of %s: %w", t.counters.table, parent, err)) }})
	if !t.buckets {
		return
	}
	keys := make([]bucketKey, 0, len(in.buckets))
	for k := range in.buckets {
		keys = append(keys, k)
	}
	sortBucketKeys(keys)
	_ = chunks(keys, s.maxRows, func(keys []bucketKey) error {
		rb := newRowsBuilder(parent)
		rb.grow(len(keys), bucketRow)
		for _, k := range keys {
			d := in.buckets[k]
			rb.add(bucketRow, k.variant, k.hour, shard, d.Units, d.Conversions, d.Sum, d.SumSquares, d.Expected)
		}
		p.queue(PipeStmt{Query: bucketsUpsert.with(rb.String()), Args: rb.args,
			Wrap: func(err error) error { return wrap(fmt.Errorf("update buckets of %s: %w", parent, err)) }})
		return nil
	})
}

func sortBucketKeys(keys []bucketKey) {
	slices.SortFunc(keys, func(a, b bucketKey) int {
		switch {
		case a.variant < b.variant:
			return -1
		case a.variant > b.variant:
			return 1
		case a.hour < b.hour:
			return -1
		case a.hour > b.hour:
			return 1
		}
		return 0
	})
}

// Assign stores the batches' new assignments in one transaction and returns,
// for every item, the stored assignment and whether this call stored it. A
// unit listed twice in one batch is stored once: the first item is new, the
// second reports the same assignment as not new.
//
// Batches are applied in experiment order, so that two transactions holding
// batches of the same experiments lock their rows in the same order.
//
// A group of new units, the common case of a busy serving path, is first
// tried as such (assignNew): nothing in the transaction then waits for an
// answer, so on PostgreSQL its statements and COMMIT go out in one round
// trip instead of two. A unit with an assignment already fails that try,
// which rolls it back whole; the group is then stored by assignBatch, which
// tells new units from returning ones. Experiments whose recent groups had
// returning units skip the try (newUnitsLikely).
func (s *Store) Assign(ctx context.Context, batches []store.AssignBatch) ([][]store.Assigned, error) {
	experiment := func(b store.AssignBatch) string { return b.ExperimentID }
	if s.newUnitsLikely(batches) {
		res, err := eachInPipeTx(ctx, s, batches, experiment, s.assignNew)
		if err == nil {
			for i, b := range batches {
				s.noteUnits(b.ExperimentID, len(res[i]), 0)
			}
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		// Rolled back whole: a unit had an assignment already, or the
		// experiment is not in the workspace, or a variant not in the
		// experiment; assignBatch stores what is new and reports the rest.
	}
	return eachInPipeTx(ctx, s, batches, experiment, s.assignBatch)
}

// newUnitsLikely reports whether Assign tries the batches as all new
// first (assignNew): none carries breakdown segments or a conversion
// window, whose reads and locks come first (assignBatch), and each is
// likely enough to hold no returning unit (returningShare.allNewLikely).
func (s *Store) newUnitsLikely(batches []store.AssignBatch) bool {
	for _, b := range batches {
		if b.Window > 0 {
			return false
		}
		for _, it := range b.Items {
			if len(it.Segments) > 0 {
				return false
			}
		}
		if r, ok := s.returning.Load(b.ExperimentID); ok && !r.(*returningShare).allNewLikely(len(b.Items)) {
			return false
		}
	}
	return true
}

// returningShare is an experiment's recent share of units, in its
// assignment groups, that had an assignment already: an exponentially
// weighted average over groups (each weighs 1/16, so a burst of returning
// units is forgotten after some tens of groups of new ones).
type returningShare struct {
	mu    sync.Mutex
	share float64
}

// allNewLikely reports whether a group of n units is likely enough to be
// all new that trying it as new first (one round trip, or the try, its
// ROLLBACK and the general path's two or three) costs fewer round trips
// than the general path: at P(all new) = q the try costs q + 5(1−q) on
// average against 2q + 3(1−q), less when q > 2/3. It asks for 0.9, since
// each failed try also logs a unique violation on the database's side.
func (r *returningShare) allNewLikely(n int) bool {
	r.mu.Lock()
	share := r.share
	r.mu.Unlock()
	return float64(n)*math.Log1p(-share) >= math.Log(0.9)
}

// noteUnits records a group of units of the experiment, returning of them
// with an assignment already.
func (s *Store) noteUnits(experimentID string, units, returning int) {
	if units == 0 {
		return
	}
	v, ok := s.returning.Load(experimentID)
	if !ok {
		if returning == 0 {
			return // an experiment with no returning units has no entry
		}
		v, _ = s.returning.LoadOrStore(experimentID, &returningShare{})
	}
	r := v.(*returningShare)
	r.mu.Lock()
	r.share += (float64(returning)/float64(units) - r.share) / 16
	r.mu.Unlock()
}

// eachInTx applies one to every batch in a single transaction, in the order
// of the batches' parent ids (experiment, funnel or campaign; stable, so
// batches of one parent keep theirs), and returns the results in the order
// of batches. The one order of locking is what keeps two group commits over
// the same parents from deadlocking.
func eachInTx[B, R any](ctx context.Context, s *Store, batches []B, experiment func(B) string, one func(context.Context, *sql.Tx, B) (R, error)) ([]R, error) {
	order := lockOrder(batches, experiment)
	var out []R
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = make([]R, len(batches)) // anew on every retry of the transaction
		for _, i := range order {
			res, err := one(ctx, tx, batches[i])
			if err != nil {
				return err
			}
			out[i] = res
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lockOrder is the order eachInTx and eachInPipeTx apply batches in: by
// parent id, stable (see eachInTx).
func lockOrder[B any](batches []B, object func(B) string) []int {
	order := make([]int, len(batches))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(object(batches[a]), object(batches[b])) })
	return order
}

// eachInPipeTx is eachInTx for the serving path's pipelined transactions
// (see pipe): one's statements left queued when it returns go out with the
// next batch's first ones, or with the COMMIT.
func eachInPipeTx[B, R any](ctx context.Context, s *Store, batches []B, experiment func(B) string, one func(*pipe, B) (R, error)) ([]R, error) {
	order := lockOrder(batches, experiment)
	var out []R
	err := s.inPipeTx(ctx, func(p *pipe) error {
		out = make([]R, len(batches)) // anew on every retry of the transaction
		for _, i := range order {
			res, err := one(p, batches[i])
			if err != nil {
				return err
			}
			out[i] = res
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// firstItems returns the first item of each unit of items and the units,
// in unit order so that concurrent batches insert (and lock) overlapping
// units in the same order.
func firstItems(items []store.Assignment) (map[string]store.Assignment, []string) {
	first := make(map[string]store.Assignment, len(items))
	for _, it := range items {
		if _, ok := first[it.UnitID]; !ok {
			first[it.UnitID] = it
		}
	}
	return first, sortedKeys(first)
}

// insertAssignments is the statement that stores new assignments, without
// its VALUES rows (assignmentRow) and what follows them.
const insertAssignments = `INSERT INTO assignments (experiment_id, unit_id, variant_id, propensity, epoch, assigned_at, attributes, segments) VALUES `

// assignmentRow adds a's row of insertAssignments to rb, whose first
// argument is the experiment id. With checkIn set (a workspace id) the row
// reads the experiment id from experiments in that workspace instead: NULL,
// which the column refuses, if it is not there (assignNew).
func assignmentRow(rb *rowsBuilder, a store.Assignment, segments map[string]string, checkIn string) error {
	var attrs sql.NullString
	if len(a.Attributes) > 0 {
		attrs = sql.NullString{String: string(a.Attributes), Valid: true}
	}
	segs, err := segmentsText(segments)
	if err != nil {
		return err
	}
	if checkIn != "" {
		rb.add("((SELECT id FROM experiments WHERE id = $1 AND workspace_id = ?), ?, ?, ?, ?, ?, ?, ?)",
			checkIn, a.UnitID, a.VariantID, a.Propensity, a.Epoch, micros(a.AssignedAt), attrs, segs)
	} else {
		rb.add(assignmentValues, a.UnitID, a.VariantID, a.Propensity, a.Epoch, micros(a.AssignedAt), attrs, segs)
	}
	return nil
}

// assignmentValues is a row of insertAssignments after the first:
// the experiment's id ($1) and seven arguments.
const assignmentValues = "($1, ?, ?, ?, ?, ?, ?, ?)"

// wrapAssignmentInsert adds context to the error of an insert of b's
// assignments.
func (s *Store) wrapAssignmentInsert(b store.AssignBatch) func(error) error {
	return func(err error) error {
		if s.dialect.IsForeignKeyViolation(err) {
			return apperr.Wrap(apperr.Invalid, err, "assignment names a variant that is not in experiment %s", b.ExperimentID)
		}
		return fmt.Errorf("insert assignments of %s: %w", b.ExperimentID, err)
	}
}

// assignNew is assignBatch for a batch whose units Assign expects to be
// all new: it inserts them without ON CONFLICT, so that a unit with an
// assignment fails the insert, and queues the counters of every unit behind
// it without waiting for its answer. Nothing is flushed: on PostgreSQL the
// group's statements and its COMMIT go out in one round trip, and a failed
// statement makes the server skip the rest, the COMMIT included. The
// experiment is not checked by a statement of its own, whose answer would
// come too late to stop the COMMIT: the first row of each insert reads its
// experiment id from experiments in the workspace, NULL (a NOT NULL
// violation, which rolls the transaction back) if it is not there.
func (s *Store) assignNew(p *pipe, b store.AssignBatch) ([]store.Assigned, error) {
	first, units := firstItems(b.Items)
	err := chunks(units, s.maxRows, func(units []string) error {
		rb := newRowsBuilder(b.ExperimentID)
		rb.grow(len(units), assignmentValues)
		checkIn := b.WorkspaceID // the first row's
		for _, u := range units {
			if err := assignmentRow(rb, first[u], nil, checkIn); err != nil {
				return err
			}
			checkIn = ""
		}
		p.queue(PipeStmt{Query: insertAssignments + rb.String(), Args: rb.args, Wrap: s.wrapAssignmentInsert(b)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	inserted := make(map[string]bool, len(units))
	for _, u := range units {
		inserted[u] = true
	}
	s.queueNewUnits(p, b, units, first, inserted, nil, s.counterShard())
	return assignedOf(b, first, inserted)
}

// assignBatch stores b's new assignments and reads the stored ones of its
// returning units: the insert skips units that have one (ON CONFLICT DO
// NOTHING) and returns those it stored, and only those are counted. It
// notes the share of returning units (Store.returning).
func (s *Store) assignBatch(p *pipe, b store.AssignBatch) ([]store.Assigned, error) {
	first, units := firstItems(b.Items)
	segmented := false
	for _, u := range units {
		segmented = segmented || len(first[u].Segments) > 0
	}

	// A batch with breakdown segments or a conversion window takes the
	// experiment's row lock first (queueBump), as RecordEvents does: the
	// segment caps are exact only if one transaction at a time admits
	// values, and the maturity rows are locked in the one order experiment,
	// then its rows. Any other batch only checks that the experiment is in
	// the workspace, so that the transactions of several replicas assigning
	// new units overlap instead of queueing on that row until each other's
	// commit (with sharded counters they touch different rows too). It
	// waits for nothing RecordEvents holds: it inserts units no event can
	// have reached yet and takes counter rows last. The decision loop's
	// watermark counts its new units (dueQuery).
	var found *bool
	shard := 0
	if segmented || b.Window > 0 {
		found = queueBump(p, b.WorkspaceID, b.ExperimentID)
	} else {
		found = queueExists(p, b.WorkspaceID, b.ExperimentID)
		shard = s.counterShard()
	}

	// The breakdown segments each unit would be counted in, should it be
	// new (a returning unit's values may thus take a place under the caps
	// without being counted: rare, and cheaper than a read first). Only a
	// batch that carries segments pays for it: the reads of what the
	// experiment counts go out with the bump (after it, so under the
	// experiment's row lock) in one extra round trip, and the segments
	// admitted are then written with the assignments.
	firsts := make([]store.Assignment, 0, len(units))
	for _, u := range units {
		firsts = append(firsts, first[u])
	}
	var segments map[string]map[string]string
	if adm := s.queueSegmentReads(p, b.ExperimentID, firsts); adm != nil {
		if err := p.flush(); err != nil {
			return nil, err
		}
		if !*found {
			return nil, errExperimentNotFound(b.ExperimentID)
		}
		segments = s.admitSegments(p, adm)
	}

	inserted := make(map[string]bool, len(units))
	err := chunks(units, s.maxRows, func(units []string) error {
		rb := newRowsBuilder(b.ExperimentID)
		rb.grow(len(units), assignmentValues)
		for _, u := range units {
			if err := assignmentRow(rb, first[u], segments[u], ""); err != nil {
				return err
			}
		}
		// RETURNING lists only the rows this statement inserted: a unit
		// that already had an assignment hits ON CONFLICT and is absent.
		// Without segments it goes out with the experiment's bump: if the
		// experiment is not in the workspace the transaction is rolled
		// back below.
		p.queue(PipeStmt{
			Query: insertAssignments + rb.String() + `
			 ON CONFLICT (experiment_id, unit_id) DO NOTHING
			 RETURNING unit_id`,
			Args: rb.args,
			Rows: collectSet(inserted),
			Wrap: s.wrapAssignmentInsert(b),
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := p.flush(); err != nil {
		return nil, err
	}
	if !*found {
		return nil, errExperimentNotFound(b.ExperimentID)
	}

	stored := make(map[string]store.Assignment, len(units))
	var existing []string
	for _, u := range units {
		if inserted[u] {
			stored[u] = first[u]
		} else {
			existing = append(existing, u)
		}
	}
	s.noteUnits(b.ExperimentID, len(units), len(existing))
	if len(existing) > 0 {
		queueLoadAssignments(p, s.maxRows, b.ExperimentID, existing, stored)
		if err := p.flush(); err != nil {
			return nil, err
		}
	}
	s.queueNewUnits(p, b, units, first, inserted, segments, shard)
	return assignedOf(b, stored, inserted)
}

// queueNewUnits queues the counters, breakdown counters and maturity rows
// of the units of b that are inserted (units in order, each's first item in
// first, its admitted breakdown segments in segments), to go out with the
// COMMIT or the next batch's first statements; the counters to shard.
func (s *Store) queueNewUnits(p *pipe, b store.AssignBatch, units []string, first map[string]store.Assignment, inserted map[string]bool, segments map[string]map[string]string, shard int) {
	// Units per variant and hour for the new assignments; Expected gets the
	// probability every variant had, per new unit, in the hour it came.
	in := newIncrements()
	segIn := segmentIncrements{}
	newPerHour := map[int64]int64{}
	for _, u := range units {
		if !inserted[u] {
			continue
		}
		a := first[u]
		segIn.add(segments[u], a.VariantID, segmentDelta{units: 1})
		h := hourOf(a.AssignedAt)
		newPerHour[h]++
		var d delta
		d.AddUnit(a.Propensity)
		in.add(a.VariantID, h, d)
	}
	for h, n := range newPerHour {
		for v, w := range b.Weights {
			var d delta
			d.AddExpected(w)
			d.Expected *= float64(n)
			d.ExpectedSquares *= float64(n)
			d.InvExpected *= float64(n)
			in.add(v, h, d)
		}
	}
	s.queueIncrements(p, primaryTables(b.ExperimentID), in, shard, func(err error) error {
		if s.dialect.IsForeignKeyViolation(err) {
			// The weights, or on PostgreSQL an inserted assignment, whose
			// variant these counters check in its stead (migration 00018).
			return apperr.Wrap(apperr.Invalid, err, "an assignment or the weights name a variant that is not in experiment %s", b.ExperimentID)
		}
		return err
	})
	s.queueSegments(p, b.ExperimentID, segIn)
	if b.Window > 0 {
		m := maturity{}
		for _, u := range units {
			if inserted[u] {
				m.unit(first[u].VariantID, first[u].AssignedAt)
			}
		}
		s.queueMaturity(p, b.ExperimentID, m)
	}
}

// assignedOf returns the results of b's items: each unit's stored
// assignment, new for the first mention of a unit inserted.
func assignedOf(b store.AssignBatch, stored map[string]store.Assignment, inserted map[string]bool) ([]store.Assigned, error) {
	res := make([]store.Assigned, len(b.Items))
	seen := make(map[string]bool, len(stored))
	for i, it := range b.Items {
		a, ok := stored[it.UnitID]
		if !ok {
			return nil, fmt.Errorf("assign %s: unit %q neither inserted nor found", b.ExperimentID, it.UnitID)
		}
		res[i] = store.Assigned{Assignment: a, New: inserted[it.UnitID] && !seen[it.UnitID]}
		seen[it.UnitID] = true
	}
	return res, nil
}

// queueBump queues the addition of one to the experiment's data version,
// the watermark by which the decision loop knows it has new data
// (store.DecideLeases), which takes its row lock. After the flush, *found
// says whether the experiment is in the workspace (NotFound otherwise).
func queueBump(p *pipe, workspaceID, experimentID string) *bool {
	return queueFindExperiment(p, workspaceID, experimentID,
		`UPDATE experiments SET data_version = data_version + 1 WHERE id = $1 AND workspace_id = $2 RETURNING id`, "lock")
}

// queueExists queues the check that the experiment is in the workspace,
// without a lock; after the flush, *found says whether it is.
func queueExists(p *pipe, workspaceID, experimentID string) *bool {
	return queueFindExperiment(p, workspaceID, experimentID,
		`SELECT id FROM experiments WHERE id = $1 AND workspace_id = $2`, "find")
}

// queueFindExperiment queues query, which returns the experiment's id
// ($1) if it is in the workspace ($2), and returns where the flush says
// whether it did. verb names the step in an error.
func queueFindExperiment(p *pipe, workspaceID, experimentID, query, verb string) *bool {
	return queueFound(p, query, []any{experimentID, workspaceID}, verb+" experiment "+experimentID)
}

// collectSet returns a PipeStmt.Rows that adds the first column of every
// row to set: the keys an INSERT … RETURNING stored.
func collectSet(set map[string]bool) func(Rows) error {
	return func(rows Rows) error {
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				return err
			}
			set[k] = true
		}
		return rows.Err()
	}
}

// queueFound queues query and returns where the flush says whether it
// returned a row; step names it in an error.
func queueFound(p *pipe, query string, args []any, step string) *bool {
	found := new(bool)
	p.queue(PipeStmt{
		Query: query,
		Args:  args,
		Rows: func(rows Rows) error {
			for rows.Next() {
				*found = true
			}
			return rows.Err()
		},
		Wrap: func(err error) error { return fmt.Errorf("%s: %w", step, err) },
	})
	return found
}

// assignmentsQuery returns the statement that reads the stored assignments
// of units (at most maxRows of them) and its arguments. A join with a VALUES
// list rather than "unit_id IN (…)": with hundreds of parameters
// PostgreSQL's generic plan for the IN list (chosen after five runs of a
// cached statement) scans the whole table, while the join can probe the
// index for each row (see probeJoin, and Dialect.ProbeJoins, which makes
// the serving path's transactions do so).
func assignmentsQuery(experimentID string, units []string) (string, []any) {
	rb := newRowsBuilder(experimentID)
	for _, u := range units {
		rb.add("($1, ?)", u)
	}
	return `SELECT a.unit_id, a.variant_id, a.propensity, a.epoch, a.assigned_at
			 FROM (VALUES ` + rb.String() + `) AS v
			 JOIN assignments a ON ` + probeJoin("a", "experiment_id", "unit_id"), rb.args
}

// scanAssignments adds the rows of assignmentsQuery to out.
func scanAssignments(rows Rows, out map[string]store.Assignment) error {
	for rows.Next() {
		var a store.Assignment
		var at int64
		if err := rows.Scan(&a.UnitID, &a.VariantID, &a.Propensity, &a.Epoch, &at); err != nil {
			return err
		}
		a.AssignedAt = fromMicros(at)
		out[a.UnitID] = a
	}
	return rows.Err()
}

// queueLoadAssignments queues the reads that add the stored assignments of
// units to out, which is complete after the next flush.
func queueLoadAssignments(p *pipe, maxRows int, experimentID string, units []string, out map[string]store.Assignment) {
	p.probeJoins()
	_ = chunks(units, maxRows, func(units []string) error {
		query, args := assignmentsQuery(experimentID, units)
		p.queue(PipeStmt{Query: query, Args: args,
			Rows: func(rows Rows) error { return scanAssignments(rows, out) },
			Wrap: func(err error) error { return fmt.Errorf("load assignments of %s: %w", experimentID, err) }})
		return nil
	})
}

// loadAssignments returns the stored assignments of the units that have
// one, read outside any transaction.
func (s *Store) loadAssignments(ctx context.Context, q querier, experimentID string, units []string) (map[string]store.Assignment, error) {
	out := make(map[string]store.Assignment, len(units))
	err := chunks(units, s.maxRows, func(units []string) error {
		query, args := assignmentsQuery(experimentID, units)
		rows, err := q.QueryContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("load assignments of %s: %w", experimentID, err)
		}
		defer rows.Close()
		if err := scanAssignments(rows, out); err != nil {
			return fmt.Errorf("load assignments of %s: %w", experimentID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Assignments returns the stored assignments of the units that have one.
//
// Where the dialect sets ProbeJoins (PostgreSQL) the reads run in a
// read-only transaction that sets it, as the serving path's writes do: a
// call with hundreds of units would otherwise hash the whole table when the
// planner's statistics make that look cheaper. Through the pipeline the
// check of the experiment and the reads then go out in one round trip
// instead of two.
func (s *Store) Assignments(ctx context.Context, workspaceID, experimentID string, unitIDs []string) (map[string]store.Assignment, error) {
	units := dedupe(unitIDs)
	if s.dialect.ProbeJoins == "" {
		if err := requireExperiment(ctx, s.read, workspaceID, experimentID); err != nil {
			return nil, err
		}
		return s.loadAssignments(ctx, s.read, experimentID, units)
	}
	var out map[string]store.Assignment
	err := s.inReadPipeTx(ctx, func(p *pipe) error {
		out = make(map[string]store.Assignment, len(units))
		found := queueExists(p, workspaceID, experimentID)
		queueLoadAssignments(p, s.maxRows, experimentID, units, out)
		if err := p.flush(); err != nil {
			return err
		}
		if !*found {
			return errExperimentNotFound(experimentID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// sortedKeysOf returns the distinct keys of items, sorted (the lock order
// of a batch's writes).
func sortedKeysOf[T any](items []T, key func(T) string) []string {
	keys := make([]string, 0, len(items))
	for _, it := range items {
		keys = append(keys, key(it))
	}
	keys = dedupe(keys)
	slices.Sort(keys)
	return keys
}

// batchTime is the time a batch's write is counted at: its first item's,
// or now for an empty batch.
func batchTime[T any](items []T, at func(T) time.Time) time.Time {
	if len(items) == 0 {
		return time.Now()
	}
	return at(items[0])
}

func dedupe(xs []string) []string {
	seen := make(map[string]bool, len(xs))
	out := xs[:0:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// unitEvents is the accepted work of one batch for one unit.
type unitEvents struct {
	unit    string
	events  []int // indexes into the batch, in order
	total   float64
	firstAt time.Time
}

// RecordEvents stores the events in one transaction. Each unit's row is
// changed by one atomic UPDATE … RETURNING, whose returned values say what
// the unit contributes to the counters: that is what keeps counters exact
// when replicas record events for the same unit at the same moment.
//
// Batches are applied in experiment order, so that transactions lock the
// experiments' rows in one order and cannot deadlock each other.
func (s *Store) RecordEvents(ctx context.Context, batches []store.EventBatch) ([][]store.EventResult, error) {
	for _, b := range batches {
		if b.Metric != store.MetricBinary && b.Metric != store.MetricContinuous {
			return nil, apperr.New(apperr.Invalid, "unknown metric %q", b.Metric)
		}
	}
	return eachInPipeTx(ctx, s, batches, func(b store.EventBatch) string { return b.ExperimentID }, s.recordEvents)
}

func (s *Store) recordEvents(p *pipe, b store.EventBatch) ([]store.EventResult, error) {
	workspaceID, experimentID, events := b.WorkspaceID, b.ExperimentID, b.Events
	// Lock the experiment's row first (an UPDATE that counts the write in
	// its data version, the one row lock both databases take with the same
	// SQL), which also checks that it is in the workspace. Event
	// transactions of one experiment thus run one at a time. They would
	// queue on the counter rows at their end anyway; queueing at the start
	// keeps the UPDATE of assignments below, whose row locking order the
	// planner chooses, from deadlocking with another transaction touching
	// the same units in another order.
	found := queueBump(p, workspaceID, experimentID)
	res := make([]store.EventResult, len(events))

	// 1. Reject events of units without an assignment. Assignments are never
	// deleted, so this check cannot be invalidated before the commit. The
	// reads go out with the bump, and so does the read of the experiment's
	// other metrics when an event names one.
	//
	// The common batch (primary metric only, no idempotency keys, no
	// conversion window) needs nothing of the assignments before its
	// UPDATE, which probes the same rows and returns what the counters
	// need: its units are not read first, and the units the UPDATE did not
	// return are looked at afterwards (rejectUnassigned). The read was a
	// sixth of the CPU of a batch of 1000 events on SQLite.
	readFirst := b.Window > 0 || slices.ContainsFunc(events, func(e store.Event) bool {
		return e.IdempotencyKey != "" || (e.Metric != "" && e.Metric != store.PrimaryMetric)
	})
	assigned := map[string]store.Assignment{}
	var defs map[string]store.MetricDef
	if len(events) > 0 && readFirst {
		queueLoadAssignments(p, s.maxRows, experimentID, dedupe(unitsOf(events)), assigned)
		if slices.ContainsFunc(events, func(e store.Event) bool { return e.Metric != "" && e.Metric != store.PrimaryMetric }) {
			defs = map[string]store.MetricDef{}
			queueLoadMetrics(p, experimentID, defs)
		}
	}
	if err := p.flush(); err != nil {
		return nil, err
	}
	if !*found {
		return nil, errExperimentNotFound(experimentID)
	}
	if len(events) == 0 {
		return res, nil
	}
	if readFirst {
		for i, e := range events {
			if _, ok := assigned[e.UnitID]; !ok {
				res[i] = store.EventResult{Outcome: store.OutcomeRejected, Reason: ReasonNotAssigned}
			}
		}
	}

	// Each metric's events go through the same steps, in its own tables,
	// the primary metric's first, then the others in key order. Every step
	// is queued for all metrics before the flush that reads its results, so
	// that the round trips of a batch do not grow with its metrics.
	byMetric := map[string][]int{}
	for i, e := range events {
		if res[i].Outcome != "" {
			continue
		}
		m := e.Metric
		if m == store.PrimaryMetric {
			m = ""
		}
		byMetric[m] = append(byMetric[m], i)
	}
	var outs []*outcomeBatch
	for _, m := range sortedKeys(byMetric) {
		t, typ := primaryTables(experimentID), b.Metric
		if m != "" {
			d, ok := defs[m]
			if !ok {
				for _, i := range byMetric[m] {
					res[i] = store.EventResult{Outcome: store.OutcomeRejected, Field: "metric", Reason: fmt.Sprintf("unknown metric %q: the experiment has no such metric", m)}
				}
				continue
			}
			t, typ = metricTables(d.ID), d.Type
		}
		outs = append(outs, &outcomeBatch{t: t, metric: typ, idx: byMetric[m], window: b.Window, assigned: assigned})
	}
	for _, o := range outs {
		s.queueClaims(p, o, events, res)
	}
	if err := p.flush(); err != nil {
		return nil, err
	}
	for _, o := range outs {
		s.queueUpdates(p, o, events, assigned, res)
	}
	if err := p.flush(); err != nil {
		return nil, err
	}
	if !readFirst {
		for _, o := range outs {
			if err := s.rejectUnassigned(p, o, experimentID, events, res); err != nil {
				return nil, err
			}
		}
	}
	// The counters go out with the COMMIT (or the next batch's first
	// statements).
	for _, o := range outs {
		s.queueOutcomeCounters(p, o, res)
	}
	return res, nil
}

// queueLoadMetrics queues the read of the experiment's other metrics into
// out, by key, which is complete after the next flush.
func queueLoadMetrics(p *pipe, experimentID string, out map[string]store.MetricDef) {
	query, args := metricsQuery([]string{experimentID})
	p.queue(PipeStmt{Query: query, Args: args,
		Rows: func(rows Rows) error {
			return scanMetrics(rows, func(_ string, d store.MetricDef) { out[d.Key] = d })
		},
		Wrap: func(err error) error { return fmt.Errorf("load metrics of %s: %w", experimentID, err) }})
}

// outcomeBatch is the events of one batch for one metric, of type metric
// kept in t, as recordEvents takes them through its steps.
type outcomeBatch struct {
	t      outcomeTables
	metric store.Metric
	idx    []int // the events' indexes in the batch
	// window is the experiment's conversion window (0: none): an event
	// later than that after its unit's assignment is late for every metric.
	window   time.Duration
	assigned map[string]store.Assignment

	keyed   map[string]int // idempotency key → index of the event that claims it
	keys    []string       // in lock order
	claimed map[string]bool

	byUnit map[string]*unitEvents
	units  []string // in lock order
	in     *increments
	segIn  segmentIncrements
	// mat is the primary metric's maturity increments (conversion window).
	mat maturity
}

// primary says whether these are the primary metric's events. The
// breakdown counters follow the primary metric's units only: the segments
// are stored with the assignment.
func (o *outcomeBatch) primary() bool { return o.t.units == "assignments" }

// queueClaims (step 2) queues the claims of the events' idempotency keys.
// A rejected event's key is not recorded, so that it can be sent again once
// its unit is assigned. Keys repeated within the batch are duplicates after
// their first use; keys already stored are absent from RETURNING.
func (s *Store) queueClaims(p *pipe, o *outcomeBatch, events []store.Event, res []store.EventResult) {
	o.keyed = map[string]int{}
	for _, i := range o.idx {
		e := events[i]
		if e.IdempotencyKey == "" {
			continue
		}
		if _, dup := o.keyed[e.IdempotencyKey]; dup {
			res[i] = store.EventResult{Outcome: store.OutcomeDuplicate, Reason: ReasonDuplicateKey}
			continue
		}
		o.keyed[e.IdempotencyKey] = i
		o.keys = append(o.keys, e.IdempotencyKey)
	}
	slices.Sort(o.keys) // lock order
	o.claimed = make(map[string]bool, len(o.keys))
	t := o.t
	_ = chunks(o.keys, s.maxRows, func(keys []string) error {
		rb := newRowsBuilder(t.parent)
		for _, k := range keys {
			rb.add("($1, ?, ?)", k, micros(events[o.keyed[k]].At))
		}
		p.queue(PipeStmt{
			Query: `INSERT INTO ` + t.keys + ` (` + t.parentCol + `, idempotency_key, created_at) VALUES ` + rb.String() + `
				 ON CONFLICT (` + t.parentCol + `, idempotency_key) DO NOTHING
				 RETURNING idempotency_key`,
			Args: rb.args,
			Rows: collectSet(o.claimed),
			Wrap: func(err error) error { return fmt.Errorf("claim event keys of %s: %w", t.parent, err) },
		})
		return nil
	})
}

// queueUpdates takes the claims' results, groups what is left by unit
// (step 3) and queues the UPDATE of the units (step 4), whose returned rows
// say what each unit contributes to the counters. Another metric's units
// get their row first, at their first event, with the variant and
// propensity of their assignment.
func (s *Store) queueUpdates(p *pipe, o *outcomeBatch, events []store.Event, assigned map[string]store.Assignment, res []store.EventResult) {
	for _, k := range o.keys {
		if !o.claimed[k] {
			res[o.keyed[k]] = store.EventResult{Outcome: store.OutcomeDuplicate, Reason: ReasonDuplicateKey}
		}
	}
	// With a conversion window, an event after its unit's window is late:
	// its key is claimed (a retry is a duplicate) and, for the primary
	// metric, its maturity slot counts it; nothing else.
	o.byUnit = map[string]*unitEvents{}
	o.mat = maturity{}
	for _, i := range o.idx {
		e := events[i]
		if res[i].Outcome != "" {
			continue
		}
		if a := assigned[e.UnitID]; o.window > 0 && e.At.Sub(a.AssignedAt) > o.window {
			res[i] = store.EventResult{Outcome: store.OutcomeLate, Reason: ReasonLate}
			if o.primary() {
				o.mat.at(a.VariantID, a.AssignedAt).late++
			}
			continue
		}
		ue := o.byUnit[e.UnitID]
		if ue == nil {
			ue = &unitEvents{unit: e.UnitID, firstAt: e.At}
			o.byUnit[e.UnitID] = ue
		}
		if o.metric == store.MetricBinary && len(ue.events) > 0 {
			// A unit converts once: a second conversion in the batch is a
			// duplicate whatever the database says about the first.
			res[i] = store.EventResult{Outcome: store.OutcomeDuplicate, Reason: ReasonConverted}
			continue
		}
		ue.events = append(ue.events, i)
		ue.total += e.Value
	}
	o.units = sortedKeys(o.byUnit)
	o.in = newIncrements()
	o.segIn = segmentIncrements{}
	t, primary := o.t, o.primary()
	if !primary {
		_ = chunks(o.units, s.maxRows, func(units []string) error {
			rb := newRowsBuilder(t.parent)
			for _, u := range units {
				a := assigned[u]
				rb.add("($1, ?, ?, ?)", u, a.VariantID, a.Propensity)
			}
			p.queue(PipeStmt{
				Query: `INSERT INTO ` + t.units + ` (` + t.parentCol + `, unit_id, variant_id, propensity) VALUES ` + rb.String() + `
				 ON CONFLICT (` + t.parentCol + `, unit_id) DO NOTHING`,
				Args: rb.args,
				Wrap: func(err error) error { return fmt.Errorf("add units of metric %s: %w", t.parent, err) },
			})
			return nil
		})
	}
	p.probeJoins()
	_ = chunks(o.units, s.maxRows, func(units []string) error {
		rb := newRowsBuilder(t.parent)
		for _, u := range units {
			ue := o.byUnit[u]
			rb.add("($1, ?, CAST(? AS DOUBLE PRECISION), CAST(? AS BIGINT), CAST(? AS BIGINT))",
				u, ue.total, int64(len(ue.events)), micros(ue.firstAt))
		}
		// VALUES columns are named column1… by both databases. Binary: only
		// a unit that has not converted is updated (the first conversion
		// wins); continuous: every unit adds its values.
		query := `UPDATE ` + t.units + ` SET
			    value_sum = ` + t.units + `.value_sum + v.column3,
			    event_count = ` + t.units + `.event_count + v.column4,
			    converted_at = COALESCE(` + t.units + `.converted_at, v.column5)
			 FROM (VALUES ` + rb.String() + `) AS v
			 WHERE ` + probeJoin(t.units, t.parentCol, "unit_id")
		if o.metric == store.MetricBinary {
			query += ` AND ` + t.units + `.converted_at IS NULL`
		}
		query += ` RETURNING unit_id, variant_id, value_sum, event_count, propensity`
		if primary {
			query += `, segments`
		}
		p.queue(PipeStmt{Query: query, Args: rb.args,
			Rows: func(rows Rows) error { return readEventRows(rows, o, res) },
			Wrap: func(err error) error { return fmt.Errorf("record events of %s: %w", t.parent, err) }})
		return nil
	})
}

// readEventRows reads the rows of queueUpdates' UPDATE … RETURNING: each
// unit's events are accepted, and what the unit contributes goes to the
// counter increments (and, for the primary metric, to the breakdown
// counters of the unit's segments).
func readEventRows(rows Rows, o *outcomeBatch, res []store.EventResult) error {
	primary := o.primary()
	for rows.Next() {
		var u, variant string
		var newSum, propensity float64
		var count int64
		var segs sql.NullString
		dest := []any{&u, &variant, &newSum, &count, &propensity}
		if primary {
			dest = append(dest, &segs)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		ue := o.byUnit[u]
		if ue == nil {
			return fmt.Errorf("unexpected unit %q", u)
		}
		for _, i := range ue.events {
			res[i] = store.EventResult{Outcome: store.OutcomeAccepted}
		}
		// The unit's total went from newSum−x to newSum; it converts
		// when these are its first events.
		var d delta
		firstOutcome := count == int64(len(ue.events))
		d.AddOutcome(propensity, newSum-ue.total, newSum, firstOutcome)
		if a := o.assigned[u]; primary && o.window > 0 && firstOutcome {
			// The delay the model needs is the one until the server
			// learnt of the outcome: At is the receipt time.
			md := o.mat.at(a.VariantID, a.AssignedAt)
			md.conversions++
			md.delays[engine.DelayBucket(ue.firstAt.Sub(a.AssignedAt))]++
		}
		// The whole unit's increment goes to the hour of its first event
		// in the batch: per-event hours would split one unit's square.
		o.in.add(variant, hourOf(ue.firstAt), d)
		if segs.Valid {
			var m map[string]string
			if err := json.Unmarshal([]byte(segs.String), &m); err != nil {
				return fmt.Errorf("segments of %q: %w", u, err)
			}
			o.segIn.add(m, variant, segmentDelta{conversions: d.Conversions, sum: d.Sum, sumSq: d.SumSquares})
		}
	}
	return rows.Err()
}

// rejectUnassigned is step 1 for a batch whose assignments were not read
// first (recordEvents): the events of a unit the UPDATE did not return are
// rejected when the unit has no assignment. A continuous metric's UPDATE
// returns every assigned unit, so none of those has one; a binary one's
// skips a unit that had converted (its events are duplicates, see
// queueOutcomeCounters), so those units are read, which costs a round trip
// only when there are any.
//
// Every event of a rejected unit is rejected, including a binary unit's
// second conversion in the batch, which queueUpdates had called a
// duplicate: as if the unit had been read first.
func (s *Store) rejectUnassigned(p *pipe, o *outcomeBatch, experimentID string, events []store.Event, res []store.EventResult) error {
	var missing []string
	for _, u := range o.units {
		if ev := o.byUnit[u].events; len(ev) > 0 && res[ev[0]].Outcome == "" {
			missing = append(missing, u)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	found := map[string]store.Assignment{}
	if o.metric == store.MetricBinary {
		queueLoadAssignments(p, s.maxRows, experimentID, missing, found)
		if err := p.flush(); err != nil {
			return err
		}
	}
	rejected := map[string]bool{}
	for _, u := range missing {
		if _, ok := found[u]; !ok {
			rejected[u] = true
		}
	}
	if len(rejected) == 0 {
		return nil
	}
	for _, i := range o.idx {
		if rejected[events[i].UnitID] {
			res[i] = store.EventResult{Outcome: store.OutcomeRejected, Reason: ReasonNotAssigned}
		}
	}
	return nil
}

// queueOutcomeCounters takes the UPDATE's results and queues the metric's
// counter increments (and the primary metric's breakdown counters).
func (s *Store) queueOutcomeCounters(p *pipe, o *outcomeBatch, res []store.EventResult) {
	for _, u := range o.units {
		for _, i := range o.byUnit[u].events {
			if res[i].Outcome == "" {
				// Not returned by the UPDATE: only a binary unit that had
				// converted before this call.
				res[i] = store.EventResult{Outcome: store.OutcomeDuplicate, Reason: ReasonConverted}
			}
		}
	}
	s.queueIncrements(p, o.t, o.in, 0, func(err error) error { return err }) // under the experiment's lock
	if o.primary() {
		s.queueSegments(p, o.t.parent, o.segIn)
		if len(o.mat) > 0 {
			s.queueMaturity(p, o.t.parent, o.mat)
		}
	}
}

func unitsOf(events []store.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.UnitID
	}
	return out
}

const counterColumns = `COALESCE(c.units, 0), COALESCE(c.conversions, 0), COALESCE(c.value_sum, 0),
	COALESCE(c.value_sum_sq, 0), COALESCE(c.expected, 0)`

// shardSums is the select list that sums a counters table's shards (see
// Dialect.CounterShards), each under its column's name. Integer columns are
// cast back to BIGINT: PostgreSQL sums them as numeric.
func shardSums(cols []string) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		switch c {
		case "units", "conversions", "positive", "negative":
			b.WriteString("CAST(SUM(" + c + ") AS BIGINT) AS " + c)
		default:
			b.WriteString("SUM(" + c + ") AS " + c)
		}
	}
	return b.String()
}

// testColumns are the counters' statistics of the anytime-valid tests and of
// the revenue model (store.Counters), which buckets do not have.
const testColumns = `COALESCE(c.expected_sq, 0), COALESCE(c.inv_expected, 0), COALESCE(c.inv_p, 0), COALESCE(c.inv_p2, 0), COALESCE(c.y_inv_p, 0),
	COALESCE(c.y_inv_p2, 0), COALESCE(c.y2_inv_p2, 0), COALESCE(c.positive, 0), COALESCE(c.negative, 0),
	COALESCE(c.log_sum, 0), COALESCE(c.log_sum_sq, 0)`

// Counters returns every variant's counters in variant order, zero for a
// variant nothing has happened to yet.
func (s *Store) Counters(ctx context.Context, workspaceID, experimentID string) ([]store.Counters, error) {
	rows, err := s.read.QueryContext(ctx,
		`SELECT v.id, `+counterColumns+`, `+testColumns+`
		 FROM experiments e
		 JOIN variants v ON v.experiment_id = e.id
		 LEFT JOIN (SELECT variant_id, `+shardSums(counterStats)+` FROM counters WHERE experiment_id = $2 GROUP BY variant_id) c
		      ON c.variant_id = v.id
		 WHERE e.workspace_id = $1 AND e.id = $2
		 ORDER BY v.position`, workspaceID, experimentID)
	if err != nil {
		return nil, fmt.Errorf("load counters of %s: %w", experimentID, err)
	}
	defer rows.Close()
	var out []store.Counters
	for rows.Next() {
		var c store.Counters
		if err := rows.Scan(&c.VariantID, &c.Units, &c.Conversions, &c.Sum, &c.SumSq, &c.Expected,
			&c.ExpectedSq, &c.InvExpected, &c.InvP, &c.InvP2, &c.YInvP, &c.YInvP2, &c.Y2InvP2, &c.Positive, &c.Negative, &c.LogSum, &c.LogSumSq); err != nil {
			return nil, fmt.Errorf("load counters of %s: %w", experimentID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load counters of %s: %w", experimentID, err)
	}
	if len(out) == 0 {
		// Every experiment has variants, so no rows means no experiment
		// in this workspace.
		return nil, requireExperiment(ctx, s.read, workspaceID, experimentID)
	}
	return out, nil
}

// FinishedCounters returns the counters of the workspace's most recently
// completed experiments (store.Serving.FinishedCounters): one statement,
// the experiments picked once by the subquery, their counters' shards
// summed per variant.
func (s *Store) FinishedCounters(ctx context.Context, workspaceID string, limit int) ([]store.FinishedExperiment, error) {
	// A row per variant, each an experiment with that one variant.
	scan := func(r scanner) (store.FinishedExperiment, error) {
		f := store.FinishedExperiment{Variants: make([]store.FinishedVariant, 1)}
		v := &f.Variants[0]
		c := &v.Counters
		err := r.Scan(&f.ID, &f.Metric, &v.Control, &c.Units, &c.Conversions, &c.Sum, &c.SumSq, &c.Expected,
			&c.ExpectedSq, &c.InvExpected, &c.InvP, &c.InvP2, &c.YInvP, &c.YInvP2, &c.Y2InvP2, &c.Positive, &c.Negative, &c.LogSum, &c.LogSumSq)
		return f, err
	}
	rows, err := queryAll(ctx, s.read, "load finished experiments of "+workspaceID, scan,
		`WITH done AS (SELECT id, metric, completed_at FROM experiments
		               WHERE workspace_id = $1 AND completed_at IS NOT NULL
		               ORDER BY completed_at DESC, id DESC LIMIT $2)
		 SELECT d.id, d.metric, v.control, `+counterColumns+`, `+testColumns+`
		 FROM done d
		 JOIN variants v ON v.experiment_id = d.id
		 LEFT JOIN (SELECT experiment_id, variant_id, `+shardSums(counterStats)+` FROM counters
		            WHERE experiment_id IN (SELECT id FROM done) GROUP BY experiment_id, variant_id) c
		      ON c.experiment_id = d.id AND c.variant_id = v.id
		 ORDER BY d.completed_at DESC, d.id DESC, v.position`, workspaceID, limit)
	if err != nil {
		return nil, err
	}
	return mergeRuns(rows, func(f store.FinishedExperiment) string { return f.ID },
		func(into *store.FinishedExperiment, f store.FinishedExperiment) {
			into.Variants = append(into.Variants, f.Variants...)
		}), nil
}

// MetricCounters returns the outcome counters of the experiment's other
// metrics, by metric key, each in variant order (zero where nothing has
// happened yet).
func (s *Store) MetricCounters(ctx context.Context, workspaceID, experimentID string) (map[string][]store.Counters, error) {
	if err := requireExperiment(ctx, s.read, workspaceID, experimentID); err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx,
		`SELECT m.key, v.id, `+counterColumns+`, `+testColumns+`
		 FROM experiment_metrics m
		 JOIN variants v ON v.experiment_id = m.experiment_id
		 LEFT JOIN (SELECT metric_id, variant_id, `+shardSums(counterStats)+` FROM metric_counters
		            WHERE metric_id IN (SELECT id FROM experiment_metrics WHERE experiment_id = $1)
		            GROUP BY metric_id, variant_id) c
		      ON c.metric_id = m.id AND c.variant_id = v.id
		 WHERE m.experiment_id = $1
		 ORDER BY m.position, v.position`, experimentID)
	if err != nil {
		return nil, fmt.Errorf("load metric counters of %s: %w", experimentID, err)
	}
	defer rows.Close()
	out := map[string][]store.Counters{}
	for rows.Next() {
		var key string
		var c store.Counters
		if err := rows.Scan(&key, &c.VariantID, &c.Units, &c.Conversions, &c.Sum, &c.SumSq, &c.Expected,
			&c.ExpectedSq, &c.InvExpected, &c.InvP, &c.InvP2, &c.YInvP, &c.YInvP2, &c.Y2InvP2, &c.Positive, &c.Negative, &c.LogSum, &c.LogSumSq); err != nil {
			return nil, fmt.Errorf("load metric counters of %s: %w", experimentID, err)
		}
		out[key] = append(out[key], c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load metric counters of %s: %w", experimentID, err)
	}
	return out, nil
}

// Buckets returns the hourly counters in [from, to), by hour then variant.
func (s *Store) Buckets(ctx context.Context, workspaceID, experimentID string, from, to time.Time) ([]store.Bucket, error) {
	if err := requireExperiment(ctx, s.read, workspaceID, experimentID); err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx,
		`SELECT c.hour, c.variant_id, `+counterColumns+`
		 FROM (SELECT experiment_id, variant_id, hour, `+shardSums(bucketStats)+` FROM buckets
		       WHERE experiment_id = $2 AND hour >= $3 AND hour < $4
		       GROUP BY experiment_id, variant_id, hour) c
		 JOIN experiments e ON e.id = c.experiment_id
		 JOIN variants v ON v.experiment_id = c.experiment_id AND v.id = c.variant_id
		 WHERE e.workspace_id = $1
		 ORDER BY c.hour, v.position`, workspaceID, experimentID, micros(from), micros(to))
	if err != nil {
		return nil, fmt.Errorf("load buckets of %s: %w", experimentID, err)
	}
	defer rows.Close()
	var out []store.Bucket
	for rows.Next() {
		var b store.Bucket
		var hour int64
		if err := rows.Scan(&hour, &b.VariantID, &b.Units, &b.Conversions, &b.Sum, &b.SumSq, &b.Expected); err != nil {
			return nil, fmt.Errorf("load buckets of %s: %w", experimentID, err)
		}
		b.Hour = fromMicros(hour)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load buckets of %s: %w", experimentID, err)
	}
	return out, nil
}
