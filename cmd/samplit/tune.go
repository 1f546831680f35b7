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

// database is where the server's database runs, as tuneProcs sees it.
type database int

const (
	embedded          database = iota // SQLite, in the server's process
	postgresHere                      // PostgreSQL on this machine (postgres.OnThisMachine)
	postgresElsewhere                 // PostgreSQL on another machine
)

func (d database) String() string {
	switch d {
	case embedded:
		return "sqlite"
	case postgresHere:
		return "postgres on this machine"
	}
	return "postgres elsewhere"
}

// tuneProcs sets the runtime's number of Ps for the server's database,
// unless GOMAXPROCS is set, and returns the number before and after; once
// per process (a second call, as the in-process tests make, changes
// nothing). Setting it stops the runtime from following later changes of
// the CPU limit.
//
//   - SQLite: twice the default. Its writer makes blocking system calls (the
//     WAL's pwrite and fsync of every group commit), and a goroutine in one
//     keeps its P until the runtime's monitor hands it on; with spare Ps the
//     HTTP handlers run meanwhile. +7–11% new-unit assignments on 2 cores
//     (docs/load.md, "Eighth pass").
//   - PostgreSQL on this machine: one fewer than the default (at least one),
//     leaving a core to the database, whose backend sleeps two or three
//     times in every durable commit (the client's message, the WAL's write
//     and fdatasync) and must find a core each time it wakes. With the
//     default every core also runs a P, and Ps that run out of work spin
//     and steal before they sleep. On 2 cores with wrk beside it: 11 of 13
//     alternating pairs used less of Samplit's CPU per assignment with one P
//     (−11% to −46%), 10 of 13 assigned more per second, median +13%
//     (docs/load.md, "Seventeenth pass"; the fourteenth measured the same).
//     Larger machines were not measured.
//   - PostgreSQL elsewhere: the default; one core fewer would only cap the
//     server, and more Ps measured 2–5% slower ("Eighth pass").
func tuneProcs(db database, getenv func(string) string) (from, to int) {
	from = runtime.GOMAXPROCS(0)
	to = from
	switch db {
	case embedded:
		to = 2 * from
	case postgresHere:
		to = max(1, from-1)
	}
	if to == from || getenv("GOMAXPROCS") != "" || !procsTuned.CompareAndSwap(false, true) {
		return from, from
	}
	runtime.GOMAXPROCS(to)
	return from, to
}

// procsTuned is whether tuneProcs has changed the number of Ps.
var procsTuned atomic.Bool
