package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strconv"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/store"
)

var _ store.Layers = (*Store)(nil)

const layerColumns = `id, workspace_id, key, name, created_at`

func scanLayer(r scanner) (store.Layer, error) {
	var l store.Layer
	var created int64
	err := r.Scan(&l.ID, &l.WorkspaceID, &l.Key, &l.Name, &created)
	l.CreatedAt = fromMicros(created)
	return l, err
}

func errLayerNotFound(ref string) error {
	return apperr.New(apperr.NotFound, "no layer %q in this workspace", ref)
}

// CreateLayer stores the layer; Conflict when its key is taken.
func (s *Store) CreateLayer(ctx context.Context, l store.Layer) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return s.insertParent(ctx, tx, "layer", l.ID, l.Key, l.WorkspaceID,
			`INSERT INTO layers (id, workspace_id, key, name, created_at) VALUES ($1, $2, $3, $4, $5)`,
			l.ID, l.WorkspaceID, l.Key, l.Name, micros(l.CreatedAt))
	})
}

// GetLayer finds the workspace's layer by id or key.
func (s *Store) GetLayer(ctx context.Context, workspaceID, ref string) (store.Layer, error) {
	return rowByRef(ctx, s.read, "layers", "layer", layerColumns, scanLayer, errLayerNotFound, workspaceID, ref)
}

// ListLayers returns one page of the workspace's layers, by id.
func (s *Store) ListLayers(ctx context.Context, workspaceID string, p store.ListParams) ([]store.Layer, error) {
	return queryAll(ctx, s.read, "list layers", scanLayer,
		`SELECT `+layerColumns+` FROM layers WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		workspaceID, p.After, pageLimit(p.Limit))
}

// LayerRanges returns the ranges held in the layers by experiments that are
// neither completed nor archived: completing an experiment frees its range
// without a write of its own.
func (s *Store) LayerRanges(ctx context.Context, workspaceID string, layerIDs []string) (map[string][]store.LayerRange, error) {
	return layerRanges(ctx, s.read, workspaceID, layerIDs)
}

func layerRanges(ctx context.Context, q querier, workspaceID string, layerIDs []string) (map[string][]store.LayerRange, error) {
	out := make(map[string][]store.LayerRange, len(layerIDs))
	if len(layerIDs) == 0 {
		return out, nil
	}
	args := []any{workspaceID, string(store.StatusCompleted), string(store.StatusArchived)}
	for _, id := range layerIDs {
		args = append(args, id)
	}
	rows, err := q.QueryContext(ctx,
		`SELECT layer_id, id, key, status, layer_from, layer_to FROM experiments
		 WHERE workspace_id = $1 AND status <> $2 AND status <> $3 AND layer_id IN (`+placeholders(4, len(layerIDs))+`)
		 ORDER BY layer_id, layer_from`, args...)
	if err != nil {
		return nil, fmt.Errorf("load layer ranges: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var layer, status string
		var r store.LayerRange
		if err := rows.Scan(&layer, &r.ExperimentID, &r.ExperimentKey, &status, &r.From, &r.To); err != nil {
			return nil, fmt.Errorf("load layer ranges: %w", err)
		}
		r.Status = store.Status(status)
		out[layer] = append(out[layer], r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load layer ranges: %w", err)
	}
	return out, nil
}

// allocateRange takes the layer's row lock (so that two experiments created
// in one layer at once are allocated one after the other, on any number of
// replicas) and returns the first free range of share of its slots.
func allocateRange(ctx context.Context, tx *sql.Tx, workspaceID, layerID, layerKey string, share float64) (from, to int64, err error) {
	res, err := tx.ExecContext(ctx, `UPDATE layers SET version = version + 1 WHERE id = $1 AND workspace_id = $2`, layerID, workspaceID)
	if err != nil {
		return 0, 0, fmt.Errorf("lock layer %s: %w", layerID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, 0, fmt.Errorf("lock layer %s: %w", layerID, err)
	} else if n == 0 {
		return 0, 0, errLayerNotFound(layerKey)
	}
	held, err := layerRanges(ctx, tx, workspaceID, []string{layerID})
	if err != nil {
		return 0, 0, err
	}
	size := int64(math.Round(share * store.LayerSlots))
	from, to, ok := store.FitRange(held[layerID], size)
	if !ok {
		free, largest := freeSlots(held[layerID])
		return 0, 0, &apperr.Error{Code: apperr.Conflict,
			Message: fmt.Sprintf("layer %q has %s of its traffic free, at most %s in one range: a layer_share of %s does not fit",
				layerKey, share4(free), share4(largest), strconv.FormatFloat(share, 'g', -1, 64)),
			Fields: []apperr.FieldError{{Field: "layer_share", Reason: fmt.Sprintf("must be at most %s, the largest free range of layer %q", share4(largest), layerKey)}}}
	}
	return from, to, nil
}

// freeSlots returns how many slots are free in all and in the largest gap.
func freeSlots(held []store.LayerRange) (free, largest int64) {
	free = store.LayerSlots
	for _, r := range held {
		free -= r.To - r.From
	}
	// The largest size that fits, by binary search: FitRange is monotone
	// in the size.
	lo, hi := int64(0), int64(store.LayerSlots)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if _, _, ok := store.FitRange(held, mid); ok {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return free, lo
}

func share4(slots int64) string {
	return strconv.FormatFloat(float64(slots)/store.LayerSlots, 'f', -1, 64)
}
