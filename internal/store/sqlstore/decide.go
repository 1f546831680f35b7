package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/samplit/samplit/internal/store"
)

var _ store.DecideLeases = (*Store)(nil)

// dueQuery lists the active objects of one table that are due, as
// (kind, id, workspace, data version, last evaluation). $1 is now, $2 the
// staleness bound. The status condition repeats the partial indexes'
// predicates (migration 00007) so that the planners can use them.
func dueQuery(table string, kind store.DecideKind, version string) string {
	return `SELECT '` + string(kind) + `' AS kind, o.id AS id, o.workspace_id AS workspace_id, ` + version + ` AS data_version,
	     COALESCE(l.evaluated_at, 0) AS evaluated_at
	 FROM ` + table + ` o LEFT JOIN decide_leases l ON l.object_id = o.id
	 WHERE o.status IN ('running', 'paused')
	   AND (l.object_id IS NULL
	        OR (l.lease_until < $1 AND (l.evaluated_version <> ` + version + ` OR l.evaluated_at < $2)))`
}

// experimentVersion is an experiment's data version: its data_version,
// which events and some assignments bump, plus the units its counters
// hold, which every new assignment adds to without taking the experiment's
// row (assignBatch). Both only grow, so the sum changes with every write.
const experimentVersion = `o.data_version + COALESCE((SELECT CAST(SUM(c.units) AS BIGINT) FROM counters c WHERE c.experiment_id = o.id), 0)`

// DueForDecision implements store.DecideLeases: one read over the three
// tables of active objects, through the read pool.
func (s *Store) DueForDecision(ctx context.Context, now, staleBefore time.Time, limit int) ([]store.DecideObject, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.read.QueryContext(ctx,
		`SELECT kind, id, workspace_id, data_version FROM (`+
			dueQuery("experiments", store.DecideExperiment, experimentVersion)+` UNION ALL `+
			dueQuery("funnels", store.DecideFunnel, "o.data_version")+` UNION ALL `+
			dueQuery("campaigns", store.DecideCampaign, "o.data_version")+
			`) due
		 ORDER BY evaluated_at, id LIMIT $3`,
		micros(now), micros(staleBefore), limit)
	if err != nil {
		return nil, fmt.Errorf("list objects due for decision: %w", err)
	}
	defer rows.Close()
	var out []store.DecideObject
	for rows.Next() {
		var o store.DecideObject
		var kind string
		if err := rows.Scan(&kind, &o.ID, &o.WorkspaceID, &o.Version); err != nil {
			return nil, fmt.Errorf("list objects due for decision: %w", err)
		}
		o.Kind = store.DecideKind(kind)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list objects due for decision: %w", err)
	}
	return out, nil
}

// ClaimForDecision implements store.DecideLeases in the manner of
// ClaimDeliveries: the objects' lease rows are created when missing, then
// one conditional UPDATE takes those whose lease has expired, over a
// subquery that is FOR UPDATE SKIP LOCKED on PostgreSQL (replicas claiming
// at once take other rows instead of queueing), and that repeats the
// expiry check outside it, so that a row leased by another replica after
// the subquery's snapshot is re-checked on its new version and skipped.
func (s *Store) ClaimForDecision(ctx context.Context, owner string, objs []store.DecideObject, now, leaseUntil time.Time) ([]store.DecideObject, error) {
	if len(objs) == 0 {
		return nil, nil
	}
	byID := make(map[string]store.DecideObject, len(objs))
	for _, o := range objs {
		byID[o.ID] = o
	}
	ids := sortedKeys(byID) // one order of row creation among replicas
	var out []store.DecideObject
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = nil
		rb := newRowsBuilder()
		for _, id := range ids {
			rb.add("(?, ?)", id, string(byID[id].Kind))
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO decide_leases (object_id, kind) VALUES `+rb.String()+`
			 ON CONFLICT (object_id) DO NOTHING`, rb.args...); err != nil {
			return fmt.Errorf("create decision leases: %w", err)
		}
		args := []any{owner, micros(leaseUntil), micros(now)}
		for _, id := range ids {
			args = append(args, id)
		}
		rows, err := tx.QueryContext(ctx,
			`UPDATE decide_leases SET lease_owner = $1, lease_until = $2
			 WHERE lease_until < $3 AND object_id IN (
			     SELECT l.object_id FROM decide_leases l
			     WHERE l.lease_until < $3 AND l.object_id IN (`+placeholders(4, len(ids))+`)`+s.dialect.SkipLocked+`)
			 RETURNING object_id`, args...)
		if err != nil {
			return fmt.Errorf("claim decision leases: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return fmt.Errorf("claim decision leases: %w", err)
			}
			out = append(out, byID[id])
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RenewDecisionLeases implements store.DecideLeases.
func (s *Store) RenewDecisionLeases(ctx context.Context, owner string, ids []string, until time.Time) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		args := []any{owner, micros(until)}
		for _, id := range ids {
			args = append(args, id)
		}
		res, err := tx.ExecContext(ctx,
			`UPDATE decide_leases SET lease_until = $2
			 WHERE lease_owner = $1 AND object_id IN (`+placeholders(3, len(ids))+`)`, args...)
		if err != nil {
			return fmt.Errorf("renew decision leases: %w", err)
		}
		n, err = res.RowsAffected()
		if err != nil {
			return fmt.Errorf("renew decision leases: %w", err)
		}
		return nil
	})
	return int(n), err
}

// FinishDecision implements store.DecideLeases.
func (s *Store) FinishDecision(ctx context.Context, owner string, o store.DecideObject, at time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`UPDATE decide_leases SET
			     evaluated_version = CASE WHEN evaluated_version > $3 THEN evaluated_version ELSE $3 END,
			     evaluated_at = $4, lease_owner = '', lease_until = 0
			 WHERE object_id = $1 AND lease_owner = $2`,
			o.ID, owner, o.Version, micros(at)); err != nil {
			return fmt.Errorf("finish decision of %s: %w", o.ID, err)
		}
		return nil
	})
}

// ReleaseDecision implements store.DecideLeases.
func (s *Store) ReleaseDecision(ctx context.Context, owner, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`UPDATE decide_leases SET lease_owner = '', lease_until = 0 WHERE object_id = $1 AND lease_owner = $2`,
			id, owner); err != nil {
			return fmt.Errorf("release decision lease of %s: %w", id, err)
		}
		return nil
	})
}
