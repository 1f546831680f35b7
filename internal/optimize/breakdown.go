package optimize

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/store"
)

// BreakdownSegments is how many values a breakdown shows by name, the most
// frequent first; the rest are summed into store.OtherSegment.
const BreakdownSegments = 20

// Breakdown is the per-variant statistics of each value of one attribute.
type Breakdown struct {
	Attribute string    `json:"attribute"`
	Segments  []Segment `json:"segments"`
}

// Segment is one value of a breakdown.
type Segment struct {
	Value    string           `json:"value"`
	Units    int64            `json:"units"`
	Variants []SegmentVariant `json:"variants"`
}

// SegmentVariant is one variant's line of a Segment.
type SegmentVariant struct {
	Key         string  `json:"key"`
	Units       int64   `json:"units"`
	Conversions int64   `json:"conversions"`
	Sum         float64 `json:"sum"`
	Mean        float64 `json:"mean"`
	CILow       float64 `json:"ci_low"`
	CIHigh      float64 `json:"ci_high"`
	PBest       float64 `json:"p_best"`
}

// Breakdown reads the experiment's breakdown counters of the attribute (a
// bounded number of rows, whatever the number of units: store.Segments) and
// describes each of the BreakdownSegments most frequent values, and the rest
// as store.OtherSegment, with engine.Summarize.
func (x *Experiments) Breakdown(ctx context.Context, e *store.Experiment, attribute string) (*Breakdown, error) {
	rows, err := x.st.SegmentCounters(ctx, e.WorkspaceID, e.ID, attribute)
	if err != nil {
		return nil, fmt.Errorf("load breakdown of %s by %q: %w", e.ID, attribute, err)
	}
	pos := make(map[string]int, len(e.Variants))
	for i, v := range e.Variants {
		pos[v.ID] = i
	}
	byValue := map[string][]engine.Arm{}
	units := map[string]int64{}
	add := func(value string, r store.SegmentCounters) {
		arms := byValue[value]
		if arms == nil {
			arms = make([]engine.Arm, len(e.Variants))
			for i, v := range e.Variants {
				arms[i].Key, arms[i].Control = v.Key, v.Control
			}
			byValue[value] = arms
		}
		i, ok := pos[r.VariantID]
		if !ok {
			return
		}
		a := &arms[i]
		a.Units += r.Units
		a.Conversions += r.Conversions
		a.Sum += r.Sum
		a.SumSquares += r.SumSq
		units[value] += r.Units
	}
	for _, r := range rows {
		add(r.Value, r)
	}
	values := make([]string, 0, len(byValue))
	for v := range byValue {
		if v != store.OtherSegment {
			values = append(values, v)
		}
	}
	// Most units first; ties by value, so that the order is stable.
	slices.SortFunc(values, func(a, b string) int {
		return cmp.Or(cmp.Compare(units[b], units[a]), cmp.Compare(a, b))
	})
	out := &Breakdown{Attribute: attribute, Segments: []Segment{}}
	shown := values[:min(len(values), BreakdownSegments)]
	other := byValue[store.OtherSegment]
	for _, v := range values[len(shown):] {
		if other == nil {
			other = make([]engine.Arm, len(e.Variants))
			for i, vr := range e.Variants {
				other[i].Key, other[i].Control = vr.Key, vr.Control
			}
		}
		for i, a := range byValue[v] {
			other[i].Merge(a)
		}
	}
	settings := engineSettings(e.Settings)
	segment := func(value string, arms []engine.Arm) Segment {
		sg := Segment{Value: value, Variants: make([]SegmentVariant, len(arms))}
		for i, s := range engine.Summarize(engine.Metric(e.Metric), arms, settings) {
			a := arms[i]
			sum := a.Sum
			if e.Metric == store.MetricBinary {
				sum = float64(a.Conversions)
			}
			sg.Units += a.Units
			sg.Variants[i] = SegmentVariant{Key: a.Key, Units: a.Units, Conversions: a.Conversions, Sum: sum,
				Mean: s.Mean, CILow: s.CILow, CIHigh: s.CIHigh, PBest: s.PBest}
		}
		return sg
	}
	for _, v := range shown {
		out.Segments = append(out.Segments, segment(v, byValue[v]))
	}
	if other != nil {
		out.Segments = append(out.Segments, segment(store.OtherSegment, other))
	}
	return out, nil
}
