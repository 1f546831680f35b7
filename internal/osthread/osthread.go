// Package osthread pins a goroutine whose latency bounds the server's
// throughput (a group commit's worker) to an OS thread of its own, which
// asks the kernel to wake it promptly.
//
// SQLite's commit blocks its thread in fsync, and every request of the
// group, and the next group, waits for that thread to run again. With both
// cores of a two-core machine busy, a 32 kB write and fsync took 430 µs on
// average against 150 µs with the cores idle (p99 4.3 ms against 0.24 ms):
// the disk answers as fast, the thread then waits for a core. Under the
// load test a group of 11 new assignments took 0.9–1.0 ms to commit against
// 0.5–0.6 ms alone. A thread that only commits and sleeps in fsync is likely
// treated by the scheduler as the sleeper it is, where a goroutine hopping
// between the runtime's threads shares their record of CPU use; on Linux
// 6.12 and later it also asks for the shortest time slice, which lets its
// wake-up preempt a running thread. Measured in six alternating runs each
// (docs/load.md, "Sixteenth pass"): the lock alone +9%, the lock and the
// slice +16% new-unit assignments on SQLite.
package osthread

// Slice is the time slice Pin asks the kernel for, in nanoseconds: the
// shortest Linux accepts (it clamps custom slices to 0.1–100 ms).
const Slice = 100_000
