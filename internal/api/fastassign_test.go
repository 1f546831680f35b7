package api

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// checkFast holds a fast decoder to the general one: whenever fast takes
// a body (one that passed checkJSONText, as every body reaching a fast
// path has), general must accept it too and decode the same value.
func checkFast[T any](t *testing.T, body string, fast func([]byte, *T) bool, general func([]byte, *T) error, opts ...cmp.Option) bool {
	t.Helper()
	raw := []byte(body)
	if checkJSONText(raw) != nil {
		return false
	}
	var got T
	if !fast(raw, &got) {
		return false
	}
	var want T
	if err := general(raw, &want); err != nil {
		t.Fatalf("fast path took %q, general path refuses it: %v", body, err)
	}
	if diff := cmp.Diff(want, got, opts...); diff != "" {
		t.Fatalf("%q: mismatch (-general +fast):\n%s", body, diff)
	}
	return true
}

// checkFastAssign holds decodeAssignFast to the general decoder. Unlike
// an event item, the body has not been through encoding/json before the
// fast path, so nothing but checkJSONText filters what reaches it.
func checkFastAssign(t *testing.T, body string) (fast bool) {
	t.Helper()
	return checkFast(t, body, decodeAssignFast, func(raw []byte, v *assignRequest) error { return decodeChecked(raw, v, "", false) })
}

func TestDecodeAssignFast(t *testing.T) {
	for _, tc := range []struct {
		body string
		fast bool
	}{
		{`{"unit_id":"u-1"}`, true},
		{" \t{ \"unit_id\" :\r\n\"é ü\" }\n", true},
		{`{"unit_id":""}`, true},
		{`{"unit_id":"a\"b"}`, false},     // escape: general path
		{`{"unit_id":"a\u0041"}`, false},  // escape: general path
		{"{\"unit_id\":\"a\tb\"}", false}, // control character: the general path's syntax error
		{`{"unit_id":"u","attributes":{}}`, false},
		{`{"attributes":{},"unit_id":"u"}`, false},
		{`{"unit_ids":["u"]}`, false},
		{`{"UNIT_ID":"u"}`, false},
		{`{"unit_id":1}`, false},
		{`{"unit_id":null}`, false},
		{`{"unit_id":"u"}{}`, false}, // a second value: the general path refuses it
		{`{"unit_id":"u"`, false},
		{`{"unit_id":"u}`, false},
		{`{"unit_id" "u"}`, false},
		{`{}`, false},
		{``, false},
	} {
		if got := checkFastAssign(t, tc.body); got != tc.fast {
			t.Errorf("%q: fast path %v, want %v", tc.body, got, tc.fast)
		}
	}
}

func FuzzDecodeAssignFast(f *testing.F) {
	for _, s := range []string{`{"unit_id":"u-1"}`, ` {"unit_id" : "x"} `, `{"unit_id":"a\\b"}`, `{"unit_id":"u"}]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) { checkFastAssign(t, body) })
}
