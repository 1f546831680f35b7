package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/samplit/samplit/internal/store"
)

// DefaultListLimit is the page size the List methods use when none is given.
const DefaultListLimit = 50

// pageLimit returns limit, or DefaultListLimit when it is zero or less.
func pageLimit(limit int) int {
	if limit <= 0 {
		return DefaultListLimit
	}
	return limit
}

// queryAll runs query and scans each of its rows with scan. op names the
// operation in errors ("list experiments"). The rows are closed when it
// returns, so that the caller can run the next query (loading children) on
// the same connection. No rows give a nil slice.
func queryAll[T any](ctx context.Context, q querier, op string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

// mergeRuns merges each run of consecutive rows with the same id into its
// first row (merge adds a row to it), for queries that return a parent's
// children as rows ordered by the parent first. No rows give a nil slice.
func mergeRuns[T any](rows []T, id func(T) string, merge func(into *T, row T)) []T {
	var out []T
	for _, r := range rows {
		if n := len(out); n > 0 && id(out[n-1]) == id(r) {
			merge(&out[n-1], r)
			continue
		}
		out = append(out, r)
	}
	return out
}

// listPage returns one page of the workspace's rows of table (experiments,
// funnels, campaigns: tables with workspace_id, id and status columns), by
// id (descending with p.Newest), after p.After and with status p.Status when it is set. The rows come
// without their children; the caller loads those.
func listPage[T any](ctx context.Context, q querier, table, columns string, scan func(scanner) (T, error), workspaceID string, p store.ListParams) ([]T, error) {
	if p.Newest {
		return queryAll(ctx, q, "list "+table, scan,
			`SELECT `+columns+` FROM `+table+`
			 WHERE workspace_id = $1 AND ($2 = '' OR id < $2) AND ($3 = '' OR status = $3)
			 ORDER BY id DESC LIMIT $4`,
			workspaceID, p.After, string(p.Status), pageLimit(p.Limit))
	}
	return queryAll(ctx, q, "list "+table, scan,
		`SELECT `+columns+` FROM `+table+`
		 WHERE workspace_id = $1 AND id > $2 AND ($3 = '' OR status = $3)
		 ORDER BY id LIMIT $4`,
		workspaceID, p.After, string(p.Status), pageLimit(p.Limit))
}

// rowByRef reads the workspace's row of table whose id or, failing that,
// key is ref. One query serves both lookups; an id match sorts first so
// that a key that happens to equal another row's id never shadows that
// row. A missing row is notFound(ref); noun names the row in other errors.
func rowByRef[T any](ctx context.Context, q querier, table, noun, columns string, scan func(scanner) (T, error), notFound func(string) error, workspaceID, ref string) (T, error) {
	v, err := scan(q.QueryRowContext(ctx,
		`SELECT `+columns+` FROM `+table+`
		 WHERE workspace_id = $1 AND (id = $2 OR key = $2)
		 ORDER BY CASE WHEN id = $2 THEN 0 ELSE 1 END
		 LIMIT 1`, workspaceID, ref))
	if errors.Is(err, sql.ErrNoRows) {
		return v, notFound(ref)
	}
	if err != nil {
		return v, fmt.Errorf("load %s %s: %w", noun, ref, err)
	}
	return v, nil
}
