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
// written once, which is the lock order the store relies on. A funnel's
// progress batches are merged the same way (flushProgress): each batch
// takes the funnel's lock and reads and writes its counter rows.
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
	return mergeFlush(ctx, reqs, func(b store.EventBatch) string { return b.ExperimentID },
		func(a, b store.EventBatch) bool {
			return a.WorkspaceID == b.WorkspaceID && a.Metric == b.Metric && a.Window == b.Window
		},
		func(b *store.EventBatch) *[]store.Event { return &b.Events }, x.st.RecordEvents)
}

// flushProgress merges the progress batches of each funnel into one, as
// flushEvents does: a group of one-unit progress calls then costs the
// funnel's lock, reads and counter upserts once instead of once per call.
func (x *Funnels) flushProgress(ctx context.Context, reqs []store.ProgressBatch) ([][]store.ProgressResult, error) {
	return mergeFlush(ctx, reqs, func(b store.ProgressBatch) string { return b.FunnelID },
		func(a, b store.ProgressBatch) bool {
			return a.WorkspaceID == b.WorkspaceID && a.Goal == b.Goal && a.Window == b.Window && a.BucketWidth == b.BucketWidth
		},
		func(b *store.ProgressBatch) *[]store.Progress { return &b.Items }, x.st.RecordProgress)
}

// mergeFlush stores reqs with flush, the batches of one parent (parent:
// the experiment or funnel) merged into one, their items in the order of
// the requests, and hands every request its own slice of the results. A
// parent whose batches are not all alike (same: the settings a batch is
// stored under, which a refresh between two requests can change) keeps its
// batches as they came, so that no item is stored under another's settings.
func mergeFlush[B, I, R any](ctx context.Context, reqs []B, parent func(B) string, same func(a, b B) bool,
	items func(*B) *[]I, flush func(context.Context, []B) ([][]R, error)) ([][]R, error) {
	firstOf := map[string]int{}
	mixed := map[string]bool{}
	for i, r := range reqs {
		k := parent(r)
		if f, ok := firstOf[k]; !ok {
			firstOf[k] = i
		} else if !same(reqs[f], r) {
			mixed[k] = true
		}
	}
	if len(firstOf) == len(reqs) {
		return flush(ctx, reqs) // nothing to merge
	}
	var merged []B
	parts := make([]part, len(reqs))
	into := map[string]int{} // parent → its merged batch
	for i := range reqs {
		k := parent(reqs[i])
		b, ok := into[k]
		if !ok || mixed[k] {
			b = len(merged)
			m := reqs[i]
			*items(&m) = nil // the merged batch's own items, not an alias of the request's
			merged = append(merged, m)
			into[k] = b
		}
		its := items(&merged[b])
		lo := len(*its)
		*its = append(*its, *items(&reqs[i])...)
		parts[i] = part{batch: b, lo: lo, hi: len(*its)}
	}
	res, err := flush(ctx, merged)
	if err != nil {
		return nil, err
	}
	out := make([][]R, len(reqs))
	for i, p := range parts {
		out[i] = res[p.batch][p.lo:p.hi:p.hi]
	}
	return out, nil
}
