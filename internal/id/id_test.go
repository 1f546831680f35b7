package id

import (
	"sort"
	"testing"
)

func TestNewIsPrefixedUniqueAndOrdered(t *testing.T) {
	const n = 10000
	ids := make([]string, n)
	seen := make(map[string]bool, n)
	for i := range ids {
		ids[i] = New(Experiment)
		if !HasPrefix(ids[i], Experiment) {
			t.Fatalf("id %q does not have the exp_ prefix and 26 characters", ids[i])
		}
		if seen[ids[i]] {
			t.Fatalf("duplicate id %q", ids[i])
		}
		seen[ids[i]] = true
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids made one after another do not sort in creation order")
	}
}
