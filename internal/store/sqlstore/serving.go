package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
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

// queueIncrements queues the increments as "col = col + excluded.col"
// upserts, in variant then hour order so that concurrent transactions lock
// counter rows in the same order. wrap turns a statement's error into the
// caller's.
func (s *Store) queueIncrements(p *pipe, experimentID string, in *increments, wrap func(error) error) {
	if len(in.counters) == 0 {
		return
	}
	rb := newRowsBuilder(experimentID)
	for _, v := range sortedKeys(in.counters) {
		d := in.counters[v]
		rb.add("($1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", v, d.Units, d.Conversions, d.Sum, d.SumSquares, d.Expected,
			d.ExpectedSquares, d.InvExpected, d.InvP, d.InvP2, d.YInvP, d.YInvP2, d.Y2InvP2, d.Positive, d.Negative, d.LogSum, d.LogSumSquares)
	}
	p.queue(PipeStmt{Query: `INSERT INTO counters (experiment_id, variant_id, units, conversions, value_sum, value_sum_sq, expected,
		     expected_sq, inv_expected, inv_p, inv_p2, y_inv_p, y_inv_p2, y2_inv_p2, positive, negative, log_sum, log_sum_sq)
		 VALUES ` + rb.String() + `
		 ON CONFLICT (experiment_id, variant_id) DO UPDATE SET
		     units = counters.units + excluded.units,
		     conversions = counters.conversions + excluded.conversions,
		     value_sum = counters.value_sum + excluded.value_sum,
		     value_sum_sq = counters.value_sum_sq + excluded.value_sum_sq,
		     expected = counters.expected + excluded.expected,
		     expected_sq = counters.expected_sq + excluded.expected_sq,
		     inv_expected = counters.inv_expected + excluded.inv_expected,
		     inv_p = counters.inv_p + excluded.inv_p,
		     inv_p2 = counters.inv_p2 + excluded.inv_p2,
		     y_inv_p = counters.y_inv_p + excluded.y_inv_p,
		     y_inv_p2 = counters.y_inv_p2 + excluded.y_inv_p2,
		     y2_inv_p2 = counters.y2_inv_p2 + excluded.y2_inv_p2,
		     positive = counters.positive + excluded.positive,
		     negative = counters.negative + excluded.negative,
		     log_sum = counters.log_sum + excluded.log_sum,
		     log_sum_sq = counters.log_sum_sq + excluded.log_sum_sq`, Args: rb.args,
		Wrap: func(err error) error { return wrap(fmt.Errorf("update counters of %s: %w", experimentID, err)) }})
	keys := make([]bucketKey, 0, len(in.buckets))
	for k := range in.buckets {
		keys = append(keys, k)
	}
	sortBucketKeys(keys)
	_ = chunks(keys, s.maxRows, func(keys []bucketKey) error {
		rb := newRowsBuilder(experimentID)
		for _, k := range keys {
			d := in.buckets[k]
			rb.add("($1, ?, ?, ?, ?, ?, ?, ?)", k.variant, k.hour, d.Units, d.Conversions, d.Sum, d.SumSquares, d.Expected)
		}
		p.queue(PipeStmt{Query: `INSERT INTO buckets (experiment_id, variant_id, hour, units, conversions, value_sum, value_sum_sq, expected)
			 VALUES ` + rb.String() + `
			 ON CONFLICT (experiment_id, variant_id, hour) DO UPDATE SET
			     units = buckets.units + excluded.units,
			     conversions = buckets.conversions + excluded.conversions,
			     value_sum = buckets.value_sum + excluded.value_sum,
			     value_sum_sq = buckets.value_sum_sq + excluded.value_sum_sq,
			     expected = buckets.expected + excluded.expected`, Args: rb.args,
			Wrap: func(err error) error { return wrap(fmt.Errorf("update buckets of %s: %w", experimentID, err)) }})
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
func (s *Store) Assign(ctx context.Context, batches []store.AssignBatch) ([][]store.Assigned, error) {
	return eachInPipeTx(ctx, s, batches, func(b store.AssignBatch) string { return b.ExperimentID }, s.assignBatch)
}

// eachInTx applies one to every batch in a single transaction, in the order
// of the batches' parent ids (experiment, funnel or campaign; stable, so
// batches of one parent keep theirs), and returns the results in the order
// of batches. The one order of locking is what keeps two group commits over
// the same parents from deadlocking.
func eachInTx[B, R any](ctx context.Context, s *Store, batches []B, experiment func(B) string, one func(context.Context, *sql.Tx, B) (R, error)) ([]R, error) {
	order := make([]int, len(batches))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(experiment(batches[a]), experiment(batches[b])) })
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

// eachInPipeTx is eachInTx for the serving path's pipelined transactions
// (see pipe): one's statements left queued when it returns go out with the
// next batch's first ones, or with the COMMIT.
func eachInPipeTx[B, R any](ctx context.Context, s *Store, batches []B, experiment func(B) string, one func(*pipe, B) (R, error)) ([]R, error) {
	order := make([]int, len(batches))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(experiment(batches[a]), experiment(batches[b])) })
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

func (s *Store) assignBatch(p *pipe, b store.AssignBatch) ([]store.Assigned, error) {
	// Count the write in the experiment's data version (the decision loop's
	// watermark), which also checks that the experiment is in the
	// workspace. It takes the experiment's row lock first, as RecordEvents
	// does, so that the two lock the experiment and then its counters in
	// one order.
	found := queueBump(p, b.WorkspaceID, b.ExperimentID)
	// The first item of each unit, in unit order so that concurrent batches
	// insert (and lock) overlapping units in the same order.
	first := make(map[string]store.Assignment, len(b.Items))
	for _, it := range b.Items {
		if _, ok := first[it.UnitID]; !ok {
			first[it.UnitID] = it
		}
	}
	units := sortedKeys(first)

	inserted := make(map[string]bool, len(units))
	_ = chunks(units, s.maxRows, func(units []string) error {
		rb := newRowsBuilder(b.ExperimentID)
		for _, u := range units {
			a := first[u]
			rb.add("($1, ?, ?, ?, ?, ?)", u, a.VariantID, a.Propensity, a.Epoch, micros(a.AssignedAt))
		}
		// RETURNING lists only the rows this statement inserted: a unit
		// that already had an assignment hits ON CONFLICT and is absent.
		// It goes out with the experiment's bump: if the experiment is not
		// in the workspace the transaction is rolled back below.
		p.queue(PipeStmt{
			Query: `INSERT INTO assignments (experiment_id, unit_id, variant_id, propensity, epoch, assigned_at)
			 VALUES ` + rb.String() + `
			 ON CONFLICT (experiment_id, unit_id) DO NOTHING
			 RETURNING unit_id`,
			Args: rb.args,
			Rows: func(rows Rows) error {
				for rows.Next() {
					var u string
					if err := rows.Scan(&u); err != nil {
						return err
					}
					inserted[u] = true
				}
				return rows.Err()
			},
			Wrap: func(err error) error {
				if s.dialect.IsForeignKeyViolation(err) {
					return apperr.Wrap(apperr.Invalid, err, "assignment names a variant that is not in experiment %s", b.ExperimentID)
				}
				return fmt.Errorf("insert assignments of %s: %w", b.ExperimentID, err)
			},
		})
		return nil
	})
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
	if len(existing) > 0 {
		queueLoadAssignments(p, s.maxRows, b.ExperimentID, existing, stored)
		if err := p.flush(); err != nil {
			return nil, err
		}
	}

	// Units per variant and hour for the new assignments; Expected gets the
	// probability every variant had, per new unit, in the hour it came.
	in := newIncrements()
	newPerHour := map[int64]int64{}
	for _, u := range units {
		if !inserted[u] {
			continue
		}
		a := first[u]
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
	// The counters go out with the COMMIT (or the next batch's first
	// statements).
	s.queueIncrements(p, b.ExperimentID, in, func(err error) error {
		if s.dialect.IsForeignKeyViolation(err) {
			return apperr.Wrap(apperr.Invalid, err, "weights name a variant that is not in experiment %s", b.ExperimentID)
		}
		return err
	})

	res := make([]store.Assigned, len(b.Items))
	seen := make(map[string]bool, len(units))
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
	found := new(bool)
	p.queue(PipeStmt{
		Query: `UPDATE experiments SET data_version = data_version + 1 WHERE id = $1 AND workspace_id = $2 RETURNING id`,
		Args:  []any{experimentID, workspaceID},
		Rows: func(rows Rows) error {
			for rows.Next() {
				*found = true
			}
			return rows.Err()
		},
		Wrap: func(err error) error { return fmt.Errorf("lock experiment %s: %w", experimentID, err) },
	})
	return found
}

// assignmentsQuery returns the statement that reads the stored assignments
// of units (at most maxRows of them) and its arguments. A join with a VALUES
// list rather than "unit_id IN (…)": with hundreds of parameters
// PostgreSQL's generic plan for the IN list (chosen after five runs of a
// cached statement) scans the whole table, while the join keeps its index
// nested loop. Both key columns come from the VALUES rows (see probeJoin).
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
func (s *Store) Assignments(ctx context.Context, workspaceID, experimentID string, unitIDs []string) (map[string]store.Assignment, error) {
	if err := requireExperiment(ctx, s.read, workspaceID, experimentID); err != nil {
		return nil, err
	}
	return s.loadAssignments(ctx, s.read, experimentID, dedupe(unitIDs))
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
	workspaceID, experimentID, metric, events := b.WorkspaceID, b.ExperimentID, b.Metric, b.Events
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
	// reads go out with the bump.
	assigned := map[string]store.Assignment{}
	if len(events) > 0 {
		queueLoadAssignments(p, s.maxRows, experimentID, dedupe(unitsOf(events)), assigned)
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
	for i, e := range events {
		if _, ok := assigned[e.UnitID]; !ok {
			res[i] = store.EventResult{Outcome: store.OutcomeRejected, Reason: ReasonNotAssigned}
		}
	}

	// 2. Claim the idempotency keys of the others. A rejected event's key is
	// not recorded, so that it can be sent again once its unit is assigned.
	// Keys repeated within the batch are duplicates after their first use;
	// keys already stored are absent from RETURNING.
	keyed := map[string]int{} // key → index of the event that claims it
	var keys []string
	for i, e := range events {
		if res[i].Outcome != "" || e.IdempotencyKey == "" {
			continue
		}
		if _, dup := keyed[e.IdempotencyKey]; dup {
			res[i] = store.EventResult{Outcome: store.OutcomeDuplicate, Reason: ReasonDuplicateKey}
			continue
		}
		keyed[e.IdempotencyKey] = i
		keys = append(keys, e.IdempotencyKey)
	}
	slices.Sort(keys) // lock order
	if len(keys) > 0 {
		claimed := make(map[string]bool, len(keys))
		_ = chunks(keys, s.maxRows, func(keys []string) error {
			rb := newRowsBuilder(experimentID)
			for _, k := range keys {
				rb.add("($1, ?, ?)", k, micros(events[keyed[k]].At))
			}
			p.queue(PipeStmt{
				Query: `INSERT INTO event_keys (experiment_id, idempotency_key, created_at) VALUES ` + rb.String() + `
				 ON CONFLICT (experiment_id, idempotency_key) DO NOTHING
				 RETURNING idempotency_key`,
				Args: rb.args,
				Rows: func(rows Rows) error {
					for rows.Next() {
						var k string
						if err := rows.Scan(&k); err != nil {
							return err
						}
						claimed[k] = true
					}
					return rows.Err()
				},
				Wrap: func(err error) error { return fmt.Errorf("claim event keys of %s: %w", experimentID, err) },
			})
			return nil
		})
		if err := p.flush(); err != nil {
			return nil, err
		}
		for _, k := range keys {
			if !claimed[k] {
				res[keyed[k]] = store.EventResult{Outcome: store.OutcomeDuplicate, Reason: ReasonDuplicateKey}
			}
		}
	}

	// 3. Group what is left by unit, in unit order (lock order).
	byUnit := map[string]*unitEvents{}
	for i, e := range events {
		if res[i].Outcome != "" {
			continue
		}
		ue := byUnit[e.UnitID]
		if ue == nil {
			ue = &unitEvents{unit: e.UnitID, firstAt: e.At}
			byUnit[e.UnitID] = ue
		}
		if metric == store.MetricBinary && len(ue.events) > 0 {
			// A unit converts once: a second conversion in the batch is a
			// duplicate whatever the database says about the first.
			res[i] = store.EventResult{Outcome: store.OutcomeDuplicate, Reason: ReasonConverted}
			continue
		}
		ue.events = append(ue.events, i)
		ue.total += e.Value
	}
	units := sortedKeys(byUnit)

	// 4. Update the units and derive the counter increments from the rows
	// the UPDATE returns.
	in := newIncrements()
	_ = chunks(units, s.maxRows, func(units []string) error {
		rb := newRowsBuilder(experimentID)
		for _, u := range units {
			ue := byUnit[u]
			rb.add("($1, ?, CAST(? AS DOUBLE PRECISION), CAST(? AS BIGINT), CAST(? AS BIGINT))",
				u, ue.total, int64(len(ue.events)), micros(ue.firstAt))
		}
		// VALUES columns are named column1… by both databases. Binary: only
		// a unit that has not converted is updated (the first conversion
		// wins); continuous: every unit adds its values.
		query := `UPDATE assignments SET
			    value_sum = assignments.value_sum + v.column3,
			    event_count = assignments.event_count + v.column4,
			    converted_at = COALESCE(assignments.converted_at, v.column5)
			 FROM (VALUES ` + rb.String() + `) AS v
			 WHERE ` + probeJoin("assignments", "experiment_id", "unit_id")
		if metric == store.MetricBinary {
			query += ` AND assignments.converted_at IS NULL`
		}
		query += ` RETURNING unit_id, variant_id, value_sum, event_count, propensity`
		p.queue(PipeStmt{Query: query, Args: rb.args, Rows: func(rows Rows) error {
			return readEventRows(rows, byUnit, res, in)
		}, Wrap: func(err error) error { return fmt.Errorf("record events of %s: %w", experimentID, err) }})
		return nil
	})
	if err := p.flush(); err != nil {
		return nil, err
	}
	for _, u := range units {
		for _, i := range byUnit[u].events {
			if res[i].Outcome == "" {
				// Not returned by the UPDATE: only a binary unit that had
				// converted before this call.
				res[i] = store.EventResult{Outcome: store.OutcomeDuplicate, Reason: ReasonConverted}
			}
		}
	}
	// The counters go out with the COMMIT (or the next batch's first
	// statements).
	s.queueIncrements(p, experimentID, in, func(err error) error { return err })
	return res, nil
}

// readEventRows reads the rows of recordEvents' UPDATE … RETURNING: each
// unit's events are accepted, and what the unit contributes goes to in.
func readEventRows(rows Rows, byUnit map[string]*unitEvents, res []store.EventResult, in *increments) error {
	for rows.Next() {
		var u, variant string
		var newSum, propensity float64
		var count int64
		if err := rows.Scan(&u, &variant, &newSum, &count, &propensity); err != nil {
			return err
		}
		ue := byUnit[u]
		if ue == nil {
			return fmt.Errorf("unexpected unit %q", u)
		}
		for _, i := range ue.events {
			res[i] = store.EventResult{Outcome: store.OutcomeAccepted}
		}
		// The unit's total went from newSum−x to newSum; it converts
		// when these are its first events.
		var d delta
		d.AddOutcome(propensity, newSum-ue.total, newSum, count == int64(len(ue.events)))
		// The whole unit's increment goes to the hour of its first event
		// in the batch: per-event hours would split one unit's square.
		in.add(variant, hourOf(ue.firstAt), d)
	}
	return rows.Err()
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
		 LEFT JOIN counters c ON c.experiment_id = v.experiment_id AND c.variant_id = v.id
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

// Buckets returns the hourly counters in [from, to), by hour then variant.
func (s *Store) Buckets(ctx context.Context, workspaceID, experimentID string, from, to time.Time) ([]store.Bucket, error) {
	if err := requireExperiment(ctx, s.read, workspaceID, experimentID); err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx,
		`SELECT c.hour, c.variant_id, `+counterColumns+`
		 FROM buckets c
		 JOIN experiments e ON e.id = c.experiment_id
		 JOIN variants v ON v.id = c.variant_id
		 WHERE e.workspace_id = $1 AND c.experiment_id = $2 AND c.hour >= $3 AND c.hour < $4
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
