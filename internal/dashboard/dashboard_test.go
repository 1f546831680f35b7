package dashboard

import (
	"bytes"
	"context"
	"html"
	"html/template"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/engine/stats"
	"github.com/samplit/samplit/internal/store"
)

func TestSignIn(t *testing.T) {
	e := newEnv(t)
	ws := e.defaultWorkspace()

	t.Run("pages need a session", func(t *testing.T) {
		p := e.browser().get("/experiments?status=running")
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/signin?next="+url.QueryEscape("/experiments?status=running") {
			t.Fatalf("status %d, location %q", p.Status, p.Header.Get("Location"))
		}
		if p := e.browser().get("/experiments/x/live"); p.Status != http.StatusUnauthorized {
			t.Errorf("live fragment without a session: status %d, want 401", p.Status)
		}
	})
	t.Run("bad key", func(t *testing.T) {
		for _, key := range []string{"", "nonsense", "sk_aaaaaaaaaaaa_BBBBBBBBBBBBBBBBBBBBBBBBBBBB"} {
			p := e.browser().post("/signin", url.Values{"key": {key}})
			if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "not valid") || p.Header.Get("Set-Cookie") != "" {
				t.Errorf("key %q: status %d, cookie %q", key, p.Status, p.Header.Get("Set-Cookie"))
			}
		}
	})
	t.Run("assign key refused", func(t *testing.T) {
		p := e.browser().post("/signin", url.Values{"key": {e.key(ws, store.ScopeAssign)}})
		if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "assign scope") || p.Header.Get("Set-Cookie") != "" {
			t.Errorf("status %d, cookie %q\n%s", p.Status, p.Header.Get("Set-Cookie"), p.Body)
		}
	})
	t.Run("write key and cookie flags", func(t *testing.T) {
		b := e.browser()
		p := b.post("/signin", url.Values{"key": {e.key(ws, store.ScopeWrite)}, "next": {"/funnels"}})
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/funnels" {
			t.Fatalf("status %d, location %q", p.Status, p.Header.Get("Location"))
		}
		c := (&http.Response{Header: p.Header}).Cookies()
		if len(c) != 1 {
			t.Fatalf("cookies %v", c)
		}
		ck := c[0]
		if ck.Name != cookieName || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/" ||
			ck.MaxAge <= 0 || ck.MaxAge > int(DefaultSessionTTL/time.Second) || ck.Expires.IsZero() {
			t.Errorf("cookie %+v", ck)
		}
		if strings.Contains(ck.Value, "sk_") || len(ck.Value) < 40 {
			t.Errorf("the cookie must be a random id, not the key: %q", ck.Value)
		}
		if p := b.get("/experiments"); p.Status != 200 || !strings.Contains(p.Body, "default") {
			t.Errorf("list after sign-in: status %d", p.Status)
		}
	})
	t.Run("open redirect refused", func(t *testing.T) {
		p := e.browser().post("/signin", url.Values{"key": {e.admin}, "next": {"//evil.example/x"}})
		if p.Header.Get("Location") != "/experiments" {
			t.Errorf("location %q", p.Header.Get("Location"))
		}
	})
	t.Run("secure over TLS", func(t *testing.T) {
		for _, tls := range []bool{true, false} {
			req := httptest.NewRequest("POST", "https://samplit.example/signin", strings.NewReader(url.Values{"key": {e.admin}}.Encode()))
			if !tls {
				req = httptest.NewRequest("POST", "http://samplit.example/signin", strings.NewReader(url.Values{"key": {e.admin}}.Encode()))
				req.Header.Set("X-Forwarded-Proto", "https")
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			e.dash.ServeHTTP(rec, req)
			c := rec.Result().Cookies()
			if rec.Code != http.StatusSeeOther || len(c) != 1 || !c[0].Secure {
				t.Errorf("tls=%v: status %d, cookies %+v", tls, rec.Code, c)
			}
		}
	})
}

func TestSignOutEndsSession(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.admin)
	u, _ := url.Parse(e.srv.URL)
	stolen := b.client.Jar.Cookies(u) // a copy of the cookie, as if taken
	csrf := b.csrf()

	p := b.post("/signout", url.Values{"csrf": {csrf}})
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/signin" {
		t.Fatalf("sign-out: status %d, location %q", p.Status, p.Header.Get("Location"))
	}
	if p := b.get("/experiments"); p.Status != http.StatusSeeOther {
		t.Errorf("after sign-out: status %d", p.Status)
	}
	// The session is over on the server, not only forgotten by the browser.
	other := e.browser()
	other.client.Jar.SetCookies(u, stolen)
	if p := other.get("/experiments"); p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/signin") {
		t.Errorf("the old cookie still works: status %d", p.Status)
	}
}

func TestRevokedKeyEndsSession(t *testing.T) {
	e := newEnv(t)
	ws := e.defaultWorkspace()
	key := e.key(ws, store.ScopeWrite)
	b := e.browser()
	b.signIn(key)
	lookup, _ := strings.CutPrefix(key, "sk_")
	lookup, _, _ = strings.Cut(lookup, "_")
	k, err := e.st.KeyByLookup(context.Background(), lookup)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.RevokeKey(context.Background(), ws, k.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if p := b.get("/experiments"); p.Status != http.StatusSeeOther {
		t.Errorf("revoked key still signed in: status %d", p.Status)
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	id := e.createExperiment(e.admin, "csrf-test", "a", "b")
	b := e.browser()
	b.signIn(e.admin)
	csrf := b.csrf()
	status := func() store.Status {
		x, err := e.st.GetExperiment(context.Background(), e.defaultWorkspace(), id)
		if err != nil {
			t.Fatal(err)
		}
		return x.Status
	}
	for _, tc := range []struct {
		name    string
		form    url.Values
		headers []string
	}{
		{"cross-site fetch metadata", url.Values{"csrf": {csrf}}, []string{"Sec-Fetch-Site", "cross-site"}},
		{"foreign origin", url.Values{"csrf": {csrf}}, []string{"Origin", "https://evil.example"}},
		{"no token", url.Values{}, nil},
		{"wrong token", url.Values{"csrf": {"x" + csrf}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := b.post("/experiments/"+id+"/pause", tc.form, tc.headers...)
			if p.Status != http.StatusForbidden {
				t.Errorf("status %d, want 403", p.Status)
			}
			if st := status(); st != store.StatusRunning {
				t.Errorf("the refused request changed the status to %s", st)
			}
		})
	}
	// Cross-site sign-in (login CSRF) is refused too.
	if p := e.browser().post("/signin", url.Values{"key": {e.admin}}, "Sec-Fetch-Site", "cross-site"); p.Status != http.StatusForbidden {
		t.Errorf("cross-site sign-in: status %d", p.Status)
	}
	// The same request from the page itself goes through.
	p := b.post("/experiments/"+id+"/pause", url.Values{"csrf": {csrf}}, "Sec-Fetch-Site", "same-origin")
	if p.Status != http.StatusSeeOther || status() != store.StatusPaused {
		t.Errorf("same-origin pause: status %d, experiment %s\n%s", p.Status, status(), p.Body)
	}
}

func TestWorkspaceIsolation(t *testing.T) {
	e := newEnv(t)
	var other struct {
		ID       string `json:"id"`
		AdminKey string `json:"admin_key"`
	}
	e.api("POST", "/v1/workspaces", e.admin, map[string]any{"name": "other"}, 201, &other)
	theirs := e.createExperiment(other.AdminKey, "their-secret", "a", "b")
	ours := e.createExperiment(e.admin, "ours", "a", "b")

	b := e.browser()
	b.signIn(e.admin)
	csrf := b.csrf()
	for _, path := range []string{"/experiments/" + theirs, "/experiments/their-secret", "/experiments/" + theirs + "/live"} {
		p := b.get(path)
		if p.Status != http.StatusNotFound || strings.Contains(p.Body, "their-secret") || strings.Contains(p.Body, "Test their") {
			t.Errorf("GET %s: status %d\n%s", path, p.Status, p.Body)
		}
	}
	if p := b.post("/experiments/"+theirs+"/pause", url.Values{"csrf": {csrf}}); p.Status != http.StatusNotFound {
		t.Errorf("pause of another workspace's experiment: status %d", p.Status)
	}
	x, _ := e.st.GetExperiment(context.Background(), other.ID, theirs)
	if x.Status != store.StatusRunning {
		t.Errorf("their experiment is %s", x.Status)
	}
	list := b.get("/experiments")
	if !strings.Contains(list.Body, ours) || strings.Contains(list.Body, theirs) || strings.Contains(list.Body, "their-secret") {
		t.Errorf("the list shows another workspace's experiment or misses ours")
	}
}

func TestExperimentList(t *testing.T) {
	e := newEnv(t)
	run := e.createExperiment(e.admin, "running-one", "control", "green")
	e.feed(e.admin, run, "u", 200, map[string]float64{"control": 0.05, "green": 0.30})
	e.api("POST", "/v1/experiments", e.admin, map[string]any{"key": "drafty", "variants": []map[string]any{{"key": "a"}, {"key": "b"}}}, 201, nil)
	b := e.browser()
	b.signIn(e.admin)

	p := b.get("/experiments")
	if p.Status != 200 {
		t.Fatalf("status %d", p.Status)
	}
	x, _ := e.st.GetExperiment(context.Background(), e.defaultWorkspace(), run)
	res, err := e.opt.Results(context.Background(), &x)
	if err != nil {
		t.Fatal(err)
	}
	lead, pb, _ := leader(res, x.Settings.MinSamples)
	if lead != "green" {
		t.Fatalf("test data should make green lead, got %s", lead)
	}
	row := p.Body[strings.Index(p.Body, `data-experiment="running-one"`):]
	row = row[:strings.Index(row, "</tr>")]
	for _, want := range []string{"running", "adaptive", "<td>green <span class=\"muted\">(leading)</span></td>", html.EscapeString(pct(pb)), count(res.TotalUnits)} {
		if !strings.Contains(row, want) {
			t.Errorf("row lacks %q:\n%s", want, row)
		}
	}
	if !strings.Contains(p.Body, `data-experiment="drafty"`) {
		t.Error("the draft is missing from the unfiltered list")
	}
	running := b.get("/experiments?status=running")
	if !strings.Contains(running.Body, `data-experiment="running-one"`) || strings.Contains(running.Body, `data-experiment="drafty"`) {
		t.Error("the running filter shows the wrong experiments")
	}
	if p := b.get("/experiments?status=bogus"); p.Status != http.StatusBadRequest {
		t.Errorf("bogus filter: status %d", p.Status)
	}
}

// TestChartsCarryTheResults checks every chart of the detail page as data:
// what the SVG says equals what optimize's Results and Timeseries return.
func TestChartsCarryTheResults(t *testing.T) {
	e := newEnv(t)
	id := e.createExperiment(e.admin, "charts", "control", "green", "blue")
	e.feed(e.admin, id, "a", 300, map[string]float64{"control": 0.05, "green": 0.25, "blue": 0.10})
	e.feed(e.admin, id, "b", 200, map[string]float64{"control": 0.05, "green": 0.25, "blue": 0.10})
	b := e.browser()
	b.signIn(e.admin)
	p := b.get("/experiments/" + id)
	if p.Status != 200 {
		t.Fatalf("status %d\n%s", p.Status, p.Body)
	}

	ctx := context.Background()
	x, _ := e.st.GetExperiment(ctx, e.defaultWorkspace(), id)
	res, err := e.opt.Results(ctx, &x)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	pts, err := e.opt.Timeseries(ctx, &x, x.CreatedAt.Truncate(time.Hour), now.Truncate(time.Hour).Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	num := func(s string) float64 {
		t.Helper()
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("not a number: %q", s)
		}
		return f
	}

	t.Run("variant table", func(t *testing.T) {
		rows := tags(p.Body, "tr", "data-p-best")
		if len(rows) != len(res.Variants) {
			t.Fatalf("%d rows, want %d", len(rows), len(res.Variants))
		}
		for i, v := range res.Variants {
			r := rows[i]
			if r["data-variant"] != v.Key || r["data-units"] != strconv.FormatInt(v.Units, 10) ||
				r["data-conversions"] != strconv.FormatInt(v.Conversions, 10) || num(r["data-mean"]) != v.Mean ||
				num(r["data-p-best"]) != v.PBest || num(r["data-expected-loss"]) != v.ExpectedLoss || num(r["data-weight"]) != v.Weight {
				t.Errorf("row %d = %v, results %+v", i, r, v)
			}
		}
		if !strings.Contains(p.Body, strings.ReplaceAll(template.HTMLEscapeString(res.Decision.Reason[1:]), "+", "&#43;")) {
			t.Errorf("the decision sentence %q is missing", res.Decision.Reason)
		}
	})
	t.Run("P(best) bars", func(t *testing.T) {
		bars := tags(p.Body, "rect", `data-col="p_best"`)
		if len(bars) != len(res.Variants) {
			t.Fatalf("%d bars", len(bars))
		}
		for i, v := range res.Variants {
			if bars[i]["data-variant"] != v.Key || num(bars[i]["data-value"]) != v.PBest ||
				math.Abs(num(bars[i]["width"])-100*v.PBest) > 0.006 {
				t.Errorf("bar %d = %v, p_best %v", i, bars[i], v.PBest)
			}
		}
	})
	t.Run("posterior densities", func(t *testing.T) {
		series := tags(chart(t, p.Body, "density"), "g", "data-dist")
		if len(series) != len(res.Variants) {
			t.Fatalf("%d curves", len(series))
		}
		for i, v := range res.Variants {
			s := series[i]
			a, bb := num(s["data-a"]), num(s["data-b"])
			if s["data-variant"] != v.Key || s["data-dist"] != "beta" ||
				a != 1+float64(v.Conversions) || bb != 1+float64(v.Units-v.Conversions) ||
				num(s["data-ci-low"]) != v.CILow || num(s["data-ci-high"]) != v.CIHigh || num(s["data-mean"]) != v.Mean {
				t.Errorf("curve %d = %v, results %+v", i, s, v)
			}
			// The curve drawn is the posterior the results' interval comes from.
			if lo := stats.BetaQuantile(0.025, a, bb); math.Abs(lo-v.CILow) > 1e-9 {
				t.Errorf("%s: Beta(%v, %v) 2.5%% quantile %v, results ci_low %v", v.Key, a, bb, lo, v.CILow)
			}
		}
	})
	t.Run("allocation and cumulative conversions", func(t *testing.T) {
		hours, keys, table := seriesTable(&x, pts)
		if len(hours) == 0 {
			t.Fatal("no timeseries")
		}
		for _, name := range []string{"allocation", "cumulative"} {
			svg := chart(t, p.Body, name)
			if got := attrs(svg[:strings.Index(svg, ">")])["data-hours"]; got != hoursAttr(hours) {
				t.Errorf("%s hours %q, want %q", name, got, hoursAttr(hours))
			}
			series := tags(svg, "g", "data-values")
			if len(series) != len(keys) {
				t.Fatalf("%s: %d series, want %d", name, len(series), len(keys))
			}
			for v, key := range keys {
				vals := strings.Fields(series[v]["data-values"])
				if series[v]["data-variant"] != key || len(vals) != len(hours) {
					t.Fatalf("%s series %d = %v", name, v, series[v])
				}
				var total float64
				for h := range hours {
					want := table[v][h].Weight
					if name == "cumulative" {
						total += float64(table[v][h].Conversions)
						want = total
					}
					if num(vals[h]) != want {
						t.Errorf("%s %s hour %d = %s, want %v", name, key, h, vals[h], want)
					}
				}
				if name == "cumulative" && total != float64(res.Variants[v].Conversions) {
					t.Errorf("cumulative %s ends at %v, results say %d conversions", key, total, res.Variants[v].Conversions)
				}
			}
		}
	})
	t.Run("live fragment", func(t *testing.T) {
		f := b.get("/experiments/" + id + "/live")
		if f.Status != 200 || strings.Contains(f.Body, "<html") || !strings.Contains(f.Body, `data-chart="density"`) ||
			!strings.Contains(f.Body, `data-running="true"`) {
			t.Errorf("fragment: status %d\n%.400s", f.Status, f.Body)
		}
	})
}

func TestContinuousDensity(t *testing.T) {
	e := newEnv(t)
	var out struct{ ID string }
	e.api("POST", "/v1/experiments", e.admin, map[string]any{"key": "revenue", "metric": "continuous", "start": true,
		"variants": []map[string]any{{"key": "a"}, {"key": "b"}}}, 201, &out)
	var as struct {
		Assignments []struct {
			UnitID  string `json:"unit_id"`
			Variant string `json:"variant"`
		}
	}
	units := []string{}
	for i := range 60 {
		units = append(units, "u"+strconv.Itoa(i))
	}
	e.api("POST", "/v1/experiments/revenue/assign", e.admin, map[string]any{"unit_ids": units}, 200, &as)
	var evs []map[string]any
	for i, a := range as.Assignments {
		v := 10 + float64(i%7)
		if a.Variant == "b" {
			v += 5
		}
		evs = append(evs, map[string]any{"unit_id": a.UnitID, "value": v})
	}
	e.api("POST", "/v1/experiments/revenue/events", e.admin, map[string]any{"events": evs}, 202, nil)
	b := e.browser()
	b.signIn(e.admin)
	p := b.get("/experiments/revenue")
	x, _ := e.st.GetExperiment(context.Background(), e.defaultWorkspace(), out.ID)
	res, err := e.opt.Results(context.Background(), &x)
	if err != nil {
		t.Fatal(err)
	}
	series := tags(chart(t, p.Body, "density"), "g", "data-dist")
	for i, v := range res.Variants {
		s := series[i]
		mu, sd := attrFloat(t, s, "data-a"), attrFloat(t, s, "data-b")
		if s["data-dist"] != "normal" || math.Abs(mu-1.959963984540054*sd-v.CILow) > 1e-9 || math.Abs(mu+1.959963984540054*sd-v.CIHigh) > 1e-9 {
			t.Errorf("curve %v, results %+v", s, v)
		}
	}
	if !strings.Contains(p.Body, "Cumulative value over time") {
		t.Error("a continuous experiment's cumulative chart should be of value")
	}
}

func attrFloat(t *testing.T, m map[string]string, k string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(m[k], 64)
	if err != nil {
		t.Fatalf("%s = %q", k, m[k])
	}
	return f
}

func TestCreateExperimentForm(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.admin)
	csrf := b.csrf()
	if p := b.get("/experiments/new"); p.Status != 200 || !strings.Contains(p.Body, `name="variant.0.key"`) {
		t.Fatalf("form: status %d", p.Status)
	}
	form := func(kv ...string) url.Values {
		v := url.Values{"csrf": {csrf}, "metric": {"binary"}, "strategy": {"adaptive"}, "control": {"0"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}

	t.Run("API validation messages next to the fields", func(t *testing.T) {
		p := b.post("/experiments", form("key", "Bad Key!", "variant.0.key", "same", "variant.2.key", "same", "decision_threshold", "1.5", "min_effect", "2"))
		if p.Status != http.StatusUnprocessableEntity {
			t.Fatalf("status %d\n%s", p.Status, p.Body)
		}
		for _, want := range []string{
			`id="key-error"`, "must hold only lower-case letters",
			`id="v2key-error"`, "duplicates variants[0].key",
			`id="decision_threshold-error"`, "must be greater than 0 and less than 1",
			`id="min_effect-error"`, `value="2"`,
			`value="Bad Key!"`, // what was typed comes back
		} {
			if !strings.Contains(p.Body, strings.ReplaceAll(want, `"`, "&#34;")) && !strings.Contains(p.Body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
	})
	t.Run("form-only errors", func(t *testing.T) {
		p := b.post("/experiments", form("key", "k", "variant.0.key", "a", "variant.1.key", "b", "variant.1.payload", "{not json", "min_samples", "ten"))
		if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "must be a whole number") || !strings.Contains(p.Body, "must be JSON") {
			t.Errorf("status %d\n%s", p.Status, p.Body)
		}
	})
	t.Run("created", func(t *testing.T) {
		p := b.post("/experiments", form("key", "new-one", "name", "New one", "variant.0.key", "control", "variant.3.key", "green",
			"variant.3.payload", `{"color":"green"}`, "control", "0", "min_samples", "50", "alpha", "0.01", "min_effect", "0.1", "prior_lift_sd", "0.05", "start", "1"))
		if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/experiments/exp_") {
			t.Fatalf("status %d, location %q\n%s", p.Status, p.Header.Get("Location"), p.Body)
		}
		x, err := e.st.GetExperiment(context.Background(), e.defaultWorkspace(), "new-one")
		if err != nil {
			t.Fatal(err)
		}
		if x.Status != store.StatusRunning || len(x.Variants) != 2 || !x.Variants[0].Control || x.Settings.MinSamples != 50 ||
			x.Settings.Alpha != 0.01 || x.Settings.MinEffect != 0.1 || x.Settings.PriorLiftSD != 0.05 ||
			string(x.Variants[1].Payload) != `{"color":"green"}` || x.Name != "New one" {
			t.Errorf("created %+v", x)
		}
		if d := b.get(p.Header.Get("Location")); !strings.Contains(d.Body, "Experiment created.") {
			t.Error("no confirmation on the detail page")
		}
		again := b.post("/experiments", form("key", "new-one", "variant.0.key", "a", "variant.1.key", "b"))
		if again.Status != http.StatusConflict || !strings.Contains(again.Body, "is taken") {
			t.Errorf("duplicate key: status %d", again.Status)
		}
	})
}

// TestCreateExperimentFormMetrics: the form's metric rows create secondary
// and guardrail metrics through the service, and the service's refusals
// ("metrics[0].max_degradation") show next to the row that caused them.
func TestCreateExperimentFormMetrics(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.admin)
	csrf := b.csrf()
	if p := b.get("/experiments/new"); !strings.Contains(p.Body, `name="metric.0.max_degradation"`) {
		t.Fatal("the form has no metric rows")
	}
	form := func(kv ...string) url.Values {
		v := url.Values{"csrf": {csrf}, "metric": {"binary"}, "strategy": {"adaptive"}, "control": {"0"},
			"variant.0.key": {"control"}, "variant.1.key": {"green"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	// Row 2 holds the guardrail without its allowed degradation; row 1 is
	// empty and left out, so the service's metrics[0] is the form's row 2.
	p := b.post("/experiments", form("key", "m-bad", "metric.1.key", "refunds", "metric.1.type", "binary",
		"metric.1.role", "guardrail", "metric.1.direction", "decrease"))
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, `id="m1maxdeg-error"`) ||
		!strings.Contains(p.Body, "is required for a guardrail") {
		t.Errorf("guardrail without max_degradation: status %d\n%s", p.Status, p.Body)
	}
	if p := b.post("/experiments", form("key", "m-text", "metric.0.key", "refunds", "metric.0.role", "guardrail",
		"metric.0.direction", "decrease", "metric.0.max_degradation", "ten percent")); p.Status != http.StatusUnprocessableEntity ||
		!strings.Contains(p.Body, "must be a number, such as 0.1") {
		t.Errorf("text degradation: status %d", p.Status)
	}
	p = b.post("/experiments", form("key", "m-good", "metric.0.key", "refunds", "metric.0.type", "binary", "metric.0.role", "guardrail",
		"metric.0.direction", "decrease", "metric.0.max_degradation", "0.1",
		"metric.2.key", "revenue", "metric.2.type", "continuous", "metric.2.role", "secondary", "metric.2.direction", "decrease"))
	if p.Status != http.StatusSeeOther {
		t.Fatalf("status %d\n%s", p.Status, p.Body)
	}
	x, err := e.st.GetExperiment(context.Background(), e.defaultWorkspace(), "m-good")
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Metrics) != 2 || x.Metrics[0].Key != "refunds" || x.Metrics[0].Role != store.RoleGuardrail ||
		x.Metrics[0].Direction != "decrease" || x.Metrics[0].MaxDegradation != 0.1 ||
		x.Metrics[1].Key != "revenue" || x.Metrics[1].Role != store.RoleSecondary || x.Metrics[1].Type != store.MetricContinuous ||
		x.Metrics[1].Direction != "increase" {
		t.Errorf("metrics %+v", x.Metrics)
	}
	for _, bad := range []string{"m-bad", "m-text"} {
		if _, err := e.st.GetExperiment(context.Background(), e.defaultWorkspace(), bad); err == nil {
			t.Errorf("%s was created", bad)
		}
	}
}

func TestLifecycleButtons(t *testing.T) {
	e := newEnv(t)
	var out struct{ ID string }
	e.api("POST", "/v1/experiments", e.admin, map[string]any{"key": "life", "variants": []map[string]any{{"key": "a"}, {"key": "b"}}}, 201, &out)
	b := e.browser()
	b.signIn(e.admin)
	csrf := b.csrf()
	status := func() store.Status {
		x, _ := e.st.GetExperiment(context.Background(), e.defaultWorkspace(), out.ID)
		return x.Status
	}
	steps := []struct {
		action string
		want   store.Status
		button string // a button the page then shows
	}{
		{"start", store.StatusRunning, `id="action-pause"`},
		{"pause", store.StatusPaused, `id="action-resume"`},
		{"resume", store.StatusRunning, `id="action-pause"`},
	}
	if p := b.get("/experiments/" + out.ID); !strings.Contains(p.Body, `id="action-start"`) || !strings.Contains(p.Body, `data-confirm="Start`) {
		t.Fatal("a draft has no start button with a confirmation")
	}
	for _, s := range steps {
		p := b.post("/experiments/"+out.ID+"/"+s.action, url.Values{"csrf": {csrf}})
		if p.Status != http.StatusSeeOther || status() != s.want {
			t.Fatalf("%s: status %d, experiment %s\n%s", s.action, p.Status, status(), p.Body)
		}
		if d := b.get(p.Header.Get("Location")); !strings.Contains(d.Body, s.button) {
			t.Errorf("after %s the page has no %s", s.action, s.button)
		}
	}
	// A transition the status does not allow: the API's 409 and reason.
	p := b.post("/experiments/"+out.ID+"/start", url.Values{"csrf": {csrf}})
	if p.Status != http.StatusConflict || !strings.Contains(p.Body, "cannot start") {
		t.Errorf("start of a running experiment: status %d", p.Status)
	}
	p = b.post("/experiments/"+out.ID+"/complete", url.Values{"csrf": {csrf}, "winner": {"b"}})
	x, _ := e.st.GetExperiment(context.Background(), e.defaultWorkspace(), out.ID)
	if p.Status != http.StatusSeeOther || x.Status != store.StatusCompleted || x.Winner != "b" || !x.WinnerFixed {
		t.Errorf("complete: status %d, experiment %+v", p.Status, x)
	}
	if p := b.post("/experiments/"+out.ID+"/archive", url.Values{"csrf": {csrf}}); p.Status != http.StatusNotFound {
		t.Errorf("unknown action: status %d", p.Status)
	}
}

func TestFunnelPages(t *testing.T) {
	e := newEnv(t)
	var f struct{ ID string }
	e.api("POST", "/v1/funnels", e.admin, map[string]any{
		"key": "signup", "name": "Sign-up", "start": true,
		"steps": []map[string]any{
			{"key": "landing", "variants": []map[string]any{{"key": "a", "control": true}, {"key": "b"}}},
			{"key": "form"},
			{"key": "done"},
		},
	}, 201, &f)
	for i := range 40 {
		u := "u" + strconv.Itoa(i)
		e.api("POST", "/v1/funnels/signup/progress", e.admin, map[string]any{"unit_id": u, "step": "landing"}, 200, nil)
		if i%2 == 0 {
			e.api("POST", "/v1/funnels/signup/progress", e.admin, map[string]any{"unit_id": u, "step": "form"}, 200, nil)
		}
		if i%4 == 0 {
			e.api("POST", "/v1/funnels/signup/progress", e.admin, map[string]any{"unit_id": u, "step": "done"}, 200, nil)
		}
	}
	b := e.browser()
	b.signIn(e.admin)
	if p := b.get("/funnels"); p.Status != 200 || !strings.Contains(p.Body, `data-funnel="signup"`) {
		t.Fatalf("list: status %d", p.Status)
	}
	p := b.get("/funnels/" + f.ID)
	if p.Status != 200 {
		t.Fatalf("detail: status %d\n%s", p.Status, p.Body)
	}
	fn, _ := e.st.GetFunnel(context.Background(), e.defaultWorkspace(), f.ID)
	res, err := e.funnels.Results(context.Background(), &fn)
	if err != nil {
		t.Fatal(err)
	}
	bars := tags(chart(t, p.Body, "funnel"), "g", "data-step")
	if len(bars) != len(res.Steps) {
		t.Fatalf("%d bars, %d steps", len(bars), len(res.Steps))
	}
	for i, s := range res.Steps {
		drop := ""
		if s.DropOff != nil {
			drop = exact(*s.DropOff)
		}
		if bars[i]["data-step"] != s.Key || bars[i]["data-units"] != strconv.FormatInt(s.Units, 10) || bars[i]["data-drop-off"] != drop {
			t.Errorf("bar %d = %v, step %+v", i, bars[i], s)
		}
	}
	pb := tags(p.Body, "rect", `data-col="p_best"`)
	if len(pb) != 2 || attrFloat(t, pb[0], "data-value") != res.Steps[0].Variants[0].PBest {
		t.Errorf("P(best) bars %v", pb)
	}
	if !strings.Contains(p.Body, "Best path") || !strings.Contains(p.Body, `data-step="landing"`) {
		t.Error("no best path")
	}
	if !strings.Contains(p.Body, "conversion window 7d") {
		t.Error("the funnel's conversion window is not shown")
	}
	if res.Steps[0].MaturedWithin != nil || strings.Contains(p.Body, "Rates count the completions within") {
		t.Errorf("rates said to be within %v while no delay has been estimated", res.Steps[0].MaturedWithin)
	}
}

// TestFunnelNoDifferenceShown: a funnel whose only step with variants
// ends in no_difference is shown as decided: the state, the step's tag and
// its place in the best path say "no difference", not "collecting" or
// "undecided".
func TestFunnelNoDifferenceShown(t *testing.T) {
	e := newEnv(t)
	var f struct{ ID string }
	e.api("POST", "/v1/funnels", e.admin, map[string]any{
		"key": "same", "name": "Same", "start": true,
		"settings": map[string]any{"seed": 3, "min_samples": 10, "weight_floor": 0.45, "min_effect": 0.5},
		"steps":    []map[string]any{{"key": "landing", "variants": []map[string]any{{"key": "a"}, {"key": "b"}}}, {"key": "done"}},
	}, 201, &f)
	// Every other unit converts, whatever its variant (TestFunnelStepNoDifference
	// in internal/api decides within 400–550 units).
	for i := range 1000 {
		u := "u" + strconv.Itoa(i)
		e.api("POST", "/v1/funnels/same/progress", e.admin, map[string]any{"unit_id": u, "step": "landing"}, 200, nil)
		if i%2 == 0 {
			e.api("POST", "/v1/funnels/same/progress", e.admin, map[string]any{"unit_id": u, "step": "done"}, 200, nil)
		}
	}
	var res struct {
		Decision struct{ State string }
	}
	e.api("GET", "/v1/funnels/same/results", e.admin, nil, 200, &res)
	if res.Decision.State != "no_difference" {
		t.Fatalf("decision %q, want no_difference", res.Decision.State)
	}
	b := e.browser()
	b.signIn(e.admin)
	p := b.get("/funnels/" + f.ID)
	for _, want := range []string{"No difference at any step", `<span class="tag tag-same">no difference</span>`, `landing: <em>no difference</em>`} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("detail page lacks %q", want)
		}
	}
	if strings.Contains(p.Body, "Collecting data") || strings.Contains(p.Body, "undecided") {
		t.Errorf("detail page still says collecting or undecided:\n%s", p.Body)
	}
}

// TestFunnelMaturedWithinShown: while a step's rates count completions
// within a delay short of the window (engine.FunnelStepResult's
// MaturedWithin), the step says so above its variants.
func TestFunnelMaturedWithinShown(t *testing.T) {
	h := "24h0m0s"
	live := funnelLive{Steps: []funnelStepView{{FunnelStepResult: engine.FunnelStepResult{Key: "landing", MaturedWithin: &h}, Position: 1,
		Rows: []funnelVariantRow{{FunnelVariantResult: engine.FunnelVariantResult{Key: "a"}}, {FunnelVariantResult: engine.FunnelVariantResult{Key: "b"}}}}}}
	var buf bytes.Buffer
	if err := parsePages()["funnel_live"].ExecuteTemplate(&buf, "funnel_live.html", live); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Rates count the completions within 24h0m0s of reaching the step") {
		t.Errorf("matured within not shown:\n%s", buf.String())
	}
}

// TestConversionWindowShown: the experiment page says whether the
// experiment has a conversion window, and which.
func TestConversionWindowShown(t *testing.T) {
	e := newEnv(t)
	var with, without struct{ ID string }
	e.api("POST", "/v1/experiments", e.admin, map[string]any{"key": "late", "settings": map[string]any{"conversion_window": "36h"},
		"variants": []map[string]any{{"key": "a"}, {"key": "b"}}}, 201, &with)
	e.api("POST", "/v1/experiments", e.admin, map[string]any{"key": "now", "variants": []map[string]any{{"key": "a"}, {"key": "b"}}}, 201, &without)
	b := e.browser()
	b.signIn(e.admin)
	if p := b.get("/experiments/" + with.ID); !strings.Contains(p.Body, "<dt>Conversion window</dt><dd>36h0m0s:") {
		t.Errorf("the window of late is not shown:\n%s", p.Body)
	}
	if p := b.get("/experiments/" + without.ID); !strings.Contains(p.Body, "<dt>Conversion window</dt><dd>none") {
		t.Error("no window is not shown as none")
	}
}

func TestHeadersAndRouting(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.admin)
	for _, path := range []string{"/signin", "/experiments", "/nope", "/static/app.js"} {
		p := b.get(path)
		if !strings.Contains(p.Header.Get("Content-Security-Policy"), "script-src 'self'") ||
			!strings.Contains(p.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			p.Header.Get("X-Frame-Options") != "DENY" || p.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", path, p.Header)
		}
	}
	if p := b.get("/nope"); p.Status != http.StatusNotFound || !strings.Contains(p.Header.Get("Content-Type"), "text/html") {
		t.Errorf("unknown page: %d %s", p.Status, p.Header.Get("Content-Type"))
	}
	if p := b.get("/static/app.js"); p.Status != 200 || !strings.Contains(p.Body, "data-confirm") {
		t.Errorf("app.js: %d", p.Status)
	}
	// The API keeps its paths and its problem+json, the dashboard has the rest.
	if p := b.get("/healthz"); p.Status != 200 {
		t.Errorf("/healthz: %d", p.Status)
	}
	if p := b.get("/v1/nope"); p.Status != http.StatusNotFound && p.Status != http.StatusUnauthorized || !strings.Contains(p.Header.Get("Content-Type"), "problem+json") {
		t.Errorf("/v1/nope: %d %s", p.Status, p.Header.Get("Content-Type"))
	}
	if p := b.get("/"); p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/experiments" {
		t.Errorf("/: %d %s", p.Status, p.Header.Get("Location"))
	}
	// No inline script or style anywhere: the CSP would block it.
	p := b.get("/experiments/new")
	if strings.Contains(p.Body, "<script>") || strings.Contains(p.Body, " style=") || strings.Contains(p.Body, "onclick") {
		t.Error("inline script or style on the page")
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{pct(0.123), "12.3%"}, {pct(0), "0.0%"}, {pct(1), "100.0%"}, {pct(0.0001), "<0.1%"}, {pct(0.9999), ">99.9%"},
		{count(950), "950"}, {count(1234), "1.2k"}, {count(12000), "12k"}, {count(123456), "123k"}, {count(1_200_000), "1.2M"},
		{num(12.345), "12.3"}, {num(0.0456), "0.0456"}, {num(12345), "12.3k"}, {num(-2500), "-2.5k"},
		{small(0.00123), "0.0012"}, {small(0), "0"},
		{sentence("no winner yet: a leads"), "no winner yet: a leads."},
		{sentence("green beats control"), "green beats control."},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestSafeNext: the sign-in redirect stays on this site however the path is
// spelled, including the forms browsers rewrite (a tab or newline dropped, a
// backslash read as a slash) into another site's URL.
func TestSafeNext(t *testing.T) {
	for next, want := range map[string]string{
		"/experiments/exp_1":        "/experiments/exp_1",
		"/campaigns?status=running": "/campaigns?status=running",
		"":                          "/experiments",
		"https://evil.example/":     "/experiments",
		"//evil.example":            "/experiments",
		"/\t/evil.example":          "/experiments",
		"/%09/evil.example":         "/%09/evil.example", // decoded only in the path: stays on this site
		"/\n/evil.example":          "/experiments",
		"/\\evil.example":           "/experiments",
		"\\\\evil.example":          "/experiments",
		" //evil.example":           "/experiments",
		"/signin?next=/x":           "/experiments",
		"javascript:alert(1)":       "/experiments",
		"/x\x7f":                    "/experiments",
		"experiments":               "/experiments",
		"/ok/../..//evil.example":   "/ok/../..//evil.example",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}
