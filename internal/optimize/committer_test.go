package optimize

import (
	"context"
	"hash/fnv"
	"testing"

	"github.com/samplit/samplit/internal/osthread"
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

// TestCommitterPinsItsWorkers: with PinWriters every flush runs on a thread
// that has osthread's short slice, and without it on one that has not.
// Where the kernel ignores custom slices (before Linux 6.12) there is
// nothing to tell apart, and the test is skipped; osthread's own tests say
// whether that is the kernel or Pin.
func TestCommitterPinsItsWorkers(t *testing.T) {
	probe := make(chan uint64)
	go func() {
		_ = osthread.Pin()
		s, _ := osthread.ThreadSlice()
		probe <- s // and the goroutine ends, taking its thread with it
	}()
	if <-probe != osthread.Slice {
		t.Skip("this kernel keeps no custom time slices")
	}
	for _, pin := range []bool{true, false} {
		var slices []uint64
		c := newCommitter(Options{Writers: 1, PinWriters: pin}, func(_ context.Context, reqs []int) ([]int, error) {
			s, err := osthread.ThreadSlice()
			if err != nil {
				return nil, err
			}
			slices = append(slices, s) // one worker: no other flush runs now
			return reqs, nil
		}, nil)
		for i := range 20 {
			if _, err := c.do(t.Context(), "experiment", i); err != nil {
				t.Fatal(err)
			}
		}
		c.close()
		for _, s := range slices {
			if pinned := s == osthread.Slice; pinned != pin {
				t.Fatalf("PinWriters %v: a flush ran on a thread with slice %d ns", pin, s)
			}
		}
	}
}
