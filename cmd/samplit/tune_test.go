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
// in system calls), once per process; PostgreSQL and an explicit
// GOMAXPROCS keep them.
func TestTuneProcs(t *testing.T) {
	orig, tuned := runtime.GOMAXPROCS(2), procsTuned.Load()
	defer func() { runtime.GOMAXPROCS(orig); procsTuned.Store(tuned) }()
	procsTuned.Store(false) // an in-process serve of another test may have tuned it
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "GOMAXPROCS" {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		postgres bool
		env      string
		want     int
	}{{true, "", 2}, {false, "2", 2}, {true, "3", 2}, {false, "", 4}, {false, "", 2}} {
		runtime.GOMAXPROCS(2)
		from, to := tuneProcs(tc.postgres, env(tc.env))
		if got := runtime.GOMAXPROCS(0); from != 2 || to != tc.want || got != tc.want {
			t.Errorf("postgres %v, GOMAXPROCS %q: %d → %d, runtime %d; want 2 → %d", tc.postgres, tc.env, from, to, got, tc.want)
		}
	}
}
