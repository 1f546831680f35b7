package optimize

import (
	"hash/fnv"
	"testing"
)

// TestFNV32a holds the committer's inline hash to hash/fnv's FNV-1a, which
// it replaced: the same key goes to the same worker as before.
func TestFNV32a(t *testing.T) {
	for _, s := range []string{"", "a", "exp_01jx4z6v0f8b9ctq3w2m5n7r1k", "é\x00\xff"} {
		h := fnv.New32a()
		h.Write([]byte(s))
		if got, want := fnv32a(s), h.Sum32(); got != want {
			t.Errorf("fnv32a(%q) = %#x, want %#x", s, got, want)
		}
	}
}
