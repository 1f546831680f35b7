//go:build unix

package api

import (
	"syscall"
	"testing"
	"time"
)

// cpuClock measures the CPU time (user and system, all threads) of the
// process during a benchmark, reported as cpu-ns/op: on a machine shared
// with other work it moves less than the wall time, which also counts the
// time the benchmark waited for a core. (PostgreSQL's own CPU is not in
// it.)
type cpuClock struct {
	b     *testing.B
	start time.Duration
}

func startCPU(b *testing.B) cpuClock { return cpuClock{b: b, start: processCPU(b)} }

func (c cpuClock) report() {
	c.b.ReportMetric(float64(processCPU(c.b)-c.start)/float64(c.b.N), "cpu-ns/op")
}

// processCPU is the process's CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
