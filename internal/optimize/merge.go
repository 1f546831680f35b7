package optimize

import (
	"context"
	"maps"

	"github.com/samplit/samplit/internal/store"
)

// A group commit takes the batches of many requests. Handing them to the
// store one batch per request would, for one experiment, insert one
// request's units, bump the counters, then insert the next request's units
// while holding the counter rows: two replicas doing that at once deadlock
// on PostgreSQL (each waits for a unit the other inserted, while holding the
// counters the other needs), which the database breaks only after
// deadlock_timeout (1 s). It also costs a round of statements per request.
// So the batches of one experiment are merged into one before they reach the
// store: every unit is inserted in sorted order, then every counter row is
// written once, which is the lock order the store relies on.
//
// Merging changes no outcome: the store already treats a unit listed twice
// in a batch as stored once (the first mention is new), a repeated
// idempotency key as a duplicate after its first use, and a second binary
// conversion of a unit as a duplicate, exactly as if the requests had come
// one after the other.

// part locates one request's items inside a merged batch.
type part struct {
	batch  int // index of the merged batch
	lo, hi int // its items are [lo, hi) of that batch
}

// flushAssign merges the assignment batches of each experiment, stores
// them, and hands every request its own slice of the results. Batches of one
// experiment drawn under different weights (a policy refresh between two
// requests of the group) cannot share a batch, since the store credits the
// batch's weights to the expected counts; they go to a second transaction
// rather than a second batch of the same transaction, to keep the lock
// order. Each transaction commits before anyone is answered.
func (x *Experiments) flushAssign(ctx context.Context, reqs []store.AssignBatch) ([][]store.Assigned, error) {
	out := make([][]store.Assigned, len(reqs))
	pending := make([]int, len(reqs))
	for i := range pending {
		pending[i] = i
	}
	for len(pending) > 0 {
		var (
			merged []store.AssignBatch
			parts  = map[int]part{} // request index → its items
			byExp  = map[string]int{}
			later  []int
		)
		for _, i := range pending {
			r := reqs[i]
			b, ok := byExp[r.ExperimentID]
			if ok && !maps.Equal(merged[b].Weights, r.Weights) {
				later = append(later, i)
				continue
			}
			if !ok {
				b = len(merged)
				byExp[r.ExperimentID] = b
				merged = append(merged, store.AssignBatch{WorkspaceID: r.WorkspaceID, ExperimentID: r.ExperimentID, Weights: r.Weights, Window: r.Window})
			}
			lo := len(merged[b].Items)
			merged[b].Items = append(merged[b].Items, r.Items...)
			parts[i] = part{batch: b, lo: lo, hi: len(merged[b].Items)}
		}
		res, err := x.st.Assign(ctx, merged)
		if err != nil {
			return nil, err
		}
		for i, p := range parts {
			out[i] = res[p.batch][p.lo:p.hi:p.hi]
		}
		pending = later
	}
	return out, nil
}

// flushEvents merges the event batches of each experiment into one, stores
// them in one transaction, and hands every request its own results.
func (x *Experiments) flushEvents(ctx context.Context, reqs []store.EventBatch) ([][]store.EventResult, error) {
	var merged []store.EventBatch
	parts := make([]part, len(reqs))
	byExp := map[string]int{}
	for i, r := range reqs {
		b, ok := byExp[r.ExperimentID]
		if !ok {
			b = len(merged)
			byExp[r.ExperimentID] = b
			merged = append(merged, store.EventBatch{WorkspaceID: r.WorkspaceID, ExperimentID: r.ExperimentID, Metric: r.Metric, Window: r.Window})
		}
		lo := len(merged[b].Events)
		merged[b].Events = append(merged[b].Events, r.Events...)
		parts[i] = part{batch: b, lo: lo, hi: len(merged[b].Events)}
	}
	if len(merged) == len(reqs) {
		return x.st.RecordEvents(ctx, reqs) // nothing to merge
	}
	res, err := x.st.RecordEvents(ctx, merged)
	if err != nil {
		return nil, err
	}
	out := make([][]store.EventResult, len(reqs))
	for i, p := range parts {
		out[i] = res[p.batch][p.lo:p.hi:p.hi]
	}
	return out, nil
}
