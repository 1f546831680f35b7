package api

import (
	"encoding/json"
	"strings"
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

// FuzzCheckDuplicateNames holds the byte scanner of checkDuplicateNames to
// the encoding/json token walk it replaced, on every text the decoder
// accepts.
func FuzzCheckDuplicateNames(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"a":2}`, `{"a":{"a":1},"b":[{"a":1,"a":2}]}`, `{"a":1,"\u0061":2}`, `{"a":"a","b":"a"}`,
		`[[[[1]]]]`, `{"k":"x\"y","x\"y":1}`, `{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8,"9":9,"10":10,"11":11,"12":12,"13":13,"14":14,"15":15,"16":16,"17":17,"1":0}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		raw := []byte(s)
		if !json.Valid(raw) {
			return
		}
		got, want := checkDuplicateNames(raw), checkDuplicateNamesTokens(raw)
		if (got == nil) != (want == nil) || got != nil && got.Error() != want.Error() {
			t.Fatalf("%s: scanner %v, tokens %v", s, got, want)
		}
	})
}

func TestCheckDuplicateNamesDeep(t *testing.T) {
	deep := strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1)
	if checkDuplicateNames([]byte(deep)) == nil || checkDuplicateNamesTokens([]byte(deep)) == nil {
		t.Fatal("nesting deeper than MaxJSONDepth accepted")
	}
	ok := strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth)
	if err := checkDuplicateNames([]byte(ok)); err != nil {
		t.Fatal(err)
	}
}
