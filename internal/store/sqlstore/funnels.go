package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/store"
)

var _ store.Funnels = (*Store)(nil)

func errFunnelNotFound(ref string) error {
	return apperr.New(apperr.NotFound, "funnel %q not found", ref)
}

// CreateFunnel stores f, its steps and their variants in one transaction.
func (s *Store) CreateFunnel(ctx context.Context, f store.Funnel) error {
	settings, err := json.Marshal(f.Settings)
	if err != nil {
		return fmt.Errorf("encode settings of %s: %w", f.ID, err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		err := s.insertParent(ctx, tx, "funnel", f.ID, f.Key, f.WorkspaceID,
			`INSERT INTO funnels (id, workspace_id, key, name, strategy, status, settings,
			     created_at, updated_at, started_at, completed_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			f.ID, f.WorkspaceID, f.Key, f.Name, f.Strategy, string(f.Status), string(settings),
			micros(f.CreatedAt), micros(f.UpdatedAt), nullMicros(f.StartedAt), nullMicros(f.CompletedAt))
		if err != nil {
			return err
		}
		steps := newRowsBuilder(f.ID)
		variants := newRowsBuilder(f.ID)
		for i, st := range f.Steps {
			steps.add("(?, $1, ?, ?, ?, ?)", st.ID, st.Key, st.Name, i, st.Winner)
			for _, v := range st.Variants {
				variants.add("(?, $1, ?, ?, ?, ?, ?, ?)", v.ID, i, v.Key, v.Name, v.Control, payloadText(v.Payload), v.Position)
			}
		}
		if steps.n == 0 {
			return apperr.New(apperr.Invalid, "funnel %s has no steps", f.ID)
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO funnel_steps (id, funnel_id, key, name, position, winner) VALUES `+steps.String(), steps.args...)
		if s.dialect.IsUniqueViolation(err) {
			return apperr.Wrap(apperr.Conflict, err, "step ids and keys must be unique")
		}
		if err != nil {
			return fmt.Errorf("create steps of %s: %w", f.ID, err)
		}
		if variants.n == 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO funnel_variants (id, funnel_id, step, key, name, control, payload, position) VALUES `+variants.String(),
			variants.args...)
		if s.dialect.IsUniqueViolation(err) {
			return apperr.Wrap(apperr.Conflict, err, "variant ids and keys must be unique within a step")
		}
		if err != nil {
			return fmt.Errorf("create variants of %s: %w", f.ID, err)
		}
		return nil
	})
}

const funnelColumns = `id, workspace_id, key, name, strategy, status, settings,
	created_at, updated_at, started_at, completed_at`

func scanFunnel(r scanner) (store.Funnel, error) {
	var f store.Funnel
	var status, settings string
	var created, updated int64
	var started, completed sql.NullInt64
	err := r.Scan(&f.ID, &f.WorkspaceID, &f.Key, &f.Name, &f.Strategy, &status, &settings,
		&created, &updated, &started, &completed)
	if err != nil {
		return f, err
	}
	f.Status = store.Status(status)
	if err := json.Unmarshal([]byte(settings), &f.Settings); err != nil {
		return f, fmt.Errorf("decode settings of %s: %w", f.ID, err)
	}
	f.CreatedAt, f.UpdatedAt = fromMicros(created), fromMicros(updated)
	f.StartedAt, f.CompletedAt = timePtr(started), timePtr(completed)
	return f, nil
}

// GetFunnel finds the funnel by id or, failing that, by key.
func (s *Store) GetFunnel(ctx context.Context, workspaceID, ref string) (store.Funnel, error) {
	return getFunnel(ctx, s.read, workspaceID, ref)
}

func getFunnel(ctx context.Context, q querier, workspaceID, ref string) (store.Funnel, error) {
	f, err := rowByRef(ctx, q, "funnels", "funnel", funnelColumns, scanFunnel, errFunnelNotFound, workspaceID, ref)
	if err != nil {
		return f, err
	}
	steps, err := loadSteps(ctx, q, []string{f.ID})
	if err != nil {
		return f, err
	}
	f.Steps = steps[f.ID]
	return f, nil
}

// loadSteps returns the steps, with their variants, of the funnels, by
// funnel id, in position order.
func loadSteps(ctx context.Context, q querier, funnelIDs []string) (map[string][]store.FunnelStep, error) {
	out := make(map[string][]store.FunnelStep, len(funnelIDs))
	if len(funnelIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(funnelIDs))
	for i, id := range funnelIDs {
		args[i] = id
	}
	in := placeholders(1, len(args))
	rows, err := q.QueryContext(ctx,
		`SELECT funnel_id, id, key, name, position, winner, no_difference_at FROM funnel_steps
		 WHERE funnel_id IN (`+in+`) ORDER BY funnel_id, position`, args...)
	if err != nil {
		return nil, fmt.Errorf("load funnel steps: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var fid string
		var st store.FunnelStep
		var noDiff sql.NullInt64
		if err := rows.Scan(&fid, &st.ID, &st.Key, &st.Name, &st.Position, &st.Winner, &noDiff); err != nil {
			return nil, fmt.Errorf("load funnel steps: %w", err)
		}
		st.NoDifferenceAt = timePtr(noDiff)
		out[fid] = append(out[fid], st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load funnel steps: %w", err)
	}
	rows.Close()
	vrows, err := q.QueryContext(ctx,
		`SELECT funnel_id, step, id, key, name, control, payload, position FROM funnel_variants
		 WHERE funnel_id IN (`+in+`) ORDER BY funnel_id, step, position`, args...)
	if err != nil {
		return nil, fmt.Errorf("load funnel variants: %w", err)
	}
	defer vrows.Close()
	for vrows.Next() {
		var fid, payload string
		var step int
		var v store.Variant
		if err := vrows.Scan(&fid, &step, &v.ID, &v.Key, &v.Name, &v.Control, &payload, &v.Position); err != nil {
			return nil, fmt.Errorf("load funnel variants: %w", err)
		}
		v.Payload = json.RawMessage(payload)
		if steps := out[fid]; step >= 0 && step < len(steps) {
			steps[step].Variants = append(steps[step].Variants, v)
		}
	}
	if err := vrows.Err(); err != nil {
		return nil, fmt.Errorf("load funnel variants: %w", err)
	}
	return out, nil
}

// ListFunnels returns one page of the workspace's funnels, by id.
func (s *Store) ListFunnels(ctx context.Context, workspaceID string, p store.ListParams) ([]store.Funnel, error) {
	list, err := listPage(ctx, s.read, "funnels", funnelColumns, scanFunnel, workspaceID, p)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(list))
	for i, f := range list {
		ids[i] = f.ID
	}
	steps, err := loadSteps(ctx, s.read, ids)
	if err != nil {
		return nil, err
	}
	for i := range list {
		list[i].Steps = steps[list[i].ID]
	}
	return list, nil
}

// TransitionFunnel moves the funnel to t.To if its status is one of t.From,
// as one conditional UPDATE, like TransitionExperiment.
func (s *Store) TransitionFunnel(ctx context.Context, workspaceID, id string, t store.Transition) (store.Funnel, error) {
	var out store.Funnel
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		applied, err := transition(ctx, tx, "funnels", workspaceID, id, t, "")
		if err != nil {
			return err
		}
		out, err = getFunnel(ctx, tx, workspaceID, id)
		if err != nil {
			return err
		}
		if !applied {
			return apperr.New(apperr.Conflict, "funnel %q is %s; it cannot become %s", out.Key, out.Status, t.To)
		}
		return nil
	})
	if err != nil {
		return store.Funnel{}, err
	}
	return out, nil
}

// DeclareStepWinner sets the step's winner when none is recorded yet and
// reports whether this call set it.
func (s *Store) DeclareStepWinner(ctx context.Context, workspaceID, funnelID string, step int, winner string, at time.Time, events ...store.OutboxEvent) (bool, error) {
	return s.setStepOnce(ctx, "winner", workspaceID, funnelID, step, at, events,
		`UPDATE funnel_steps SET winner = $3 WHERE funnel_id = $1 AND position = $2 AND winner = ''`, winner)
}

// MarkStepNoDifference records when the step's no_difference decision was
// first made and reports whether this call recorded it.
func (s *Store) MarkStepNoDifference(ctx context.Context, workspaceID, funnelID string, step int, at time.Time, events ...store.OutboxEvent) (bool, error) {
	return s.setStepOnce(ctx, "no difference", workspaceID, funnelID, step, at, events,
		`UPDATE funnel_steps SET no_difference_at = $3 WHERE funnel_id = $1 AND position = $2 AND no_difference_at IS NULL`, micros(at))
}

// setStepOnce runs update (its $1 the funnel, $2 the step's position, $3
// value), which changes the step's row only while its decision is not
// recorded, under the funnel's lock; the one call that changed it writes
// the events in its transaction.
func (s *Store) setStepOnce(ctx context.Context, what, workspaceID, funnelID string, step int, at time.Time, events []store.OutboxEvent, update string, value any) (bool, error) {
	var set bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := lockFunnel(ctx, tx, workspaceID, funnelID, at); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, update, funnelID, step, value)
		if err != nil {
			return fmt.Errorf("record %s of %s step %d: %w", what, funnelID, step, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("record %s of %s step %d: %w", what, funnelID, step, err)
		}
		set = n > 0
		if set {
			return writeEvents(ctx, tx, workspaceID, events)
		}
		return nil
	})
	return set, err
}

// lockFunnel takes the funnel's row lock (an UPDATE, the one row lock both
// databases take with the same SQL) and checks that it is in the workspace.
// Progress transactions of one funnel thus run one at a time, which is what
// lets them read a unit's rows and then write them without a lost update;
// the group commit of the service makes each of them a batch. It counts the
// write in the funnel's data version, the decision loop's watermark.
func lockFunnel(ctx context.Context, tx *sql.Tx, workspaceID, funnelID string, at time.Time) error {
	var id string
	err := tx.QueryRowContext(ctx, lockFunnelQuery, funnelID, workspaceID, micros(at)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return errFunnelNotFound(funnelID)
	}
	if err != nil {
		return fmt.Errorf("lock funnel %s: %w", funnelID, err)
	}
	return nil
}

// UnitSteps returns the stored variant id per step of each unit that has
// entered the funnel.
//
// Every progress call reads this before it writes, so it is one statement
// (one round trip on PostgreSQL) per chunk of units: the funnel's check in
// the workspace rides along as a marker row of step -1, which the stored
// steps (0 and up) cannot be. It had been a statement of its own, half of
// the reads' time on the database.
func (s *Store) UnitSteps(ctx context.Context, workspaceID, funnelID string, unitIDs []string) (map[string]map[int]string, error) {
	const marker = `SELECT '', -1, '' FROM funnels WHERE id = $1 AND workspace_id = $2`
	out := map[string]map[int]string{}
	read := func(query string, args []any) error {
		rows, err := s.readQuery(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("load progress of %s: %w", funnelID, err)
		}
		defer rows.Close()
		found := false
		for rows.Next() {
			var u, variant string
			var step int
			if err := rows.Scan(&u, &step, &variant); err != nil {
				return fmt.Errorf("load progress of %s: %w", funnelID, err)
			}
			if step < 0 {
				found = true
				continue
			}
			if out[u] == nil {
				out[u] = map[int]string{}
			}
			out[u][step] = variant
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("load progress of %s: %w", funnelID, err)
		}
		if !found {
			return errFunnelNotFound(funnelID)
		}
		return nil
	}
	units := dedupe(unitIDs)
	if len(units) == 0 {
		if err := read(marker, []any{funnelID, workspaceID}); err != nil {
			return nil, err
		}
		return out, nil
	}
	err := chunks(units, s.maxRows, func(units []string) error {
		rb := newRowsBuilder(funnelID, workspaceID)
		for _, u := range units {
			rb.add("($1, ?)", u)
		}
		return read(marker+`
			 UNION ALL
			 SELECT p.unit_id, p.step, p.variant_id FROM (VALUES `+rb.String()+`) AS v
			 JOIN funnel_progress p ON `+probeJoin("p", "funnel_id", "unit_id"), rb.args)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// stepKey names one (step, variant) counter row, and with slot one bucket.
type stepKey struct {
	step    int
	variant string
	slot    int64
}

// stepDelta is one counter or bucket row's increments: the units,
// conversions, advances, late completions and value of engine.FunnelArm and,
// for counters, its anytime-valid tests' sums, added by its methods as the
// simulator adds them (a step without variants logs no propensity: 0).
type stepDelta struct {
	engine.FunnelArm
	// The buckets' reach times and delays (migration 00009).
	reachedSum  float64
	lastReached int64
	delays      [engine.DelayBuckets]int64
}

type pathDelta struct{ units, conversions int64 }

// funnelIncrements collects the counter changes of one transaction, written
// once per row at its end.
type funnelIncrements struct {
	counters map[stepKey]*stepDelta // slot 0
	buckets  map[stepKey]*stepDelta
	paths    map[string]*pathDelta
}

func (in *funnelIncrements) counter(step int, variant string) *stepDelta {
	k := stepKey{step: step, variant: variant}
	d := in.counters[k]
	if d == nil {
		d = &stepDelta{}
		in.counters[k] = d
	}
	return d
}

func (in *funnelIncrements) bucket(step int, variant string, slot int64) *stepDelta {
	k := stepKey{step, variant, slot}
	d := in.buckets[k]
	if d == nil {
		d = &stepDelta{}
		in.buckets[k] = d
	}
	return d
}

func (in *funnelIncrements) path(p string) *pathDelta {
	d := in.paths[p]
	if d == nil {
		d = &pathDelta{}
		in.paths[p] = d
	}
	return d
}

// slotOf returns the start, in stored form, of the reach-time bucket of t.
func slotOf(t time.Time, width time.Duration) int64 {
	w := width.Microseconds()
	if w <= 0 {
		w = time.Hour.Microseconds()
	}
	us := micros(t)
	return us - ((us%w)+w)%w
}

// RecordProgress applies the batches in one transaction, funnel by funnel
// in id order (lock order).
func (s *Store) RecordProgress(ctx context.Context, batches []store.ProgressBatch) ([][]store.ProgressResult, error) {
	return eachInPipeTx(ctx, s, batches, func(b store.ProgressBatch) string { return b.FunnelID }, s.recordProgress)
}

// unitRow is a funnel_units row and its funnel_progress rows, as a batch
// sees and changes them.
type unitRow struct {
	entered   bool // the unit has a funnel_units row (stored or new)
	stored    bool // … that the database holds
	changed   bool
	enteredAt int64
	maxStep   int
	path      string
	completed sql.NullInt64
	value     float64
	progress  map[int]*progressRow // by step
}

// progressRow is a funnel_progress row.
type progressRow struct {
	variant    string
	propensity float64
	reached    int64
	advanced   sql.NullInt64
	stored     bool // the database holds it
	changed    bool // advanced was set by this batch
}

// recordProgress applies one batch in two round trips whatever its size
// (it was four to six statements per item, each a round trip on
// PostgreSQL): the funnel's lock and the read of its units' rows, then,
// the items applied in order to those rows in memory (progressOne), the
// new and changed rows and the counter increments, which go out with the
// COMMIT. The lock makes the funnel's progress transactions run one at a
// time, so the rows read cannot change before the commit.
func (s *Store) recordProgress(p *pipe, b store.ProgressBatch) ([]store.ProgressResult, error) {
	fid := b.FunnelID
	at := batchTime(b.Items, func(it store.Progress) time.Time { return it.At })
	found := queueFound(p, lockFunnelQuery, []any{fid, b.WorkspaceID, micros(at)}, "lock funnel "+fid)
	ids := sortedKeysOf(b.Items, func(it store.Progress) string { return it.UnitID })
	units := make(map[string]*unitRow, len(ids))
	for _, u := range ids {
		units[u] = &unitRow{progress: map[int]*progressRow{}}
	}
	s.queueLoadFunnelUnits(p, fid, ids, units)
	if err := p.flush(); err != nil {
		return nil, err
	}
	if !*found {
		return nil, errFunnelNotFound(fid)
	}
	window := b.Window.Microseconds()
	in := &funnelIncrements{counters: map[stepKey]*stepDelta{}, buckets: map[stepKey]*stepDelta{}, paths: map[string]*pathDelta{}}
	res := make([]store.ProgressResult, len(b.Items))
	for i, it := range b.Items {
		res[i] = progressOne(b, it, units[it.UnitID], window, in)
	}
	s.queueFunnelRows(p, fid, ids, units)
	s.queueFunnelIncrements(p, fid, in)
	return res, nil
}

// lockFunnelQuery is lockFunnel's statement: $1 the funnel, $2 its
// workspace, $3 the write's time.
const lockFunnelQuery = `UPDATE funnels SET updated_at = CASE WHEN updated_at > $3 THEN updated_at ELSE $3 END,
     data_version = data_version + 1
 WHERE id = $1 AND workspace_id = $2 RETURNING id`

// queueLoadFunnelUnits queues the reads of the units' funnel_units and
// funnel_progress rows into units, complete after the next flush.
func (s *Store) queueLoadFunnelUnits(p *pipe, funnelID string, ids []string, units map[string]*unitRow) {
	s.queueKeyReads(p, funnelID, ids, func(values string, args []any) []PipeStmt {
		return []PipeStmt{{
			Query: `SELECT f.unit_id, f.entered_at, f.max_step, f.path, f.completed_at, f.value
			 FROM (VALUES ` + values + `) AS v
			 JOIN funnel_units f ON ` + probeJoin("f", "funnel_id", "unit_id"),
			Args: args,
			Rows: func(rows Rows) error {
				for rows.Next() {
					var id string
					var u unitRow
					if err := rows.Scan(&id, &u.enteredAt, &u.maxStep, &u.path, &u.completed, &u.value); err != nil {
						return err
					}
					row := units[id]
					u.progress, u.entered, u.stored = row.progress, true, true
					*row = u
				}
				return rows.Err()
			},
			Wrap: func(err error) error { return fmt.Errorf("load units of %s: %w", funnelID, err) },
		}, {
			Query: `SELECT p.unit_id, p.step, p.variant_id, p.propensity, p.reached_at, p.advanced_at
			 FROM (VALUES ` + values + `) AS v
			 JOIN funnel_progress p ON ` + probeJoin("p", "funnel_id", "unit_id"),
			Args: args,
			Rows: func(rows Rows) error {
				for rows.Next() {
					var id string
					var step int
					r := &progressRow{stored: true}
					if err := rows.Scan(&id, &step, &r.variant, &r.propensity, &r.reached, &r.advanced); err != nil {
						return err
					}
					units[id].progress[step] = r
				}
				return rows.Err()
			},
			Wrap: func(err error) error { return fmt.Errorf("load progress of %s: %w", funnelID, err) },
		}}
	})
}

// progressOne applies one item to its unit's rows u. Items are applied one
// at a time, each seeing the ones before, so that a batch holding several
// steps of one unit is applied exactly as the same calls made one by one.
func progressOne(b store.ProgressBatch, it store.Progress, u *unitRow, window int64, in *funnelIncrements) store.ProgressResult {
	if r := u.progress[it.Step]; r != nil {
		return store.ProgressResult{Outcome: store.ProgressRepeated, VariantID: r.variant}
	}
	switch {
	case !u.entered && it.Step == b.Goal:
		return store.ProgressResult{Outcome: store.ProgressNotEntered}
	case u.entered && (it.Step < u.maxStep || u.completed.Valid):
		return store.ProgressResult{Outcome: store.ProgressBehind}
	}
	now := micros(it.At)
	// The rows of earlier steps that had not yet seen the unit move on
	// (only the one at its furthest step, in fact) now have.
	for _, step := range slices.Sorted(maps.Keys(u.progress)) {
		r := u.progress[step]
		if step >= it.Step || r.advanced.Valid {
			continue
		}
		r.advanced, r.changed = sql.NullInt64{Int64: now, Valid: true}, true
		if now-r.reached <= window {
			in.counter(step, r.variant).AddAdvance(logged(r.variant, r.propensity))
		}
	}
	u.progress[it.Step] = &progressRow{variant: it.VariantID, propensity: it.Propensity, reached: now}
	in.counter(it.Step, it.VariantID).AddUnit(logged(it.VariantID, it.Propensity))
	if it.VariantID != "" {
		for v, w := range it.Weights {
			in.counter(it.Step, v).AddExpected(w)
		}
	}
	slot := slotOf(it.At, b.BucketWidth)
	bd := in.bucket(it.Step, it.VariantID, slot)
	bd.Units++
	bd.reachedSum += float64(now-slot) / 1e6
	bd.lastReached = max(bd.lastReached, now)

	// Every unit is counted in exactly one path row, the path of the
	// variants it has seen so far; a new variant moves it to a longer path.
	path := u.path
	if it.VariantID != "" {
		seg := strconv.Itoa(it.Step) + ":" + it.VariantID
		if path == "" {
			path = seg
		} else {
			path += "," + seg
		}
	}
	if !u.entered {
		u.entered, u.enteredAt = true, now
		in.path(path).units++
	} else if path != u.path {
		in.path(u.path).units--
		in.path(path).units++
	}
	u.changed, u.maxStep, u.path = true, it.Step, path
	if it.Step == b.Goal {
		u.completed, u.value = sql.NullInt64{Int64: now, Valid: true}, it.Value
		complete(b, it, u, window, in)
	}
	return store.ProgressResult{Outcome: store.ProgressRecorded, VariantID: it.VariantID}
}

// complete credits a unit's completion to every step it reached: a
// conversion of the step where it came within the window of reaching it, a
// late completion (stored, not counted) otherwise. Comparing with each
// step's reach time here, once, is what keeps results free of any scan of
// units.
func complete(b store.ProgressBatch, it store.Progress, u *unitRow, window int64, in *funnelIncrements) {
	now := micros(it.At)
	for _, step := range slices.Sorted(maps.Keys(u.progress)) {
		r := u.progress[step]
		c := in.counter(step, r.variant)
		if now-r.reached > window {
			c.Late++
			continue
		}
		c.AddConversion(logged(r.variant, r.propensity))
		c.Value += it.Value
		bd := in.bucket(step, r.variant, slotOf(fromMicros(r.reached), b.BucketWidth))
		bd.Conversions++
		bd.delays[engine.DelayBucket(time.Duration(now-r.reached)*time.Microsecond)]++
	}
	if now-u.enteredAt <= window {
		in.path(u.path).conversions++
	}
}

// queueFunnelRows queues the writes of the batch's new and changed
// funnel_units and funnel_progress rows, in unit order, each row once with
// its final state.
func (s *Store) queueFunnelRows(p *pipe, funnelID string, ids []string, units map[string]*unitRow) {
	var newUnits, movedUnits []string
	type stepRow struct {
		unit string
		step int
	}
	var newRows, advancedRows []stepRow
	for _, id := range ids {
		u := units[id]
		switch {
		case !u.changed:
		case u.stored:
			movedUnits = append(movedUnits, id)
		default:
			newUnits = append(newUnits, id)
		}
		for _, step := range slices.Sorted(maps.Keys(u.progress)) {
			switch r := u.progress[step]; {
			case !r.stored:
				newRows = append(newRows, stepRow{id, step})
			case r.changed:
				advancedRows = append(advancedRows, stepRow{id, step})
			}
		}
	}
	wrap := func(what string) func(error) error {
		return func(err error) error { return fmt.Errorf("%s of %s: %w", what, funnelID, err) }
	}
	_ = chunks(newRows, s.maxRows, func(rs []stepRow) error {
		rb := newRowsBuilder(funnelID)
		for _, k := range rs {
			r := units[k.unit].progress[k.step]
			rb.add("($1, ?, ?, ?, ?, ?, ?)", k.unit, k.step, r.variant, r.propensity, r.reached, r.advanced)
		}
		p.queue(PipeStmt{Query: `INSERT INTO funnel_progress (funnel_id, unit_id, step, variant_id, propensity, reached_at, advanced_at)
			 VALUES ` + rb.String(), Args: rb.args, Wrap: wrap("record progress")})
		return nil
	})
	p.probeJoins()
	_ = chunks(advancedRows, s.maxRows, func(rs []stepRow) error {
		rb := newRowsBuilder(funnelID)
		for _, k := range rs {
			rb.add("($1, ?, CAST(? AS INTEGER), CAST(? AS BIGINT))", k.unit, k.step, units[k.unit].progress[k.step].advanced)
		}
		p.queue(PipeStmt{Query: `UPDATE funnel_progress SET advanced_at = v.column4
			 FROM (VALUES ` + rb.String() + `) AS v
			 WHERE ` + probeJoin("funnel_progress", "funnel_id", "unit_id") + ` AND funnel_progress.step = v.column3`,
			Args: rb.args, Wrap: wrap("advance progress")})
		return nil
	})
	_ = chunks(newUnits, s.maxRows, func(us []string) error {
		rb := newRowsBuilder(funnelID)
		for _, id := range us {
			u := units[id]
			rb.add("($1, ?, ?, ?, ?, ?, ?)", id, u.enteredAt, u.maxStep, u.path, u.completed, u.value)
		}
		p.queue(PipeStmt{Query: `INSERT INTO funnel_units (funnel_id, unit_id, entered_at, max_step, path, completed_at, value)
			 VALUES ` + rb.String(), Args: rb.args, Wrap: wrap("enter units")})
		return nil
	})
	_ = chunks(movedUnits, s.maxRows, func(us []string) error {
		rb := newRowsBuilder(funnelID)
		for _, id := range us {
			u := units[id]
			rb.add("($1, ?, CAST(? AS INTEGER), ?, CAST(? AS BIGINT), CAST(? AS DOUBLE PRECISION))", id, u.maxStep, u.path, u.completed, u.value)
		}
		p.queue(PipeStmt{Query: `UPDATE funnel_units SET max_step = v.column3, path = v.column4, completed_at = v.column5, value = v.column6
			 FROM (VALUES ` + rb.String() + `) AS v
			 WHERE ` + probeJoin("funnel_units", "funnel_id", "unit_id"),
			Args: rb.args, Wrap: wrap("move units")})
		return nil
	})
}

// funnelCounterSums are funnel_counters' additive columns, in the order
// queueFunnelIncrements writes and FunnelCounts reads them.
var funnelCounterSums = []string{"units", "conversions", "advanced", "late", "value_sum",
	"inv_p", "inv_p2", "conv_inv_p", "conv_inv_p2", "adv_inv_p", "adv_inv_p2", "expected", "expected_squares", "inv_expected"}

var funnelCountersUpsert = counterUpsert("funnel_counters", []string{"funnel_id", "step", "variant_id"}, funnelCounterSums)

// logged is the propensity the anytime-valid tests weigh a unit's row of a
// step by: 0 (none) for a step without variants, whose rows store one but
// compare nothing.
func logged(variant string, p float64) float64 {
	if variant == "" {
		return 0
	}
	return p
}

// queueFunnelIncrements queues the increments as "col = col + excluded.col"
// upserts, in key order so that concurrent transactions lock rows in one
// order.
func (s *Store) queueFunnelIncrements(p *pipe, funnelID string, in *funnelIncrements) {
	cmpKey := func(a, b stepKey) int {
		if a.step != b.step {
			return a.step - b.step
		}
		if c := strings.Compare(a.variant, b.variant); c != 0 {
			return c
		}
		switch {
		case a.slot < b.slot:
			return -1
		case a.slot > b.slot:
			return 1
		}
		return 0
	}
	keys := func(m map[stepKey]*stepDelta) []stepKey {
		ks := make([]stepKey, 0, len(m))
		for k := range m {
			ks = append(ks, k)
		}
		slices.SortFunc(ks, cmpKey)
		return ks
	}
	_ = chunks(keys(in.counters), s.maxRows, func(ks []stepKey) error {
		rb := newRowsBuilder(funnelID)
		for _, k := range ks {
			d := in.counters[k]
			rb.add("($1, ?, ?, ?, ?, ?, ?, CAST(? AS DOUBLE PRECISION)"+strings.Repeat(", CAST(? AS DOUBLE PRECISION)", 9)+")",
				k.step, k.variant, d.Units, d.Conversions, d.Advanced, d.Late, d.Value,
				d.InvP, d.InvP2, d.ConvInvP, d.ConvInvP2, d.AdvInvP, d.AdvInvP2, d.Expected, d.ExpectedSquares, d.InvExpected)
		}
		p.queue(PipeStmt{Query: funnelCountersUpsert.with(rb.String()),
			Args: rb.args, Wrap: func(err error) error { return fmt.Errorf("update funnel counters of %s: %w", funnelID, err) }})
		return nil
	})
	_ = chunks(keys(in.buckets), s.maxRows, func(ks []stepKey) error {
		rb := newRowsBuilder(funnelID)
		for _, k := range ks {
			d := in.buckets[k]
			args := []any{k.step, k.variant, k.slot, d.Units, d.Conversions, d.reachedSum, d.lastReached}
			for _, n := range d.delays {
				args = append(args, n)
			}
			rb.add("($1, ?, ?, ?, ?, ?, CAST(? AS DOUBLE PRECISION), ?"+strings.Repeat(", ?", engine.DelayBuckets)+")", args...)
		}
		p.queue(PipeStmt{Query: `INSERT INTO funnel_buckets (funnel_id, step, variant_id, slot, units, conversions, reached_sum, last_reached, ` + delayColumns + `)
			 VALUES ` + rb.String() + `
			 ON CONFLICT (funnel_id, step, variant_id, slot) DO UPDATE SET
			     units = funnel_buckets.units + excluded.units,
			     conversions = funnel_buckets.conversions + excluded.conversions,
			     reached_sum = funnel_buckets.reached_sum + excluded.reached_sum,
			     last_reached = CASE WHEN excluded.last_reached > funnel_buckets.last_reached
			         THEN excluded.last_reached ELSE funnel_buckets.last_reached END,
			     ` + delaySums("funnel_buckets"), Args: rb.args,
			Wrap: func(err error) error { return fmt.Errorf("update funnel buckets of %s: %w", funnelID, err) }})
		return nil
	})
	_ = chunks(sortedKeys(in.paths), s.maxRows, func(ps []string) error {
		rb := newRowsBuilder(funnelID)
		for _, p := range ps {
			d := in.paths[p]
			rb.add("($1, ?, ?, ?)", p, d.units, d.conversions)
		}
		p.queue(PipeStmt{Query: `INSERT INTO funnel_paths (funnel_id, path, units, conversions)
			 VALUES ` + rb.String() + `
			 ON CONFLICT (funnel_id, path) DO UPDATE SET
			     units = funnel_paths.units + excluded.units,
			     conversions = funnel_paths.conversions + excluded.conversions`, Args: rb.args,
			Wrap: func(err error) error { return fmt.Errorf("update funnel paths of %s: %w", funnelID, err) }})
		return nil
	})
}

// FunnelCounts returns the counters, the open units of the last window and
// the paths with units, reading O(steps × variants × window slots + paths)
// rows.
func (s *Store) FunnelCounts(ctx context.Context, workspaceID, funnelID string, now time.Time) (store.FunnelCounts, error) {
	var out store.FunnelCounts
	f, err := scanFunnel(s.read.QueryRowContext(ctx,
		`SELECT `+funnelColumns+` FROM funnels WHERE workspace_id = $1 AND id = $2`, workspaceID, funnelID))
	if errors.Is(err, sql.ErrNoRows) {
		return out, errFunnelNotFound(funnelID)
	}
	if err != nil {
		return out, fmt.Errorf("load funnel %s: %w", funnelID, err)
	}
	rows, err := s.read.QueryContext(ctx,
		`SELECT step, variant_id, `+strings.Join(funnelCounterSums, ", ")+` FROM funnel_counters
		 WHERE funnel_id = $1 ORDER BY step, variant_id`, funnelID)
	if err != nil {
		return out, fmt.Errorf("load funnel counters of %s: %w", funnelID, err)
	}
	defer rows.Close()
	idx := map[stepKey]int{}
	for rows.Next() {
		var c store.StepCounters
		if err := rows.Scan(&c.Step, &c.VariantID, &c.Units, &c.Conversions, &c.Advanced, &c.Late, &c.Value,
			&c.InvP, &c.InvP2, &c.ConvInvP, &c.ConvInvP2, &c.AdvInvP, &c.AdvInvP2, &c.Expected, &c.ExpectedSquares, &c.InvExpected); err != nil {
			return out, fmt.Errorf("load funnel counters of %s: %w", funnelID, err)
		}
		idx[stepKey{step: c.Step, variant: c.VariantID}] = len(out.Steps)
		out.Steps = append(out.Steps, c)
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("load funnel counters of %s: %w", funnelID, err)
	}
	rows.Close()

	// A slot is open while the window of its last possible unit is: its
	// start plus its width plus the window is after now. Units reached
	// early in a slot thus count as open up to one slot width too long,
	// which the creation of the funnel bounds to a small share of the window.
	since := micros(now) - f.Settings.AttributionWindow.Microseconds() - f.Settings.BucketWidth.Microseconds()
	orows, err := s.read.QueryContext(ctx,
		`SELECT step, variant_id, slot, units, conversions, reached_sum, last_reached, `+delayColumns+`
		 FROM funnel_buckets WHERE funnel_id = $1 AND slot > $2 ORDER BY step, variant_id, slot`, funnelID, since)
	if err != nil {
		return out, fmt.Errorf("load open units of %s: %w", funnelID, err)
	}
	defer orows.Close()
	for orows.Next() {
		var sl store.StepSlot
		var slot, last int64
		dest := []any{&sl.Step, &sl.VariantID, &slot, &sl.Units, &sl.Conversions, &sl.ReachedSum, &last}
		for i := range sl.Delays {
			dest = append(dest, &sl.Delays[i])
		}
		if err := orows.Scan(dest...); err != nil {
			return out, fmt.Errorf("load open units of %s: %w", funnelID, err)
		}
		sl.Start = fromMicros(slot)
		if last > 0 {
			sl.LastReached = fromMicros(last)
		}
		out.Slots = append(out.Slots, sl)
		if i, ok := idx[stepKey{step: sl.Step, variant: sl.VariantID}]; ok {
			out.Steps[i].Open += sl.Units - sl.Conversions
		}
	}
	if err := orows.Err(); err != nil {
		return out, fmt.Errorf("load open units of %s: %w", funnelID, err)
	}
	orows.Close()

	prows, err := s.read.QueryContext(ctx,
		`SELECT path, units, conversions FROM funnel_paths
		 WHERE funnel_id = $1 AND units > 0 ORDER BY path`, funnelID)
	if err != nil {
		return out, fmt.Errorf("load funnel paths of %s: %w", funnelID, err)
	}
	defer prows.Close()
	for prows.Next() {
		var p string
		var pc store.PathCounters
		if err := prows.Scan(&p, &pc.Units, &pc.Conversions); err != nil {
			return out, fmt.Errorf("load funnel paths of %s: %w", funnelID, err)
		}
		pc.Path, err = parsePath(p)
		if err != nil {
			return out, fmt.Errorf("funnel %s: %w", funnelID, err)
		}
		out.Paths = append(out.Paths, pc)
	}
	if err := prows.Err(); err != nil {
		return out, fmt.Errorf("load funnel paths of %s: %w", funnelID, err)
	}
	return out, nil
}

// parsePath reads the stored "step:variant_id,…" form of a path.
func parsePath(p string) (map[int]string, error) {
	out := map[int]string{}
	if p == "" {
		return out, nil
	}
	for _, seg := range strings.Split(p, ",") {
		step, v, ok := strings.Cut(seg, ":")
		n, err := strconv.Atoi(step)
		if !ok || err != nil {
			return nil, fmt.Errorf("bad stored path %q", p)
		}
		out[n] = v
	}
	return out, nil
}
