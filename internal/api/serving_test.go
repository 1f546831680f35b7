package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

// The serving endpoints (assign, events, results, timeseries) over real
// HTTP on every backend; every response is also checked against the OpenAPI
// document by the env's transport.

// eachBackendWith is eachBackend with options for the optimizer.
func eachBackendWith(t *testing.T, oo optimize.Options, f func(t *testing.T, e *env)) {
	for _, b := range backends(t) {
		t.Run(b, func(t *testing.T) {
			f(t, newEnvWith(t, b, Options{}, oo))
		})
	}
}

// fastRefresh makes the optimizer recompute the allocation on (almost)
// every call, so that a test sees the weights follow the data at once
// instead of after the production second.
var fastRefresh = optimize.Options{RefreshEvery: time.Millisecond}

type assignmentOut struct {
	UnitID  string          `json:"unit_id"`
	Variant *string         `json:"variant"`
	Payload json.RawMessage `json:"payload"`
	New     bool            `json:"new"`
}

func (a assignmentOut) variant() string {
	if a.Variant == nil {
		return "<none>"
	}
	return *a.Variant
}

type eventIn struct {
	UnitID         string   `json:"unit_id"`
	Value          *float64 `json:"value,omitempty"`
	IdempotencyKey string   `json:"idempotency_key,omitempty"`
}

type rejectedOut struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

type eventsOut struct {
	Accepted   int           `json:"accepted"`
	Duplicates int           `json:"duplicates"`
	Rejected   []rejectedOut `json:"rejected"`
}

type timeseriesOut struct {
	ExperimentID string           `json:"experiment_id"`
	From         time.Time        `json:"from"`
	To           time.Time        `json:"to"`
	Points       []optimize.Point `json:"points"`
}

// experimentOut is the part of an experiment the serving tests need.
type experimentOut struct {
	ID          string  `json:"id"`
	Key         string  `json:"key"`
	Status      string  `json:"status"`
	Winner      *string `json:"winner"`
	WinnerFixed bool    `json:"winner_fixed"`
	Variants    []struct {
		ID      string          `json:"id"`
		Key     string          `json:"key"`
		Payload json.RawMessage `json:"payload"`
	} `json:"variants"`
}

func (x experimentOut) variantID(key string) string {
	for _, v := range x.Variants {
		if v.Key == key {
			return v.ID
		}
	}
	panic("no variant " + key)
}

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func decodeInto[T any](t testing.TB, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, r.Body)
	}
	return v
}

func jsonBody(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// experiment creates an experiment from a JSON body with the admin key.
func (e *env) experiment(body string) experimentOut {
	e.t.Helper()
	return decodeInto[experimentOut](e.t, e.must(201, "POST", "/v1/experiments", e.admin, body))
}

// assign assigns the units in one batch request.
func (e *env) assign(ref, key string, units []string) []assignmentOut {
	e.t.Helper()
	r := e.must(200, "POST", "/v1/experiments/"+ref+"/assign", key, jsonBody(e.t, map[string]any{"unit_ids": units}))
	out := decodeInto[struct {
		Assignments []assignmentOut `json:"assignments"`
	}](e.t, r).Assignments
	if len(out) != len(units) {
		e.t.Fatalf("assign %d units: %d assignments", len(units), len(out))
	}
	for i := range out {
		if out[i].UnitID != units[i] {
			e.t.Fatalf("assignment %d is of %q, want %q", i, out[i].UnitID, units[i])
		}
	}
	return out
}

// assignOne assigns one unit with the single form.
func (e *env) assignOne(ref, key, unit string) assignmentOut {
	e.t.Helper()
	return decodeInto[assignmentOut](e.t, e.must(200, "POST", "/v1/experiments/"+ref+"/assign", key, jsonBody(e.t, map[string]any{"unit_id": unit})))
}

// events sends the events in one batch request.
func (e *env) events(ref, key string, evs []eventIn) eventsOut {
	e.t.Helper()
	return decodeInto[eventsOut](e.t, e.must(202, "POST", "/v1/experiments/"+ref+"/events", key, jsonBody(e.t, map[string]any{"events": evs})))
}

// event sends one event with the single form.
func (e *env) event(ref string, ev eventIn) eventsOut {
	e.t.Helper()
	return decodeInto[eventsOut](e.t, e.must(202, "POST", "/v1/experiments/"+ref+"/events", e.admin, jsonBody(e.t, ev)))
}

func (e *env) results(ref string) optimize.Results {
	e.t.Helper()
	return decodeInto[optimize.Results](e.t, e.must(200, "GET", "/v1/experiments/"+ref+"/results", e.admin, ""))
}

func units(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// byVariant counts assignments per variant key.
func byVariant(as []assignmentOut) map[string]int {
	m := map[string]int{}
	for _, a := range as {
		m[a.variant()]++
	}
	return m
}

func TestAssign(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		x := e.experiment(`{"key":"btn","metric":"binary","start":true,"settings":{"seed":7},
			"variants":[{"key":"control","payload":{"color":"grey"}},{"key":"green","payload":{"color":"green"}}]}`)
		payloads := map[string]string{"control": `{"color":"grey"}`, "green": `{"color":"green"}`}

		first := e.assignOne("btn", e.admin, "user-1")
		if !first.New || first.Variant == nil {
			t.Fatalf("first assignment: %+v", first)
		}
		if got := string(first.Payload); got != payloads[*first.Variant] {
			t.Errorf("payload %s, want %s", got, payloads[*first.Variant])
		}
		// The same unit, by key and by id: the same variant, not new.
		for _, ref := range []string{"btn", x.ID} {
			again := e.assignOne(ref, e.admin, "user-1")
			want := assignmentOut{UnitID: "user-1", Variant: first.Variant, Payload: first.Payload, New: false}
			if diff := cmp.Diff(want, again); diff != "" {
				t.Errorf("repeat via %s mismatch (-want +got):\n%s", ref, diff)
			}
		}

		// A batch mixing a known unit, new ones and a repeated one: one
		// assignment per unit, new only at the first mention.
		batch := e.assign("btn", e.admin, []string{"user-1", "user-2", "user-3", "user-2"})
		if batch[0].New || batch[0].variant() != first.variant() {
			t.Errorf("known unit in a batch: %+v", batch[0])
		}
		if !batch[1].New || !batch[2].New || batch[3].New || batch[3].variant() != batch[1].variant() {
			t.Errorf("new units in a batch: %+v", batch)
		}
		for _, a := range batch {
			if string(a.Payload) != payloads[a.variant()] {
				t.Errorf("%s: payload %s for %s", a.UnitID, a.Payload, a.variant())
			}
		}

		// The largest batch, then all of it again: nothing new the second time.
		big := units("big", maxBatch)
		got := e.assign("btn", e.admin, big)
		again := e.assign("btn", e.admin, big)
		for i := range got {
			if !got[i].New || again[i].New || again[i].variant() != got[i].variant() {
				t.Fatalf("unit %s: first %+v, then %+v", big[i], got[i], again[i])
			}
		}
		// Units as stored: 3 + 1000 (user-2 once).
		if r := e.results("btn"); r.TotalUnits != 3+maxBatch {
			t.Errorf("total units %d, want %d", r.TotalUnits, 3+maxBatch)
		}
		// A unit id of exactly 256 bytes (multi-byte UTF-8) is fine.
		long := strings.Repeat("é", maxUnitIDBytes/2)
		if a := e.assignOne("btn", e.admin, long); a.UnitID != long || !a.New {
			t.Errorf("256-byte unit: %+v", a)
		}
	})
}

func TestAssignInvalid(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		e.experiment(`{"key":"btn","metric":"binary","start":true,"variants":[{"key":"a"},{"key":"b"}]}`)
		tests := []struct {
			name   string
			body   string
			status int
			fields []string
		}{
			{"empty unit id", `{"unit_id":""}`, 422, []string{"unit_id"}},
			{"unit id over 256 bytes", jsonBody(t, map[string]string{"unit_id": strings.Repeat("u", 257)}), 422, []string{"unit_id"}},
			{"unit id with NUL", `{"unit_id":"a\u0000b"}`, 422, []string{"unit_id"}},
			{"unit id with a newline", `{"unit_id":"a\nb"}`, 422, []string{"unit_id"}},
			{"both forms", `{"unit_id":"a","unit_ids":["b"]}`, 422, []string{"unit_ids"}},
			{"empty list", `{"unit_ids":[]}`, 422, []string{"unit_ids"}},
			{"over 1000", jsonBody(t, map[string]any{"unit_ids": units("u", maxBatch+1)}), 422, []string{"unit_ids"}},
			{"bad ids in a list", `{"unit_ids":["ok","","x\u0000"]}`, 422, []string{"unit_ids[1]", "unit_ids[2]"}},
			{"neither", `{}`, 422, []string{"unit_id"}},
			{"null unit id", `{"unit_id":null}`, 422, []string{"unit_id"}},
			{"number unit id", `{"unit_id":42}`, 400, []string{"unit_id"}},
			{"unknown field", `{"unit_id":"a","user":"b"}`, 400, []string{"user"}},
			{"malformed", `{"unit_id":`, 400, []string{}},
			{"no body", ``, 400, []string{}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := e.must(tc.status, "POST", "/v1/experiments/btn/assign", e.admin, tc.body)
				if diff := cmp.Diff(tc.fields, r.fields(t)); diff != "" {
					t.Errorf("fields mismatch (-want +got):\n%s", diff)
				}
			})
		}
		// Nothing was stored by any of them.
		if r := e.results("btn"); r.TotalUnits != 0 {
			t.Errorf("invalid requests stored %d units", r.TotalUnits)
		}
	})
}

// TestAssignStatusAndAccess: who may assign what, and when.
func TestAssignStatusAndAccess(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		one := `{"unit_id":"u1"}`
		e.experiment(`{"key":"draft","metric":"binary","variants":[{"key":"a"},{"key":"b"}]}`)
		e.must(409, "POST", "/v1/experiments/draft/assign", e.admin, one)
		e.must(409, "POST", "/v1/experiments/draft/events", e.admin, one)
		e.must(404, "POST", "/v1/experiments/nope/assign", e.admin, one)
		e.must(404, "POST", "/v1/experiments/exp_nope/events", e.admin, one)

		e.must(200, "POST", "/v1/experiments/draft/start", e.admin, "")
		a := e.assignOne("draft", e.admin, "u1")
		e.must(200, "POST", "/v1/experiments/draft/pause", e.admin, "")
		p := e.must(409, "POST", "/v1/experiments/draft/assign", e.admin, one).JSON(t)
		if !strings.Contains(p["detail"].(string), "paused") {
			t.Errorf("409 detail %q does not say paused", p["detail"])
		}
		// A unit assigned before the pause may still convert.
		if got := e.event("draft", eventIn{UnitID: "u1"}); got.Accepted != 1 {
			t.Errorf("event while paused: %+v", got)
		}
		e.must(200, "POST", "/v1/experiments/draft/resume", e.admin, "")
		if again := e.assignOne("draft", e.admin, "u1"); again.New || again.variant() != a.variant() {
			t.Errorf("after resume: %+v, first %+v", again, a)
		}

		// An assign-scoped key (what ships in an app) assigns and sends
		// events but cannot read results or timeseries.
		ws := e.defaultWorkspace()
		assignKey := e.key(ws, store.ScopeAssign)
		e.assignOne("draft", assignKey, "u2")
		e.must(202, "POST", "/v1/experiments/draft/events", assignKey, `{"unit_id":"u2"}`)
		e.must(403, "GET", "/v1/experiments/draft/results", assignKey, "")
		e.must(403, "GET", "/v1/experiments/draft/timeseries", assignKey, "")
		e.must(401, "POST", "/v1/experiments/draft/assign", "", one)
		e.must(401, "GET", "/v1/experiments/draft/results", "", "")

		// Another workspace sees none of it: 404 by key and by id.
		x := e.must(200, "GET", "/v1/experiments/draft", e.admin, "").JSON(t)
		other := e.must(201, "POST", "/v1/workspaces", e.admin, `{"name":"other"}`).JSON(t)["admin_key"].(string)
		for _, ref := range []string{"draft", x["id"].(string)} {
			e.must(404, "POST", "/v1/experiments/"+ref+"/assign", other, one)
			e.must(404, "POST", "/v1/experiments/"+ref+"/events", other, one)
			e.must(404, "GET", "/v1/experiments/"+ref+"/results", other, "")
			e.must(404, "GET", "/v1/experiments/"+ref+"/timeseries", other, "")
		}
		if r := e.results("draft"); r.TotalUnits != 2 || r.Variants[0].Conversions+r.Variants[1].Conversions != 2 {
			t.Errorf("after the other workspace's calls: %d units, %+v", r.TotalUnits, r.Variants)
		}
	})
}

// TestAssignSticky: the first answer holds while the weights move, and
// across a new server over the same database (a restart, or a replica).
func TestAssignSticky(t *testing.T) {
	eachBackendWith(t, fastRefresh, func(t *testing.T, e *env) {
		e.experiment(`{"key":"sticky","metric":"binary","start":true,"settings":{"seed":11},"variants":[{"key":"control"},{"key":"green"}]}`)
		early := units("early", 60)
		before := e.assign("sticky", e.admin, early)
		if n := byVariant(before); n["control"] == 0 || n["green"] == 0 {
			t.Fatalf("the uniform start put every early unit on one variant: %v", n)
		}

		// Move the weights: every green unit converts, no control one does.
		for round := range 4 {
			as := e.assign("sticky", e.admin, units(fmt.Sprintf("mover%d", round), 200))
			var evs []eventIn
			for _, a := range as {
				if a.variant() == "green" {
					evs = append(evs, eventIn{UnitID: a.UnitID})
				}
			}
			if len(evs) > 0 {
				e.events("sticky", e.admin, evs)
			}
		}
		r := e.results("sticky")
		if w := r.Variants[1].Weight; w < 0.99 {
			t.Fatalf("green's weight is %.3f after it converted every unit and control none; the test needs moved weights", w)
		}

		check := func(name string, e *env) {
			t.Helper()
			after := e.assign("sticky", e.admin, early)
			for i := range after {
				if after[i].New || after[i].variant() != before[i].variant() {
					t.Errorf("%s: %s was %s, now %+v", name, early[i], before[i].variant(), after[i])
				}
			}
			for _, u := range early[:5] {
				if a := e.assignOne("sticky", e.admin, u); a.New || a.variant() != before[slices.Index(early, u)].variant() {
					t.Errorf("%s: single %s: %+v", name, u, a)
				}
			}
		}
		check("same server", e)
		other := e.restart(fastRefresh)
		check("new server", other)
		// The new server serves from the stored counters and state: green.
		fresh := other.assign("sticky", other.admin, units("fresh", 100))
		if n := byVariant(fresh); n["green"] < 90 {
			t.Errorf("a new server gave green %d of 100 new units; its weight is %.3f", n["green"], r.Variants[1].Weight)
		}
	})
}

// TestTrafficShare: units outside the share get no variant, and keep
// getting none, on any server.
func TestTrafficShare(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		e.experiment(`{"key":"half","metric":"binary","start":true,"settings":{"traffic":0.5},"variants":[{"key":"a","payload":1},{"key":"b","payload":2}]}`)
		us := units("t", 400)
		first := e.assign("half", e.admin, us)
		out := 0
		for _, a := range first {
			if a.Variant == nil {
				out++
				if a.New || string(a.Payload) != "null" {
					t.Errorf("excluded unit %s: %+v", a.UnitID, a)
				}
			}
		}
		// Binomial(400, 0.5): sd 10; 150..250 is ±5 sd.
		if out < 150 || out > 250 {
			t.Errorf("%d of 400 units excluded at traffic 0.5", out)
		}
		for name, srv := range map[string]*env{"same server": e, "new server": e.restart(optimize.Options{})} {
			again := srv.assign("half", srv.admin, us)
			for i := range again {
				if again[i].variant() != first[i].variant() || again[i].New {
					t.Errorf("%s: %s was %s, now %+v", name, us[i], first[i].variant(), again[i])
				}
			}
		}
		// An excluded unit has no assignment, so its events are rejected.
		var excluded string
		for _, a := range first {
			if a.Variant == nil {
				excluded = a.UnitID
				break
			}
		}
		got := e.events("half", e.admin, []eventIn{{UnitID: excluded}})
		if got.Accepted != 0 || len(got.Rejected) != 1 {
			t.Errorf("event of an excluded unit: %+v", got)
		}
		if r := e.results("half"); r.TotalUnits != int64(len(us)-out) {
			t.Errorf("stored %d units, want the %d included", r.TotalUnits, len(us)-out)
		}
	})
}

// TestCompletedWinnerIsServed: completing with a winner serves it to every
// unit, new or assigned before to another variant.
func TestCompletedWinnerIsServed(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		e.experiment(`{"key":"done","metric":"binary","start":true,"variants":[{"key":"a","payload":"A"},{"key":"b","payload":"B"}]}`)
		old := units("old", 40)
		if n := byVariant(e.assign("done", e.admin, old)); n["a"] == 0 {
			t.Fatalf("no unit got a: %v", n)
		}
		e.must(200, "POST", "/v1/experiments/done/complete", e.admin, `{"winner":"b"}`)
		for _, srv := range []*env{e, e.restart(optimize.Options{})} {
			for _, a := range srv.assign("done", srv.admin, append(units("new", 10), old...)) {
				if a.variant() != "b" || string(a.Payload) != `"B"` || a.New {
					t.Errorf("after completion with b: %+v", a)
				}
			}
			if a := srv.assignOne("done", srv.admin, "single"); a.variant() != "b" {
				t.Errorf("single after completion: %+v", a)
			}
		}
		r := e.results("done")
		if r.Status != store.StatusCompleted || r.Decision.State != engine.StateCompleted || r.Winner == nil || *r.Winner != "b" {
			t.Errorf("results after completion: status %s, decision %+v, winner %v", r.Status, r.Decision, r.Winner)
		}
		if r.TotalUnits != int64(len(old)) {
			t.Errorf("serving the winner stored units: %d, want %d", r.TotalUnits, len(old))
		}
		// Completed without a winner: nothing to serve.
		e.experiment(`{"key":"nowin","metric":"binary","start":true,"variants":[{"key":"a"},{"key":"b"}]}`)
		e.must(200, "POST", "/v1/experiments/nowin/complete", e.admin, "")
		e.must(409, "POST", "/v1/experiments/nowin/assign", e.admin, `{"unit_id":"u"}`)
	})
}

func TestBinaryEvents(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		e.experiment(`{"key":"conv","metric":"binary","start":true,"variants":[{"key":"a"},{"key":"b"}]}`)
		as := e.assign("conv", e.admin, []string{"u1", "u2", "u3", "u4"})

		want := func(acc, dup int, rej ...rejectedOut) eventsOut {
			if rej == nil {
				rej = []rejectedOut{}
			}
			return eventsOut{Accepted: acc, Duplicates: dup, Rejected: rej}
		}
		if diff := cmp.Diff(want(1, 0), e.event("conv", eventIn{UnitID: "u1"})); diff != "" {
			t.Errorf("first conversion (-want +got):\n%s", diff)
		}
		// A unit converts once: a second event, with or without value 1, is a duplicate.
		if diff := cmp.Diff(want(0, 1), e.event("conv", eventIn{UnitID: "u1", Value: ptr(1.0)})); diff != "" {
			t.Errorf("second conversion (-want +got):\n%s", diff)
		}
		// Single events with a bad value or unit are a 422 naming the field.
		for _, tc := range []struct {
			name, body string
			fields     []string
		}{
			{"value other than 1", `{"unit_id":"u2","value":2}`, []string{"value"}},
			{"value 0", `{"unit_id":"u2","value":0}`, []string{"value"}},
			{"empty unit", `{"unit_id":""}`, []string{"unit_id"}},
			{"NUL unit", `{"unit_id":"\u0000"}`, []string{"unit_id"}},
			{"long idempotency key", jsonBody(t, eventIn{UnitID: "u2", IdempotencyKey: strings.Repeat("k", 257)}), []string{"idempotency_key"}},
			{"empty list", `{"events":[]}`, []string{"events"}},
			{"over 1000", jsonBody(t, map[string]any{"events": slices.Repeat([]eventIn{{UnitID: "u2"}}, maxBatch+1)}), []string{"events"}},
			{"both forms", `{"unit_id":"u2","events":[{"unit_id":"u2"}]}`, []string{"events"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.must(422, "POST", "/v1/experiments/conv/events", e.admin, tc.body)
				if diff := cmp.Diff(tc.fields, r.fields(t)); diff != "" {
					t.Errorf("fields (-want +got):\n%s", diff)
				}
			})
		}
		e.must(400, "POST", "/v1/experiments/conv/events", e.admin, `{"events":[{"unit_id":"u2","when":"now"}]}`)

		// A batch: outcomes per event, rejections with index and reason.
		got := e.events("conv", e.admin, []eventIn{
			{UnitID: "u2"},                            // 0 accepted
			{UnitID: "u2"},                            // 1 duplicate: converted already
			{UnitID: "ghost"},                         // 2 never assigned
			{UnitID: "u3", Value: ptr(0.5)},           // 3 a binary value must be 1
			{UnitID: "u3", IdempotencyKey: "order-1"}, // 4 accepted
			{UnitID: "u4", IdempotencyKey: "order-1"}, // 5 duplicate: key seen
			{UnitID: ""},                              // 6 empty unit
			{UnitID: "u1"},                            // 7 duplicate: converted in an earlier request
		})
		if got.Accepted != 2 || got.Duplicates != 3 || len(got.Rejected) != 3 {
			t.Fatalf("batch outcome: %+v", got)
		}
		for i, tc := range []struct {
			index int
			says  string
		}{{2, "assigned"}, {3, "value"}, {6, "unit_id"}} {
			if r := got.Rejected[i]; r.Index != tc.index || !strings.Contains(r.Error, tc.says) {
				t.Errorf("rejected[%d] = %+v, want index %d saying %q", i, r, tc.index, tc.says)
			}
		}
		// The same idempotency key in a later request is counted once too.
		if diff := cmp.Diff(want(0, 1), e.event("conv", eventIn{UnitID: "u4", IdempotencyKey: "order-1"})); diff != "" {
			t.Errorf("repeated key across requests (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want(1, 0), e.event("conv", eventIn{UnitID: "u4", IdempotencyKey: "order-2"})); diff != "" {
			t.Errorf("new key (-want +got):\n%s", diff)
		}

		// Results count each unit's conversion once.
		conv := map[string]int64{}
		for _, a := range as {
			conv[a.variant()]++ // u1..u4 all converted exactly once
		}
		r := e.results("conv")
		for _, v := range r.Variants {
			if v.Conversions != conv[v.Key] || v.Sum != float64(conv[v.Key]) {
				t.Errorf("%s: conversions %d, sum %g; want %d", v.Key, v.Conversions, v.Sum, conv[v.Key])
			}
		}
	})
}

func TestContinuousEvents(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		x := e.experiment(`{"key":"rev","metric":"continuous","start":true,"variants":[{"key":"a"},{"key":"b"}]}`)
		as := e.assign("rev", e.admin, []string{"u1", "u2", "u3"})
		variantOf := map[string]string{}
		for _, a := range as {
			variantOf[a.UnitID] = a.variant()
		}

		e.must(422, "POST", "/v1/experiments/rev/events", e.admin, `{"unit_id":"u1"}`) // a value is required
		e.must(422, "POST", "/v1/experiments/rev/events", e.admin, `{"unit_id":"u1","value":1e13}`)
		if got := e.event("rev", eventIn{UnitID: "u1", Value: ptr(10.0)}); got.Accepted != 1 {
			t.Errorf("first value: %+v", got)
		}
		if got := e.event("rev", eventIn{UnitID: "u1", Value: ptr(5.0), IdempotencyKey: "o-1"}); got.Accepted != 1 {
			t.Errorf("second value: %+v", got)
		}
		// A retry of the same order, in a later request: counted once.
		if got := e.event("rev", eventIn{UnitID: "u1", Value: ptr(5.0), IdempotencyKey: "o-1"}); got.Duplicates != 1 || got.Accepted != 0 {
			t.Errorf("retried value: %+v", got)
		}
		got := e.events("rev", e.admin, []eventIn{
			{UnitID: "u2", Value: ptr(3.0), IdempotencyKey: "o-2"}, // 0
			{UnitID: "u2", Value: ptr(3.0), IdempotencyKey: "o-2"}, // 1 duplicate in the same batch
			{UnitID: "u2"},                                         // 2 no value
			{UnitID: "u3", Value: ptr(-2.5)},                       // 3 refunds are values too
			{UnitID: "u3", Value: ptr(4.5)},                        // 4 adds up with 3
			{UnitID: "nobody", Value: ptr(1.0)},                    // 5 never assigned
			{UnitID: "u1", Value: ptr(1.0), IdempotencyKey: "o-1"}, // 6 key seen (another value, still the same order)
		})
		wantRejected := []int{2, 5}
		var gotRejected []int
		for _, r := range got.Rejected {
			gotRejected = append(gotRejected, r.Index)
		}
		if got.Accepted != 3 || got.Duplicates != 2 || !slices.Equal(gotRejected, wantRejected) {
			t.Errorf("batch: %+v; want 3 accepted, 2 duplicates, rejected %v", got, wantRejected)
		}
		if !strings.Contains(got.Rejected[0].Error, "value") {
			t.Errorf("missing value rejected with %q", got.Rejected[0].Error)
		}

		// Per unit totals: u1 15, u2 3, u3 2 (−2.5 + 4.5).
		total := map[string]float64{"u1": 15, "u2": 3, "u3": 2}
		wantSum, wantSq, wantUnits, wantConv := map[string]float64{}, map[string]float64{}, map[string]int64{}, map[string]int64{}
		for u, v := range total {
			k := variantOf[u]
			wantSum[k] += v
			wantSq[k] += v * v // the sum of squares is over unit totals, not events
			wantUnits[k]++
			wantConv[k]++
		}
		r := e.results("rev")
		for _, v := range r.Variants {
			if v.Sum != wantSum[v.Key] || v.Units != wantUnits[v.Key] || v.Conversions != wantConv[v.Key] {
				t.Errorf("%s: units %d, conversions %d, sum %g; want %d, %d, %g", v.Key, v.Units, v.Conversions, v.Sum, wantUnits[v.Key], wantConv[v.Key], wantSum[v.Key])
			}
			if wantUnits[v.Key] > 0 {
				if m := wantSum[v.Key] / float64(wantUnits[v.Key]); math.Abs(v.Mean-m) > 1e-9 {
					t.Errorf("%s: mean %g, want %g", v.Key, v.Mean, m)
				}
			}
		}
		cs, err := e.store.Counters(context.Background(), e.defaultWorkspace(), x.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			key := ""
			for _, v := range x.Variants {
				if v.ID == c.VariantID {
					key = v.Key
				}
			}
			if math.Abs(c.SumSq-wantSq[key]) > 1e-9 {
				t.Errorf("%s: sum of squares %g, want %g", key, c.SumSq, wantSq[key])
			}
		}
	})
}

// checkResults holds a results document to its invariants.
func checkResults(t *testing.T, r optimize.Results) {
	t.Helper()
	var units int64
	var pbest, weight float64
	for i, v := range r.Variants {
		units += v.Units
		pbest += v.PBest
		weight += v.Weight
		if v.Units > 0 && r.Metric == store.MetricBinary {
			if m := float64(v.Conversions) / float64(v.Units); math.Abs(v.Mean-m) > 1e-12 {
				t.Errorf("%s: mean %g, want conversions/units %g", v.Key, v.Mean, m)
			}
			if v.Sum != float64(v.Conversions) {
				t.Errorf("%s: sum %g, conversions %d", v.Key, v.Sum, v.Conversions)
			}
		}
		// With no conversion (or all) the equal-tailed interval of the
		// Beta posterior excludes the observed 0 (or 1); elsewhere it holds it.
		if v.Conversions > 0 && v.Conversions < v.Units && !(v.CILow <= v.Mean && v.Mean <= v.CIHigh) {
			t.Errorf("%s: credible interval [%g, %g] does not contain the mean %g", v.Key, v.CILow, v.CIHigh, v.Mean)
		}
		if i == 0 && (v.Lift != nil || v.LiftCILow != nil || v.LiftCIHigh != nil) {
			t.Errorf("control %s has a lift", v.Key)
		}
		if i > 0 && v.Units > 0 && r.Variants[0].Conversions > 0 && v.Lift == nil {
			t.Errorf("%s: no lift against a control with conversions", v.Key)
		}
		if v.Lift != nil && (v.LiftCILow == nil || v.LiftCIHigh == nil || *v.LiftCILow > *v.Lift || *v.Lift > *v.LiftCIHigh) {
			t.Errorf("%s: lift %v not within [%v, %v]", v.Key, v.Lift, v.LiftCILow, v.LiftCIHigh)
		}
	}
	if units != r.TotalUnits {
		t.Errorf("total_units %d, variants add up to %d", r.TotalUnits, units)
	}
	// P(best) is integrated numerically to ≤ 0.001 per variant.
	if math.Abs(pbest-1) > 0.001*float64(len(r.Variants)) {
		t.Errorf("p_best adds up to %g", pbest)
	}
	if math.Abs(weight-1) > 1e-9 {
		t.Errorf("weights add up to %g", weight)
	}
}

// convertWhere assigns n new units and converts those whose variant the
// function says converts.
func (e *env) convertWhere(ref, prefix string, n int, converts func(variant string, i int) bool) []assignmentOut {
	e.t.Helper()
	as := e.assign(ref, e.admin, units(prefix, n))
	var evs []eventIn
	for i, a := range as {
		if a.Variant != nil && converts(*a.Variant, i) {
			evs = append(evs, eventIn{UnitID: a.UnitID})
		}
	}
	if len(evs) > 0 {
		if got := e.events(ref, e.admin, evs); got.Accepted != len(evs) {
			e.t.Fatalf("events: %+v, want %d accepted", got, len(evs))
		}
	}
	return as
}

func TestResults(t *testing.T) {
	eachBackendWith(t, fastRefresh, func(t *testing.T, e *env) {
		e.experiment(`{"key":"res","metric":"binary","start":true,"settings":{"seed":3,"min_samples":1000},
			"variants":[{"key":"control"},{"key":"b"},{"key":"c"}]}`)
		empty := e.results("res")
		checkResults(t, empty)
		if empty.TotalUnits != 0 || empty.SRM.PValue != nil || empty.SRM.Alert || empty.Winner != nil || empty.Decision.State != engine.StateCollecting {
			t.Errorf("empty results: %+v", empty)
		}
		// Conversions every 10th unit on control, every 5th on b and c;
		// min_samples 1000 keeps it collecting.
		rate := map[string]int{"control": 10, "b": 5, "c": 5}
		e.convertWhere("res", "r", 600, func(v string, i int) bool { return i%rate[v] == 0 })
		r := e.results("res")
		checkResults(t, r)
		if r.TotalUnits != 600 || r.Status != store.StatusRunning || r.Strategy != "adaptive" || r.Metric != store.MetricBinary {
			t.Errorf("header: %+v", r)
		}
		if r.Decision.State != engine.StateCollecting || r.Winner != nil || !strings.Contains(r.Decision.Reason, "1000") {
			t.Errorf("decision before min_samples: %+v, winner %v", r.Decision, r.Winner)
		}
		if r.SRM.PValue == nil || r.SRM.Alert {
			t.Errorf("srm of a healthy run: %+v", r.SRM)
		}
		// Every strategy reports the anytime-valid p-value and interval
		// against the control (none for the control itself).
		for _, v := range r.Variants {
			if (v.PValue == nil) != (v.Key == "control") || (v.DiffLow == nil) != (v.Key == "control") {
				t.Errorf("%s: p-value %v, interval [%v, %v]", v.Key, v.PValue, v.DiffLow, v.DiffHigh)
			}
		}
		if !r.UpdatedAt.After(time.Now().Add(-time.Minute)) {
			t.Errorf("updated_at %v", r.UpdatedAt)
		}
	})
}

// TestWinner: the decision rule declares a winner once, the experiment
// records it, and with auto_complete serves it from then on.
func TestWinner(t *testing.T) {
	eachBackendWith(t, fastRefresh, func(t *testing.T, e *env) {
		for _, auto := range []bool{false, true} {
			key := fmt.Sprintf("win-%v", auto)
			// A 10% weight floor keeps control fed: with the default 1% the
			// always-valid test, whose inverse-propensity weights reach 100,
			// needed from 300 to over 4,300 units here depending on when
			// the allocation refreshed (0–20 rounds in 24 runs). Power under
			// the default floor is the simulations' business; this test is
			// about recording the declaration (0–2 rounds in 40 runs).
			e.experiment(fmt.Sprintf(`{"key":%q,"metric":"binary","start":true,"settings":{"seed":5,"min_samples":50,"weight_floor":0.1,"auto_complete":%v},
				"variants":[{"key":"control"},{"key":"green","payload":"G"}]}`, key, auto))
			// 20% of green units convert, 2% of control ones.
			e.convertWhere(key, "w", 300, func(v string, i int) bool {
				return (v == "green" && i%5 == 0) || (v == "control" && i%50 == 0)
			})
			// r is the document of the call that declared the winner: it
			// must already tell the new state.
			var r optimize.Results
			for round := 0; ; round++ {
				r = e.results(key)
				checkResults(t, r)
				if r.Winner != nil {
					break
				}
				if round == 20 {
					t.Fatalf("auto_complete=%v: no winner: %+v", auto, r)
				}
				// Control needs min_samples units while green takes the traffic.
				e.convertWhere(key, fmt.Sprintf("more%d", round), 200, func(v string, i int) bool {
					return (v == "green" && i%5 == 0) || (v == "control" && i%50 == 0)
				})
			}
			x := decodeInto[experimentOut](t, e.must(200, "GET", "/v1/experiments/"+key, e.admin, ""))
			if !auto {
				if *r.Winner != "green" || r.Decision.State != engine.StateWinnerFound || r.Status != store.StatusRunning {
					t.Errorf("declared: winner %v, decision %+v, status %s", *r.Winner, r.Decision, r.Status)
				}
				if x.Status != "running" || x.Winner == nil || *x.Winner != "green" || x.WinnerFixed {
					t.Errorf("experiment after the declaration: %+v", x)
				}
				// The declaration stays recorded even when the latest data
				// disagree: control now converts every unit.
				e.convertWhere(key, "turn", 400, func(v string, i int) bool { return v == "control" })
				later := e.results(key)
				if later.Winner == nil || *later.Winner != "green" || later.Decision.State != engine.StateWinnerFound {
					t.Errorf("after the data turned: winner %v, decision %+v", later.Winner, later.Decision)
				}
				continue
			}
			// auto_complete: completed at once, serving green to everyone.
			for i, r := range []optimize.Results{r, e.results(key)} {
				if *r.Winner != "green" || r.Status != store.StatusCompleted || r.Decision.State != engine.StateCompleted {
					t.Errorf("auto-completed, call %d: winner %v, decision %+v, status %s", i, *r.Winner, r.Decision, r.Status)
				}
			}
			if x.Status != "completed" || !x.WinnerFixed {
				t.Errorf("experiment after auto-completion: %+v", x)
			}
			for _, a := range e.assign(key, e.admin, []string{"w-1", "w-2", "w-3", "brand-new"}) {
				if a.variant() != "green" || string(a.Payload) != `"G"` {
					t.Errorf("after auto-completion: %+v", a)
				}
			}
		}
	})
}

func TestSequentialResults(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		e.experiment(`{"key":"seq","metric":"binary","strategy":"sequential","start":true,"settings":{"seed":9,"min_samples":50},
			"variants":[{"key":"control"},{"key":"green"}]}`)
		e.convertWhere("seq", "s", 600, func(v string, i int) bool {
			return (v == "green" && i%3 == 0) || (v == "control" && i%10 == 0)
		})
		r := e.results("seq")
		checkResults(t, r)
		c, g := r.Variants[0], r.Variants[1]
		if c.PValue != nil || c.DiffLow != nil {
			t.Errorf("control has a p-value: %+v", c)
		}
		if g.PValue == nil || *g.PValue < 0 || *g.PValue > 1 || g.DiffLow == nil || g.DiffHigh == nil || *g.DiffLow > *g.DiffHigh {
			t.Fatalf("green: p-value %v, confidence sequence [%v, %v]", g.PValue, g.DiffLow, g.DiffHigh)
		}
		// 33% against 10% on ~300 units each: far beyond α = 0.05.
		if *g.PValue >= 0.05 || r.Winner == nil || *r.Winner != "green" {
			t.Errorf("p-value %g, winner %v, decision %+v", *g.PValue, r.Winner, r.Decision)
		}
		// Fixed 50/50 weights: the SRM test is the classic one.
		if r.SRM.PValue == nil || r.SRM.Alert || math.Abs(c.Weight-0.5) > 1e-12 {
			t.Errorf("srm %+v, weights %g/%g", r.SRM, c.Weight, g.Weight)
		}
	})
}

// TestSRM: a broken assignment path (units stored on one variant far more
// often than the logged weights say) raises the alert; a sound one does not.
func TestSRM(t *testing.T) {
	tests := []struct {
		name      string
		onControl int // of 2000 units, all logged at 50/50
		alert     bool
	}{
		// 1600 of 2000 against an expected 1000: χ² = 720, p ≈ 1e-158.
		{"80% on one variant", 1600, true},
		// 1030 of 2000: χ² = 1.8, p ≈ 0.18.
		{"within chance", 1030, false},
	}
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ws := e.defaultWorkspace()
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				key := fmt.Sprintf("srm-%d", i)
				x := e.experiment(fmt.Sprintf(`{"key":%q,"metric":"binary","start":true,"variants":[{"key":"control"},{"key":"b"}]}`, key))
				ctrl, b := x.variantID("control"), x.variantID("b")
				batch := store.AssignBatch{WorkspaceID: ws, ExperimentID: x.ID, Weights: map[string]float64{ctrl: 0.5, b: 0.5}}
				for j := range 2000 {
					v := b
					if j < tc.onControl {
						v = ctrl
					}
					batch.Items = append(batch.Items, store.Assignment{UnitID: fmt.Sprint("u", j), VariantID: v, Propensity: 0.5, Epoch: 1, AssignedAt: time.Now()})
				}
				if _, err := e.store.Assign(context.Background(), []store.AssignBatch{batch}); err != nil {
					t.Fatal(err)
				}
				r := e.results(key)
				if r.SRM.PValue == nil || r.SRM.Alert != tc.alert || (*r.SRM.PValue < 0.001) != tc.alert {
					t.Errorf("srm %+v (p %v), want alert %v", r.SRM, r.SRM.PValue, tc.alert)
				}
			})
		}
	})
}

func TestTimeseries(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		x := e.experiment(`{"key":"ts","metric":"binary","start":true,"variants":[{"key":"a"},{"key":"b"},{"key":"c"}]}`)
		as := e.convertWhere("ts", "t", 300, func(v string, i int) bool { return i%4 == 0 })
		ts := decodeInto[timeseriesOut](t, e.must(200, "GET", "/v1/experiments/ts/timeseries", e.admin, ""))
		if ts.ExperimentID != x.ID || !ts.To.After(ts.From) || len(ts.Points) == 0 {
			t.Fatalf("timeseries: %+v", ts)
		}
		units, conv := map[string]int64{}, map[string]int64{}
		for i, a := range as {
			units[a.variant()]++
			if i%4 == 0 {
				conv[a.variant()]++
			}
		}
		gotUnits, gotConv := map[string]int64{}, map[string]int64{}
		weightPerHour, unitsPerHour := map[time.Time]float64{}, map[time.Time]int64{}
		for i, p := range ts.Points {
			if i > 0 && p.Hour.Before(ts.Points[i-1].Hour) {
				t.Errorf("points out of order at %d", i)
			}
			if !p.Hour.Equal(p.Hour.Truncate(time.Hour)) || p.Hour.Before(ts.From) || !p.Hour.Before(ts.To) {
				t.Errorf("point hour %v outside [%v, %v) or not on the hour", p.Hour, ts.From, ts.To)
			}
			gotUnits[p.Variant] += p.Units
			gotConv[p.Variant] += p.Conversions
			weightPerHour[p.Hour] += p.Weight
			unitsPerHour[p.Hour] += p.Units
		}
		if diff := cmp.Diff(units, gotUnits); diff != "" {
			t.Errorf("units per variant (-assigned +timeseries):\n%s", diff)
		}
		if diff := cmp.Diff(conv, gotConv); diff != "" {
			t.Errorf("conversions per variant (-sent +timeseries):\n%s", diff)
		}
		for h, w := range weightPerHour {
			// An hour with events but no new units (the test ran across
			// the hour) has no traffic to share.
			if unitsPerHour[h] > 0 && math.Abs(w-1) > 1e-9 {
				t.Errorf("hour %v: weights add up to %g", h, w)
			}
		}

		// A window without data has no points; bad windows are a 422.
		now := time.Now().UTC()
		q := func(from, to time.Time) string {
			return "?" + url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}.Encode()
		}
		past := decodeInto[timeseriesOut](t, e.must(200, "GET", "/v1/experiments/ts/timeseries"+q(now.Add(-72*time.Hour), now.Add(-48*time.Hour)), e.admin, ""))
		if len(past.Points) != 0 {
			t.Errorf("points in an empty window: %+v", past.Points)
		}
		for _, tc := range []struct {
			name, query string
			fields      []string
		}{
			{"bad from", "?from=yesterday", []string{"from"}},
			{"bad to", "?to=2026-13-01T00:00:00Z", []string{"to"}},
			{"both bad", "?from=1&to=2", []string{"from", "to"}},
			{"to equals from", q(now, now), []string{"to"}},
			{"to before from", q(now, now.Add(-time.Hour)), []string{"to"}},
			{"span over 92 days", q(now.Add(-100*24*time.Hour), now), []string{"to"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.must(422, "GET", "/v1/experiments/ts/timeseries"+tc.query, e.admin, "")
				if diff := cmp.Diff(tc.fields, r.fields(t)); diff != "" {
					t.Errorf("fields (-want +got):\n%s", diff)
				}
			})
		}
	})
}

// TestSimulation is the end-to-end claim of the product: through the real
// HTTP API, Thompson sampling moves most traffic to the best of three
// variants and declares it the winner.
//
// The winner needs c's always-valid interval above zero against b (0.12
// against 0.08), and that interval rests on inverse-propensity weights of
// b's units: the lower b's floor, the wider it stays. With weight_floor
// 0.03 the declaration came after 5,500 to 25,250 units in 8 runs, and
// after more than 40,000 in a CI run; with 0.1 after 2,500 to 12,500 in 10
// runs, while c still gets 72–77% of all units and 79–81% of the last
// half. The test also shows the floor honoured.
//
// The test's own draws (who converts) come from a fixed seed; the
// experiment's draws are seeded too, but their stream also depends on the
// experiment's id (random) and on when the allocation is refreshed, so the
// run is not bit-for-bit repeatable. The thresholds are therefore set well
// inside what the runs give (see the comments on them).
func TestSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	const (
		batch = 250
		// The run goes on to minUnits even when the winner comes sooner:
		// the share of traffic is a claim about the allocation, and a
		// decision after a few batches (a fast one took 1,250 units, a
		// third of them from the uniform first batch) says little about it.
		minUnits = 6000
		maxUnits = 40000
	)
	rates := map[string]float64{"a": 0.05, "b": 0.08, "c": 0.12}
	eachBackendWith(t, fastRefresh, func(t *testing.T, e *env) {
		e.experiment(`{"key":"sim","metric":"binary","strategy":"adaptive","start":true,"settings":{"seed":2026,"min_samples":200,"weight_floor":0.1},
			"variants":[{"key":"a","control":true},{"key":"b"},{"key":"c"}]}`)
		rng := rand.New(rand.NewPCG(2026, 4))
		var seq []string // variant of each unit, in order
		var r optimize.Results
		decidedAt := 0 // units when the winner was declared
		for n := 0; n < maxUnits && (decidedAt == 0 || n < minUnits); n += batch {
			as := e.assign("sim", e.admin, units(fmt.Sprintf("sim%d", n), batch))
			var evs []eventIn
			for _, a := range as {
				seq = append(seq, a.variant())
				if rng.Float64() < rates[a.variant()] {
					evs = append(evs, eventIn{UnitID: a.UnitID})
				}
			}
			if len(evs) > 0 {
				e.events("sim", e.admin, evs)
			}
			if r = e.results("sim"); r.Winner != nil && decidedAt == 0 {
				decidedAt = len(seq)
				if r.Decision.State != engine.StateWinnerFound {
					t.Errorf("winner %s declared with decision %+v", *r.Winner, r.Decision)
				}
			}
		}
		checkResults(t, r)
		share := func(xs []string) float64 {
			c := 0
			for _, v := range xs {
				if v == "c" {
					c++
				}
			}
			return float64(c) / float64(len(xs))
		}
		overall, lastHalf := share(seq), share(seq[len(seq)/2:])
		t.Logf("winner %v declared after %d units; %d units: decision %q (%s); share of c: %.1f%% overall, %.1f%% of the last half; units a/b/c: %d/%d/%d; srm p %v",
			deref(r.Winner), decidedAt, len(seq), r.Decision.State, r.Decision.Reason, 100*overall, 100*lastHalf,
			r.Variants[0].Units, r.Variants[1].Units, r.Variants[2].Units, *r.SRM.PValue)
		if r.Winner == nil || *r.Winner != "c" || r.Decision.State != engine.StateWinnerFound {
			t.Fatalf("after %d units: winner %v, decision %+v", len(seq), r.Winner, r.Decision)
		}
		// Uniform allocation would give c a third, the floors at most 80%;
		// Thompson sampling gives it most of what the floors leave once the
		// others look worse: measured 70.6–76.2% of all units and 78.6–80.8%
		// of the last half in 16 runs (both backends, quiet machine); one
		// run under -race at a load average of 10 gave 62.8% of all units,
		// hence the lower bound on the whole run. The last half is the claim
		// about where the allocation settles.
		if overall <= 0.60 || lastHalf <= 0.72 {
			t.Errorf("c got %.1f%% of all units and %.1f%% of the last half; want > 60%% and > 72%%", 100*overall, 100*lastHalf)
		}
		// The floor holds in the weights and in the traffic (binomial: an
		// arm at 10% of several thousand units is above 8% by far).
		for _, v := range r.Variants {
			if v.Weight < 0.1-1e-9 || float64(v.Units) < 0.08*float64(r.TotalUnits) {
				t.Errorf("%s: weight %.4f, %d of %d units; the floor is 10%%", v.Key, v.Weight, v.Units, r.TotalUnits)
			}
		}
		// Moving weights are no sample ratio mismatch.
		if r.SRM.Alert {
			t.Errorf("srm alert in a healthy adaptive run: %+v", r.SRM)
		}
		// The declaration is recorded on the experiment.
		x := decodeInto[experimentOut](t, e.must(200, "GET", "/v1/experiments/sim", e.admin, ""))
		if x.Winner == nil || *x.Winner != "c" {
			t.Errorf("experiment winner %v", x.Winner)
		}
	})
}

// TestResultsEdgeCases: results are a valid document however little data
// there is (no NaN may reach the encoder: it would be a 500).
func TestResultsEdgeCases(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		for _, tc := range []struct {
			name, metric, strategy string
			values                 []float64 // one unit per value, converted with it
		}{
			{"binary no units", "binary", "adaptive", nil},
			{"continuous no units", "continuous", "adaptive", nil},
			{"continuous one unit", "continuous", "adaptive", []float64{4}},
			{"continuous one unit sequential", "continuous", "sequential", []float64{4}},
			{"continuous zero values", "continuous", "fast_learning", []float64{0, 0, 0, 0}},
			{"binary one unit sequential", "binary", "sequential", []float64{1}},
			{"explore negative values", "continuous", "explore", []float64{-3, -1e6, 2}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				key := strings.ReplaceAll(tc.name, " ", "-")
				e.experiment(fmt.Sprintf(`{"key":%q,"metric":%q,"strategy":%q,"start":true,"variants":[{"key":"a"},{"key":"b"}]}`, key, tc.metric, tc.strategy))
				if len(tc.values) > 0 {
					us := units("u", len(tc.values))
					e.assign(key, e.admin, us)
					var evs []eventIn
					for i, v := range tc.values {
						ev := eventIn{UnitID: us[i]}
						if tc.metric == "continuous" {
							ev.Value = ptr(v)
						}
						evs = append(evs, ev)
					}
					if got := e.events(key, e.admin, evs); got.Accepted != len(evs) {
						t.Fatalf("events: %+v", got)
					}
				}
				r := e.results(key)
				if r.TotalUnits != int64(len(tc.values)) || r.Strategy != tc.strategy {
					t.Errorf("results: %+v", r)
				}
				e.must(200, "GET", "/v1/experiments/"+key+"/timeseries", e.admin, "")
			})
		}
	})
}

// TestConversionWindowResults: an experiment with a conversion window
// reports, per variant, its raw units and the matured ones its rates come
// from, and its late events (here none: the window is a day); one without
// reports neither. The events response counts late events apart (0 here;
// the store conformance suite sends one after its window). The responses
// are checked against the OpenAPI document.
func TestConversionWindowResults(t *testing.T) {
	eachBackendWith(t, fastRefresh, func(t *testing.T, e *env) {
		for _, tc := range []struct {
			key, settings string
			window        bool
		}{{"windowed", `{"conversion_window":"1d","seed":1}`, true}, {"plain", `{"seed":1}`, false}} {
			e.experiment(`{"key":"` + tc.key + `","start":true,"settings":` + tc.settings + `,"variants":[{"key":"a"},{"key":"b"}]}`)
			as := e.assign(tc.key, e.admin, units(tc.key, 40))
			r := e.must(202, "POST", "/v1/experiments/"+tc.key+"/events", e.admin,
				jsonBody(t, map[string]any{"events": []map[string]any{{"unit_id": as[0].UnitID}, {"unit_id": as[1].UnitID}}})).JSON(t)
			if r["accepted"] != 2.0 || r["late"] != 0.0 {
				t.Errorf("%s: events %v", tc.key, r)
			}
			res := e.results(tc.key)
			var sum int64
			for _, v := range res.Variants {
				sum += v.Units
				if (v.MaturedUnits != nil) != tc.window || (v.LateConversions != nil) != tc.window {
					t.Errorf("%s/%s: matured %v, late %v", tc.key, v.Key, v.MaturedUnits, v.LateConversions)
				}
				if tc.window && (*v.MaturedUnits > float64(v.Units) || *v.LateConversions != 0) {
					t.Errorf("%s/%s: %d units, %v matured, %d late", tc.key, v.Key, v.Units, *v.MaturedUnits, *v.LateConversions)
				}
			}
			if sum != 40 || res.TotalUnits != 40 {
				t.Errorf("%s: units %d, total %d, want the raw 40", tc.key, sum, res.TotalUnits)
			}
		}
		got := e.must(200, "GET", "/v1/experiments/windowed", e.admin, "").JSON(t)
		if w := got["settings"].(map[string]any)["conversion_window"]; w != "1d" {
			t.Errorf("conversion_window %v, want 1d", w)
		}
	})
}
