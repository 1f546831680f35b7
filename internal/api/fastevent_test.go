package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// checkFastItem holds an item decoder (decodeEventFast,
// decodeCampaignEventFast) to the general decoder. Only items of a body
// that encoding/json found valid reach the fast path.
func checkFastItem[T any](t *testing.T, item string, fast func([]byte, *T) bool) (ok bool) {
	t.Helper()
	if !json.Valid([]byte(item)) {
		return false
	}
	return checkFast(t, item, fast, func(raw []byte, v *T) error { return decodeField(raw, v, "events[0]") })
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
		{`{"unit_id":"u1","metric":"m"}`, true},
		{`{"unit_id":"u1","metric":null}`, false},
		{`{"unit_id":"u1","recipient":"r"}`, false}, // unknown member: the general path names it
		{`{"unit_id":1}`, false},
		{`{"unit_id":"u1",}`, false},
		{`{"unit_id":"u1"} x`, false},
		{`[1]`, false},
	} {
		if got := checkFastItem(t, tc.item, decodeEventFast); got != tc.fast {
			t.Errorf("%s: fast path %v, want %v", tc.item, got, tc.fast)
		}
	}
}

func FuzzDecodeEventFast(f *testing.F) {
	for _, s := range []string{`{"unit_id":"u1","value":1.5}`, `{"value":-0.0e-2,"unit_id":""}`, `{"idempotency_key":"k","unit_id":"x"}`,
		`{"recipient":"r","type":"open","at":"2026-12-01T10:00:00Z","value":2}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, item string) {
		checkFastItem(t, item, decodeEventFast)
		checkFastItem(t, item, decodeCampaignEventFast)
	})
}

func TestDecodeCampaignEventFast(t *testing.T) {
	for _, tc := range []struct {
		item string
		fast bool
	}{
		{`{"recipient":"r1","type":"open"}`, true},
		{` { "at" : "2026-12-01T10:00:00Z" , "type":"conversion", "value": 12.5e0, "recipient":"r-2", "idempotency_key":"k" } `, true},
		{`{"recipient":"r1","type":"click","at":"not a time"}`, true}, // a string: checkCampaignEvent judges it
		{`{}`, true},
		{`{"recipient":"r\u00e9","type":"open"}`, false}, // escape: general path
		{`{"recipient":"r1","at":null}`, false},
		{`{"recipient":"r1","value":"1"}`, false},
		{`{"recipient":"r1","value":-1e999}`, false},
		{`{"recipient":"r1","unit_id":"u"}`, false}, // an experiment's member: the general path refuses it
		{`{"Recipient":"r1"}`, false},
		{`{"recipient":["r1"]}`, false},
	} {
		if got := checkFastItem(t, tc.item, decodeCampaignEventFast); got != tc.fast {
			t.Errorf("%s: fast path %v, want %v", tc.item, got, tc.fast)
		}
	}
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

// checkFastBatch holds an envelope decoder (decodeEventsFast,
// decodeCampaignEventsFast) to the general decoder, item for item. Bodies
// reach it after checkJSONText, not after json.Valid.
func checkFastBatch[T any](t *testing.T, body string, fast func([]byte, *T) bool) (ok bool) {
	t.Helper()
	var zero T
	return checkFast(t, body, fast, func(raw []byte, v *T) error { return decodeChecked(raw, v, "", false) }, cmp.AllowUnexported(zero))
}

func TestDecodeEventsFast(t *testing.T) {
	for _, tc := range []struct {
		body string
		fast bool
	}{
		{`{"events":[{"unit_id":"u1","value":1.5},{"unit_id":"u2"}]}`, true},
		{" {\n \"events\" : [ {\"unit_id\":\"a\\\"}]{\"} , {\"x\":[{\"y\":\"]\"}]} ] } ", true},
		{`{"events":[{}]}`, true},
		{`{"events":[]}`, false},                               // the general path says how many it needs
		{`{"events":null}`, false},                             // null: general path
		{`{"events":[{"unit_id":"u1"}],"unit_id":"u"}`, false}, // both shapes: general path refuses
		{`{"unit_id":"u1"}`, false},                            // one event
		{`{"events":[1]}`, false},
		{`{"events":[{"unit_id":"u1"}]`, false},    // not JSON
		{`{"events":[{"unit_id":"u1"}]}{}`, false}, // two values
		{`{"events":[{"a":01}]}`, false},           // not JSON inside an item
		{`{"Events":[{}]}`, false},
	} {
		if got := checkFastBatch(t, tc.body, decodeEventsFast); got != tc.fast {
			t.Errorf("%s: fast path %v, want %v", tc.body, got, tc.fast)
		}
		if got := checkFastBatch(t, tc.body, decodeCampaignEventsFast); got != tc.fast {
			t.Errorf("%s: campaign events: fast path %v, want %v", tc.body, got, tc.fast)
		}
	}
}

func FuzzDecodeEventsFast(f *testing.F) {
	for _, s := range []string{`{"events":[{"unit_id":"u1","value":1.5}]}`, `{"events":[{"a":"\\\"{"},{"b":[[]]}]}`, `{"events":[{}, {} ]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		checkFastBatch(t, body, decodeEventsFast)
		checkFastBatch(t, body, decodeCampaignEventsFast)
	})
}

// BenchmarkDecodeEvents reads the load test's body, 1000 events, the way
// the events route does: the general envelope and the fast one, each item
// then by decodeEventFast.
func BenchmarkDecodeEvents(b *testing.B) {
	parts := make([]string, 1000)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{"unit_id":"ev-%d","value":1.5}`, i*7919%10000)
	}
	raw := []byte(`{"events":[` + strings.Join(parts, ",") + `]}`)
	for _, bc := range []struct {
		name     string
		envelope func(raw []byte, body *eventsRequest) error
	}{
		{"general", func(raw []byte, body *eventsRequest) error { return decodeChecked(raw, body, "", false) }},
		{"fast", func(raw []byte, body *eventsRequest) error {
			if !decodeEventsFast(raw, body) {
				return errors.New("the fast path refused the body")
			}
			return nil
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var body eventsRequest
				if err := checkJSONText(raw); err != nil {
					b.Fatal(err)
				}
				if err := bc.envelope(raw, &body); err != nil {
					b.Fatal(err)
				}
				if _, err := batchItems(false, body.eventRequest, body.Events, decodeEventFast); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeCampaignEvents reads 1000 opens and clicks as the
// campaign events route does (the fast envelope), each item by
// decodeCampaignEventFast or by the general decoder.
func BenchmarkDecodeCampaignEvents(b *testing.B) {
	parts := make([]string, 1000)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{"recipient":"r-%d","type":"open","at":"2026-12-01T10:00:00Z"}`, i*7919%10000)
	}
	raw := []byte(`{"events":[` + strings.Join(parts, ",") + `]}`)
	for _, bc := range []struct {
		name string
		item func([]byte, *campaignEventRequest) bool
	}{
		{"general", func([]byte, *campaignEventRequest) bool { return false }},
		{"fast", decodeCampaignEventFast},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var body campaignEventsRequest
				if err := checkJSONText(raw); err != nil {
					b.Fatal(err)
				}
				if !decodeCampaignEventsFast(raw, &body) {
					b.Fatal("the fast envelope refused the body")
				}
				if _, err := batchItems(false, body.campaignEventRequest, body.Events, bc.item); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
