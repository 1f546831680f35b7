package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/dbtest"
	"github.com/samplit/samplit/internal/targeting"
)

// experimentFormValues returns the new-experiment form's values for a binary
// experiment with the variants control and green, with kv set on top.
func experimentFormValues(csrf string, kv ...string) url.Values {
	v := url.Values{"csrf": {csrf}, "metric": {"binary"}, "strategy": {"adaptive"}, "control": {"0"},
		"variant.0.key": {"control"}, "variant.1.key": {"green"}, "targeting.match": {"all"}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// TestCreateExperimentFormTargetingAndLayer: on both backends, the form's
// targeting rows and layer fields create an experiment with those rules and
// that range (read back through the API); a bad rule or share shows the
// service's reason next to its field, keeps what was typed and creates
// nothing; a share that does not fit is a 409 with the layer's free share.
func TestCreateExperimentFormTargetingAndLayer(t *testing.T) {
	dbtest.EachBackend(t, "dashboard_", func(t *testing.T, dsn string) {
		e := newEnvOn(t, dsn, Options{RefreshSeconds: 1})
		ctx := context.Background()
		e.api("POST", "/v1/layers", e.admin, map[string]any{"key": "checkout", "name": "Checkout"}, 201, nil)
		b := e.browser()
		b.signIn(e.admin)
		csrf := b.csrf()
		p := b.get("/experiments/new")
		for _, want := range []string{`name="targeting.match"`, `name="condition.3.value"`, `name="layer_share"`,
			`<option value="checkout">checkout — 100.0% free</option>`, `<option value="semver_gte">`} {
			if !strings.Contains(p.Body, want) {
				t.Errorf("the form has no %s", want)
			}
		}
		if p := b.get("/experiments/new?layer=checkout"); !strings.Contains(p.Body, `<option value="checkout" selected>`) {
			t.Error("?layer=checkout does not choose the layer")
		}

		// Row 1 is empty and left out; rows 0, 2 and 3 are the rules.
		p = b.post("/experiments", experimentFormValues(csrf, "key", "targeted",
			"condition.0.attribute", "country", "condition.0.op", "in", "condition.0.type", "text", "condition.0.value", "ES, MX",
			"condition.2.attribute", "app_version", "condition.2.op", "semver_gte", "condition.2.type", "number", "condition.2.value", "2.3.0",
			"condition.3.attribute", "age", "condition.3.op", "gte", "condition.3.type", "number", "condition.3.value", "18",
			"layer", "checkout", "layer_share", "0.6"))
		if p.Status != http.StatusSeeOther {
			t.Fatalf("create: status %d\n%s", p.Status, p.Body)
		}
		x, err := e.st.GetExperiment(ctx, e.defaultWorkspace(), "targeted")
		if err != nil {
			t.Fatal(err)
		}
		want := &targeting.Rules{All: []targeting.Condition{
			{Attribute: "country", Op: targeting.OpIn, Values: []any{"ES", "MX"}},
			{Attribute: "app_version", Op: targeting.OpSemverGte, Value: "2.3.0"},
			{Attribute: "age", Op: targeting.OpGte, Value: 18.0},
		}}
		if diff := cmp.Diff(want, x.Targeting); diff != "" {
			t.Errorf("stored targeting mismatch (-want +got):\n%s", diff)
		}
		var api struct {
			Layer      *string     `json:"layer"`
			LayerShare *float64    `json:"layer_share"`
			LayerRange *[2]float64 `json:"layer_range"`
			Targeting  struct {
				All []map[string]any `json:"all"`
			} `json:"targeting"`
		}
		e.api("GET", "/v1/experiments/targeted", e.admin, nil, 200, &api)
		if api.Layer == nil || *api.Layer != "checkout" || api.LayerShare == nil || *api.LayerShare != 0.6 ||
			api.LayerRange == nil || *api.LayerRange != [2]float64{0, 0.6} || len(api.Targeting.All) != 3 {
			t.Errorf("the API shows layer %v share %v range %v, %d conditions", api.Layer, api.LayerShare, api.LayerRange, len(api.Targeting.All))
		}

		// "any": a boolean, and exists without a value and with false
		// (whatever the row's type).
		p = b.post("/experiments", experimentFormValues(csrf, "key", "anyone", "targeting.match", "any",
			"condition.1.attribute", "beta", "condition.1.op", "eq", "condition.1.type", "boolean", "condition.1.value", "True",
			"condition.2.attribute", "email", "condition.2.op", "exists", "condition.2.type", "number",
			"condition.3.attribute", "legacy", "condition.3.op", "exists", "condition.3.type", "text", "condition.3.value", "false"))
		if p.Status != http.StatusSeeOther {
			t.Fatalf("create with any: status %d\n%s", p.Status, p.Body)
		}
		x, err = e.st.GetExperiment(ctx, e.defaultWorkspace(), "anyone")
		if err != nil {
			t.Fatal(err)
		}
		want = &targeting.Rules{Any: []targeting.Condition{{Attribute: "beta", Op: targeting.OpEq, Value: true},
			{Attribute: "email", Op: targeting.OpExists}, {Attribute: "legacy", Op: targeting.OpExists, Value: false}}}
		if diff := cmp.Diff(want, x.Targeting); diff != "" {
			t.Errorf("stored targeting with any mismatch (-want +got):\n%s", diff)
		}

		refused := func(name string, status int, form url.Values, wantIn ...string) {
			t.Helper()
			p := b.post("/experiments", form)
			if p.Status != status {
				t.Errorf("%s: status %d, want %d\n%s", name, p.Status, status, p.Body)
			}
			for _, w := range wantIn {
				if !strings.Contains(p.Body, w) {
					t.Errorf("%s: the page lacks %s", name, w)
				}
			}
			if _, err := e.st.GetExperiment(ctx, e.defaultWorkspace(), form.Get("key")); err == nil {
				t.Errorf("%s: %s was created", name, form.Get("key"))
			}
		}
		// The service's reason, next to the row that caused it (row 2 is
		// the service's all[0]: rows 0 and 1 are empty), with what was typed.
		refused("bad version", http.StatusUnprocessableEntity, experimentFormValues(csrf, "key", "bad-version",
			"condition.2.attribute", "app_version", "condition.2.op", "semver_gte", "condition.2.value", "two",
			"layer", "checkout", "layer_share", "0.2"),
			`id="c2value-error"`, "must be a semantic version", `value="two"`, `value="app_version"`,
			`<option value="semver_gte" selected>`, `<option value="checkout" selected>`, `value="0.2"`,
			"Condition 3 value: must be a semantic version")
		refused("in without values", http.StatusUnprocessableEntity, experimentFormValues(csrf, "key", "no-values",
			"condition.0.attribute", "country", "condition.0.op", "in", "condition.0.value", " , "),
			`id="c0value-error"`, "must hold 1 to 100 values")
		refused("value without attribute", http.StatusUnprocessableEntity, experimentFormValues(csrf, "key", "no-attr",
			"condition.1.op", "eq", "condition.1.value", "ES"),
			`id="c1attribute-error"`, "must not be empty")
		refused("text as a number", http.StatusUnprocessableEntity, experimentFormValues(csrf, "key", "nan",
			"condition.0.attribute", "age", "condition.0.op", "gt", "condition.0.type", "number", "condition.0.value", "eighteen"),
			`id="c0value-error"`, "is not a number")
		refused("unknown operator", http.StatusUnprocessableEntity, experimentFormValues(csrf, "key", "bad-op",
			"condition.0.attribute", "age", "condition.0.op", "about", "condition.0.value", "3"),
			`id="c0op-error"`, "must be one of eq, neq", "Condition 1 operator: must be one of")
		refused("share without layer", http.StatusUnprocessableEntity, experimentFormValues(csrf, "key", "no-layer",
			"layer_share", "0.5"),
			`id="layer_share-error"`, "is only for an experiment in a layer")
		refused("layer without share", http.StatusUnprocessableEntity, experimentFormValues(csrf, "key", "no-share",
			"layer", "checkout"),
			`id="layer_share-error"`, "is required with layer")
		refused("share as text", http.StatusUnprocessableEntity, experimentFormValues(csrf, "key", "text-share",
			"layer", "checkout", "layer_share", "half"),
			`id="layer_share-error"`, "must be a number, such as 0.5")
		refused("unknown layer", http.StatusUnprocessableEntity, experimentFormValues(csrf, "key", "nowhere",
			"layer", "nowhere", "layer_share", "0.5"),
			`id="layer-error"`, `no layer &#34;nowhere&#34; in this workspace`, `<option value="nowhere" selected>nowhere (no such layer)`)
		// 0.6 is held: 0.5 does not fit. The 409's reason and the layer's
		// free share show, next to the share.
		refused("share does not fit", http.StatusConflict, experimentFormValues(csrf, "key", "too-big",
			"layer", "checkout", "layer_share", "0.5", "condition.0.attribute", "country", "condition.0.op", "eq", "condition.0.value", "ES"),
			`id="layer_share-error"`, "must be at most 0.4", "has 0.4 of its traffic free, at most 0.4 in one range: a layer_share of 0.5 does not fit.",
			"checkout — 40.0% free", `value="0.5"`, `value="ES"`)

		// The layers page shows what the form did.
		lp := b.get("/layers")
		rows := tags(lp.Body, "tr", "data-experiment")
		if len(rows) != 1 || rows[0]["data-experiment"] != "targeted" || rows[0]["data-from"] != "0" || rows[0]["data-to"] != "0.6" {
			t.Errorf("layer rows %v", rows)
		}
	})
}

// TestLayersPage: on both backends, the page lists only the workspace's
// layers, each experiment's range and the free share (including a gap left
// by a completed experiment), and creates a layer, showing a refusal next to
// the key with what was typed.
func TestLayersPage(t *testing.T) {
	dbtest.EachBackend(t, "dashboard_", func(t *testing.T, dsn string) {
		e := newEnvOn(t, dsn, Options{RefreshSeconds: 1})
		ctx := context.Background()
		b := e.browser()
		b.signIn(e.admin)
		csrf := b.csrf()
		if p := b.get("/layers"); p.Status != 200 || !strings.Contains(p.Body, `id="no-layers"`) ||
			!strings.Contains(p.Body, `href="/layers" aria-current="page"`) {
			t.Fatalf("empty layers page: status %d\n%s", p.Status, p.Body)
		}

		p := b.post("/layers", url.Values{"csrf": {csrf}, "key": {"checkout"}, "name": {"Checkout flow"}})
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/layers?created=checkout" {
			t.Fatalf("create layer: status %d, location %q\n%s", p.Status, p.Header.Get("Location"), p.Body)
		}
		l, err := e.st.GetLayer(ctx, e.defaultWorkspace(), "checkout")
		if err != nil || l.Name != "Checkout flow" {
			t.Fatalf("stored layer %+v, %v", l, err)
		}
		if p := b.get("/layers?created=checkout"); !strings.Contains(p.Body, `id="layer-created"`) {
			t.Error("no confirmation after creating a layer")
		}
		if p := b.get("/layers?created=nonesuch"); strings.Contains(p.Body, `id="layer-created"`) {
			t.Error("the page confirms a layer that does not exist")
		}
		// Refusals: next to the key, with what was typed.
		p = b.post("/layers", url.Values{"csrf": {csrf}, "key": {"checkout"}, "name": {"Again"}})
		if p.Status != http.StatusConflict || !strings.Contains(p.Body, `id="layer-key-error"`) ||
			!strings.Contains(p.Body, "is taken") || !strings.Contains(p.Body, `value="Again"`) {
			t.Errorf("taken key: status %d\n%s", p.Status, p.Body)
		}
		p = b.post("/layers", url.Values{"csrf": {csrf}, "key": {"Check Out!"}})
		if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, `id="layer-key-error"`) ||
			!strings.Contains(p.Body, "lower-case") || !strings.Contains(p.Body, `value="Check Out!"`) {
			t.Errorf("bad key: status %d\n%s", p.Status, p.Body)
		}
		if ls, _ := e.st.ListLayers(ctx, e.defaultWorkspace(), store.ListParams{}); len(ls) != 1 {
			t.Errorf("%d layers after two refusals, want 1", len(ls))
		}
		// Without the CSRF token nothing is created.
		if p := b.post("/layers", url.Values{"key": {"nocsrf"}}); p.Status != http.StatusForbidden {
			t.Errorf("no csrf: status %d", p.Status)
		}

		// Three experiments: 0.1, 0.5, 0.2 at [0, .1), [.1, .6), [.6, .8);
		// completing the second frees [.1, .6), the largest free range.
		for _, x := range []struct {
			key   string
			share float64
		}{{"first", 0.1}, {"second", 0.5}, {"third", 0.2}} {
			e.api("POST", "/v1/experiments", e.admin, map[string]any{"key": x.key, "variants": []map[string]any{{"key": "a"}, {"key": "b"}},
				"start": true, "layer": "checkout", "layer_share": x.share}, 201, nil)
		}
		e.api("POST", "/v1/experiments/second/complete", e.admin, map[string]any{}, 200, nil)
		// Another workspace's layer is not listed.
		var other struct {
			AdminKey string `json:"admin_key"`
		}
		e.api("POST", "/v1/workspaces", e.admin, map[string]any{"name": "other"}, 201, &other)
		e.api("POST", "/v1/layers", other.AdminKey, map[string]any{"key": "elsewhere"}, 201, nil)

		p = b.get("/layers")
		if strings.Contains(p.Body, "elsewhere") {
			t.Error("another workspace's layer is listed")
		}
		sec := tags(p.Body, "section", "data-layer=")
		if len(sec) != 1 || sec[0]["data-layer"] != "checkout" || sec[0]["data-free"] != "0.7" || sec[0]["data-largest"] != "0.5" {
			t.Errorf("layer sections %v", sec)
		}
		var got [][3]string
		for _, r := range tags(p.Body, "tr", "data-experiment") {
			got = append(got, [3]string{r["data-experiment"], r["data-from"], r["data-to"]})
		}
		if diff := cmp.Diff([][3]string{{"first", "0", "0.1"}, {"third", "0.6", "0.8"}}, got); diff != "" {
			t.Errorf("ranges mismatch (-want +got):\n%s", diff)
		}
		for _, w := range []string{"70.0% free", "at most 50.0% in one range", `href="/experiments/new?layer=checkout"`, `href="/experiments/first"`} {
			if !strings.Contains(p.Body, w) {
				t.Errorf("the page lacks %s", w)
			}
		}
	})
}
