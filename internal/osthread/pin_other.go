//go:build !linux

package osthread

import "runtime"

// Pin locks the calling goroutine to its current OS thread for the rest of
// its life. Only Linux is asked for a short time slice.
func Pin() error {
	runtime.LockOSThread()
	return nil
}

// ThreadSlice returns 0: only Linux has custom time slices.
func ThreadSlice() (uint64, error) { return 0, nil }
