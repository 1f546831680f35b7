package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/samplit/samplit/internal/apikey"
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/store"
)

func TestOperationalEndpoints(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		e.must(200, "GET", "/healthz", "", "")
		e.must(200, "GET", "/readyz", "", "")
		doc := e.must(200, "GET", "/openapi.json", "", "").JSON(t)
		if doc["openapi"] != "3.1.0" {
			t.Errorf("openapi = %v, want 3.1.0", doc["openapi"])
		}
		// A request to a parameterised route, then the metrics: the route
		// label is the pattern, never the raw path.
		e.must(404, "GET", "/v1/experiments/no-such-thing", e.admin, "")
		m := string(e.must(200, "GET", "/metrics", "", "").Body)
		for _, want := range []string{
			`samplit_http_requests_total{method="GET",route="GET /v1/experiments/{ref}",status="404"} 1`,
			`samplit_http_request_duration_seconds_bucket{route="GET /healthz",le="+Inf"} 1`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if strings.Contains(m, "no-such-thing") {
			t.Errorf("metrics hold a raw path")
		}

		// Methods outside the known set share one label, however many a
		// client invents (each used to be a new series, before any key).
		for i := range 20 {
			e.must(405, fmt.Sprintf("X%dY", i), "/v1/experiments", "", "")
		}
		m = string(e.must(200, "GET", "/metrics", "", "").Body)
		if strings.Contains(m, `method="X`) {
			t.Errorf("metrics hold a method a client made up")
		}
		want := `samplit_http_requests_total{method="other",route="unmatched",status="405"} 20`
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	})
}

func TestReadyzWhenTheDatabaseIsGone(t *testing.T) {
	e := newEnv(t, "sqlite", Options{})
	e.store.Close()
	r := e.must(503, "GET", "/readyz", "", "")
	if got := r.Header.Get("Content-Type"); got != "application/problem+json" {
		t.Errorf("content type %q", got)
	}
	if strings.Contains(string(r.Body), "sql") {
		t.Errorf("problem leaks the database error: %s", r.Body)
	}
}

func TestAuthentication(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ws := e.defaultWorkspace()
		revoked := e.key(ws, store.ScopeAdmin)
		keys, _ := e.store.ListKeys(context.Background(), ws)
		for _, k := range keys {
			if strings.Contains(revoked, "_"+k.Lookup+"_") {
				if err := e.store.RevokeKey(context.Background(), ws, k.ID, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
		}
		wrongSecret := e.admin[:len(e.admin)-4] + "AAAA"
		if wrongSecret == e.admin {
			wrongSecret = e.admin[:len(e.admin)-4] + "BBBB"
		}
		for _, tc := range []struct {
			name   string
			header string
		}{
			{"missing", ""},
			{"not bearer", "Basic " + e.admin},
			{"empty bearer", "Bearer "},
			{"malformed", "Bearer hello"},
			{"unknown lookup", "Bearer " + apikey.Generate()},
			{"wrong secret", "Bearer " + wrongSecret},
			{"revoked", "Bearer " + revoked},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var h []string
				if tc.header != "" {
					h = []string{"Authorization", tc.header}
				}
				r := e.must(401, "GET", "/v1/experiments", "", "", h...)
				if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				if p := r.JSON(t); p["type"] != ProblemTypeBase+"unauthorized" {
					t.Errorf("type = %v", p["type"])
				}
			})
		}
		// The scheme is case-insensitive (RFC 9110).
		e.must(200, "GET", "/v1/experiments", "", "", "Authorization", "bearer "+e.admin)
	})
}

func TestScopes(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ws := e.defaultWorkspace()
		write, assign := e.key(ws, store.ScopeWrite), e.key(ws, store.ScopeAssign)
		body := `{"key":"k","metric":"binary","variants":[{"key":"a"},{"key":"b"}]}`

		e.must(403, "POST", "/v1/experiments", assign, body)
		e.must(403, "GET", "/v1/experiments", assign, "")
		e.must(403, "GET", "/v1/experiments/k", assign, "")
		e.must(403, "POST", "/v1/workspaces", write, `{"name":"other"}`)
		e.must(403, "POST", "/v1/workspaces", assign, `{"name":"other"}`)
		if n := e.count(ws); n != 0 {
			t.Fatalf("forbidden calls changed the database: %d experiments", n)
		}
		e.must(201, "POST", "/v1/experiments", write, body)
		e.must(200, "GET", "/v1/experiments/k", write, "")
		e.must(200, "POST", "/v1/experiments/k/start", write, "")
		e.must(201, "POST", "/v1/workspaces", e.admin, `{"name":"other"}`)
	})
}

func TestCreateExperiment(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		// The contract's example, verbatim.
		body := `{ "key": "checkout-button", "name": "Checkout button colour",
		  "metric": "binary",
		  "strategy": "adaptive",
		  "variants": [ {"key": "control", "control": true, "payload": {"color": "grey"}},
		                {"key": "green", "payload": {"color": "green"}} ],
		  "settings": {"min_samples": 100, "decision_threshold": 0.95, "loss_threshold": 0.001,
		               "weight_floor": 0.0, "alpha": 0.05, "traffic": 1.0, "seed": 42},
		  "start": true }`
		got := e.must(201, "POST", "/v1/experiments", e.admin, body).JSON(t)
		id, _ := got["id"].(string)
		if !strings.HasPrefix(id, "exp_") {
			t.Errorf("id = %q", id)
		}
		if got["status"] != "running" || got["started_at"] == nil {
			t.Errorf("status %v started_at %v, want running with a start time", got["status"], got["started_at"])
		}
		variants := got["variants"].([]any)
		v0 := variants[0].(map[string]any)
		if !strings.HasPrefix(v0["id"].(string), "var_") || v0["control"] != true {
			t.Errorf("variant 0 = %v", v0)
		}
		if diff := cmp.Diff(map[string]any{"color": "grey"}, v0["payload"]); diff != "" {
			t.Errorf("payload mismatch (-want +got):\n%s", diff)
		}
		for _, f := range []string{"created_at", "updated_at"} {
			s, _ := got[f].(string)
			ts, err := time.Parse(time.RFC3339, s)
			if err != nil || !strings.HasSuffix(s, "Z") || time.Since(ts) > time.Minute {
				t.Errorf("%s = %q: want a recent RFC 3339 UTC time", f, s)
			}
		}
		// The same document comes back by id and by key.
		byID := e.must(200, "GET", "/v1/experiments/"+id, e.admin, "").JSON(t)
		byKey := e.must(200, "GET", "/v1/experiments/checkout-button", e.admin, "").JSON(t)
		if diff := cmp.Diff(got, byID); diff != "" {
			t.Errorf("GET by id mismatch (-created +got):\n%s", diff)
		}
		if diff := cmp.Diff(byID, byKey); diff != "" {
			t.Errorf("GET by key mismatch (-id +key):\n%s", diff)
		}
	})
}

func TestCreateExperimentDefaults(t *testing.T) {
	e := newEnv(t, "sqlite", Options{})
	got := e.must(201, "POST", "/v1/experiments", e.admin,
		`{"key":"d","metric":"continuous","variants":[{"key":"a"},{"key":"b","name":"Bee"}]}`).JSON(t)
	want := map[string]any{
		"min_samples": 100.0, "decision_threshold": 0.95, "loss_threshold": 0.001, "weight_floor": 0.01,
		"alpha": 0.05, "min_effect": 0.05, "traffic": 1.0, "seed": nil, "control_share": nil, "auto_complete": false,
		"tau2": nil, "epsilon": nil, "gamma": nil, "conversion_window": nil, "prior_lift_sd": nil, "learn_prior": true,
	}
	if diff := cmp.Diff(want, got["settings"]); diff != "" {
		t.Errorf("settings mismatch (-want +got):\n%s", diff)
	}
	if got["name"] != "d" || got["strategy"] != "adaptive" || got["status"] != "draft" || got["kind"] != "standard" {
		t.Errorf("defaults: name %v strategy %v status %v kind %v", got["name"], got["strategy"], got["status"], got["kind"])
	}
	if got["started_at"] != nil || got["completed_at"] != nil || got["winner"] != nil {
		t.Errorf("a draft has no start, completion or winner: %v %v %v", got["started_at"], got["completed_at"], got["winner"])
	}
	vs := got["variants"].([]any)
	a, b := vs[0].(map[string]any), vs[1].(map[string]any)
	if a["control"] != true || b["control"] != false {
		t.Errorf("with no control marked the first variant is the control: %v %v", a["control"], b["control"])
	}
	if a["name"] != "a" || b["name"] != "Bee" || a["payload"] != nil {
		t.Errorf("variant names/payload: %v %v %v", a["name"], b["name"], a["payload"])
	}
}

// TestCreateExperimentInvalid covers every validation rule: each is a 422
// that names the fields, and nothing is stored.
func TestCreateExperimentInvalid(t *testing.T) {
	long := strings.Repeat("x", 201)
	bigPayload := `"` + strings.Repeat("p", 16<<10) + `"`
	twentyOne := make([]string, 21)
	for i := range twentyOne {
		twentyOne[i] = fmt.Sprintf(`{"key":"v%d"}`, i)
	}
	ok2 := `[{"key":"a"},{"key":"b"}]`
	tests := []struct {
		name   string
		body   string
		fields []string
	}{
		{"everything missing", `{}`, []string{"key", "variants"}},
		{"control share and floors over 1", `{"key":"k","variants":[{"key":"a"},{"key":"b"},{"key":"c"}],"settings":{"control_share":0.6,"weight_floor":0.25}}`, []string{"settings.control_share"}},
		{"key upper case", `{"key":"Checkout","metric":"binary","variants":` + ok2 + `}`, []string{"key"}},
		{"key too long", `{"key":"` + strings.Repeat("k", 65) + `","metric":"binary","variants":` + ok2 + `}`, []string{"key"}},
		{"key with space", `{"key":"a b","metric":"binary","variants":` + ok2 + `}`, []string{"key"}},
		{"key starts with dash", `{"key":"-a","metric":"binary","variants":` + ok2 + `}`, []string{"key"}},
		{"key looks like an id", `{"key":"exp_0123456789abcdefghjkmnpqrs","metric":"binary","variants":` + ok2 + `}`, []string{"key"}},
		{"name too long", `{"key":"k","name":"` + long + `","metric":"binary","variants":` + ok2 + `}`, []string{"name"}},
		{"name with newline", `{"key":"k","name":"a\nb","metric":"binary","variants":` + ok2 + `}`, []string{"name"}},
		{"blank name", `{"key":"k","name":"   ","metric":"binary","variants":` + ok2 + `}`, []string{"name"}},
		{"unknown metric", `{"key":"k","metric":"revenue","variants":` + ok2 + `}`, []string{"metric"}},
		{"unknown strategy", `{"key":"k","metric":"binary","strategy":"greedy","variants":` + ok2 + `}`, []string{"strategy"}},
		{"funnel strategy", `{"key":"k","metric":"binary","strategy":"multi_step","variants":` + ok2 + `}`, []string{"strategy"}},
		{"other kind", `{"key":"k","kind":"email","metric":"binary","variants":` + ok2 + `}`, []string{"kind"}},
		{"one variant", `{"key":"k","metric":"binary","variants":[{"key":"a"}]}`, []string{"variants"}},
		{"no variants", `{"key":"k","metric":"binary","variants":[]}`, []string{"variants"}},
		{"21 variants", `{"key":"k","metric":"binary","variants":[` + strings.Join(twentyOne, ",") + `]}`, []string{"variants"}},
		{"duplicate variant keys", `{"key":"k","metric":"binary","variants":[{"key":"a"},{"key":"b"},{"key":"a"}]}`, []string{"variants[2].key"}},
		{"bad variant key", `{"key":"k","metric":"binary","variants":[{"key":"a"},{"key":"B!"}]}`, []string{"variants[1].key"}},
		{"missing variant key", `{"key":"k","metric":"binary","variants":[{"key":"a"},{"name":"x"}]}`, []string{"variants[1].key"}},
		{"null variant", `{"key":"k","metric":"binary","variants":[{"key":"a"},null]}`, []string{"variants[1].key"}},
		{"two controls", `{"key":"k","metric":"binary","variants":[{"key":"a","control":true},{"key":"b","control":true}]}`, []string{"variants[1].control"}},
		{"payload too big", `{"key":"k","metric":"binary","variants":[{"key":"a","payload":` + bigPayload + `},{"key":"b"}]}`, []string{"variants[0].payload"}},
		{"variant name too long", `{"key":"k","metric":"binary","variants":[{"key":"a","name":"` + long + `"},{"key":"b"}]}`, []string{"variants[0].name"}},
		{"settings out of range", `{"key":"k","metric":"binary","variants":` + ok2 + `,"settings":{
			"min_samples":-1,"decision_threshold":1,"loss_threshold":-0.1,"weight_floor":0.5,"alpha":0,
			"traffic":1.5,"control_share":1,"tau2":0,"epsilon":-1,"gamma":0}}`,
			[]string{"settings.min_samples", "settings.decision_threshold", "settings.alpha", "settings.loss_threshold",
				"settings.weight_floor", "settings.traffic", "settings.control_share", "settings.tau2", "settings.epsilon", "settings.gamma"}},
		{"threshold zero", `{"key":"k","metric":"binary","variants":` + ok2 + `,"settings":{"decision_threshold":0}}`, []string{"settings.decision_threshold"}},
		{"weight floor at 1/K", `{"key":"k","metric":"binary","variants":[{"key":"a"},{"key":"b"},{"key":"c"},{"key":"d"}],"settings":{"weight_floor":0.25}}`, []string{"settings.weight_floor"}},
		{"gamma over 1", `{"key":"k","metric":"binary","variants":` + ok2 + `,"settings":{"gamma":1.01}}`, []string{"settings.gamma"}},
		{"conversion window not a duration", `{"key":"k","variants":` + ok2 + `,"settings":{"conversion_window":"a week"}}`, []string{"settings.conversion_window"}},
		{"conversion window zero", `{"key":"k","variants":` + ok2 + `,"settings":{"conversion_window":"0s"}}`, []string{"settings.conversion_window"}},
		{"conversion window negative", `{"key":"k","variants":` + ok2 + `,"settings":{"conversion_window":"-2h"}}`, []string{"settings.conversion_window"}},
		{"conversion window under a minute", `{"key":"k","variants":` + ok2 + `,"settings":{"conversion_window":"30s"}}`, []string{"settings.conversion_window"}},
		{"conversion window over a year", `{"key":"k","variants":` + ok2 + `,"settings":{"conversion_window":"366d"}}`, []string{"settings.conversion_window"}},
	}
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ws := e.defaultWorkspace()
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := e.must(422, "POST", "/v1/experiments", e.admin, tc.body)
				got := r.fields(t)
				if diff := cmp.Diff(tc.fields, got); diff != "" {
					t.Errorf("fields mismatch (-want +got):\n%s\n%s", diff, r.Body)
				}
				if p := r.JSON(t); p["type"] != ProblemTypeBase+"invalid" || p["status"] != 422.0 || p["instance"] != "/v1/experiments" || p["request_id"] == "" {
					t.Errorf("problem = %s", r.Body)
				}
			})
		}
		if n := e.count(ws); n != 0 {
			t.Errorf("invalid requests stored %d experiments", n)
		}
		// The edges of the ranges are accepted.
		e.must(201, "POST", "/v1/experiments", e.admin, `{"key":"edges","metric":"binary","variants":[{"key":"a"},{"key":"b"},{"key":"c"}],
			"settings":{"min_samples":0,"decision_threshold":0.999,"loss_threshold":1e-9,"weight_floor":0.33,"alpha":0.5,"traffic":1,
			"seed":-9223372036854775808,"control_share":0.34,"auto_complete":true,"tau2":0.01,"epsilon":3,"gamma":1,"conversion_window":"365d"}}`)
		e.must(201, "POST", "/v1/experiments", e.admin, `{"key":"short-window","variants":`+ok2+`,"settings":{"conversion_window":"1m"}}`)
	})
}

// TestCreateExperimentUnreadable covers bodies that cannot be read: 400
// (or 413), naming the field where there is one, and nothing stored.
func TestCreateExperimentUnreadable(t *testing.T) {
	ok2 := `[{"key":"a"},{"key":"b"}]`
	tests := []struct {
		name   string
		body   string
		status int
		fields []string
	}{
		{"empty", "", 400, []string{}},
		{"whitespace", "  \n ", 400, []string{}},
		{"malformed", `{"key":`, 400, []string{}},
		{"syntax error", `{"key" "k"}`, 400, []string{}},
		{"array", `[1,2]`, 400, []string{}},
		{"string", `"hello"`, 400, []string{}},
		{"null", `null`, 422, []string{"key", "variants"}},
		{"two values", `{"key":"a"} {"key":"b"}`, 400, []string{}},
		{"trailing garbage", `{"key":"a"}x`, 400, []string{}},
		{"wrong type key", `{"key":5,"metric":"binary","variants":` + ok2 + `}`, 400, []string{"key"}},
		{"wrong type start", `{"key":"k","metric":"binary","variants":` + ok2 + `,"start":"yes"}`, 400, []string{"start"}},
		{"wrong type variants", `{"key":"k","metric":"binary","variants":{"a":1}}`, 400, []string{"variants"}},
		{"wrong type variant", `{"key":"k","metric":"binary","variants":[{"key":"a"},7]}`, 400, []string{"variants[1]"}},
		{"wrong type variant key", `{"key":"k","metric":"binary","variants":[{"key":"a"},{"key":["b"]}]}`, 400, []string{"variants[1].key"}},
		{"wrong type setting", `{"key":"k","metric":"binary","variants":` + ok2 + `,"settings":{"alpha":"0.05"}}`, 400, []string{"settings.alpha"}},
		{"fractional min_samples", `{"key":"k","metric":"binary","variants":` + ok2 + `,"settings":{"min_samples":1.5}}`, 400, []string{"settings.min_samples"}},
		{"huge seed", `{"key":"k","metric":"binary","variants":` + ok2 + `,"settings":{"seed":99999999999999999999}}`, 400, []string{"settings.seed"}},
		{"huge number", `{"key":"k","metric":"binary","variants":` + ok2 + `,"settings":{"alpha":1e999}}`, 400, []string{"settings.alpha"}},
		{"settings not object", `{"key":"k","metric":"binary","variants":` + ok2 + `,"settings":[1]}`, 400, []string{"settings"}},
		{"unknown field", `{"key":"k","metric":"binary","variants":` + ok2 + `,"colour":"red"}`, 400, []string{"colour"}},
		{"unknown variant field", `{"key":"k","metric":"binary","variants":[{"key":"a","weight":2},{"key":"b"}]}`, 400, []string{"variants[0].weight"}},
		{"unknown setting", `{"key":"k","metric":"binary","variants":` + ok2 + `,"settings":{"threshold":0.9}}`, 400, []string{"settings.threshold"}},
		{"huge body", `{"key":"k","name":"` + strings.Repeat("n", 2<<20) + `"}`, 413, []string{}},
	}
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ws := e.defaultWorkspace()
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := e.must(tc.status, "POST", "/v1/experiments", e.admin, tc.body)
				if r.Header.Get("Content-Type") != "application/problem+json" {
					t.Errorf("content type %q", r.Header.Get("Content-Type"))
				}
				if diff := cmp.Diff(tc.fields, r.fields(t)); diff != "" {
					t.Errorf("fields mismatch (-want +got):\n%s\n%s", diff, r.Body)
				}
				if strings.Contains(string(r.Body), "main.") || strings.Contains(string(r.Body), "api.") {
					t.Errorf("problem leaks Go type names: %s", r.Body)
				}
			})
		}
		if n := e.count(ws); n != 0 {
			t.Errorf("unreadable requests stored %d experiments", n)
		}
	})
}

// TestOddUnicodeKeys: keys are ASCII slugs; anything that merely looks like
// one is refused, in experiment keys, variant keys and refs.
func TestOddUnicodeKeys(t *testing.T) {
	odd := map[string]string{
		"NUL":              "a\u0000b",
		"RTL override":     "abc\u202Edef",
		"emoji":            "rocket-\U0001F680",
		"combining mark":   "cafe\u0301",
		"zero-width space": "a\u200Bb",
		"BOM":              "\uFEFFkey",
		"fullwidth":        "ｋｅｙ",
		"cyrillic a":       "\u0430bc",
		"turkish dotless":  "\u0131d",
		"tab":              "a\tb",
	}
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ws := e.defaultWorkspace()
		for name, key := range odd {
			t.Run(name, func(t *testing.T) {
				k, _ := json.Marshal(key)
				if name == "invalid UTF-8" {
					k = []byte(`"a` + "\xff" + `b"`) // raw, as a client could send it
				}
				r := e.must(422, "POST", "/v1/experiments", e.admin,
					`{"key":`+string(k)+`,"metric":"binary","variants":[{"key":"a"},{"key":"b"}]}`)
				if diff := cmp.Diff([]string{"key"}, r.fields(t)); diff != "" {
					t.Errorf("fields mismatch (-want +got):\n%s", diff)
				}
				r = e.must(422, "POST", "/v1/experiments", e.admin,
					`{"key":"ok","metric":"binary","variants":[{"key":"a"},{"key":`+string(k)+`}]}`)
				if diff := cmp.Diff([]string{"variants[1].key"}, r.fields(t)); diff != "" {
					t.Errorf("fields mismatch (-want +got):\n%s", diff)
				}
				r = e.req("GET", "/v1/experiments/"+urlPathEscape(key), e.admin, "")
				if r.Status != 404 {
					t.Errorf("GET with odd ref: %d", r.Status)
				}
			})
		}
		if n := e.count(ws); n != 0 {
			t.Errorf("odd keys stored %d experiments", n)
		}
		// Printable Unicode is fine in names, invisible characters are not.
		e.must(201, "POST", "/v1/experiments", e.admin,
			`{"key":"uni","name":"Café 🚀 test","metric":"binary","variants":[{"key":"a","name":"naïve"},{"key":"b"}]}`)
		r := e.must(422, "POST", "/v1/experiments", e.admin, `{"key":"uni2","name":"evil\u202Egnp.exe","metric":"binary","variants":[{"key":"a"},{"key":"b"}]}`)
		if diff := cmp.Diff([]string{"name"}, r.fields(t)); diff != "" {
			t.Errorf("fields mismatch (-want +got):\n%s", diff)
		}
	})
}

func urlPathEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func TestDuplicateKey(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		e.createExperiment("dup", e.admin, false)
		r := e.must(409, "POST", "/v1/experiments", e.admin, `{"key":"dup","metric":"binary","variants":[{"key":"x"},{"key":"y"}]}`)
		if p := r.JSON(t); p["type"] != ProblemTypeBase+"conflict" || !strings.Contains(p["detail"].(string), "dup") {
			t.Errorf("problem = %s", r.Body)
		}
		if n := e.count(e.defaultWorkspace()); n != 1 {
			t.Errorf("%d experiments, want 1", n)
		}
	})
}

func TestListExperiments(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		var keys []string
		for i := range 5 {
			k := fmt.Sprintf("e%d", i)
			keys = append(keys, k)
			e.createExperiment(k, e.admin, i%2 == 0)
		}
		// Page through with limit 2: 2 + 2 + 1, every experiment once, in
		// creation order.
		var seen []string
		cursor := ""
		for page := 0; ; page++ {
			path := "/v1/experiments?limit=2"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			var got experimentListJSON
			if err := json.Unmarshal(e.must(200, "GET", path, e.admin, "").Body, &got); err != nil {
				t.Fatal(err)
			}
			for _, it := range got.Items {
				seen = append(seen, it.Key)
			}
			if got.NextCursor == nil {
				if page != 2 {
					t.Errorf("last page is page %d, want 2", page)
				}
				break
			}
			cursor = *got.NextCursor
			if page > 5 {
				t.Fatal("pagination does not end")
			}
		}
		if diff := cmp.Diff(keys, seen); diff != "" {
			t.Errorf("paged keys mismatch (-want +got):\n%s", diff)
		}

		var running experimentListJSON
		json.Unmarshal(e.must(200, "GET", "/v1/experiments?status=running", e.admin, "").Body, &running)
		var got []string
		for _, it := range running.Items {
			got = append(got, it.Key)
		}
		if diff := cmp.Diff([]string{"e0", "e2", "e4"}, got); diff != "" || running.NextCursor != nil {
			t.Errorf("status filter mismatch (-want +got):\n%s next=%v", diff, running.NextCursor)
		}

		all := e.must(200, "GET", "/v1/experiments", e.admin, "").JSON(t)
		if n := len(all["items"].([]any)); n != 5 || all["next_cursor"] != nil {
			t.Errorf("default page: %d items, next %v", n, all["next_cursor"])
		}

		for _, tc := range []struct{ query, field string }{
			{"limit=0", "limit"}, {"limit=101", "limit"}, {"limit=abc", "limit"},
			{"cursor=%21%21", "cursor"}, {"cursor=aGVsbG8", "cursor"}, {"status=done", "status"},
		} {
			r := e.must(422, "GET", "/v1/experiments?"+tc.query, e.admin, "")
			if diff := cmp.Diff([]string{tc.field}, r.fields(t)); diff != "" {
				t.Errorf("%s: fields mismatch (-want +got):\n%s", tc.query, diff)
			}
		}
	})
}

func TestLifecycle(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		e.createExperiment("life", e.admin, false)
		step := func(action string, want int, body string) map[string]any {
			t.Helper()
			return e.must(want, "POST", "/v1/experiments/life/"+action, e.admin, body).JSON(t)
		}
		// Wrong transitions from draft name the current status.
		for _, a := range []string{"pause", "resume", "complete"} {
			p := step(a, 409, "")
			if !strings.Contains(p["detail"].(string), "draft") {
				t.Errorf("%s from draft: detail %q does not name the status", a, p["detail"])
			}
		}
		got := step("start", 200, "{}")
		if got["status"] != "running" || got["started_at"] == nil {
			t.Errorf("after start: %v", got)
		}
		step("start", 409, "")
		step("archive", 409, "") // a running experiment must be stopped first
		if got := step("pause", 200, ""); got["status"] != "paused" {
			t.Errorf("after pause: %v", got["status"])
		}
		step("pause", 409, "")
		if got := step("resume", 200, ""); got["status"] != "running" {
			t.Errorf("after resume: %v", got["status"])
		}
		step("complete", 422, `{"winner":"purple"}`)
		step("complete", 400, `{"winner":"green","why":"x"}`)
		step("start", 400, `{"x":1}`)
		got = step("complete", 200, `{"winner":"green"}`)
		if got["status"] != "completed" || got["winner"] != "green" || got["winner_fixed"] != true || got["completed_at"] == nil {
			t.Errorf("after complete: %v", got)
		}
		for _, a := range []string{"start", "pause", "resume", "complete"} {
			p := step(a, 409, "")
			if !strings.Contains(p["detail"].(string), "completed") {
				t.Errorf("%s from completed: detail %q", a, p["detail"])
			}
		}
		if got := step("archive", 200, ""); got["status"] != "archived" {
			t.Errorf("after archive: %v", got["status"])
		}
		step("archive", 409, "")

		// Draft → archived, and complete without a winner.
		e.createExperiment("draft-arch", e.admin, false)
		e.must(200, "POST", "/v1/experiments/draft-arch/archive", e.admin, "")
		e.createExperiment("plain", e.admin, true)
		if got := e.must(200, "POST", "/v1/experiments/plain/complete", e.admin, "").JSON(t); got["winner"] != nil || got["winner_fixed"] != false {
			t.Errorf("complete without winner: %v %v", got["winner"], got["winner_fixed"])
		}
		e.must(404, "POST", "/v1/experiments/nope/start", e.admin, "")
	})
}

// TestTenantIsolation: a key of workspace B cannot see or touch anything of
// workspace A, by id or by key, and gets the same 404 as for nothing at all.
func TestTenantIsolation(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		a := e.createExperiment("shared-key", e.admin, false)
		aID := a["id"].(string)
		created := e.must(201, "POST", "/v1/workspaces", e.admin, `{"name":"tenant-b"}`).JSON(t)
		keyB := created["admin_key"].(string)
		if !strings.HasPrefix(created["id"].(string), "wsp_") || !strings.HasPrefix(keyB, "sk_") {
			t.Fatalf("workspace created: %v", created)
		}

		for _, ref := range []string{aID, "shared-key"} {
			r := e.must(404, "GET", "/v1/experiments/"+ref, keyB, "")
			if strings.Contains(string(r.Body), "control") || strings.Contains(string(r.Body), a["created_at"].(string)) {
				t.Errorf("404 leaks data: %s", r.Body)
			}
			for _, action := range []string{"start", "pause", "resume", "complete", "archive"} {
				e.must(404, "POST", "/v1/experiments/"+ref+"/"+action, keyB, "")
			}
		}
		list := e.must(200, "GET", "/v1/experiments", keyB, "").JSON(t)
		if n := len(list["items"].([]any)); n != 0 {
			t.Errorf("B lists %d experiments", n)
		}
		// A's cursor gives B nothing of A's either.
		cur := "cursor=" + encodeCursor(aID)
		list = e.must(200, "GET", "/v1/experiments?"+cur, keyB, "").JSON(t)
		if n := len(list["items"].([]any)); n != 0 {
			t.Errorf("B lists %d experiments with A's cursor", n)
		}
		// B may use the same key; A's experiment is unchanged.
		b := e.createExperiment("shared-key", keyB, true)
		if b["id"] == aID {
			t.Fatal("same id in two workspaces")
		}
		again := e.must(200, "GET", "/v1/experiments/shared-key", e.admin, "").JSON(t)
		if again["id"] != aID || again["status"] != "draft" {
			t.Errorf("A's experiment changed: %v", again)
		}
		// B's id through A's key is a 404 too.
		e.must(404, "GET", "/v1/experiments/"+b["id"].(string), e.admin, "")
	})
}

func TestWorkspaces(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		e.must(201, "POST", "/v1/workspaces", e.admin, `{"name":"acme"}`)
		e.must(409, "POST", "/v1/workspaces", e.admin, `{"name":"acme"}`)
		for _, body := range []string{`{"name":""}`, `{}`, `{"name":"a\u0000b"}`, `{"name":" padded "}`, `{"name":"` + strings.Repeat("w", 101) + `"}`} {
			r := e.must(422, "POST", "/v1/workspaces", e.admin, body)
			if diff := cmp.Diff([]string{"name"}, r.fields(t)); diff != "" {
				t.Errorf("%s: fields mismatch (-want +got):\n%s", body, diff)
			}
		}
		e.must(400, "POST", "/v1/workspaces", e.admin, `{"name":"x","admin":true}`)
		e.must(400, "POST", "/v1/workspaces", e.admin, ``)
		n, err := e.store.CountWorkspaces(context.Background())
		if err != nil || n != 2 {
			t.Errorf("workspaces: %d, %v; want 2", n, err)
		}
	})
}

func TestIdempotency(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		body := `{"key":"idem","metric":"binary","variants":[{"key":"a"},{"key":"b"}]}`
		first := e.must(201, "POST", "/v1/experiments", e.admin, body, "Idempotency-Key", "k-1")
		again := e.must(201, "POST", "/v1/experiments", e.admin, body, "Idempotency-Key", "k-1")
		if string(first.Body) != string(again.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay differs:\n%s\n%s", first.Body, again.Body)
		}
		if n := e.count(e.defaultWorkspace()); n != 1 {
			t.Errorf("%d experiments after a replay, want 1", n)
		}
		// Same key, another request.
		e.must(422, "POST", "/v1/experiments", e.admin, strings.Replace(body, "idem", "idem2", 1), "Idempotency-Key", "k-1")
		// A stored failure is replayed too (the 409 of a taken key).
		e.must(409, "POST", "/v1/experiments", e.admin, body, "Idempotency-Key", "k-2")
		r := e.must(409, "POST", "/v1/experiments", e.admin, body, "Idempotency-Key", "k-2")
		if r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("replayed problem has content type %q", r.Header.Get("Content-Type"))
		}
		// In flight: a claim that has not finished.
		ws := e.defaultWorkspace()
		lookup, _ := apikey.Parse(e.admin)
		adminKey, err := e.store.KeyByLookup(context.Background(), lookup)
		if err != nil {
			t.Fatal(err)
		}
		if prev, err := e.store.ClaimIdempotency(context.Background(), store.IdempotencyRecord{
			WorkspaceID: ws, Key: idempotencyScope(adminKey.ID, "k-3"), Fingerprint: requestFingerprint("POST", "/v1/experiments", []byte(body)), CreatedAt: time.Now(),
		}, time.Now().Add(-time.Hour)); err != nil || prev != nil {
			t.Fatalf("claim: %v %v", prev, err)
		}
		e.must(409, "POST", "/v1/experiments", e.admin, body, "Idempotency-Key", "k-3")
		// Keys are per workspace: another workspace may use k-1 freely.
		other := e.must(201, "POST", "/v1/workspaces", e.admin, `{"name":"idem-ws"}`, "Idempotency-Key", "w-1").JSON(t)
		replayed := e.must(201, "POST", "/v1/workspaces", e.admin, `{"name":"idem-ws"}`, "Idempotency-Key", "w-1").JSON(t)
		if other["id"] != replayed["id"] {
			t.Errorf("workspace replay made another workspace")
		}
		// The admin key is never stored in plaintext, so a replay cannot
		// repeat it: it hands out a new working key of the same workspace.
		if other["admin_key"] == replayed["admin_key"] {
			t.Errorf("workspace replay repeated the admin key: it must have been stored")
		}
		rec, err := e.store.ClaimIdempotency(context.Background(), store.IdempotencyRecord{WorkspaceID: ws, Key: idempotencyScope(adminKey.ID, "w-1")}, time.Now().Add(-time.Hour))
		if err != nil || rec == nil || strings.Contains(string(rec.Body), other["admin_key"].(string)) || strings.Contains(string(rec.Body), "sk_") {
			t.Errorf("the idempotency store holds %v, %v: want a record without the key", rec, err)
		}
		for _, k := range []any{other["admin_key"], replayed["admin_key"]} {
			e.must(200, "GET", "/v1/experiments", k.(string), "")
		}
		e.must(201, "POST", "/v1/experiments", other["admin_key"].(string), body, "Idempotency-Key", "k-1")
		// Records are per API key (issue 14): a second admin key of the same
		// workspace sending w-1 is not replayed the first key's workspace
		// (nor handed an admin key of it): its request runs as its own, and
		// meets the name the first one took.
		second := e.key(ws, store.ScopeAdmin)
		theirs := e.must(409, "POST", "/v1/workspaces", second, `{"name":"idem-ws"}`, "Idempotency-Key", "w-1")
		if theirs.Header.Get("Idempotent-Replayed") != "" || strings.Contains(string(theirs.Body), "sk_") {
			t.Errorf("another key's record was replayed: %s", theirs.Body)
		}
		// A bad header.
		e.must(400, "POST", "/v1/experiments", e.admin, body, "Idempotency-Key", strings.Repeat("x", 256))
	})
}

func TestIdempotencyExpiry(t *testing.T) {
	e := newEnv(t, "sqlite", Options{})
	now := time.Now()
	e.srv.now = func() time.Time { return now }
	body := `{"key":"exp-a","metric":"binary","variants":[{"key":"a"},{"key":"b"}]}`
	e.must(201, "POST", "/v1/experiments", e.admin, body, "Idempotency-Key", "old")
	now = now.Add(DefaultIdempotencyTTL + time.Minute)
	// After the TTL the key is free: the request runs again (and meets the
	// existing experiment key).
	r := e.must(409, "POST", "/v1/experiments", e.admin, body, "Idempotency-Key", "old")
	if r.Header.Get("Idempotent-Replayed") != "" {
		t.Error("an expired key was replayed")
	}
}

func TestProblemsForUnknownRoutes(t *testing.T) {
	e := newEnv(t, "sqlite", Options{})
	r := e.must(404, "GET", "/v2/nothing", "", "")
	p := r.JSON(t)
	if p["type"] != ProblemTypeBase+"not_found" || p["instance"] != "/v2/nothing" || r.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("404 problem: %s", r.Body)
	}
	r = e.must(405, "DELETE", "/v1/experiments", e.admin, "")
	if allow := r.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("Allow = %q", allow)
	}
	if r.JSON(t)["status"] != 405.0 {
		t.Errorf("405 problem: %s", r.Body)
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t, "sqlite", Options{})
	r := e.must(200, "GET", "/healthz", "", "", "X-Request-Id", "abc-123")
	if got := r.Header.Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("sane incoming id not kept: %q", got)
	}
	r = e.must(401, "GET", "/v1/experiments", "", "", "X-Request-Id", "bad id\twith spaces")
	rid := r.Header.Get("X-Request-Id")
	if !strings.HasPrefix(rid, "req_") {
		t.Errorf("odd incoming id not replaced: %q", rid)
	}
	if p := r.JSON(t); p["request_id"] != rid {
		t.Errorf("problem request_id %v, header %q", p["request_id"], rid)
	}
	if !strings.Contains(e.logs.String(), rid) {
		t.Error("the access log lacks the request id")
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, "sqlite", Options{RateLimit: 1.0 / 3600, RateBurst: 2})
	e.must(200, "GET", "/v1/experiments", e.admin, "")
	e.must(200, "GET", "/v1/experiments", e.admin, "")
	r := e.must(429, "GET", "/v1/experiments", e.admin, "")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Another key has its own bucket.
	e.must(200, "GET", "/v1/experiments", e.key(e.defaultWorkspace(), store.ScopeWrite), "")
}

// failingStore is a store whose ListExperiments fails with an error that
// must never reach a client.
type failingStore struct {
	store.Store
}

func (failingStore) ListExperiments(context.Context, string, store.ListParams) ([]store.Experiment, error) {
	return nil, fmt.Errorf("pq: relation secret_table does not exist at /var/lib/db")
}

// blockingStore is a store whose CreateKey waits for its context and
// reports what ended the wait.
type blockingStore struct {
	store.Store
	ended chan error
}

func (b blockingStore) CreateKey(ctx context.Context, _ store.APIKey) error {
	select {
	case <-ctx.Done():
		b.ended <- ctx.Err()
		return ctx.Err()
	case <-time.After(10 * time.Second):
		b.ended <- nil
		return nil
	}
}

// TestHandlerTimeout: a handler's database call gives up when the request
// has run HandlerTimeout, and the client gets an error, not a hang.
func TestHandlerTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	e := newEnv(t, "sqlite", Options{HandlerTimeout: timeout})
	bs := blockingStore{Store: e.store, ended: make(chan error, 1)}
	e.srv.store = bs
	start := time.Now()
	r := e.req("POST", "/v1/keys", e.admin, `{"name":"slow","scope":"write"}`)
	took := time.Since(start)
	select {
	case err := <-bs.ended:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the store's call ended with %v, want the handler's deadline", err)
		}
	default:
		t.Fatalf("the request answered %d without reaching the store: %s", r.Status, r.Body)
	}
	if took < timeout || took > timeout+5*time.Second {
		t.Errorf("the request took %v with a handler timeout of %v", took, timeout)
	}
	if r.Status < 500 {
		t.Errorf("a request cut by the handler timeout answered %d: %s", r.Status, r.Body)
	}
}

func TestInternalErrorsAreHidden(t *testing.T) {
	e := newEnv(t, "sqlite", Options{})
	e.srv.store = failingStore{e.store}
	r := e.must(500, "GET", "/v1/experiments", e.admin, "")
	if strings.Contains(string(r.Body), "secret_table") {
		t.Errorf("500 leaks the error: %s", r.Body)
	}
	p := r.JSON(t)
	if p["type"] != ProblemTypeBase+"internal" || !strings.Contains(p["detail"].(string), p["request_id"].(string)) {
		t.Errorf("500 problem: %s", r.Body)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "secret_table") || !strings.Contains(logs, p["request_id"].(string)) {
		t.Errorf("the log lacks the error or the request id:\n%s", logs)
	}
}

func TestPanicsBecome500(t *testing.T) {
	e := newEnv(t, "sqlite", Options{})
	e.srv.mux.Handle("GET /boom", e.srv.adapt(func(http.ResponseWriter, *http.Request) error {
		panic("kaboom with secrets")
	}))
	// A plain client: /boom is not in the OpenAPI document.
	resp, err := http.Get(e.http.URL + "/boom")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || strings.Contains(string(body), "kaboom") || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("panic answer: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(e.logs.String(), "kaboom") {
		t.Error("the panic is not logged")
	}
	e.must(200, "GET", "/healthz", "", "") // the server lives on
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, "sqlite", Options{MaxBodyBytes: 512})
	big := `{"key":"k","metric":"binary","variants":[{"key":"a","payload":"` + strings.Repeat("x", 600) + `"},{"key":"b"}]}`
	r := e.must(413, "POST", "/v1/experiments", e.admin, big)
	if r.JSON(t)["type"] != ProblemTypeBase+"too_large" {
		t.Errorf("413 problem: %s", r.Body)
	}
	// Also when the client does not declare the length (chunked).
	req, _ := http.NewRequest("POST", e.http.URL+"/v1/experiments", &chunkedReader{s: big})
	req.Header.Set("Authorization", "Bearer "+e.admin)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked big body: %d", resp.StatusCode)
	}
	// And through the idempotency layer, which reads the body itself.
	e.must(413, "POST", "/v1/experiments", e.admin, big, "Idempotency-Key", "big")
	if n := e.count(e.defaultWorkspace()); n != 0 {
		t.Errorf("%d experiments stored", n)
	}
}

// chunkedReader hides its length so that the request is sent chunked.
type chunkedReader struct {
	s string
	i int
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.i >= len(c.s) {
		return 0, io.EOF
	}
	n := copy(p, c.s[c.i:])
	c.i += n
	return n, nil
}

// TestOpenAPIMatchesRoutes holds routes.go and openapi.yaml together: every
// route is documented and every documented operation is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc, err := openAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(Deps{}, Options{})
	var served, documented []string
	served = append(served, srv.patterns...)
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	if diff := cmp.Diff(documented, served); diff != "" {
		t.Errorf("routes and OpenAPI paths differ (-documented +served):\n%s", diff)
	}
}

func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

// TestSharedRegistry: two servers (two listeners, or tests) may register on
// one Prometheus registry; the second reuses the first one's collectors.
func TestSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := openStore(t, "sqlite")
	a := NewServer(Deps{Store: st, Registry: reg}, Options{})
	b := NewServer(Deps{Store: st, Registry: reg}, Options{})
	for _, h := range []http.Handler{a, b} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
		if w.Code != 200 {
			t.Fatalf("healthz: %d", w.Code)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "samplit_http_requests_total" {
			continue
		}
		if len(f.GetMetric()) != 1 || f.GetMetric()[0].GetCounter().GetValue() != 2 {
			t.Errorf("want one series counting both servers' requests: %v", f.GetMetric())
		}
		return
	}
	t.Error("samplit_http_requests_total not gathered")
}

// TestExactJSON: bodies are read exactly (issue 14). Invalid UTF-8 and lone
// surrogate escapes anywhere in a body are a 400 (encoding/json would turn
// them into U+FFFD, so that "\xff-user" and "\xfe-user" became one unit);
// a name repeated in one object is a 400 (the last would win silently); a
// field name that matches only when case is ignored is a 400 (encoding/json
// would take "KEY" for "key"). Nothing is stored. Payloads stay free-form:
// "Color" and "color" are two names there.
func TestExactJSON(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ws := e.defaultWorkspace()
		const variants = `"variants":[{"key":"a"},{"key":"b"}]`
		for name, body := range map[string]string{
			"invalid UTF-8 in a key":        `{"key":"a` + "\xff" + `b","metric":"binary",` + variants + `}`,
			"invalid UTF-8 in a payload":    `{"key":"p","metric":"binary","variants":[{"key":"a","payload":{"x":"` + "\xfe" + `"}},{"key":"b"}]}`,
			"invalid UTF-8 in a name":       `{"` + "\xff" + `":1,"key":"q",` + variants + `}`,
			"lone high surrogate":           `{"key":"x\ud800y","metric":"binary",` + variants + `}`,
			"lone low surrogate":            `{"key":"x\udc00","metric":"binary",` + variants + `}`,
			"case-insensitive field":        `{"key":"a","KEY":"b","metric":"binary",` + variants + `}`,
			"case-insensitive nested field": `{"key":"c","metric":"binary","variants":[{"KEY":"a"},{"key":"b"}]}`,
			"repeated name":                 `{"key":"d","key":"e","metric":"binary",` + variants + `}`,
			"repeated name in a payload":    `{"key":"f","metric":"binary","variants":[{"key":"a","payload":{"c":1,"c":2}},{"key":"b"}]}`,
			"payload 5,000 levels deep": `{"key":"g","metric":"binary","variants":[{"key":"a","payload":` +
				strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `},{"key":"b"}]}`,
			"payload one level too deep": `{"key":"h","metric":"binary","variants":[{"key":"a","payload":` +
				strings.Repeat("[", MaxJSONDepth-2) + strings.Repeat("]", MaxJSONDepth-2) + `},{"key":"b"}]}`,
		} {
			t.Run(name, func(t *testing.T) {
				if r := e.req("POST", "/v1/experiments", e.admin, body); r.Status != 400 {
					t.Errorf("status %d, want 400: %s", r.Status, r.Body)
				}
			})
		}
		if n := e.count(ws); n != 0 {
			t.Errorf("refused bodies stored %d experiments", n)
		}
		// Valid forms stay valid: a surrogate pair, names differing in case
		// inside a payload, escaped backslashes before a u.
		r := e.must(201, "POST", "/v1/experiments", e.admin,
			`{"key":"ok","name":"rocket \ud83d\ude80","metric":"binary","variants":[{"key":"a","payload":{"Color":"red","color":"blue","path":"C:\\\\udir"}},{"key":"b"}]}`).JSON(t)
		if r["name"] != "rocket \U0001F680" {
			t.Errorf("name %q", r["name"])
		}
		// The deepest payload allowed: the body's object and variants array
		// and variant object take three levels.
		e.must(201, "POST", "/v1/experiments", e.admin, `{"key":"deep","metric":"binary","variants":[{"key":"a","payload":`+
			strings.Repeat("[", MaxJSONDepth-3)+strings.Repeat("]", MaxJSONDepth-3)+`},{"key":"b"}]}`)
		// Events: two unit ids that differ only in invalid bytes are refused,
		// not merged into one.
		e.must(201, "POST", "/v1/experiments", e.admin, `{"key":"ev","metric":"binary","start":true,`+variants+`}`)
		e.must(400, "POST", "/v1/experiments/ev/assign", e.admin, `{"unit_id":"`+"\xff"+`-user"}`)
		e.must(400, "POST", "/v1/experiments/ev/events", e.admin, `{"unit_id":"u","idempotency_key":"`+"\xfe"+`"}`)
	})
}

// TestAuthFailLimit: an address that sends unknown keys too often gets 429
// problem+json with Retry-After, without its keys being looked up, until
// its budget refills; a key verified recently still passes; another
// address is not affected.
func TestAuthFailLimit(t *testing.T) {
	e := newEnv(t, "sqlite", Options{AuthFailLimit: 3})
	e.must(200, "GET", "/v1/experiments", e.admin, "") // verified: cached
	fresh := e.key(e.defaultWorkspace(), store.ScopeWrite)
	for range 3 {
		e.must(401, "GET", "/v1/experiments", "sk_live_unknownunknownunknown", "")
	}
	r := e.must(429, "GET", "/v1/experiments", "sk_live_unknownunknownunknown", "")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 20 {
		t.Errorf("Retry-After %q, want the seconds until one failure comes back (20)", r.Header.Get("Retry-After"))
	}
	if p := r.JSON(t); p["type"] != ProblemTypeBase+"rate_limited" {
		t.Errorf("problem type %v", p["type"])
	}
	// A key not verified recently waits too: it is not looked at.
	e.must(429, "GET", "/v1/experiments", fresh, "")
	// The key verified before is served.
	e.must(200, "GET", "/v1/experiments", e.admin, "")
	// Another client address has its own budget.
	req := httptest.NewRequest("GET", "/v1/experiments", nil)
	req.RemoteAddr = "192.0.2.7:4711"
	req.Header.Set("Authorization", "Bearer "+fresh)
	rec := httptest.NewRecorder()
	e.srv.handler.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("another address: status %d, want 200", rec.Code)
	}
}

// TestEveryEngineStrategyIsServed: the API accepts every strategy the CLI
// simulates (one list, engine.Names), and each one assigns, records and
// analyses; a name outside it is refused, naming the field and the list.
func TestEveryEngineStrategyIsServed(t *testing.T) {
	e := newEnv(t, "sqlite", Options{})
	for _, s := range engine.Names() {
		e.must(201, "POST", "/v1/experiments", e.admin, fmt.Sprintf(`{"key":"s-%s","metric":"binary","strategy":%q,"start":true,
			"variants":[{"key":"a","control":true},{"key":"b"}]}`, strings.ReplaceAll(s, "_", "-"), s))
		ref := "/v1/experiments/s-" + strings.ReplaceAll(s, "_", "-")
		e.must(200, "POST", ref+"/assign", e.admin, `{"unit_ids":["u1","u2","u3"]}`)
		e.must(202, "POST", ref+"/events", e.admin, `{"unit_id":"u1"}`)
		if got := e.must(200, "GET", ref+"/results", e.admin, "").JSON(t); got["strategy"] != s || got["total_units"] != float64(3) {
			t.Errorf("%s: results %v", s, got)
		}
	}
	r := e.req("POST", "/v1/experiments", e.admin, `{"key":"bad","metric":"binary","strategy":"greedy","variants":[{"key":"a"},{"key":"b"}]}`)
	if r.Status != 422 || !strings.Contains(string(r.Body), strings.Join(engine.Names(), ", ")) {
		t.Errorf("unknown strategy: %d %s", r.Status, r.Body)
	}
}

// TestPriorLiftSDSetting: settings.prior_lift_sd is stored (both
// databases), shown, and validated (0 to 1; 0 means none and shows as null).
func TestPriorLiftSDSetting(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		got := e.must(201, "POST", "/v1/experiments", e.admin,
			`{"key":"p","variants":[{"key":"a"},{"key":"b"}],"settings":{"prior_lift_sd":0.03}}`).JSON(t)
		if sd := got["settings"].(map[string]any)["prior_lift_sd"]; sd != 0.03 {
			t.Errorf("prior_lift_sd %v, want 0.03", sd)
		}
		// Stored, not only echoed: read back from the database.
		if sd := e.must(200, "GET", "/v1/experiments/p", e.admin, "").JSON(t)["settings"].(map[string]any)["prior_lift_sd"]; sd != 0.03 {
			t.Errorf("read back: prior_lift_sd %v, want 0.03", sd)
		}
		none := e.must(201, "POST", "/v1/experiments", e.admin,
			`{"key":"q","variants":[{"key":"a"},{"key":"b"}],"settings":{"prior_lift_sd":0}}`).JSON(t)
		if sd := none["settings"].(map[string]any)["prior_lift_sd"]; sd != nil {
			t.Errorf("prior_lift_sd 0 shows as %v, want null", sd)
		}
		for _, bad := range []string{"-0.1", "1.5"} {
			r := e.must(422, "POST", "/v1/experiments", e.admin, `{"key":"r","variants":[{"key":"a"},{"key":"b"}],"settings":{"prior_lift_sd":`+bad+`}}`)
			if fields := r.fields(t); !slices.Contains(fields, "settings.prior_lift_sd") {
				t.Errorf("prior_lift_sd %s: fields %v", bad, fields)
			}
		}
	})
}
