package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/store"
)

// insertParent runs insert, the INSERT of the parent row of an aggregate
// (experiment, funnel, campaign) named noun, and maps its failure: a
// duplicate key is a Conflict, a missing workspace a NotFound.
func (s *Store) insertParent(ctx context.Context, tx *sql.Tx, noun, id, key, workspaceID, insert string, args ...any) error {
	_, err := tx.ExecContext(ctx, insert, args...)
	switch {
	case s.dialect.IsUniqueViolation(err):
		return apperr.Wrap(apperr.Conflict, err, "%s %s with key %q already exists", article(noun), noun, key)
	case s.dialect.IsForeignKeyViolation(err):
		return apperr.Wrap(apperr.NotFound, err, "workspace %q not found", workspaceID)
	case err != nil:
		return fmt.Errorf("create %s %s: %w", noun, id, err)
	}
	return nil
}

// article returns the indefinite article of noun.
func article(noun string) string {
	if noun != "" && strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an"
	}
	return "a"
}

// payloadText returns a variant payload as stored: JSON null when empty.
func payloadText(p json.RawMessage) string {
	if len(p) == 0 {
		return "null"
	}
	return string(p)
}

// transition moves the row id of table (experiments, funnels, campaigns) to
// t.To if its status is one of t.From, as one conditional UPDATE so that of
// two concurrent transitions only one can pass the check, and reports
// whether it moved. No From status means it never moves. started_at is set
// on the first move to running and completed_at on the first move to
// completed. set adds assignments (", col = …") whose placeholders number
// from $7, bound to extra. A row that is not in the workspace does not move
// either; the caller tells NotFound from Conflict by reading the row.
func transition(ctx context.Context, tx *sql.Tx, table, workspaceID, id string, t store.Transition, set string, extra ...any) (bool, error) {
	noun := strings.TrimSuffix(table, "s")
	var started, completed sql.NullInt64
	if t.To == store.StatusRunning {
		started = sql.NullInt64{Int64: micros(t.At), Valid: true}
	}
	if t.To == store.StatusCompleted {
		completed = sql.NullInt64{Int64: micros(t.At), Valid: true}
	}
	args := append([]any{workspaceID, id, string(t.To), micros(t.At), started, completed}, extra...)
	from := make([]string, len(t.From))
	for i, st := range t.From {
		from[i] = fmt.Sprintf("$%d", len(args)+1)
		args = append(args, string(st))
	}
	cond := "FALSE"
	if len(from) > 0 {
		cond = "status IN (" + strings.Join(from, ", ") + ")"
	}
	res, err := tx.ExecContext(ctx,
		`UPDATE `+table+` SET status = $3, updated_at = $4,
		     started_at = COALESCE(started_at, $5),
		     completed_at = COALESCE(completed_at, $6)`+set+`
		 WHERE workspace_id = $1 AND id = $2 AND `+cond, args...)
	if err != nil {
		return false, fmt.Errorf("transition %s %s: %w", noun, id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("transition %s %s: %w", noun, id, err)
	}
	return n > 0, nil
}
