package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scrape reads a /metrics page into series ("name{labels}" exactly as the
// text format writes them, labels sorted) → value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsMoveWithTraffic runs the real server with /metrics on its own
// address, sends traffic of every kind the catalogue names, and checks that
// each series moved by what was sent: assignments by outcome, events by
// outcome, the group commits, a winner recorded by the decision loop, its
// webhook delivered, the backlog drained, the decision rounds and the
// database pools. The public listener must not serve /metrics.
func TestMetricsMoveWithTraffic(t *testing.T) {
	var delivered atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		delivered.Add(1)
		w.WriteHeader(204)
	}))
	defer recv.Close()

	const key = "sk_mtrcstestkey_ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	db := filepath.Join(t.TempDir(), "samplit.db")
	base, stderr, _ := startServer(t, []string{"--db", db, "--metrics-addr", "127.0.0.1:0", "--decide-every", "200ms", "--webhook-allow-private"},
		map[string]string{"SAMPLIT_BOOTSTRAP_KEY": key})
	m := regexp.MustCompile(`"msg":"metrics listening","addr":"([^"]+)"`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no metrics listening line:\n%s", stderr.String())
	}
	metricsURL := "http://" + m[1] + "/metrics"

	// Separation: the public listener answers /metrics with 404, the
	// metrics listener serves nothing but /metrics.
	if code, _ := request(t, "GET", base+"/metrics", "", ""); code != 404 {
		t.Errorf("public /metrics: %d, want 404 with --metrics-addr", code)
	}
	if code, _ := request(t, "GET", "http://"+m[1]+"/v1/experiments", key, ""); code != 404 {
		t.Errorf("metrics listener served the API: %d", code)
	}
	before := scrape(t, metricsURL)
	for _, name := range []string{`samplit_assignments_total{kind="experiment",outcome="new"}`, `samplit_decisions_total{kind="experiment",state="winner_found"}`} {
		if before[name] != 0 {
			t.Fatalf("%s = %v before any traffic", name, before[name])
		}
	}

	if code, out := request(t, "POST", base+"/v1/webhooks", key, fmt.Sprintf(`{"url":%q,"events":["experiment.winner_found"]}`, recv.URL)); code != 201 {
		t.Fatalf("webhook: %d %v", code, out)
	}
	if code, out := request(t, "POST", base+"/v1/experiments", key,
		`{"key":"m","metric":"binary","strategy":"adaptive","settings":{"seed":3},"variants":[{"key":"control","control":true},{"key":"b"}],"start":true}`); code != 201 {
		t.Fatalf("create: %d %v", code, out)
	}
	// 2000 units, 10% against 30%: enough for the anytime-valid test.
	rng := rand.New(rand.NewPCG(1, 2))
	var conv []string
	for batch := range 4 {
		units := make([]string, 500)
		for i := range units {
			units[i] = fmt.Sprintf(`"u-%d-%d"`, batch, i)
		}
		code, out := request(t, "POST", base+"/v1/experiments/m/assign", key, `{"unit_ids":[`+strings.Join(units, ",")+`]}`)
		if code != 200 {
			t.Fatalf("assign: %d %v", code, out)
		}
		for _, a := range out["assignments"].([]any) {
			a := a.(map[string]any)
			p := 0.10
			if a["variant"] == "b" {
				p = 0.30
			}
			if rng.Float64() < p {
				conv = append(conv, fmt.Sprintf(`{"unit_id":%q}`, a["unit_id"]))
			}
		}
	}
	// Returning units: sticky, counted as existing.
	for range 3 {
		if code, out := request(t, "POST", base+"/v1/experiments/m/assign", key, `{"unit_id":"u-0-0"}`); code != 200 {
			t.Fatalf("assign again: %d %v", code, out)
		}
	}
	// Concurrent single-unit assignments: the group commit takes several
	// in one transaction.
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", base+"/v1/experiments/m/assign", strings.NewReader(fmt.Sprintf(`{"unit_id":"c-%d"}`, i)))
			req.Header.Set("Authorization", "Bearer "+key)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if code, out := request(t, "POST", base+"/v1/experiments/m/events", key, `{"events":[`+strings.Join(conv, ",")+`]}`); code != 202 {
		t.Fatalf("events: %d %v", code, out)
	}
	// One duplicate (a binary unit that converted already) and one
	// rejected (never assigned).
	request(t, "POST", base+"/v1/experiments/m/events", key, conv[0])
	request(t, "POST", base+"/v1/experiments/m/events", key, `{"unit_id":"nobody"}`)

	// The loop declares the winner and the worker delivers its webhook.
	deadline := time.Now().Add(15 * time.Second)
	for delivered.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if delivered.Load() == 0 {
		t.Fatalf("no webhook delivered:\n%s", stderr.String())
	}
	var after map[string]float64
	// The attempt is recorded after the answer, and the backlog is read
	// from the database at each scrape: wait until both show the delivery.
	for time.Now().Before(deadline) {
		after = scrape(t, metricsURL)
		if after[`samplit_webhook_attempts_total{result="succeeded"}`] >= 1 && after[`samplit_webhook_backlog`] == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	want := map[string]float64{
		`samplit_assignments_total{kind="experiment",outcome="new"}`:      2064,
		`samplit_assignments_total{kind="experiment",outcome="existing"}`: 3,
		`samplit_events_total{kind="experiment",outcome="accepted"}`:      float64(len(conv)),
		`samplit_events_total{kind="experiment",outcome="duplicate"}`:     1,
		`samplit_events_total{kind="experiment",outcome="rejected"}`:      1,
		`samplit_decisions_total{kind="experiment",state="winner_found"}`: 1,
		`samplit_webhook_attempts_total{result="succeeded"}`:              1,
		`samplit_webhook_backlog`:                                         0,
		`samplit_group_commit_failures_total{queue="assign"}`:             0,
	}
	for name, v := range want {
		if got, ok := after[name]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, v)
		}
	}
	// Group commits: every request went through one (4 batches, 3 + 64
	// single assigns; 1 + 2 event calls), the concurrent ones grouped.
	if n := after[`samplit_group_commit_size_sum{queue="assign"}`]; n != 71 {
		t.Errorf("assign group commit sizes sum to %v, want 71 requests", n)
	}
	if n := after[`samplit_group_commit_size_count{queue="assign"}`]; n >= 71 {
		t.Errorf("%v assign transactions for 71 requests, 64 of them concurrent: nothing grouped", n)
	}
	if n := after[`samplit_group_commit_size_sum{queue="event"}`]; n != 3 {
		t.Errorf("event group commit sizes sum to %v, want 3 requests", n)
	}
	if n := after[`samplit_group_commit_duration_seconds_count{queue="event"}`]; n < 1 || n > 3 {
		t.Errorf("event group commits: %v transactions, want 1 to 3", n)
	}
	if n := after[`samplit_decide_rounds_total{result="evaluated"}`]; n < 1 {
		t.Errorf("decision rounds that evaluated: %v", n)
	}
	if after[`samplit_decide_last_round_timestamp_seconds`] < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last decision round at %v", after[`samplit_decide_last_round_timestamp_seconds`])
	}
	if _, ok := after[`go_sql_max_open_connections{db_name="write"}`]; !ok {
		t.Errorf("no database pool series (go_sql_*{db_name=\"write\"})")
	}
	if after[`samplit_http_requests_total{method="POST",route="POST /v1/experiments/{ref}/assign",status="200"}`] != 71 {
		t.Errorf("http assign requests: %v", after[`samplit_http_requests_total{method="POST",route="POST /v1/experiments/{ref}/assign",status="200"}`])
	}
}

// TestMetricsOnPublicListenerByDefault: without --metrics-addr, /metrics
// stays where it was (the documented default).
func TestMetricsOnPublicListenerByDefault(t *testing.T) {
	db := filepath.Join(t.TempDir(), "samplit.db")
	base, stderr, _ := startServer(t, []string{"--db", db}, nil)
	if strings.Contains(stderr.String(), "metrics listening") {
		t.Errorf("a metrics listener without --metrics-addr")
	}
	got := scrape(t, base+"/metrics")
	if _, ok := got[`samplit_webhook_backlog`]; !ok {
		t.Errorf("public /metrics lacks samplit_webhook_backlog")
	}
}

// TestPprofOnlyOnMetricsListener: --pprof serves the profiler on the
// metrics listener and nowhere else, and is refused without one (the
// profiler reveals the binary and costs CPU: never on the public port).
func TestPprofOnlyOnMetricsListener(t *testing.T) {
	const key = "sk_pproftestkey_ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	db := filepath.Join(t.TempDir(), "samplit.db")
	base, stderr, _ := startServer(t, []string{"--db", db, "--metrics-addr", "127.0.0.1:0", "--pprof"},
		map[string]string{"SAMPLIT_BOOTSTRAP_KEY": key})
	m := regexp.MustCompile(`"msg":"metrics listening","addr":"([^"]+)"`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no metrics listening line:\n%s", stderr.String())
	}
	resp, err := http.Get("http://" + m[1] + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("metrics listener /debug/pprof/goroutine: %d %.80q", resp.StatusCode, body)
	}
	if code, _ := request(t, "GET", base+"/debug/pprof/goroutine?debug=1", key, ""); code == 200 {
		t.Error("public listener serves the profiler")
	}

	var out strings.Builder
	err = run(t.Context(), []string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "x.db"), "--pprof"}, envOf(nil), nil, io.Discard, &out)
	if err == nil || !strings.Contains(err.Error(), "pprof") {
		t.Errorf("--pprof without --metrics-addr: %v, want a configuration error naming pprof", err)
	}
}
