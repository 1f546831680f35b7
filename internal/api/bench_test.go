package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
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
	e := newEnv(b, kind, Options{})
	e.must(201, "POST", "/v1/experiments", e.admin,
		`{"key":"bench","variants":[{"key":"a"},{"key":"b"},{"key":"c"}],"start":true}`)
	var n atomic.Int64
	b.SetParallelism(16)
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
	e := newEnv(b, kind, Options{})
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
}
