package postgres_test

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/dbtest"
	"github.com/samplit/samplit/internal/store/postgres"
	"github.com/samplit/samplit/internal/store/sqlstore"
)

// BenchmarkGroupCommit times one group commit of the serving path, one
// after another (no concurrency, so the figure is the latency the round
// trips add): a new assignment, a group of 16, and 100 continuous events.
// On a loaded machine the time per op says little; the backend's waits per
// op (about one per round trip) and its CPU per op do. "pipeline" is the
// store as opened; "one-by-one" is the same store with
// the dialect's Pipeline removed, so that each statement is its own round
// trip through database/sql, as before issue 16. Both skip the WAL flush
// at commit (synchronous_commit off, for this benchmark's session only) so
// that what they compare is the round trips; "durable" is the pipeline
// with the flush, as the server commits, so that the difference is what
// the flush costs a group: its time, the backend's CPU (on a virtual
// machine the write and fdatasync are largely CPU) and its waits.
func BenchmarkGroupCommit(b *testing.B) {
	dbtest.PostgresURL(b)
	for _, mode := range []string{"pipeline", "durable", "one-by-one"} {
		b.Run(mode, func(b *testing.B) {
			st := openSchema(b, postgres.Options{})
			st.WriteDB().SetMaxOpenConns(1)
			if mode != "durable" {
				if _, err := st.WriteDB().ExecContext(b.Context(), "SET synchronous_commit = off"); err != nil {
					b.Fatal(err)
				}
			}
			var s store.Store = st
			if mode == "one-by-one" {
				d := st.Dialect()
				d.Pipeline = nil
				s = sqlstore.New(st.WriteDB(), st.WriteDB(), d)
			}
			ctx := b.Context()
			t0 := time.Now().UTC()
			ws, e := planExperiment(b, s, t0, store.MetricContinuous, 0)
			weights := map[string]float64{e.Variants[0].ID: 0.5, e.Variants[1].ID: 0.5}
			// nextUnit is a new unit's assignment; assign stores a group of
			// them in one call.
			n := 0
			nextUnit := func() store.Assignment {
				n++
				return store.Assignment{UnitID: fmt.Sprintf("u%d", n), VariantID: e.Variants[n%2].ID, Propensity: 0.5, Epoch: 1, AssignedAt: t0}
			}
			assign := func(items ...store.Assignment) {
				if _, err := s.Assign(ctx, []store.AssignBatch{{WorkspaceID: ws.ID, ExperimentID: e.ID, Weights: weights, Items: items}}); err != nil {
					b.Fatal(err)
				}
			}
			var backend int
			if err := st.WriteDB().QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
				b.Fatal(err)
			}
			b.Run("assign", func(b *testing.B) {
				w0, c0 := backendStats(b, backend)
				for b.Loop() {
					assign(nextUnit())
				}
				reportBackend(b, backend, w0, c0)
			})
			// A group of 16 new units, about a group commit's size under
			// scripts/loadtest/run: the backend's CPU per op over 16 is its
			// CPU per assignment.
			b.Run("assign16", func(b *testing.B) {
				items := make([]store.Assignment, 16)
				w0, c0 := backendStats(b, backend)
				for b.Loop() {
					for i := range items {
						items[i] = nextUnit()
					}
					assign(items...)
				}
				reportBackend(b, backend, w0, c0)
			})
			for n < 100 {
				assign(nextUnit())
			}
			b.Run("events100", func(b *testing.B) {
				evs := make([]store.Event, 100)
				for i := range evs {
					evs[i] = store.Event{UnitID: fmt.Sprintf("u%d", i+1), Value: 1.5, At: t0}
				}
				w0, c0 := backendStats(b, backend)
				for b.Loop() {
					if _, err := s.RecordEvents(ctx, []store.EventBatch{{WorkspaceID: ws.ID, ExperimentID: e.ID,
						Metric: store.MetricContinuous, Events: evs}}); err != nil {
						b.Fatal(err)
					}
				}
				reportBackend(b, backend, w0, c0)
			})
		})
	}
}

// backendStats reads the PostgreSQL backend's voluntary context switches
// (each time it waited: for the client's next message, mostly, so about
// one per round trip) and its CPU time, when the server runs on this
// machine and /proc shows it; -1 otherwise.
func backendStats(b *testing.B, pid int) (waits int64, cpu time.Duration) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1, -1
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
			waits, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1, -1
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return waits, time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

func reportBackend(b *testing.B, pid int, w0 int64, c0 time.Duration) {
	w1, c1 := backendStats(b, pid)
	if w0 < 0 || w1 < 0 {
		return
	}
	b.ReportMetric(float64(w1-w0)/float64(b.N), "backend-waits/op")
	b.ReportMetric(float64(c1-c0)/float64(time.Microsecond)/float64(b.N), "backend-cpu-µs/op")
}
