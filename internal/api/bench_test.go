package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

// BenchmarkAssignNewUnit measures the whole server-side path of a
// single-unit assignment of a new unit — routing, authentication, the
// experiment lookup, the strategy's draw and the durable group commit — on
// the real SQLite store (and PostgreSQL when SAMPLIT_TEST_POSTGRES_URL is
// set), with 16 requests in flight per core (a load balancer's worth of
// concurrency). The load test (scripts/loadtest) adds the network and HTTP
// parsing on top.
func BenchmarkAssignNewUnit(b *testing.B) {
	for _, kind := range backends(b) {
		b.Run(kind, func(b *testing.B) { benchAssignNewUnit(b, kind) })
	}
}

func benchAssignNewUnit(b *testing.B, kind string) {
	reg := prometheus.NewRegistry()
	e := newEnvWith(b, kind, Options{}, optimize.Options{Registerer: reg})
	e.must(201, "POST", "/v1/experiments", e.admin,
		`{"key":"bench","variants":[{"key":"a"},{"key":"b"},{"key":"c"}],"start":true}`)
	var n atomic.Int64
	b.SetParallelism(16)
	cpu := startCPU(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := fmt.Sprintf(`{"unit_id":"u-%d"}`, n.Add(1))
			r := httptest.NewRequest("POST", "/v1/experiments/bench/assign", strings.NewReader(body))
			r.Header.Set("Authorization", "Bearer "+e.admin)
			w := httptest.NewRecorder()
			e.srv.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
	b.StopTimer()
	cpu.report()
	reportGroupCommits(b, reg, "assign")
}

// reportGroupCommits reports the mean number of requests per group commit
// of the queue (samplit_group_commit_size) as the benchmark's reqs/commit:
// how well the committer batches at the benchmark's concurrency, a figure
// that the machine's load moves less than the wall time.
func reportGroupCommits(b *testing.B, reg *prometheus.Registry, queue string) {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "samplit_group_commit_size" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "queue" && l.GetValue() == queue && m.GetHistogram().GetSampleCount() > 0 {
					h := m.GetHistogram()
					b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount()), "reqs/commit")
				}
			}
		}
	}
}

// BenchmarkBreakdown measures GET …/results?breakdown=country — the whole
// request: the results and the breakdown — for an experiment of 10⁶ units
// (SAMPLIT_BENCH_UNITS overrides) whose country takes 50 values, a tenth of
// them with an event. The units are stored through the store's Assign and
// RecordEvents, which keep the breakdown counters as they write; the
// request then reads 50 values × 2 variants of counters, so its time does
// not grow with the units (the counters are bounded by the caps of
// store.MaxSegmentValues and MaxSegmentAttributes).
func BenchmarkBreakdown(b *testing.B) {
	for _, kind := range backends(b) {
		b.Run(kind, func(b *testing.B) { benchBreakdown(b, kind) })
	}
}

func benchBreakdown(b *testing.B, kind string) {
	units := 1_000_000
	if v := os.Getenv("SAMPLIT_BENCH_UNITS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		units = n
	}
	e := newEnv(b, kind, Options{})
	x := decodeInto[experimentOut](b, e.must(201, "POST", "/v1/experiments", e.admin,
		`{"key":"bench","metric":"continuous","variants":[{"key":"a"},{"key":"b"}],"start":true}`))
	ws := e.defaultWorkspace()
	ids := []string{x.variantID("a"), x.variantID("b")}
	weights := map[string]float64{ids[0]: 0.5, ids[1]: 0.5}
	ctx := context.Background()
	start := time.Now()
	now := time.Now()
	for from := 0; from < units; from += 1000 {
		batch := store.AssignBatch{WorkspaceID: ws, ExperimentID: x.ID, Weights: weights}
		var events []store.Event
		for i := from; i < min(from+1000, units); i++ {
			u := fmt.Sprintf("u%07d", i)
			country := fmt.Sprintf("c%02d", i%50)
			batch.Items = append(batch.Items, store.Assignment{UnitID: u, VariantID: ids[i%2], Propensity: 0.5, Epoch: 1, AssignedAt: now,
				Attributes: json.RawMessage(`{"country":"` + country + `"}`), Segments: map[string]string{"country": country}})
			if i%10 == 0 {
				events = append(events, store.Event{UnitID: u, Value: float64(i % 7), At: now})
			}
		}
		if _, err := e.store.Assign(ctx, []store.AssignBatch{batch}); err != nil {
			b.Fatal(err)
		}
		if _, err := e.store.RecordEvents(ctx, []store.EventBatch{{WorkspaceID: ws, ExperimentID: x.ID, Metric: store.MetricContinuous, Events: events}}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%s: stored %d units with their breakdown counters in %v", kind, units, time.Since(start).Round(time.Millisecond))
	for b.Loop() {
		r := httptest.NewRequest("GET", "/v1/experiments/bench/results?breakdown=country", nil)
		r.Header.Set("Authorization", "Bearer "+e.admin)
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		var res breakdownOut
		if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
			b.Fatal(err)
		}
		if len(res.Breakdown.Segments) != 21 || res.Variants[0].Units+res.Variants[1].Units != int64(units) {
			b.Fatalf("breakdown of %d segments over %d units", len(res.Breakdown.Segments), res.Variants[0].Units+res.Variants[1].Units)
		}
	}
}

// BenchmarkEventsBatch measures the server-side path of one request of 1000
// continuous events (the load test's events.lua) for units assigned
// beforehand: decoding and validating every event, the durable group commit
// and the answer. Events per second = 1000 × requests per second.
func BenchmarkEventsBatch(b *testing.B) {
	for _, kind := range backends(b) {
		b.Run(kind, func(b *testing.B) { benchEventsBatch(b, kind) })
	}
}

func benchEventsBatch(b *testing.B, kind string) {
	const units, batch = 10000, 1000
	reg := prometheus.NewRegistry()
	e := newEnvWith(b, kind, Options{}, optimize.Options{Registerer: reg})
	e.must(201, "POST", "/v1/experiments", e.admin,
		`{"key":"bench","metric":"continuous","variants":[{"key":"a"},{"key":"b"}],"start":true}`)
	for lo := 0; lo < units; lo += 1000 {
		ids := make([]string, 1000)
		for i := range ids {
			ids[i] = fmt.Sprintf(`"ev-%d"`, lo+i)
		}
		e.must(200, "POST", "/v1/experiments/bench/assign", e.admin, `{"unit_ids":[`+strings.Join(ids, ",")+`]}`)
	}
	var n atomic.Int64
	b.SetParallelism(4)
	cpu := startCPU(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var sb strings.Builder
		for pb.Next() {
			sb.Reset()
			sb.WriteString(`{"events":[`)
			for i := range batch {
				if i > 0 {
					sb.WriteByte(',')
				}
				fmt.Fprintf(&sb, `{"unit_id":"ev-%d","value":1.5}`, (n.Add(1)*7919)%units)
			}
			sb.WriteString(`]}`)
			r := httptest.NewRequest("POST", "/v1/experiments/bench/events", strings.NewReader(sb.String()))
			r.Header.Set("Authorization", "Bearer "+e.admin)
			w := httptest.NewRecorder()
			e.srv.ServeHTTP(w, r)
			if w.Code != http.StatusAccepted {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
	b.StopTimer()
	cpu.report()
	reportGroupCommits(b, reg, "event")
}

// nopWriter is a ResponseWriter that keeps nothing but its headers.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkMiddleware measures what every request pays around its handler
// in process: the request id, the handler's deadline, the access log and
// metrics, panic recovery, routing and the body limit (docs/load.md,
// "Fifteenth pass").
func BenchmarkMiddleware(b *testing.B) {
	s := newServer(Deps{}, Options{})
	s.mux.Handle("GET /bench/{ref}", s.labelRoute("GET /bench/{ref}", s.limitBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))))
	r := httptest.NewRequest("GET", "/bench/x", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := &nopWriter{h: http.Header{}}
		s.ServeHTTP(w, r)
	}
}
