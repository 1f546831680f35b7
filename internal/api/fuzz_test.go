package api

import (
	"io"
	"net/http"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// FuzzCreateExperiment posts arbitrary bodies to POST /v1/experiments over
// real HTTP on the real SQLite store. Whatever the body, the answer must be
// a success or a client error, never a 5xx (which is also what a panic
// becomes), and it must match the OpenAPI document.
//
//	go test -run '^$' -fuzz FuzzCreateExperiment -fuzztime 3m ./internal/api/
func FuzzCreateExperiment(f *testing.F) {
	seeds := []string{
		`{"key":"checkout-button","name":"Checkout button colour","metric":"binary","strategy":"adaptive",
		  "variants":[{"key":"control","control":true,"payload":{"color":"grey"}},{"key":"green","payload":{"color":"green"}}],
		  "settings":{"min_samples":100,"decision_threshold":0.95,"loss_threshold":0.001,"weight_floor":0.0,"alpha":0.05,"traffic":1.0,"seed":42},
		  "start":true}`,
		`{"key":"c","metric":"continuous","strategy":"sequential","variants":[{"key":"a"},{"key":"b"},{"key":"c"}],
		  "settings":{"tau2":0.5,"control_share":0.5,"auto_complete":true,"epsilon":1,"gamma":0.9}}`,
		`{}`, ``, `null`, `[]`, `"x"`, `{"key":`, `{"key":"a"} {}`,
		`{"key":"a\u0000b","metric":"binary","variants":[{"key":"a"},{"key":"a"}]}`,
		`{"key":"k","metric":"binary","variants":[{"key":"a","payload":[1,{"x":null}]},{"key":"b","control":true}],"settings":{"weight_floor":0.49999}}`,
		`{"key":"k","metric":"binary","variants":[{"key":"a"},7],"settings":{"min_samples":1e3}}`,
		`{"key":"k","metric":"binary","variants":[{"key":"a"},{"key":"b"}],"settings":{"seed":-9223372036854775808,"alpha":5e-324}}`,
		`{"key":"k","metric":"binary","variants":[{"key":"\u202e"},{"key":"🚀"}],"name":"\ud800"}`,
		`{"variants":[{"key":"a","payload":` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + `},{"key":"b"}]}`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	e := newEnv(f, "sqlite", Options{})
	// A hang is a failure too: the timeout turns it into one, with every
	// goroutine's stack to show where it waited.
	client := &http.Client{Timeout: 10 * time.Second}
	f.Fuzz(func(t *testing.T, body string) {
		postFuzzed(t, e, client, "POST /v1/experiments", "/v1/experiments", body)
	})
}

// FuzzServing posts arbitrary bodies to the serving and layer routes of a
// running experiment that has secondary and guardrail metrics, targeting
// rules and a layer: the assign answer (with attributes), events (naming
// metrics), and layer creation. As for FuzzCreateExperiment, the answer
// must be a success or a client error matching the OpenAPI document.
//
//	go test -run '^$' -fuzz FuzzServing -fuzztime 3m ./internal/api/
func FuzzServing(f *testing.F) {
	routes := []struct{ pattern, path string }{
		{"POST /v1/experiments/{ref}/assign", "/v1/experiments/fz/assign"},
		{"POST /v1/experiments/{ref}/events", "/v1/experiments/fz/events"},
		{"POST /v1/layers", "/v1/layers"},
	}
	seeds := []struct {
		route uint8
		body  string
	}{
		{0, `{"unit_id":"u1","attributes":{"country":"ES","app_version":"2.4.0","paid":true,"age":31}}`},
		{0, `{"unit_ids":["u1","u2"],"attributes":{"country":"FR"}}`},
		{0, `{"unit_id":"u2","attributes":{"app_version":"not-a-version","country":["ES"]}}`},
		{0, `{"unit_id":"u3","attributes":{"country":null,"x":{"y":1}}}`},
		{1, `{"events":[{"unit_id":"u1","value":1,"idempotency_key":"k1"},{"unit_id":"u1","metric":"revenue","value":12.5},{"unit_id":"u1","metric":"refunds"}]}`},
		{1, `{"events":[{"unit_id":"u1","metric":"nope"},{"unit_id":"never","value":-1e308}]}`},
		{1, `{"unit_id":"u1","metric":"revenue","value":1e309}`},
		{2, `{"key":"checkout","name":"Checkout"}`},
		{2, `{"key":""}`},
		{2, `{"key":"l","name":"\ud800"}`},
	}
	for _, s := range seeds {
		f.Add(s.route, s.body)
	}
	e := newEnv(f, "sqlite", Options{})
	e.must(201, "POST", "/v1/layers", e.admin, `{"key":"fz-layer"}`)
	e.must(201, "POST", "/v1/experiments", e.admin, `{"key":"fz","metric":"binary","start":true,
		"variants":[{"key":"control","control":true},{"key":"green"}],
		"metrics":[{"key":"revenue","type":"continuous","role":"secondary"},
		           {"key":"refunds","type":"binary","role":"guardrail","direction":"decrease","max_degradation":0.1}],
		"targeting":{"any":[{"attribute":"country","op":"in","values":["ES","MX"]},
		                    {"attribute":"app_version","op":"semver_gte","value":"2.3.0"},
		                    {"attribute":"age","op":"gt","value":30}]},
		"layer":"fz-layer","layer_share":0.9}`)
	client := &http.Client{Timeout: 3 * time.Second}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		r := routes[int(route)%len(routes)]
		postFuzzed(t, e, client, r.pattern, r.path, body)
	})
}

// postFuzzed posts body to path with the admin key and fails the test on a
// 5xx (a panic becomes one), on a hang (the client's timeout; every
// goroutine's stack shows where it waited) or on an answer that does not
// match the OpenAPI document's pattern.
func postFuzzed(t *testing.T, e *env, client *http.Client, pattern, path, body string) {
	req, err := http.NewRequest("POST", e.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		var stacks strings.Builder
		pprof.Lookup("goroutine").WriteTo(&stacks, 2)
		t.Fatalf("%s body %q: %v\n%s", path, body, err, stacks.String())
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 500 {
		t.Fatalf("status %d for %s body %q:\n%s", resp.StatusCode, path, body, got)
	}
	if err := validateResponse(req, pattern, resp.StatusCode, resp.Header, got); err != nil {
		t.Fatalf("response for %s body %q does not match the OpenAPI document: %v\n%s", path, body, err, got)
	}
}
