package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/targeting"
)

// Targeting, breakdowns and layers (issue 15) over real HTTP on every
// backend; every response is checked against the OpenAPI document by the
// env's transport.

type reasonOut struct {
	UnitID  string  `json:"unit_id"`
	Variant *string `json:"variant"`
	New     bool    `json:"new"`
	Reason  string  `json:"reason"`
}

type unitIn struct {
	UnitID     string         `json:"unit_id"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// assignUnits assigns a batch of units with attributes of their own.
func (e *env) assignUnits(ref string, units []unitIn) []reasonOut {
	e.t.Helper()
	r := e.must(200, "POST", "/v1/experiments/"+ref+"/assign", e.admin, jsonBody(e.t, map[string]any{"units": units}))
	return decodeInto[struct {
		Assignments []reasonOut `json:"assignments"`
	}](e.t, r).Assignments
}

// assignAttrs assigns one unit with attributes.
func (e *env) assignAttrs(ref, unit string, attrs map[string]any) reasonOut {
	e.t.Helper()
	body := map[string]any{"unit_id": unit}
	if attrs != nil {
		body["attributes"] = attrs
	}
	return decodeInto[reasonOut](e.t, e.must(200, "POST", "/v1/experiments/"+ref+"/assign", e.admin, jsonBody(e.t, body)))
}

// stored returns the stored assignments of the units.
func (e *env) stored(experimentID string, units []string) map[string]store.Assignment {
	e.t.Helper()
	got, err := e.store.Assignments(context.Background(), e.defaultWorkspace(), experimentID, units)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

const targetedExperiment = `{"key":"targeted","metric":"binary","start":true,
	"variants":[{"key":"control"},{"key":"green"}],
	"targeting":{"all":[{"attribute":"country","op":"in","values":["ES","MX"]},
	                    {"attribute":"app_version","op":"semver_gte","value":"2.3.0"}]}}`

func TestTargeting(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		x := e.experiment(targetedExperiment)
		got := e.must(200, "GET", "/v1/experiments/targeted", e.admin, "").JSON(t)
		if _, ok := got["targeting"].(map[string]any)["all"]; !ok {
			t.Errorf("the experiment does not show its targeting: %v", got["targeting"])
		}

		in := e.assignAttrs("targeted", "u1", map[string]any{"country": "ES", "app_version": "2.10.0", "plan": "pro", "age": 31, "beta": true})
		if in.Variant == nil || !in.New || in.Reason != "" {
			t.Fatalf("a matching unit: %+v", in)
		}
		for _, tc := range []struct {
			unit  string
			attrs map[string]any
		}{
			{"u2", map[string]any{"country": "FR", "app_version": "3.0.0"}},
			{"u3", map[string]any{"country": "ES", "app_version": "2.2.9"}},
			{"u4", map[string]any{"country": "ES"}},
			{"u5", nil},
			{"u6", map[string]any{"country": "ES", "app_version": "not-a-version"}},
		} {
			out := e.assignAttrs("targeted", tc.unit, tc.attrs)
			if out.Variant != nil || out.Reason != "not_targeted" || out.New {
				t.Errorf("%s %v: %+v, want variant null with reason not_targeted", tc.unit, tc.attrs, out)
			}
		}
		st := e.stored(x.ID, []string{"u1", "u2", "u3", "u4", "u5", "u6"})
		if len(st) != 1 || st["u1"].VariantID == "" {
			t.Errorf("stored %v, want u1 alone", st)
		}
		// Events of a unit that was not targeted are rejected: it was never
		// assigned.
		ev := e.event("targeted", eventIn{UnitID: "u2"})
		if ev.Accepted != 0 || len(ev.Rejected) != 1 {
			t.Errorf("event of an untargeted unit: %+v", ev)
		}

		// The first assignment's attributes are stored; a later call keeps
		// the variant and does not replace them.
		again := e.assignAttrs("targeted", "u1", map[string]any{"country": "MX", "app_version": "2.3.0"})
		if again.Variant == nil || *again.Variant != *in.Variant || again.New {
			t.Errorf("a returning unit: %+v, first %+v", again, in)
		}
		attrs, err := e.store.AssignmentAttributes(context.Background(), e.defaultWorkspace(), x.ID, []string{"u1"})
		if err != nil {
			t.Fatal(err)
		}
		var first map[string]any
		if err := json.Unmarshal(attrs["u1"], &first); err != nil {
			t.Fatal(err)
		}
		if first["country"] != "ES" || first["age"] != 31.0 || first["beta"] != true || first["plan"] != "pro" {
			t.Errorf("stored attributes %v, want the first call's", first)
		}
		// The rules are evaluated on every request: a unit that no longer
		// matches is not served, but keeps its stored assignment.
		if out := e.assignAttrs("targeted", "u1", map[string]any{"country": "FR", "app_version": "2.3.0"}); out.Variant != nil || out.Reason != "not_targeted" {
			t.Errorf("a unit that stopped matching: %+v", out)
		}

		// Batches: unit_ids share the attributes, units carry their own.
		r := e.must(200, "POST", "/v1/experiments/targeted/assign", e.admin,
			`{"unit_ids":["b1","b2"],"attributes":{"country":"MX","app_version":"v2.3.0"}}`)
		for _, a := range decodeInto[struct{ Assignments []reasonOut }](t, r).Assignments {
			if a.Variant == nil {
				t.Errorf("batch with matching attributes: %+v", a)
			}
		}
		// Outside the traffic share the reason is traffic.
		e.experiment(`{"key":"partial","metric":"binary","start":true,"variants":[{"key":"a"},{"key":"b"}],"settings":{"traffic":0.3}}`)
		reasons := map[string]int{}
		for _, a := range decodeInto[struct{ Assignments []reasonOut }](t, e.must(200, "POST", "/v1/experiments/partial/assign", e.admin,
			jsonBody(t, map[string]any{"unit_ids": units("p", 200)}))).Assignments {
			if a.Variant == nil {
				reasons[a.Reason]++
			} else if a.Reason != "" {
				t.Errorf("an assigned unit with a reason: %+v", a)
			}
		}
		if reasons["traffic"] < 100 || len(reasons) != 1 {
			t.Errorf("reasons outside a 30%% traffic share: %v", reasons)
		}
		outs := e.assignUnits("targeted", []unitIn{
			{"c1", map[string]any{"country": "MX", "app_version": "2.4.0"}},
			{"c2", map[string]any{"country": "US", "app_version": "2.4.0"}},
		})
		if outs[0].Variant == nil || outs[1].Variant != nil || outs[1].Reason != "not_targeted" {
			t.Errorf("units batch: %+v", outs)
		}
	})
}

func TestTargetingInvalid(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		e.experiment(targetedExperiment)
		ws := e.defaultWorkspace()
		before := e.count(ws)
		for _, tc := range []struct {
			name, targeting, field string
		}{
			{"no conditions", `{"all":[]}`, "targeting.all"},
			{"both", `{"all":[{"attribute":"a","op":"exists"}],"any":[{"attribute":"a","op":"exists"}]}`, "targeting.any"},
			{"unknown op", `{"all":[{"attribute":"a","op":"like","value":"x"}]}`, "targeting.all[0].op"},
			{"bad version", `{"any":[{"attribute":"a","op":"exists"},{"attribute":"v","op":"semver_gt","value":"two"}]}`, "targeting.any[1].value"},
			{"in without values", `{"all":[{"attribute":"a","op":"in"}]}`, "targeting.all[0].values"},
			{"object value", `{"all":[{"attribute":"a","op":"eq","value":{"x":1}}]}`, "targeting.all[0].value"},
			{"empty attribute", `{"all":[{"attribute":"","op":"exists"}]}`, "targeting.all[0].attribute"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				body := `{"key":"bad","metric":"binary","variants":[{"key":"a"},{"key":"b"}],"targeting":` + tc.targeting + `}`
				r := e.must(422, "POST", "/v1/experiments", e.admin, body)
				if f := r.fields(t); !slices.Contains(f, tc.field) {
					t.Errorf("fields %v, want %s\n%s", f, tc.field, r.Body)
				}
			})
		}
		// An unknown field of a condition is malformed JSON for us: 400.
		e.must(400, "POST", "/v1/experiments", e.admin, `{"key":"bad","metric":"binary","variants":[{"key":"a"},{"key":"b"}],"targeting":{"all":[{"attribute":"a","op":"exists","extra":1}]}}`)
		if n := e.count(ws); n != before {
			t.Errorf("%d experiments after invalid creations, want %d", n, before)
		}

		many := map[string]any{}
		for i := range targeting.MaxAttributes + 1 {
			many[fmt.Sprintf("k%d", i)] = i
		}
		for _, tc := range []struct {
			name, body, field string
		}{
			{"too many", jsonBody(t, map[string]any{"unit_id": "x", "attributes": many}), "attributes"},
			{"long value", `{"unit_id":"x","attributes":{"country":"` + strings.Repeat("e", 257) + `"}}`, "attributes.country"},
			{"object value", `{"unit_id":"x","attributes":{"nested":{"a":1}}}`, "attributes.nested"},
			{"null value", `{"unit_id":"x","attributes":{"gone":null}}`, "attributes.gone"},
			{"array value", `{"unit_ids":["x"],"attributes":{"list":[1,2]}}`, "attributes.list"},
			{"long name", `{"unit_id":"x","attributes":{"` + strings.Repeat("n", 65) + `":1}}`, "attributes." + strings.Repeat("n", 65)},
			{"units item", `{"units":[{"unit_id":"x"},{"unit_id":"y","attributes":{"a":{"b":1}}}]}`, "units[1].attributes.a"},
			{"units and attributes", `{"units":[{"unit_id":"x"}],"attributes":{"a":1}}`, "attributes"},
			{"units and unit_ids", `{"units":[{"unit_id":"x"}],"unit_ids":["y"]}`, "unit_ids"},
			{"units empty", `{"units":[]}`, "units"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.must(422, "POST", "/v1/experiments/targeted/assign", e.admin, tc.body)
				if f := r.fields(t); !slices.Contains(f, tc.field) {
					t.Errorf("fields %v, want %s\n%s", f, tc.field, r.Body)
				}
			})
		}
		// A unit of the rejected calls was stored nowhere.
		x := decodeInto[experimentOut](t, e.must(200, "GET", "/v1/experiments/targeted", e.admin, ""))
		if st := e.stored(x.ID, []string{"x", "y"}); len(st) != 0 {
			t.Errorf("rejected requests stored %v", st)
		}
	})
}

// randomAttributes draws a unit's attributes: some left out, some of the
// wrong type, versions around the rule's bound.
func randomAttributes(r *rand.Rand) map[string]any {
	a := map[string]any{}
	if r.IntN(10) > 0 {
		a["country"] = []string{"ES", "MX", "FR", "US", "AR"}[r.IntN(5)]
	}
	if r.IntN(10) > 0 {
		a["age"] = float64(r.IntN(60) + 10)
	} else if r.IntN(2) == 0 {
		a["age"] = "30" // a string is not a number: never matches gte
	}
	if r.IntN(10) > 0 {
		a["app_version"] = fmt.Sprintf("%d.%d.%d", 1+r.IntN(3), r.IntN(12), r.IntN(3))
	}
	if r.IntN(2) == 0 {
		a["plan"] = []string{"free", "pro", "team"}[r.IntN(3)]
	}
	if r.IntN(3) == 0 {
		a["banned"] = true
	}
	return a
}

// wantTargeted is the rule of TestTargetingRandomUnits written out by hand
// (not with the targeting package), so that the test checks the package.
func wantTargeted(a map[string]any) bool {
	c, _ := a["country"].(string)
	age, isNum := a["age"].(float64)
	v, _ := a["app_version"].(string)
	var major, minor, patch int
	if _, err := fmt.Sscanf(v, "%d.%d.%d", &major, &minor, &patch); err != nil {
		return false
	}
	atLeast := major > 2 || (major == 2 && (minor > 3 || (minor == 3 && patch >= 0)))
	_, banned := a["banned"]
	return (c == "ES" || c == "MX") && isNum && age >= 18 && atLeast && a["plan"] != "free" && !banned
}

func TestTargetingRandomUnits(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		x := e.experiment(`{"key":"rand","metric":"binary","start":true,"variants":[{"key":"a"},{"key":"b"}],
			"targeting":{"all":[{"attribute":"country","op":"in","values":["ES","MX"]},
			                    {"attribute":"age","op":"gte","value":18},
			                    {"attribute":"app_version","op":"semver_gte","value":"2.3.0"},
			                    {"attribute":"plan","op":"neq","value":"free"},
			                    {"attribute":"banned","op":"exists","value":false}]}}`)
		r := rand.New(rand.NewPCG(15, 1))
		const n = 10_000
		attrs := make(map[string]map[string]any, n)
		ids := make([]string, 0, n)
		matching := 0
		for batch := 0; batch < n/1000; batch++ {
			units := make([]unitIn, 1000)
			for i := range units {
				id := fmt.Sprintf("r%05d", batch*1000+i)
				units[i] = unitIn{id, randomAttributes(r)}
				attrs[id] = units[i].Attributes
				ids = append(ids, id)
			}
			for i, out := range e.assignUnits("rand", units) {
				want := wantTargeted(units[i].Attributes)
				if want {
					matching++
				}
				switch {
				case want && out.Variant == nil:
					t.Errorf("%s %v matches but got %+v", out.UnitID, units[i].Attributes, out)
				case !want && (out.Variant != nil || out.Reason != "not_targeted"):
					t.Errorf("%s %v does not match but got %+v", out.UnitID, units[i].Attributes, out)
				}
			}
		}
		st := e.stored(x.ID, ids)
		if len(st) != matching {
			t.Errorf("%d units stored, %d match", len(st), matching)
		}
		for u := range st {
			if !wantTargeted(attrs[u]) {
				t.Errorf("unit %s stored but does not match: %v", u, attrs[u])
			}
		}
		t.Logf("%d of %d units match", matching, n)
		if matching < 500 || matching > 3000 {
			t.Errorf("%d matching units: the random attributes do not exercise the rule", matching)
		}
		res := e.results("rand")
		if res.TotalUnits != int64(matching) {
			t.Errorf("total_units %d, want %d", res.TotalUnits, matching)
		}
	})
}

type layerOut struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	Experiments []struct {
		Key   string     `json:"key"`
		Share float64    `json:"share"`
		Range [2]float64 `json:"range"`
	} `json:"experiments"`
}

type layeredOut struct {
	ID         string      `json:"id"`
	Layer      *string     `json:"layer"`
	LayerShare *float64    `json:"layer_share"`
	LayerRange *[2]float64 `json:"layer_range"`
}

func layered(key, layer string, share float64) string {
	return fmt.Sprintf(`{"key":%q,"metric":"binary","start":true,"variants":[{"key":"a"},{"key":"b"}],"layer":%q,"layer_share":%g}`, key, layer, share)
}

func TestLayers(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		l := decodeInto[layerOut](t, e.must(201, "POST", "/v1/layers", e.admin, `{"key":"checkout","name":"Checkout"}`))
		if !strings.HasPrefix(l.ID, "lyr_") || l.Key != "checkout" || len(l.Experiments) != 0 {
			t.Fatalf("layer %+v", l)
		}
		e.must(409, "POST", "/v1/layers", e.admin, `{"key":"checkout"}`)
		if f := e.must(422, "POST", "/v1/layers", e.admin, `{"key":"Not A Key"}`).fields(t); !slices.Contains(f, "key") {
			t.Errorf("bad layer key: fields %v", f)
		}
		e.must(201, "POST", "/v1/layers", e.key(e.defaultWorkspace(), store.ScopeWrite), `{"key":"search"}`)
		e.must(403, "POST", "/v1/layers", e.key(e.defaultWorkspace(), store.ScopeAssign), `{"key":"nope"}`)

		a := decodeInto[layeredOut](t, e.must(201, "POST", "/v1/experiments", e.admin, layered("left", "checkout", 0.5)))
		b := decodeInto[layeredOut](t, e.must(201, "POST", "/v1/experiments", e.admin, layered("right", l.ID, 0.5)))
		if a.LayerRange == nil || *a.LayerRange != [2]float64{0, 0.5} || b.LayerRange == nil || *b.LayerRange != [2]float64{0.5, 1} ||
			deref(b.Layer) != "checkout" || *b.LayerShare != 0.5 {
			t.Fatalf("ranges: %+v %+v", a, b)
		}
		ws := e.defaultWorkspace()
		before := e.count(ws)
		r := e.must(409, "POST", "/v1/experiments", e.admin, layered("third", "checkout", 0.1))
		if f := r.fields(t); !slices.Contains(f, "layer_share") || !strings.Contains(string(r.Body), "does not fit") {
			t.Errorf("a share that does not fit: %s", r.Body)
		}
		for _, tc := range []struct{ body, field string }{
			{layered("x", "nowhere", 0.1), "layer"},
			{layered("x", "checkout", 0), "layer_share"},
			{layered("x", "checkout", 1.5), "layer_share"},
			{`{"key":"x","metric":"binary","variants":[{"key":"a"},{"key":"b"}],"layer_share":0.5}`, "layer_share"},
			{`{"key":"x","metric":"binary","variants":[{"key":"a"},{"key":"b"}],"layer":"checkout"}`, "layer_share"},
		} {
			if f := e.must(422, "POST", "/v1/experiments", e.admin, tc.body).fields(t); !slices.Contains(f, tc.field) {
				t.Errorf("%s: fields %v, want %s", tc.body, f, tc.field)
			}
		}
		if n := e.count(ws); n != before {
			t.Errorf("%d experiments after refused creations, want %d", n, before)
		}
		got := decodeInto[layerOut](t, e.must(200, "GET", "/v1/layers/checkout", e.admin, ""))
		if len(got.Experiments) != 2 || got.Experiments[0].Key != "left" || got.Experiments[1].Range != [2]float64{0.5, 1} {
			t.Errorf("layer %+v", got)
		}
		list := decodeInto[struct{ Items []layerOut }](t, e.must(200, "GET", "/v1/layers?limit=1", e.admin, ""))
		if len(list.Items) != 1 {
			t.Errorf("list %+v", list)
		}

		// 10,000 units: each is in exactly one of the two experiments, and
		// each experiment gets half within 4.5 standard errors. The layer's
		// id is random, so the split is a fresh binomial draw on every run:
		// at 3 s.e. the test failed 0.27% of runs per backend (it did, in
		// CI: 4,813, 3.7 s.e.); over 2,000 random layer ids the z-score's
		// variance is 0.96, as a binomial's should be. 4.5 s.e. fails one
		// run in 150,000 and still catches a 2.3-point bias.
		const n = 10_000
		inLeft := 0
		for batch := range n / 1000 {
			ids := units(fmt.Sprintf("l%d-", batch), 1000)
			left := e.assign("left", e.admin, ids)
			right := e.assign("right", e.admin, ids)
			raw := e.must(200, "POST", "/v1/experiments/right/assign", e.admin, jsonBody(t, map[string]any{"unit_ids": ids}))
			reasons := decodeInto[struct{ Assignments []reasonOut }](t, raw).Assignments
			for i := range ids {
				inL, inR := left[i].Variant != nil, right[i].Variant != nil
				if inL == inR {
					t.Fatalf("unit %s: in left %v, in right %v", ids[i], inL, inR)
				}
				if inL {
					inLeft++
					if reasons[i].Reason != "layer" {
						t.Errorf("unit %s outside right's range: reason %q", ids[i], reasons[i].Reason)
					}
				}
			}
		}
		se := math.Sqrt(n * 0.25)
		if d := math.Abs(float64(inLeft) - n/2); d > 4.5*se {
			t.Errorf("left has %d of %d units, more than 4.5 s.e. (%.0f) from half", inLeft, n, se)
		}
		t.Logf("left %d, right %d", inLeft, n-inLeft)

		// Completing frees the range; archiving too.
		e.must(200, "POST", "/v1/experiments/left/complete", e.admin, "")
		done := decodeInto[layeredOut](t, e.must(200, "GET", "/v1/experiments/left", e.admin, ""))
		if done.LayerRange != nil || deref(done.Layer) != "checkout" {
			t.Errorf("completed: %+v", done)
		}
		c := decodeInto[layeredOut](t, e.must(201, "POST", "/v1/experiments", e.admin, layered("third", "checkout", 0.25)))
		if *c.LayerRange != [2]float64{0, 0.25} {
			t.Errorf("range after completion: %v", *c.LayerRange)
		}
		e.must(200, "POST", "/v1/experiments/right/pause", e.admin, "")
		e.must(200, "POST", "/v1/experiments/right/archive", e.admin, "")
		d := decodeInto[layeredOut](t, e.must(201, "POST", "/v1/experiments", e.admin, layered("fourth", "checkout", 0.75)))
		if *d.LayerRange != [2]float64{0.25, 1} {
			t.Errorf("range after archiving: %v", *d.LayerRange)
		}
	})
}

func TestLayersTenantIsolation(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		la := decodeInto[layerOut](t, e.must(201, "POST", "/v1/layers", e.admin, `{"key":"shared-name"}`))
		e.must(201, "POST", "/v1/experiments", e.admin, layered("a-exp", "shared-name", 1))
		other := e.must(201, "POST", "/v1/workspaces", e.admin, `{"name":"other"}`).JSON(t)
		kb := other["admin_key"].(string)

		e.must(404, "GET", "/v1/layers/shared-name", kb, "")
		e.must(404, "GET", "/v1/layers/"+la.ID, kb, "")
		if list := decodeInto[struct{ Items []layerOut }](t, e.must(200, "GET", "/v1/layers", kb, "")); len(list.Items) != 0 {
			t.Errorf("workspace B lists A's layers: %+v", list)
		}
		for _, ref := range []string{"shared-name", la.ID} {
			r := e.must(422, "POST", "/v1/experiments", kb, layered("b-exp", ref, 0.5))
			if f := r.fields(t); !slices.Contains(f, "layer") {
				t.Errorf("B used A's layer %s: %s", ref, r.Body)
			}
		}
		// B's own layer of the same key is a layer of its own: A's full
		// layer does not constrain it.
		lb := decodeInto[layerOut](t, e.must(201, "POST", "/v1/layers", kb, `{"key":"shared-name"}`))
		if lb.ID == la.ID {
			t.Fatal("one layer for two workspaces")
		}
		bx := decodeInto[layeredOut](t, e.must(201, "POST", "/v1/experiments", kb, layered("b-exp", "shared-name", 1)))
		if *bx.LayerRange != [2]float64{0, 1} {
			t.Errorf("B's experiment: %+v", bx)
		}
		if got := decodeInto[layerOut](t, e.must(200, "GET", "/v1/layers/shared-name", e.admin, "")); got.ID != la.ID || len(got.Experiments) != 1 || got.Experiments[0].Key != "a-exp" {
			t.Errorf("A's layer seen by A: %+v", got)
		}
	})
}

type breakdownOut struct {
	Variants []struct {
		Key         string  `json:"key"`
		Units       int64   `json:"units"`
		Conversions int64   `json:"conversions"`
		Sum         float64 `json:"sum"`
	} `json:"variants"`
	Breakdown *struct {
		Attribute string `json:"attribute"`
		Segments  []struct {
			Value    string `json:"value"`
			Units    int64  `json:"units"`
			Variants []struct {
				Key         string  `json:"key"`
				Units       int64   `json:"units"`
				Conversions int64   `json:"conversions"`
				Sum         float64 `json:"sum"`
				Mean        float64 `json:"mean"`
				CILow       float64 `json:"ci_low"`
				CIHigh      float64 `json:"ci_high"`
				PBest       float64 `json:"p_best"`
			} `json:"variants"`
		} `json:"segments"`
	} `json:"breakdown"`
}

func TestBreakdown(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		e.experiment(`{"key":"bd","metric":"continuous","start":true,"variants":[{"key":"a"},{"key":"b"}]}`)
		r := rand.New(rand.NewPCG(15, 2))
		// 25 countries with units decreasing in rank; a zip code with 260
		// values (over the 200 counted); some units without attributes.
		type key struct{ value, variant string }
		units := map[key]int64{}
		sums := map[key]float64{}
		conv := map[key]int64{}
		zipUnits := int64(0)
		var batch []unitIn
		var events []eventIn
		flush := func() {
			outs := e.assignUnits("bd", batch)
			for i, out := range outs {
				c, ok := batch[i].Attributes["country"].(string)
				if !ok {
					continue
				}
				k := key{c, *out.Variant}
				units[k]++
				if _, ok := batch[i].Attributes["zip"]; ok {
					zipUnits++
				}
				if r.IntN(3) == 0 {
					v := float64(r.IntN(100))
					events = append(events, eventIn{UnitID: out.UnitID, Value: &v})
					sums[k] += v
					conv[k]++ // a unit with an event counts, whatever its value
				}
			}
			batch = batch[:0]
		}
		for i := range 3000 {
			u := unitIn{UnitID: fmt.Sprintf("bd%d", i), Attributes: map[string]any{}}
			if i%10 != 9 {
				rank := int(math.Floor(25 * math.Pow(r.Float64(), 2)))
				u.Attributes["country"] = fmt.Sprintf("c%02d", rank)
				u.Attributes["zip"] = float64(10000 + i%260)
			}
			batch = append(batch, u)
			if len(batch) == 1000 {
				flush()
			}
		}
		for len(events) > 0 {
			n := min(len(events), 1000)
			if got := e.events("bd", e.admin, events[:n]); got.Accepted != n {
				t.Fatalf("events: %+v", got)
			}
			events = events[n:]
		}

		res := decodeInto[breakdownOut](t, e.must(200, "GET", "/v1/experiments/bd/results?breakdown=country", e.admin, ""))
		bd := res.Breakdown
		if bd == nil || bd.Attribute != "country" || len(bd.Segments) != 21 || bd.Segments[20].Value != "(other)" {
			t.Fatalf("breakdown: %+v", bd)
		}
		byValue := map[string]int64{}
		for k, n := range units {
			byValue[k.value] += n
		}
		values := make([]string, 0, len(byValue))
		for v := range byValue {
			values = append(values, v)
		}
		slices.SortFunc(values, func(a, b string) int {
			if byValue[a] != byValue[b] {
				return int(byValue[b] - byValue[a])
			}
			return strings.Compare(a, b)
		})
		other := map[string]bool{}
		for _, v := range values[20:] {
			other[v] = true
		}
		for i, sg := range bd.Segments {
			if i < 20 && sg.Value != values[i] {
				t.Errorf("segment %d is %s, want %s (by units)", i, sg.Value, values[i])
			}
			for _, v := range sg.Variants {
				var wantU, wantC int64
				var wantS float64
				for k := range units {
					if k.variant == v.Key && (k.value == sg.Value || (sg.Value == "(other)" && other[k.value])) {
						wantU, wantC, wantS = wantU+units[k], wantC+conv[k], wantS+sums[k]
					}
				}
				if v.Units != wantU || v.Conversions != wantC || math.Abs(v.Sum-wantS) > 1e-6 {
					t.Errorf("segment %s variant %s: units %d conversions %d sum %g, want %d %d %g", sg.Value, v.Key, v.Units, v.Conversions, v.Sum, wantU, wantC, wantS)
				}
				if v.Units > 0 && (v.CILow > v.Mean || v.CIHigh < v.Mean || math.Abs(v.Mean-v.Sum/float64(v.Units)) > 1e-9) {
					t.Errorf("segment %s variant %s: mean %g outside [%g, %g]", sg.Value, v.Key, v.Mean, v.CILow, v.CIHigh)
				}
			}
		}
		if ps := bd.Segments[0].Variants[0].PBest + bd.Segments[0].Variants[1].PBest; math.Abs(ps-1) > 1e-3 {
			t.Errorf("p_best of a segment sums to %g", ps)
		}

		// The zip code has more values than are counted: the 200 first are
		// counted by value, the rest as (other); every unit is somewhere.
		zip := decodeInto[breakdownOut](t, e.must(200, "GET", "/v1/experiments/bd/results?breakdown=zip", e.admin, "")).Breakdown
		var total int64
		for _, sg := range zip.Segments {
			total += sg.Units
		}
		if len(zip.Segments) != 21 || total != zipUnits {
			t.Errorf("zip: %d segments, %d units, want 21 and %d", len(zip.Segments), total, zipUnits)
		}
		// Exactly MaxSegmentValues values are counted by name.
		x := decodeInto[experimentOut](t, e.must(200, "GET", "/v1/experiments/bd", e.admin, ""))
		rows, err := e.store.SegmentCounters(context.Background(), e.defaultWorkspace(), x.ID, "zip")
		if err != nil {
			t.Fatal(err)
		}
		distinct := map[string]bool{}
		for _, r := range rows {
			distinct[r.Value] = true
		}
		if len(distinct) != store.MaxSegmentValues+1 || !distinct[store.OtherSegment] {
			t.Errorf("%d zip values counted, want %d and (other)", len(distinct)-1, store.MaxSegmentValues)
		}
		if got := decodeInto[breakdownOut](t, e.must(200, "GET", "/v1/experiments/bd/results?breakdown=never-sent", e.admin, "")).Breakdown; got == nil || len(got.Segments) != 0 {
			t.Errorf("an attribute never sent: %+v", got)
		}
		if f := e.must(422, "GET", "/v1/experiments/bd/results?breakdown=", e.admin, "").fields(t); !slices.Contains(f, "breakdown") {
			t.Errorf("empty breakdown: fields %v", f)
		}
		if got := decodeInto[breakdownOut](t, e.must(200, "GET", "/v1/experiments/bd/results", e.admin, "")); got.Breakdown != nil {
			t.Error("results without ?breakdown carry one")
		}
	})
}

// Experiments created at once in one layer get disjoint ranges: the layer's
// row lock serialises the allocations, on every backend.
func TestLayerConcurrentCreation(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		e.must(201, "POST", "/v1/layers", e.admin, `{"key":"busy"}`)
		const n = 12 // ten fit at 0.1 each
		codes := make(chan int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes <- e.req("POST", "/v1/experiments", e.admin, layered(fmt.Sprintf("c%d", i), "busy", 0.1)).Status
			}()
		}
		wg.Wait()
		close(codes)
		created := 0
		for c := range codes {
			switch c {
			case 201:
				created++
			case 409:
			default:
				t.Errorf("status %d", c)
			}
		}
		l := decodeInto[layerOut](t, e.must(200, "GET", "/v1/layers/busy", e.admin, ""))
		if created != 10 || len(l.Experiments) != 10 {
			t.Fatalf("%d created, layer holds %d, want 10", created, len(l.Experiments))
		}
		for i := 1; i < len(l.Experiments); i++ {
			if l.Experiments[i].Range[0] < l.Experiments[i-1].Range[1] {
				t.Errorf("ranges overlap: %v then %v", l.Experiments[i-1].Range, l.Experiments[i].Range)
			}
		}
	})
}
