package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/store"
)

// The maturity slots' delay histograms have one column per bucket of the
// engine's.
var _ [engine.DelayBuckets]int64 = store.MaturitySlot{}.Delays

// maturityKey names one variant's hour of assignment.
type maturityKey struct {
	variant string
	slot    int64
}

// maturityDelta is an increment of one maturity slot (migration 00009).
type maturityDelta struct {
	units, conversions, late int64
	assignedSum              float64
	last                     int64
	delays                   [engine.DelayBuckets]int64
}

// maturity collects the maturity slot increments of one transaction.
type maturity map[maturityKey]*maturityDelta

func (m maturity) at(variant string, assignedAt time.Time) *maturityDelta {
	k := maturityKey{variant, hourOf(assignedAt)}
	d := m[k]
	if d == nil {
		d = &maturityDelta{}
		m[k] = d
	}
	return d
}

// unit counts a new assignment.
func (m maturity) unit(variant string, at time.Time) {
	d := m.at(variant, at)
	d.units++
	d.assignedSum += at.Sub(at.UTC().Truncate(time.Hour)).Seconds()
	d.last = max(d.last, micros(at))
}

// queueMaturity queues the increments as upserts in key order (lock order),
// to go out with the transaction's next flush or its COMMIT.
func (s *Store) queueMaturity(p *pipe, experimentID string, m maturity) {
	keys := make([]maturityKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b maturityKey) int {
		if c := strings.Compare(a.variant, b.variant); c != 0 {
			return c
		}
		return int(min(max(a.slot-b.slot, -1), 1))
	})
	_ = chunks(keys, s.maxRows, func(ks []maturityKey) error {
		rb := newRowsBuilder(experimentID)
		for _, k := range ks {
			d := m[k]
			args := []any{k.variant, k.slot, d.units, d.assignedSum, d.last, d.conversions, d.late}
			for _, n := range d.delays {
				args = append(args, n)
			}
			rb.add("($1, ?, ?, ?, CAST(? AS DOUBLE PRECISION), ?, ?, ?"+strings.Repeat(", ?", engine.DelayBuckets)+")", args...)
		}
		p.queue(PipeStmt{Query: `INSERT INTO maturity_slots (experiment_id, variant_id, slot, units, assigned_sum, last_assigned,
			     conversions, late, ` + delayColumns + `)
			 VALUES ` + rb.String() + `
			 ON CONFLICT (experiment_id, variant_id, slot) DO UPDATE SET
			     units = maturity_slots.units + excluded.units,
			     assigned_sum = maturity_slots.assigned_sum + excluded.assigned_sum,
			     last_assigned = CASE WHEN excluded.last_assigned > maturity_slots.last_assigned
			         THEN excluded.last_assigned ELSE maturity_slots.last_assigned END,
			     conversions = maturity_slots.conversions + excluded.conversions,
			     late = maturity_slots.late + excluded.late,
			     ` + delaySums("maturity_slots"), Args: rb.args,
			Wrap: func(err error) error { return fmt.Errorf("update maturity slots of %s: %w", experimentID, err) }})
		return nil
	})
}

// MaturitySlots returns the experiment's maturity slots by variant then
// hour: O(variants × hours of assignment) rows.
func (s *Store) MaturitySlots(ctx context.Context, workspaceID, experimentID string) ([]store.MaturitySlot, error) {
	var one int
	err := s.read.QueryRowContext(ctx, `SELECT 1 FROM experiments WHERE id = $1 AND workspace_id = $2`,
		experimentID, workspaceID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errExperimentNotFound(experimentID)
	}
	if err != nil {
		return nil, fmt.Errorf("look up experiment %s: %w", experimentID, err)
	}
	rows, err := s.read.QueryContext(ctx,
		`SELECT variant_id, slot, units, assigned_sum, last_assigned, conversions, late, `+delayColumns+`
		 FROM maturity_slots WHERE experiment_id = $1 ORDER BY variant_id, slot`, experimentID)
	if err != nil {
		return nil, fmt.Errorf("load maturity slots of %s: %w", experimentID, err)
	}
	defer rows.Close()
	var out []store.MaturitySlot
	for rows.Next() {
		var m store.MaturitySlot
		var slot, last int64
		dest := []any{&m.VariantID, &slot, &m.Units, &m.AssignedSum, &last, &m.Conversions, &m.Late}
		for i := range m.Delays {
			dest = append(dest, &m.Delays[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("load maturity slots of %s: %w", experimentID, err)
		}
		m.Start = fromMicros(slot)
		if last > 0 {
			m.LastAssigned = fromMicros(last)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load maturity slots of %s: %w", experimentID, err)
	}
	return out, nil
}
