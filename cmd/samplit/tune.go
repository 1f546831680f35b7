package main

import (
	"runtime"
	"runtime/debug"
	"sync/atomic"
)

// serveGCPercent is the garbage collector's target of `samplit serve` when
// the operator sets no GOGC. The server's live heap under load is small
// (about 5 MB while assigning), so at Go's default of 100 it collected about
// 30 times a second and the collector's work was a quarter of the CPU of an
// assignment. At 400, in three alternating pairs of `scripts/loadtest/run 10`
// on a quiet machine (docs/load.md), new-unit assignment went from
// 7.4k–8.3k to 9.3k–11.7k req/s on SQLite (p99 10.6–16.9 ms to 7.5–9.4 ms)
// and from 6.9k–8.2k to 8.6k–10.4k on PostgreSQL. The price is memory: the
// heap may grow to five times the live heap instead of twice; GOMEMLIMIT
// (honoured by the runtime) caps it where memory is tight.
const serveGCPercent = 400

// tuneGC sets serveGCPercent unless GOGC is set: the runtime has already
// applied that one, and it is the operator's to choose.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
}

// tuneProcs runs the server with twice the runtime's default number of Ps
// on SQLite, unless GOMAXPROCS is set, and returns the number before and
// after; once per process (a second call, as the in-process tests make,
// changes nothing). SQLite's writer makes blocking system calls (the WAL's
// pwrite and fsync of every group commit), and a goroutine in one keeps its
// P until the runtime's monitor hands it on; with spare Ps the HTTP
// handlers run meanwhile. Measured on 2 cores, alternating: new-unit
// assignment +7–11% on SQLite with 4 Ps, and 2–5% less on PostgreSQL,
// whose waits are on the network, so there it keeps the default
// (docs/load.md, "Eighth pass"). Setting it stops the runtime from
// following later changes of the CPU limit.
func tuneProcs(postgres bool, getenv func(string) string) (from, to int) {
	from = runtime.GOMAXPROCS(0)
	if postgres || getenv("GOMAXPROCS") != "" || !procsTuned.CompareAndSwap(false, true) {
		return from, from
	}
	runtime.GOMAXPROCS(2 * from)
	return from, 2 * from
}

// procsTuned is whether tuneProcs has raised the number of Ps.
var procsTuned atomic.Bool
