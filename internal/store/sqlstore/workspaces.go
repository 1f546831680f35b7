package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/store"
)

// CreateWorkspace stores ws; Conflict when the id or name is taken.
func (s *Store) CreateWorkspace(ctx context.Context, ws store.Workspace) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return s.insertWorkspace(ctx, tx, ws) })
}

func (s *Store) insertWorkspace(ctx context.Context, q querier, ws store.Workspace) error {
	_, err := q.ExecContext(ctx,
		`INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)`,
		ws.ID, ws.Name, micros(ws.CreatedAt))
	if s.dialect.IsUniqueViolation(err) {
		return apperr.Wrap(apperr.Conflict, err, "workspace %q already exists", ws.Name)
	}
	if err != nil {
		return fmt.Errorf("create workspace %s: %w", ws.ID, err)
	}
	return nil
}

// CreateWorkspaceWithKey stores the workspace and its first key together.
func (s *Store) CreateWorkspaceWithKey(ctx context.Context, ws store.Workspace, key store.APIKey) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.insertWorkspace(ctx, tx, ws); err != nil {
			return err
		}
		return s.insertKey(ctx, tx, key)
	})
}

const workspaceColumns = `id, name, created_at`

func scanWorkspace(row *sql.Row, what string) (store.Workspace, error) {
	var ws store.Workspace
	var created int64
	err := row.Scan(&ws.ID, &ws.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return ws, apperr.New(apperr.NotFound, "workspace %q not found", what)
	}
	if err != nil {
		return ws, fmt.Errorf("load workspace %s: %w", what, err)
	}
	ws.CreatedAt = fromMicros(created)
	return ws, nil
}

// GetWorkspace returns the workspace with the id.
func (s *Store) GetWorkspace(ctx context.Context, id string) (store.Workspace, error) {
	return scanWorkspace(s.read.QueryRowContext(ctx,
		`SELECT `+workspaceColumns+` FROM workspaces WHERE id = $1`, id), id)
}

// GetWorkspaceByName returns the workspace with the name.
func (s *Store) GetWorkspaceByName(ctx context.Context, name string) (store.Workspace, error) {
	return scanWorkspace(s.read.QueryRowContext(ctx,
		`SELECT `+workspaceColumns+` FROM workspaces WHERE name = $1`, name), name)
}

// CountWorkspaces returns how many workspaces exist (zero before bootstrap).
func (s *Store) CountWorkspaces(ctx context.Context) (int, error) {
	var n int
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM workspaces`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count workspaces: %w", err)
	}
	return n, nil
}

// CreateKey stores k; NotFound when its workspace does not exist, Conflict
// when its id or lookup is taken.
func (s *Store) CreateKey(ctx context.Context, k store.APIKey) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return s.insertKey(ctx, tx, k) })
}

func (s *Store) insertKey(ctx context.Context, q querier, k store.APIKey) error {
	_, err := q.ExecContext(ctx,
		`INSERT INTO api_keys (id, workspace_id, name, scope, lookup, hash, created_at, revoked_at, allowed_origins)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		k.ID, k.WorkspaceID, k.Name, string(k.Scope), k.Lookup, k.Hash, micros(k.CreatedAt), nullMicros(k.RevokedAt),
		encodeOrigins(k.AllowedOrigins))
	switch {
	case s.dialect.IsUniqueViolation(err):
		return apperr.Wrap(apperr.Conflict, err, "API key already exists")
	case s.dialect.IsForeignKeyViolation(err):
		return apperr.Wrap(apperr.NotFound, err, "workspace %q not found", k.WorkspaceID)
	case err != nil:
		return fmt.Errorf("create key %s: %w", k.ID, err)
	}
	return nil
}

const keyColumns = `id, workspace_id, name, scope, lookup, hash, created_at, revoked_at, allowed_origins`

// encodeOrigins stores a key's allowed origins as a JSON array in one text
// column: the list is small, always read whole with the key (the
// authentication path needs it), and never queried by element, so a child
// table would cost a join on every cache miss for nothing.
func encodeOrigins(origins []string) string {
	if len(origins) == 0 {
		return "[]"
	}
	b, err := json.Marshal(origins)
	if err != nil { // a []string always marshals
		panic(fmt.Sprintf("sqlstore: encode origins: %v", err))
	}
	return string(b)
}

// decodeOrigins reads what encodeOrigins stored; an empty list is nil.
func decodeOrigins(s string) ([]string, error) {
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("decode allowed origins: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanKey(r scanner) (store.APIKey, error) {
	var k store.APIKey
	var scope string
	var created int64
	var revoked sql.NullInt64
	var origins string
	if err := r.Scan(&k.ID, &k.WorkspaceID, &k.Name, &scope, &k.Lookup, &k.Hash, &created, &revoked, &origins); err != nil {
		return k, err
	}
	var err error
	if k.AllowedOrigins, err = decodeOrigins(origins); err != nil {
		return k, err
	}
	k.Scope = store.Scope(scope)
	k.CreatedAt = fromMicros(created)
	k.RevokedAt = timePtr(revoked)
	return k, nil
}

// KeyByLookup returns the key with the lookup part, revoked or not.
func (s *Store) KeyByLookup(ctx context.Context, lookup string) (store.APIKey, error) {
	k, err := scanKey(s.read.QueryRowContext(ctx,
		`SELECT `+keyColumns+` FROM api_keys WHERE lookup = $1`, lookup))
	if errors.Is(err, sql.ErrNoRows) {
		return k, apperr.New(apperr.NotFound, "API key not found")
	}
	if err != nil {
		return k, fmt.Errorf("look up key: %w", err)
	}
	return k, nil
}

// ListKeys returns the workspace's keys, oldest first.
func (s *Store) ListKeys(ctx context.Context, workspaceID string) ([]store.APIKey, error) {
	return queryAll(ctx, s.read, "list keys", scanKey,
		`SELECT `+keyColumns+` FROM api_keys WHERE workspace_id = $1 ORDER BY id`, workspaceID)
}

// ListKeysPage returns one page of the workspace's keys by id (newest
// first with p.Newest).
func (s *Store) ListKeysPage(ctx context.Context, workspaceID string, p store.ListParams) ([]store.APIKey, error) {
	if p.Newest {
		return queryAll(ctx, s.read, "list keys", scanKey,
			`SELECT `+keyColumns+` FROM api_keys WHERE workspace_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3`,
			workspaceID, p.After, pageLimit(p.Limit))
	}
	return queryAll(ctx, s.read, "list keys", scanKey,
		`SELECT `+keyColumns+` FROM api_keys WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		workspaceID, p.After, pageLimit(p.Limit))
}

// GetKey returns the workspace's key with the id, revoked or not.
func (s *Store) GetKey(ctx context.Context, workspaceID, keyID string) (store.APIKey, error) {
	k, err := scanKey(s.read.QueryRowContext(ctx,
		`SELECT `+keyColumns+` FROM api_keys WHERE workspace_id = $1 AND id = $2`, workspaceID, keyID))
	if errors.Is(err, sql.ErrNoRows) {
		return k, apperr.New(apperr.NotFound, "API key %q not found", keyID)
	}
	if err != nil {
		return k, fmt.Errorf("load key %s: %w", keyID, err)
	}
	return k, nil
}

// RevokeKey marks the key revoked. Revoking a revoked key keeps the first
// revocation time and succeeds, so a retried revoke is harmless.
func (s *Store) RevokeKey(ctx context.Context, workspaceID, keyID string, at time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE workspace_id = $1 AND id = $2`,
			workspaceID, keyID, micros(at))
		if err != nil {
			return fmt.Errorf("revoke key %s: %w", keyID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("revoke key %s: %w", keyID, err)
		} else if n == 0 {
			return apperr.New(apperr.NotFound, "API key %q not found", keyID)
		}
		return nil
	})
}
