package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/targeting"
)

// CreateExperiment stores e and its variants, and the events, in one
// transaction.
func (s *Store) CreateExperiment(ctx context.Context, e store.Experiment, events ...store.OutboxEvent) error {
	settings, err := json.Marshal(e.Settings)
	if err != nil {
		return fmt.Errorf("encode settings of %s: %w", e.ID, err)
	}
	var rules sql.NullString
	if e.Targeting != nil {
		b, err := json.Marshal(e.Targeting)
		if err != nil {
			return fmt.Errorf("encode targeting of %s: %w", e.ID, err)
		}
		rules = sql.NullString{String: string(b), Valid: true}
	}
	var layerID sql.NullString
	if e.LayerID != "" {
		layerID = sql.NullString{String: e.LayerID, Valid: true}
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if e.LayerID != "" {
			from, to, err := allocateRange(ctx, tx, e.WorkspaceID, e.LayerID, e.LayerKey, e.LayerShare)
			if err != nil {
				return err
			}
			e.LayerFrom, e.LayerTo = from, to
		}
		err := s.insertParent(ctx, tx, "experiment", e.ID, e.Key, e.WorkspaceID,
			`INSERT INTO experiments (id, workspace_id, key, name, kind, metric, strategy, status, settings,
			     winner, winner_fixed, created_at, updated_at, started_at, completed_at,
			     targeting, layer_id, layer_key, layer_share, layer_from, layer_to)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
			e.ID, e.WorkspaceID, e.Key, e.Name, string(e.Kind), string(e.Metric), e.Strategy, string(e.Status),
			string(settings), e.Winner, e.WinnerFixed, micros(e.CreatedAt), micros(e.UpdatedAt),
			nullMicros(e.StartedAt), nullMicros(e.CompletedAt),
			rules, layerID, e.LayerKey, e.LayerShare, e.LayerFrom, e.LayerTo)
		if err != nil {
			return err
		}
		if err := writeEvents(ctx, tx, e.WorkspaceID, events); err != nil {
			return err
		}
		if len(e.Metrics) > 0 {
			rb := newRowsBuilder(e.ID)
			for _, m := range e.Metrics {
				rb.add("(?, $1, ?, ?, ?, ?, ?, ?)", m.ID, m.Key, m.Position, string(m.Type), m.Role, m.Direction, m.MaxDegradation)
			}
			_, err := tx.ExecContext(ctx,
				`INSERT INTO experiment_metrics (id, experiment_id, key, position, type, role, direction, max_degradation) VALUES `+rb.String(),
				rb.args...)
			if s.dialect.IsUniqueViolation(err) {
				return apperr.Wrap(apperr.Conflict, err, "metric ids and keys must be unique")
			}
			if err != nil {
				return fmt.Errorf("create metrics of %s: %w", e.ID, err)
			}
		}
		if len(e.Variants) == 0 {
			return nil
		}
		rb := newRowsBuilder(e.ID)
		for _, v := range e.Variants {
			rb.add("(?, $1, ?, ?, ?, ?, ?)", v.ID, v.Key, v.Name, v.Control, payloadText(v.Payload), v.Position)
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO variants (id, experiment_id, key, name, control, payload, position) VALUES `+rb.String(),
			rb.args...)
		if s.dialect.IsUniqueViolation(err) {
			return apperr.Wrap(apperr.Conflict, err, "variant ids and keys must be unique")
		}
		if err != nil {
			return fmt.Errorf("create variants of %s: %w", e.ID, err)
		}
		return nil
	})
}

const experimentColumns = `id, workspace_id, key, name, kind, metric, strategy, status, settings,
	winner, winner_fixed, created_at, updated_at, started_at, completed_at, srm_alerted_at, no_difference_at,
	targeting, layer_id, layer_key, layer_share, layer_from, layer_to`

func scanExperiment(r scanner) (store.Experiment, error) {
	var e store.Experiment
	var kind, metric, status, settings string
	var created, updated int64
	var started, completed, srm, noDiff sql.NullInt64
	var rules, layerID sql.NullString
	err := r.Scan(&e.ID, &e.WorkspaceID, &e.Key, &e.Name, &kind, &metric, &e.Strategy, &status, &settings,
		&e.Winner, &e.WinnerFixed, &created, &updated, &started, &completed, &srm, &noDiff,
		&rules, &layerID, &e.LayerKey, &e.LayerShare, &e.LayerFrom, &e.LayerTo)
	if err != nil {
		return e, err
	}
	e.LayerID = layerID.String
	if rules.Valid {
		e.Targeting = new(targeting.Rules)
		if err := json.Unmarshal([]byte(rules.String), e.Targeting); err != nil {
			return e, fmt.Errorf("decode targeting of %s: %w", e.ID, err)
		}
	}
	e.Kind, e.Metric, e.Status = store.Kind(kind), store.Metric(metric), store.Status(status)
	if err := json.Unmarshal([]byte(settings), &e.Settings); err != nil {
		return e, fmt.Errorf("decode settings of %s: %w", e.ID, err)
	}
	e.CreatedAt, e.UpdatedAt = fromMicros(created), fromMicros(updated)
	e.StartedAt, e.CompletedAt = timePtr(started), timePtr(completed)
	e.SRMAlertedAt, e.NoDifferenceAt = timePtr(srm), timePtr(noDiff)
	return e, nil
}

// GetExperiment finds the experiment by id or, failing that, by key.
func (s *Store) GetExperiment(ctx context.Context, workspaceID, ref string) (store.Experiment, error) {
	return getExperiment(ctx, s.read, workspaceID, ref)
}

func getExperiment(ctx context.Context, q querier, workspaceID, ref string) (store.Experiment, error) {
	e, err := rowByRef(ctx, q, "experiments", "experiment", experimentColumns, scanExperiment, errExperimentNotFound, workspaceID, ref)
	if err != nil {
		return e, err
	}
	vs, err := loadVariants(ctx, q, []string{e.ID})
	if err != nil {
		return e, err
	}
	e.Variants = vs[e.ID]
	ms, err := loadMetrics(ctx, q, []string{e.ID})
	if err != nil {
		return e, err
	}
	e.Metrics = ms[e.ID]
	return e, nil
}

// loadMetrics returns the other metrics of the experiments, by experiment
// id, in position order.
func loadMetrics(ctx context.Context, q querier, experimentIDs []string) (map[string][]store.MetricDef, error) {
	out := make(map[string][]store.MetricDef, len(experimentIDs))
	if len(experimentIDs) == 0 {
		return out, nil
	}
	query, args := metricsQuery(experimentIDs)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("load metrics: %w", err)
	}
	defer rows.Close()
	if err := scanMetrics(rows, func(expID string, m store.MetricDef) { out[expID] = append(out[expID], m) }); err != nil {
		return nil, fmt.Errorf("load metrics: %w", err)
	}
	return out, nil
}

// metricsQuery is the read of the experiments' other metrics (at least one
// experiment) in experiment then position order, for scanMetrics; the
// serving path queues it in its pipe (queueLoadMetrics).
func metricsQuery(experimentIDs []string) (string, []any) {
	args := make([]any, len(experimentIDs))
	for i, id := range experimentIDs {
		args[i] = id
	}
	return `SELECT experiment_id, id, key, position, type, role, direction, max_degradation FROM experiment_metrics
		 WHERE experiment_id IN (` + placeholders(1, len(args)) + `)
		 ORDER BY experiment_id, position`, args
}

// scanMetrics passes each row of metricsQuery to add.
func scanMetrics(rows Rows, add func(experimentID string, m store.MetricDef)) error {
	for rows.Next() {
		var expID, typ string
		var m store.MetricDef
		if err := rows.Scan(&expID, &m.ID, &m.Key, &m.Position, &typ, &m.Role, &m.Direction, &m.MaxDegradation); err != nil {
			return err
		}
		m.Type = store.Metric(typ)
		add(expID, m)
	}
	return rows.Err()
}

// loadVariants returns the variants of the experiments, by experiment id,
// in position order.
func loadVariants(ctx context.Context, q querier, experimentIDs []string) (map[string][]store.Variant, error) {
	out := make(map[string][]store.Variant, len(experimentIDs))
	if len(experimentIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(experimentIDs))
	for i, id := range experimentIDs {
		args[i] = id
	}
	rows, err := q.QueryContext(ctx,
		`SELECT experiment_id, id, key, name, control, payload, position FROM variants
		 WHERE experiment_id IN (`+placeholders(1, len(args))+`)
		 ORDER BY experiment_id, position`, args...)
	if err != nil {
		return nil, fmt.Errorf("load variants: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var expID, payload string
		var v store.Variant
		if err := rows.Scan(&expID, &v.ID, &v.Key, &v.Name, &v.Control, &payload, &v.Position); err != nil {
			return nil, fmt.Errorf("load variants: %w", err)
		}
		v.Payload = json.RawMessage(payload)
		out[expID] = append(out[expID], v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load variants: %w", err)
	}
	return out, nil
}

// ListExperiments returns one page of the workspace's experiments, by id.
// A Limit of zero or less means DefaultListLimit.
func (s *Store) ListExperiments(ctx context.Context, workspaceID string, p store.ListParams) ([]store.Experiment, error) {
	list, err := listPage(ctx, s.read, "experiments", experimentColumns, scanExperiment, workspaceID, p)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(list))
	for i, e := range list {
		ids[i] = e.ID
	}
	vs, err := loadVariants(ctx, s.read, ids)
	if err != nil {
		return nil, err
	}
	ms, err := loadMetrics(ctx, s.read, ids)
	if err != nil {
		return nil, err
	}
	for i := range list {
		list[i].Variants = vs[list[i].ID]
		list[i].Metrics = ms[list[i].ID]
	}
	return list, nil
}

// TransitionExperiment moves the experiment to t.To if its status is one of
// t.From, as one conditional UPDATE so that of two concurrent transitions
// only one can pass the check. StartedAt is set on the first move to running
// and CompletedAt on the first move to completed.
func (s *Store) TransitionExperiment(ctx context.Context, workspaceID, id string, t store.Transition) (store.Experiment, error) {
	var out store.Experiment
	var winner sql.NullString
	var fixed sql.NullBool
	if t.Winner != nil {
		winner = sql.NullString{String: *t.Winner, Valid: true}
		fixed = sql.NullBool{Bool: t.Fixed, Valid: true}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		applied, err := transition(ctx, tx, "experiments", workspaceID, id, t,
			`, winner = COALESCE($7, winner), winner_fixed = COALESCE($8, winner_fixed)`, winner, fixed)
		if err != nil {
			return err
		}
		out, err = getExperiment(ctx, tx, workspaceID, id)
		if err != nil {
			return err // NotFound when it is not in the workspace
		}
		if !applied {
			return apperr.New(apperr.Conflict, "experiment %q is %s; it cannot become %s", out.Key, out.Status, t.To)
		}
		return writeEvents(ctx, tx, workspaceID, t.Events)
	})
	if err != nil {
		return store.Experiment{}, err
	}
	return out, nil
}

// DeclareWinner sets the winner when none is recorded yet and reports
// whether this call set it; that call alone writes the events.
func (s *Store) DeclareWinner(ctx context.Context, workspaceID, id, winner string, at time.Time, events ...store.OutboxEvent) (bool, error) {
	var set bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE experiments SET winner = $3, updated_at = $4
			 WHERE workspace_id = $1 AND id = $2 AND (winner IS NULL OR winner = '')`,
			workspaceID, id, winner, micros(at))
		if err != nil {
			return fmt.Errorf("declare winner of %s: %w", id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("declare winner of %s: %w", id, err)
		}
		set = n > 0
		if !set {
			return requireExperiment(ctx, tx, workspaceID, id)
		}
		return writeEvents(ctx, tx, workspaceID, events)
	})
	return set, err
}

// MarkSRM implements store.Experiments.
func (s *Store) MarkSRM(ctx context.Context, workspaceID, id string, at time.Time, events ...store.OutboxEvent) (bool, error) {
	return s.markOnce(ctx, "srm_alerted_at", "SRM", workspaceID, id, at, events)
}

// MarkNoDifference implements store.Experiments.
func (s *Store) MarkNoDifference(ctx context.Context, workspaceID, id string, at time.Time, events ...store.OutboxEvent) (bool, error) {
	return s.markOnce(ctx, "no_difference_at", "no difference", workspaceID, id, at, events)
}

// TripGuardrail records the trip once per variant (the primary key of
// guardrail_trips): the INSERT that does not conflict is the one call that
// recorded it, and writes the events in its transaction.
func (s *Store) TripGuardrail(ctx context.Context, workspaceID, id string, trip store.GuardrailTrip, events ...store.OutboxEvent) (bool, error) {
	var set bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := requireExperiment(ctx, tx, workspaceID, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx,
			`INSERT INTO guardrail_trips (experiment_id, variant_id, metric, reason, tripped_at)
			 SELECT v.experiment_id, v.id, $3, $4, $5 FROM variants v WHERE v.experiment_id = $1 AND v.id = $2
			 ON CONFLICT (experiment_id, variant_id) DO NOTHING`,
			id, trip.VariantID, trip.Metric, trip.Reason, micros(trip.At))
		if err != nil {
			return fmt.Errorf("record guardrail trip of %s: %w", id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("record guardrail trip of %s: %w", id, err)
		}
		if set = n > 0; !set {
			return nil
		}
		return writeEvents(ctx, tx, workspaceID, events)
	})
	return set, err
}

// GuardrailTrips returns the experiment's recorded trips, by variant id.
func (s *Store) GuardrailTrips(ctx context.Context, workspaceID, id string) ([]store.GuardrailTrip, error) {
	if err := requireExperiment(ctx, s.read, workspaceID, id); err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx,
		`SELECT variant_id, metric, reason, tripped_at FROM guardrail_trips WHERE experiment_id = $1 ORDER BY variant_id`, id)
	if err != nil {
		return nil, fmt.Errorf("load guardrail trips of %s: %w", id, err)
	}
	defer rows.Close()
	var out []store.GuardrailTrip
	for rows.Next() {
		var t store.GuardrailTrip
		var at int64
		if err := rows.Scan(&t.VariantID, &t.Metric, &t.Reason, &at); err != nil {
			return nil, fmt.Errorf("load guardrail trips of %s: %w", id, err)
		}
		t.At = fromMicros(at)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load guardrail trips of %s: %w", id, err)
	}
	return out, nil
}

// markOnce sets the experiment's timestamp column (a constant of this file)
// if it is unset, and writes the events in the same transaction only when it
// did: of all the replicas that see the same finding, one records it and
// announces it once.
func (s *Store) markOnce(ctx context.Context, column, what, workspaceID, id string, at time.Time, events []store.OutboxEvent) (bool, error) {
	var set bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE experiments SET `+column+` = $3
			 WHERE workspace_id = $1 AND id = $2 AND `+column+` IS NULL`,
			workspaceID, id, micros(at))
		if err != nil {
			return fmt.Errorf("mark %s of %s: %w", what, id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("mark %s of %s: %w", what, id, err)
		}
		set = n > 0
		if !set {
			return requireExperiment(ctx, tx, workspaceID, id)
		}
		return writeEvents(ctx, tx, workspaceID, events)
	})
	return set, err
}

// sortedKeys returns the map's keys in order, so that statements touching
// several rows lock them in one global order and concurrent transactions do
// not deadlock on each other.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
