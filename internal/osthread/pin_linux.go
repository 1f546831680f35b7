package osthread

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Pin locks the calling goroutine to its current OS thread for the rest of
// its life and asks the kernel to give that thread the custom time slice
// Slice (sched_setattr with sched_runtime for SCHED_OTHER, EEVDF's custom
// slice; kernels before 6.12 ignore the field). The goroutine must not
// unlock it: when it exits, still locked, the runtime ends the thread
// instead of reusing its changed scheduling for other goroutines.
//
// The lock holds even when the error is not nil: the error says only that
// the kernel refused the slice (a seccomp profile, say), which leaves the
// thread as the kernel's default would.
func Pin() error {
	runtime.LockOSThread()
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return fmt.Errorf("sched_getattr: %w", err)
	}
	if attr.Policy != unix.SCHED_NORMAL {
		return nil // a real-time or batch policy set by the operator stays
	}
	attr.Size = unix.SizeofSchedAttr
	attr.Runtime = Slice
	if err := unix.SchedSetAttr(0, attr, 0); err != nil {
		return fmt.Errorf("sched_setattr: %w", err)
	}
	return nil
}

// ThreadSlice returns the calling thread's time slice in nanoseconds as
// the kernel reports it: the custom one, or on kernels with custom slices
// the default (1.4 ms on the machine of docs/load.md's sixteenth pass), or
// 0 on older kernels. The goroutine should be locked to its thread for the
// answer to mean anything.
func ThreadSlice() (uint64, error) {
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return 0, fmt.Errorf("sched_getattr: %w", err)
	}
	return attr.Runtime, nil
}
