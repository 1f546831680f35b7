package main

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestServeGCPercent(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)

	tuneGC(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != serveGCPercent {
		t.Errorf("without GOGC the collector's percent is %d, want %d", got, serveGCPercent)
	}
	tuneGC(func(k string) string {
		if k == "GOGC" {
			return "50"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set the percent was changed to %d", got)
	}
}

// TestTuneProcs: serving SQLite doubles the runtime's Ps (its writer blocks
// in system calls) and PostgreSQL on this machine leaves a core to it, once
// per process; PostgreSQL elsewhere and an explicit GOMAXPROCS keep them.
func TestTuneProcs(t *testing.T) {
	orig, tuned := runtime.GOMAXPROCS(2), procsTuned.Load()
	defer func() { runtime.GOMAXPROCS(orig); procsTuned.Store(tuned) }()
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "GOMAXPROCS" {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		db      database
		procs   int // the runtime's before
		env     string
		want    int
		already bool // a serve of this process tuned them before
	}{
		{embedded, 2, "", 4, false},
		{embedded, 2, "2", 2, false},
		{embedded, 2, "", 2, true},
		{postgresHere, 2, "", 1, false},
		{postgresHere, 4, "", 3, false},
		{postgresHere, 1, "", 1, false}, // one core: nothing to leave
		{postgresHere, 2, "2", 2, false},
		{postgresHere, 2, "", 2, true},
		{postgresElsewhere, 2, "", 2, false},
		{postgresElsewhere, 2, "3", 2, false},
	} {
		runtime.GOMAXPROCS(tc.procs)
		procsTuned.Store(tc.already)
		from, to := tuneProcs(tc.db, env(tc.env))
		if got := runtime.GOMAXPROCS(0); from != tc.procs || to != tc.want || got != tc.want {
			t.Errorf("%v, %d Ps, GOMAXPROCS %q, tuned before %v: %d → %d, runtime %d; want %d → %d",
				tc.db, tc.procs, tc.env, tc.already, from, to, got, tc.procs, tc.want)
		}
	}
}
