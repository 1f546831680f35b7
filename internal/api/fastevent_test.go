package api

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// checkFastEvent holds decodeEventFast to the general decoder: whenever the
// fast path takes an item, the general path must accept it too and decode
// the same event.
func checkFastEvent(t *testing.T, item string) (fast bool) {
	t.Helper()
	raw := []byte(item)
	// Only items of a body decode accepts reach the fast path.
	if !json.Valid(raw) || checkJSONText(raw) != nil {
		return false
	}
	var got eventRequest
	if !decodeEventFast(raw, &got) {
		return false
	}
	var want eventRequest
	if err := decodeField(raw, &want, "events[0]"); err != nil {
		t.Fatalf("fast path took %s, general path refuses it: %v", item, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("%s: mismatch (-general +fast):\n%s", item, diff)
	}
	return true
}

func TestDecodeEventFast(t *testing.T) {
	for _, tc := range []struct {
		item string
		fast bool
	}{
		{`{"unit_id":"u1","value":1.5}`, true},
		{` { "value" : -2e3 , "unit_id" : "u-2", "idempotency_key":"k" } `, true},
		{`{"unit_id":"u1"}`, true},
		{`{}`, true},
		{`{"unit_id":"é\u00e9"}`, false},         // escape: general path
		{`{"unit_id":"u1","value":null}`, false}, // null: general path
		{`{"unit_id":"u1","value":"1"}`, false},  // wrong type: general path names it
		{`{"unit_id":"u1","value":1e400}`, false},
		{`{"UNIT_ID":"u1"}`, false}, // case: the general path refuses it
		{`{"unit_id":"u1","metric":"m"}`, false},
		{`{"unit_id":1}`, false},
		{`[1]`, false},
	} {
		if got := checkFastEvent(t, tc.item); got != tc.fast {
			t.Errorf("%s: fast path %v, want %v", tc.item, got, tc.fast)
		}
	}
}

func FuzzDecodeEventFast(f *testing.F) {
	for _, s := range []string{`{"unit_id":"u1","value":1.5}`, `{"value":-0.0e-2,"unit_id":""}`, `{"idempotency_key":"k","unit_id":"x"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, item string) { checkFastEvent(t, item) })
}
