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

var (
	_ store.Sessions  = (*Store)(nil)
	_ store.Retention = (*Store)(nil)
)

// CreateSession implements store.Sessions. The key's row is touched first
// (an UPDATE that changes nothing), which tells whether the key exists and,
// on PostgreSQL, locks it: two sign-ins with one key at once are serialised,
// so the cap holds exactly; SQLite has one writer anyway.
func (s *Store) CreateSession(ctx context.Context, se store.Session, maxPerKey int) (int, error) {
	if maxPerKey < 1 {
		maxPerKey = 1
	}
	var evicted int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET id = id WHERE id = $1`, se.KeyID)
		if err != nil {
			return fmt.Errorf("lock key %s: %w", se.KeyID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("lock key %s: %w", se.KeyID, err)
		} else if n == 0 {
			return apperr.New(apperr.NotFound, "API key %q not found", se.KeyID)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO dashboard_sessions (token_hash, key_id, workspace_id, sealed_key, created_at, expires_at)
			 VALUES ($1, $2, $3, $4, $5, $6)`,
			se.TokenHash, se.KeyID, se.WorkspaceID, se.SealedKey, micros(se.CreatedAt), micros(se.ExpiresAt)); err != nil {
			return fmt.Errorf("store session: %w", err)
		}
		// Only this key's sessions: the newest maxPerKey stay.
		res, err = tx.ExecContext(ctx,
			`DELETE FROM dashboard_sessions WHERE key_id = $1 AND token_hash NOT IN (
			     SELECT token_hash FROM dashboard_sessions WHERE key_id = $1
			     ORDER BY created_at DESC, token_hash DESC LIMIT $2)`, se.KeyID, maxPerKey)
		if err != nil {
			return fmt.Errorf("evict sessions of key %s: %w", se.KeyID, err)
		}
		evicted, err = res.RowsAffected()
		if err != nil {
			return fmt.Errorf("evict sessions of key %s: %w", se.KeyID, err)
		}
		return nil
	})
	return int(evicted), err
}

// GetSession implements store.Sessions, through the read pool (a read
// transaction sees every commit made before it began, so a sign-in on
// another replica is visible at once).
func (s *Store) GetSession(ctx context.Context, tokenHash []byte, now time.Time) (store.Session, error) {
	var se store.Session
	var created, expires int64
	err := s.read.QueryRowContext(ctx,
		`SELECT token_hash, key_id, workspace_id, sealed_key, created_at, expires_at
		 FROM dashboard_sessions WHERE token_hash = $1 AND expires_at > $2`, tokenHash, micros(now)).
		Scan(&se.TokenHash, &se.KeyID, &se.WorkspaceID, &se.SealedKey, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return se, apperr.New(apperr.NotFound, "session not found")
	}
	if err != nil {
		return se, fmt.Errorf("load session: %w", err)
	}
	se.CreatedAt, se.ExpiresAt = fromMicros(created), fromMicros(expires)
	return se, nil
}

// DeleteSession implements store.Sessions.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM dashboard_sessions WHERE token_hash = $1`, tokenHash); err != nil {
			return fmt.Errorf("delete session: %w", err)
		}
		return nil
	})
}

// Prune implements store.Retention. Every DELETE picks its rows through an
// index on their age (migration 00010) with a LIMIT, so a batch costs
// O(limit) whatever the table's size. The outer statements repeat the age
// condition, so that only old rows go even if a table's key is later
// widened (an idempotency record per API key, say) and two rows share the
// columns matched here.
func (s *Store) Prune(ctx context.Context, what store.PruneKind, before time.Time, limit int) (map[string]int64, error) {
	if limit <= 0 {
		return map[string]int64{}, nil
	}
	cut := micros(before)
	var out map[string]int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = map[string]int64{}
		del := func(table, query string, args ...any) error {
			res, err := tx.ExecContext(ctx, query, args...)
			if err != nil {
				return fmt.Errorf("prune %s: %w", table, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("prune %s: %w", table, err)
			}
			out[table] += n
			return nil
		}
		switch what {
		case store.PruneIdempotency:
			return del("idempotency",
				`DELETE FROM idempotency WHERE created_at < $1 AND (workspace_id, key) IN (
				     SELECT workspace_id, key FROM idempotency WHERE created_at < $1 ORDER BY created_at LIMIT $2)`, cut, limit)
		case store.PruneEventKeys:
			if err := del("event_keys",
				`DELETE FROM event_keys WHERE created_at < $1 AND (experiment_id, idempotency_key) IN (
				     SELECT experiment_id, idempotency_key FROM event_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2)`, cut, limit); err != nil {
				return err
			}
			return del("campaign_event_keys",
				`DELETE FROM campaign_event_keys WHERE created_at < $1 AND (campaign_id, key) IN (
				     SELECT campaign_id, key FROM campaign_event_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2)`, cut, limit)
		case store.PruneWebhookHistory:
			return s.pruneWebhookHistory(ctx, tx, cut, limit, del)
		case store.PruneSessions:
			return del("dashboard_sessions",
				`DELETE FROM dashboard_sessions WHERE expires_at < $1 AND token_hash IN (
				     SELECT token_hash FROM dashboard_sessions WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)`, cut, limit)
		default:
			return fmt.Errorf("prune: unknown kind %q", what)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// pruneWebhookHistory deletes up to limit finished deliveries created before
// cut, their attempts first (counted, rather than left to the cascade), then
// up to limit outbox events created before cut that no delivery refers to
// any more. A pending delivery (due, or waiting for its endpoint to be
// enabled again) keeps itself and its event.
func (s *Store) pruneWebhookHistory(ctx context.Context, tx *sql.Tx, cut int64, limit int, del func(table, query string, args ...any) error) error {
	rows, err := tx.QueryContext(ctx,
		`SELECT id FROM deliveries WHERE created_at < $1 AND status <> 'pending' ORDER BY created_at LIMIT $2`, cut, limit)
	if err != nil {
		return fmt.Errorf("prune deliveries: %w", err)
	}
	var ids []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("prune deliveries: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("prune deliveries: %w", err)
	}
	if len(ids) > 0 {
		in := placeholders(1, len(ids))
		if err := del("delivery_attempts", `DELETE FROM delivery_attempts WHERE delivery_id IN (`+in+`)`, ids...); err != nil {
			return err
		}
		if err := del("deliveries", `DELETE FROM deliveries WHERE id IN (`+in+`)`, ids...); err != nil {
			return err
		}
	}
	return del("outbox",
		`DELETE FROM outbox WHERE id IN (
		     SELECT o.id FROM outbox o WHERE o.created_at < $1
		       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = o.id)
		     ORDER BY o.created_at LIMIT $2)`, cut, limit)
}
