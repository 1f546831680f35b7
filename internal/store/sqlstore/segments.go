package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/samplit/samplit/internal/store"
)

// Breakdown counters (store.Segments): per experiment, attribute, value and
// variant, the additive statistics of the units whose first assignment
// carried that value, kept in the transaction that stores the unit or its
// events, so that a breakdown reads at most MaxSegmentAttributes ·
// MaxSegmentValues · variants rows however many units there are.

var _ store.Segments = (*Store)(nil)

// segmentKey names one breakdown counter row.
type segmentKey struct {
	attribute, value, variant string
}

// segmentDelta is an increment of one breakdown counter row.
type segmentDelta struct {
	units, conversions int64
	sum, sumSq         float64
}

// segmentIncrements collects a transaction's breakdown increments, so that
// each row is written once.
type segmentIncrements map[segmentKey]*segmentDelta

func (in segmentIncrements) add(segments map[string]string, variant string, d segmentDelta) {
	for a, v := range segments {
		k := segmentKey{a, v, variant}
		c := in[k]
		if c == nil {
			c = &segmentDelta{}
			in[k] = c
		}
		c.units += d.units
		c.conversions += d.conversions
		c.sum += d.sum
		c.sumSq += d.sumSq
	}
}

// segmentCountersUpsert is the breakdown counters' upsert (counterUpsert).
var segmentCountersUpsert = counterUpsert("segment_counters", []string{"experiment_id", "attribute", "value", "variant_id"},
	[]string{"units", "conversions", "value_sum", "value_sum_sq"})

// queueSegments queues the increments as += upserts, in key order (lock
// order); they need no result, so they go out with the transaction's next
// statements or its COMMIT.
func (s *Store) queueSegments(p *pipe, experimentID string, in segmentIncrements) {
	if len(in) == 0 {
		return
	}
	keys := make([]segmentKey, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b segmentKey) int {
		return cmpStrings(a.attribute, b.attribute, a.value, b.value, a.variant, b.variant)
	})
	_ = chunks(keys, s.maxRows, func(keys []segmentKey) error {
		rb := newRowsBuilder(experimentID)
		for _, k := range keys {
			d := in[k]
			rb.add("($1, ?, ?, ?, ?, ?, ?, ?)", k.attribute, k.value, k.variant, d.units, d.conversions, d.sum, d.sumSq)
		}
		p.queue(PipeStmt{Query: segmentCountersUpsert.with(rb.String()), Args: rb.args,
			Wrap: func(err error) error { return fmt.Errorf("update breakdown counters of %s: %w", experimentID, err) }})
		return nil
	})
}

// cmpStrings compares pairs (a1, b1), (a2, b2), … in order.
func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

// segmentPair is one value of one attribute.
type segmentPair struct{ attribute, value string }

// segmentAdmission is what admitSegments decides from: the units' wanted
// values and what the experiment counts already, read by queueSegmentReads.
type segmentAdmission struct {
	experimentID string
	units        []store.Assignment
	wanted       map[segmentPair]bool // value → counted already
	pairs        []segmentPair        // the keys of wanted, in order
	counted      map[string]int64     // attribute → values counted
}

// queueSegmentReads queues the reads admitSegments needs: which attributes
// the experiment counts and how many values of each, and which of the
// units' values it counts. It returns nil, queueing nothing, when no unit
// carries segments. The caller queues it after the experiment's row lock
// (queueBump), so that the caps are exact on every replica, and passes the
// result to admitSegments after the next flush.
func (s *Store) queueSegmentReads(p *pipe, experimentID string, units []store.Assignment) *segmentAdmission {
	wanted := map[segmentPair]bool{}
	for _, u := range units {
		for a, v := range u.Segments {
			wanted[segmentPair{a, v}] = false
		}
	}
	if len(wanted) == 0 {
		return nil
	}
	adm := &segmentAdmission{experimentID: experimentID, units: units, wanted: wanted, counted: map[string]int64{}}
	p.queue(PipeStmt{Query: `SELECT attribute, n_values FROM segment_attributes WHERE experiment_id = $1`, Args: []any{experimentID},
		Rows: func(rows Rows) error {
			for rows.Next() {
				var a string
				var n int64
				if err := rows.Scan(&a, &n); err != nil {
					return err
				}
				adm.counted[a] = n
			}
			return rows.Err()
		},
		Wrap: func(err error) error { return fmt.Errorf("load breakdown attributes of %s: %w", experimentID, err) }})

	adm.pairs = make([]segmentPair, 0, len(wanted))
	for p := range wanted {
		adm.pairs = append(adm.pairs, p)
	}
	slices.SortFunc(adm.pairs, func(a, b segmentPair) int { return cmpStrings(a.attribute, b.attribute, a.value, b.value) })
	p.probeJoins()
	_ = chunks(adm.pairs, s.maxRows, func(ps []segmentPair) error {
		rb := newRowsBuilder(experimentID)
		for _, p := range ps {
			rb.add("($1, ?, ?)", p.attribute, p.value)
		}
		p.queue(PipeStmt{Query: `SELECT sv.attribute, sv.value FROM (VALUES ` + rb.String() + `) AS v
			 JOIN segment_values sv ON sv.experiment_id = v.column1 AND sv.attribute = v.column2 AND sv.value = v.column3`, Args: rb.args,
			Rows: func(rows Rows) error {
				for rows.Next() {
					var p segmentPair
					if err := rows.Scan(&p.attribute, &p.value); err != nil {
						return err
					}
					adm.wanted[p] = true
				}
				return rows.Err()
			},
			Wrap: func(err error) error { return fmt.Errorf("load breakdown values of %s: %w", experimentID, err) }})
		return nil
	})
	return adm
}

// admitSegments decides which breakdown segments each unit is counted in:
// its values of attributes the experiment counts, a value beyond an
// attribute's MaxSegmentValues as OtherSegment, and no attribute beyond the
// experiment's MaxSegmentAttributes. It queues the records of newly counted
// attributes and values (they need no result). It returns, per unit, the
// segments as stored with the assignment (JSON), nil for none.
func (s *Store) admitSegments(p *pipe, adm *segmentAdmission) map[string]map[string]string {
	experimentID, wanted, counted := adm.experimentID, adm.wanted, adm.counted
	// Admit new values in (attribute, value) order, so that which values of
	// a batch make the cap does not depend on map order.
	var fresh []segmentPair
	added := map[string]int64{}
	for _, p := range adm.pairs {
		if wanted[p] {
			continue
		}
		n, known := counted[p.attribute]
		switch {
		case !known && len(counted) >= store.MaxSegmentAttributes:
			continue // not counted at all
		case n >= store.MaxSegmentValues:
			continue // counted as OtherSegment below
		}
		counted[p.attribute] = n + 1
		added[p.attribute]++
		wanted[p] = true
		fresh = append(fresh, p)
	}
	if len(fresh) > 0 {
		_ = chunks(fresh, s.maxRows, func(ps []segmentPair) error {
			rb := newRowsBuilder(experimentID)
			for _, p := range ps {
				rb.add("($1, ?, ?)", p.attribute, p.value)
			}
			p.queue(PipeStmt{Query: `INSERT INTO segment_values (experiment_id, attribute, value) VALUES ` + rb.String() + `
				 ON CONFLICT (experiment_id, attribute, value) DO NOTHING`, Args: rb.args,
				Wrap: func(err error) error { return fmt.Errorf("record breakdown values of %s: %w", experimentID, err) }})
			return nil
		})
		rb := newRowsBuilder(experimentID)
		for _, a := range sortedKeys(added) {
			rb.add("($1, ?, ?)", a, added[a])
		}
		p.queue(PipeStmt{Query: `INSERT INTO segment_attributes (experiment_id, attribute, n_values) VALUES ` + rb.String() + `
			 ON CONFLICT (experiment_id, attribute) DO UPDATE SET n_values = segment_attributes.n_values + excluded.n_values`, Args: rb.args,
			Wrap: func(err error) error { return fmt.Errorf("record breakdown attributes of %s: %w", experimentID, err) }})
	}

	out := make(map[string]map[string]string, len(adm.units))
	for _, u := range adm.units {
		if len(u.Segments) == 0 {
			continue
		}
		m := make(map[string]string, len(u.Segments))
		for a, v := range u.Segments {
			switch _, known := counted[a]; {
			case wanted[segmentPair{a, v}]:
				m[a] = v
			case known:
				m[a] = store.OtherSegment
			}
		}
		if len(m) > 0 {
			out[u.UnitID] = m
		}
	}
	return out
}

// segmentsText is the stored form of a unit's segments.
func segmentsText(m map[string]string) (sql.NullString, error) {
	if len(m) == 0 {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return sql.NullString{}, fmt.Errorf("encode segments: %w", err)
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

// SegmentCounters returns the breakdown counters of the attribute.
func (s *Store) SegmentCounters(ctx context.Context, workspaceID, experimentID, attribute string) ([]store.SegmentCounters, error) {
	if err := requireExperiment(ctx, s.read, workspaceID, experimentID); err != nil {
		return nil, err
	}
	return queryAll(ctx, s.read, "load breakdown counters of "+experimentID, func(r scanner) (store.SegmentCounters, error) {
		var c store.SegmentCounters
		err := r.Scan(&c.Value, &c.VariantID, &c.Units, &c.Conversions, &c.Sum, &c.SumSq)
		return c, err
	}, `SELECT value, variant_id, units, conversions, value_sum, value_sum_sq FROM segment_counters
	    WHERE experiment_id = $1 AND attribute = $2`, experimentID, attribute)
}

// AssignmentAttributes returns the stored attributes of the units.
func (s *Store) AssignmentAttributes(ctx context.Context, workspaceID, experimentID string, unitIDs []string) (map[string]json.RawMessage, error) {
	if err := requireExperiment(ctx, s.read, workspaceID, experimentID); err != nil {
		return nil, err
	}
	out := map[string]json.RawMessage{}
	err := chunks(dedupe(unitIDs), s.maxRows, func(units []string) error {
		rb := newRowsBuilder(experimentID)
		for _, u := range units {
			rb.add("($1, ?)", u)
		}
		rows, err := s.read.QueryContext(ctx, `SELECT a.unit_id, a.attributes FROM (VALUES `+rb.String()+`) AS v
			 JOIN assignments a ON `+probeJoin("a", "experiment_id", "unit_id")+` WHERE a.attributes IS NOT NULL`, rb.args...)
		if err != nil {
			return fmt.Errorf("load attributes of %s: %w", experimentID, err)
		}
		defer rows.Close()
		for rows.Next() {
			var u, a string
			if err := rows.Scan(&u, &a); err != nil {
				return fmt.Errorf("load attributes of %s: %w", experimentID, err)
			}
			out[u] = json.RawMessage(a)
		}
		return rows.Err()
	})
	return out, err
}

// SegmentAttributes returns the attributes the experiment counts.
func (s *Store) SegmentAttributes(ctx context.Context, workspaceID, experimentID string) ([]string, error) {
	if err := requireExperiment(ctx, s.read, workspaceID, experimentID); err != nil {
		return nil, err
	}
	return queryAll(ctx, s.read, "load breakdown attributes of "+experimentID, func(r scanner) (string, error) {
		var a string
		err := r.Scan(&a)
		return a, err
	}, `SELECT attribute FROM segment_attributes WHERE experiment_id = $1 ORDER BY attribute`, experimentID)
}
