package optimize

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/samplit/samplit/internal/store"
)

// TestMergeFlush holds mergeFlush to its promise: the batches of one parent
// reach the store as one, their items in the order of the requests; a
// parent whose batches differ in their settings keeps them apart; every
// request gets the results of its own items; and the requests' items are
// not written to (the merged batch has its own).
func TestMergeFlush(t *testing.T) {
	batch := func(funnel string, goal int, units ...string) store.ProgressBatch {
		b := store.ProgressBatch{WorkspaceID: "ws", FunnelID: funnel, Goal: goal}
		for _, u := range units {
			b.Items = append(b.Items, store.Progress{UnitID: u})
		}
		// Room after the items, which an append to an aliased slice
		// would write into.
		b.Items = slices.Grow(b.Items, 4)
		return b
	}
	reqs := []store.ProgressBatch{
		batch("f1", 2, "a", "b"),
		batch("f2", 2, "c"),
		batch("f1", 2, "d"),
		batch("f3", 2, "e"),
		batch("f3", 3, "f"), // f3's settings changed between two requests
		batch("f1", 2, "g", "h"),
	}
	var stored []store.ProgressBatch
	// The store's stand-in answers each item with its unit and batch.
	flush := func(_ context.Context, bs []store.ProgressBatch) ([][]store.ProgressResult, error) {
		stored = bs
		out := make([][]store.ProgressResult, len(bs))
		for i, b := range bs {
			for _, it := range b.Items {
				out[i] = append(out[i], store.ProgressResult{VariantID: fmt.Sprintf("%s@%d", it.UnitID, i)})
			}
		}
		return out, nil
	}
	res, err := mergeFlush(t.Context(), reqs, func(b store.ProgressBatch) string { return b.FunnelID },
		func(a, b store.ProgressBatch) bool { return a.Goal == b.Goal },
		func(b *store.ProgressBatch) *[]store.Progress { return &b.Items }, flush)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range stored {
		s := b.FunnelID + ":"
		for _, it := range b.Items {
			s += it.UnitID
		}
		got = append(got, s)
	}
	if want := []string{"f1:abdgh", "f2:c", "f3:e", "f3:f"}; !slices.Equal(got, want) {
		t.Errorf("stored batches %v, want %v", got, want)
	}
	want := [][]string{{"a@0", "b@0"}, {"c@1"}, {"d@0"}, {"e@2"}, {"f@3"}, {"g@0", "h@0"}}
	for i, r := range res {
		var ids []string
		for _, x := range r {
			ids = append(ids, x.VariantID)
		}
		if !slices.Equal(ids, want[i]) {
			t.Errorf("request %d got %v, want %v", i, ids, want[i])
		}
	}
	if u := reqs[0].Items[:3][2].UnitID; u != "" {
		t.Errorf("the first request's items were appended to (%q after them)", u)
	}
}
