package osthread_test

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/samplit/samplit/internal/osthread"
)

// migrations runs setup on a new goroutine, then parks and resumes that
// goroutine n times (a channel, a sleep and a yield) while other goroutines
// keep the runtime's threads busy, and returns the distinct thread ids it
// resumed on. A goroutine that is not locked resumes on whichever thread
// picks it up.
func migrations(n int, setup func()) map[int]bool {
	stop := make(chan struct{})
	var busy sync.WaitGroup
	for range runtime.GOMAXPROCS(0) + 2 {
		busy.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					time.Sleep(10 * time.Microsecond)
				}
			}
		})
	}
	tids := map[int]bool{}
	next := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		setup()
		for range n {
			<-next
			time.Sleep(20 * time.Microsecond)
			runtime.Gosched()
			tids[unix.Gettid()] = true
		}
	}()
	for range n {
		next <- struct{}{}
	}
	<-done
	close(stop)
	busy.Wait()
	return tids
}

func TestPinKeepsTheGoroutineOnOneThread(t *testing.T) {
	// With one P the runtime tends to run everything on one thread, and
	// the control below could not show a goroutine moving.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(4, runtime.GOMAXPROCS(0))))
	var err error
	tids := migrations(500, func() { err = osthread.Pin() })
	if err != nil {
		t.Logf("Pin: %v (the slice was refused; the lock is what this test checks)", err)
	}
	if len(tids) != 1 {
		t.Errorf("a pinned goroutine ran on %d threads, want 1", len(tids))
	}
	// The control: the same goroutine unpinned does move, so the check
	// above can fail.
	if tids := migrations(500, func() {}); len(tids) < 2 {
		t.Errorf("an unpinned goroutine ran on %d thread(s): the test cannot tell a pinned one apart", len(tids))
	}
}

// TestPinAsksForTheShortSlice: on a kernel with custom slices (Linux 6.12
// and later) the pinned thread reports Slice as its sched_runtime.
func TestPinAsksForTheShortSlice(t *testing.T) {
	if !kernelAtLeast(t, 6, 12) {
		t.Skip("custom time slices need Linux 6.12")
	}
	got := make(chan uint64, 1)
	go func() {
		if err := osthread.Pin(); err != nil {
			t.Error(err)
		}
		r, err := osthread.ThreadSlice()
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	if r := <-got; r != osthread.Slice {
		t.Errorf("sched_runtime of the pinned thread = %d ns, want %d", r, osthread.Slice)
	}
}

func kernelAtLeast(t *testing.T, major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(unix.ByteSliceToString(u.Release[:]), ".", 3)
	if len(parts) < 2 {
		t.Fatalf("kernel release %q", u.Release)
	}
	maj, _ := strconv.Atoi(parts[0])
	mnr, _ := strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return maj > major || maj == major && mnr >= minor
}

// TestPinLeavesAnotherPolicyAlone: a thread the operator put under another
// policy (SCHED_BATCH here, which needs no privilege) keeps it and gets no
// custom slice.
func TestPinLeavesAnotherPolicyAlone(t *testing.T) {
	if !kernelAtLeast(t, 6, 12) {
		t.Skip("custom time slices need Linux 6.12")
	}
	got := make(chan *unix.SchedAttr, 1)
	go func() {
		runtime.LockOSThread() // the goroutine ends locked: the thread goes with it
		batch := &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_BATCH}
		if err := unix.SchedSetAttr(0, batch, 0); err != nil {
			t.Error(err)
		}
		if err := osthread.Pin(); err != nil {
			t.Error(err)
		}
		attr, err := unix.SchedGetAttr(0, 0)
		if err != nil {
			t.Error(err)
		}
		got <- attr
	}()
	attr := <-got
	if attr == nil {
		return
	}
	if attr.Policy != unix.SCHED_BATCH || attr.Runtime == osthread.Slice {
		t.Errorf("after Pin: policy %d, slice %d ns; want SCHED_BATCH (%d) and no custom slice", attr.Policy, attr.Runtime, unix.SCHED_BATCH)
	}
}
