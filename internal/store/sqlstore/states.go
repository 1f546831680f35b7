package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/store"
)

const stateColumns = `experiment_id, key_id, blob, version, updated_at`

func scanState(r scanner) (store.SealedState, error) {
	var st store.SealedState
	var updated int64
	if err := r.Scan(&st.ExperimentID, &st.KeyID, &st.Blob, &st.Version, &updated); err != nil {
		return st, err
	}
	st.UpdatedAt = fromMicros(updated)
	return st, nil
}

// LoadState returns the experiment's sealed state.
func (s *Store) LoadState(ctx context.Context, experimentID string) (store.SealedState, error) {
	st, err := scanState(s.read.QueryRowContext(ctx,
		`SELECT `+stateColumns+` FROM states WHERE experiment_id = $1`, experimentID))
	if errors.Is(err, sql.ErrNoRows) {
		return st, apperr.New(apperr.NotFound, "no state stored for experiment %q", experimentID)
	}
	if err != nil {
		return st, fmt.Errorf("load state of %s: %w", experimentID, err)
	}
	return st, nil
}

// SaveState stores st if the stored version is st.Version−1: version 1 is an
// insert that fails when a row exists, later versions a conditional update.
// Either way one statement decides, so of two concurrent savers one wins.
func (s *Store) SaveState(ctx context.Context, st store.SealedState) error {
	if st.Version < 1 {
		return apperr.New(apperr.Invalid, "state version must be at least 1, not %d", st.Version)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		if st.Version == 1 {
			res, err = tx.ExecContext(ctx,
				`INSERT INTO states (experiment_id, key_id, blob, version, updated_at)
				 VALUES ($1, $2, $3, 1, $4)
				 ON CONFLICT (experiment_id) DO NOTHING`,
				st.ExperimentID, st.KeyID, st.Blob, micros(st.UpdatedAt))
		} else {
			res, err = tx.ExecContext(ctx,
				`UPDATE states SET key_id = $2, blob = $3, version = $4, updated_at = $5
				 WHERE experiment_id = $1 AND version = $6`,
				st.ExperimentID, st.KeyID, st.Blob, st.Version, micros(st.UpdatedAt), st.Version-1)
		}
		if s.dialect.IsForeignKeyViolation(err) {
			return apperr.Wrap(apperr.NotFound, err, "experiment %q not found", st.ExperimentID)
		}
		if err != nil {
			return fmt.Errorf("save state of %s: %w", st.ExperimentID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("save state of %s: %w", st.ExperimentID, err)
		}
		if n == 0 {
			return apperr.New(apperr.Conflict, "state of experiment %q changed since version %d was read", st.ExperimentID, st.Version-1)
		}
		return nil
	})
}

// ListStates returns up to limit states ordered by experiment id, after the
// id (for re-sealing every row under a new key).
func (s *Store) ListStates(ctx context.Context, afterExperimentID string, limit int) ([]store.SealedState, error) {
	return queryAll(ctx, s.read, "list states", scanState,
		`SELECT `+stateColumns+` FROM states WHERE experiment_id > $1 ORDER BY experiment_id LIMIT $2`,
		afterExperimentID, pageLimit(limit))
}

// ClaimIdempotency stores r as an in-flight claim, or returns the record
// already held for the workspace and key. A record created before notBefore
// has expired and is replaced by the claim. The upsert and the read run in
// one transaction: on PostgreSQL the upsert locks the existing row even when
// its WHERE keeps it unchanged, so the read sees what the upsert saw.
func (s *Store) ClaimIdempotency(ctx context.Context, r store.IdempotencyRecord, notBefore time.Time) (*store.IdempotencyRecord, error) {
	var existing *store.IdempotencyRecord
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		existing = nil
		res, err := tx.ExecContext(ctx,
			`INSERT INTO idempotency (workspace_id, key, fingerprint, done, status, body, created_at)
			 VALUES ($1, $2, $3, FALSE, 0, NULL, $4)
			 ON CONFLICT (workspace_id, key) DO UPDATE SET
			     fingerprint = excluded.fingerprint, done = FALSE, status = 0, body = NULL,
			     created_at = excluded.created_at
			 WHERE idempotency.created_at < $5`,
			r.WorkspaceID, r.Key, r.Fingerprint, micros(r.CreatedAt), micros(notBefore))
		if s.dialect.IsForeignKeyViolation(err) {
			return apperr.Wrap(apperr.NotFound, err, "workspace %q not found", r.WorkspaceID)
		}
		if err != nil {
			return fmt.Errorf("claim idempotency key: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("claim idempotency key: %w", err)
		}
		if n > 0 {
			return nil // claimed
		}
		var rec store.IdempotencyRecord
		var status sql.NullInt64
		var created int64
		err = tx.QueryRowContext(ctx,
			`SELECT workspace_id, key, fingerprint, done, status, body, created_at
			 FROM idempotency WHERE workspace_id = $1 AND key = $2`,
			r.WorkspaceID, r.Key).Scan(&rec.WorkspaceID, &rec.Key, &rec.Fingerprint, &rec.Done, &status, &rec.Body, &created)
		if err != nil {
			return fmt.Errorf("read idempotency key: %w", err)
		}
		rec.Status = int(status.Int64)
		rec.CreatedAt = fromMicros(created)
		existing = &rec
		return nil
	})
	if err != nil {
		return nil, err
	}
	return existing, nil
}

// FinishIdempotency stores the response of a claimed record.
func (s *Store) FinishIdempotency(ctx context.Context, workspaceID, key string, status int, body []byte) error {
	if body == nil {
		body = []byte{} // done records always have a body, even an empty one
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE idempotency SET done = TRUE, status = $3, body = $4 WHERE workspace_id = $1 AND key = $2`,
			workspaceID, key, status, body)
		if err != nil {
			return fmt.Errorf("finish idempotency key: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("finish idempotency key: %w", err)
		} else if n == 0 {
			return apperr.New(apperr.NotFound, "idempotency key %q not claimed", key)
		}
		return nil
	})
}

// ReleaseIdempotency forgets an in-flight claim; a finished record stays, and
// releasing a key that is not held is not an error.
func (s *Store) ReleaseIdempotency(ctx context.Context, workspaceID, key string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM idempotency WHERE workspace_id = $1 AND key = $2 AND done = FALSE`,
			workspaceID, key); err != nil {
			return fmt.Errorf("release idempotency key: %w", err)
		}
		return nil
	})
}
