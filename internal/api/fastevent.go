package api

import (
	"encoding/json"
)

// decodeEventFast decodes the common shape of one event of a batch,
// {"unit_id":"…","metric":"…","value":number,"idempotency_key":"…"}
// (any of them, in any order), without encoding/json's reflection and
// per-item decoder, which were most of the events route's CPU outside the
// database. It reports false for anything else (an escape in a string,
// null, another member or type) and the caller then decodes the item the
// general way, which gives the same result and every error message.
func decodeEventFast(raw []byte, ev *eventRequest) bool {
	return fastMembers(raw, ev, func(out *eventRequest, name []byte, s fastScan) (_ fastScan, ok bool) {
		switch string(name) {
		case "unit_id":
			out.UnitID, ok = s.text()
		case "metric":
			out.Metric, ok = s.text()
		case "idempotency_key":
			out.IdempotencyKey, ok = s.text()
		case "value":
			out.Value, ok = s.number()
		}
		return s, ok
	})
}

// decodeCampaignEventFast is decodeEventFast for an item of a campaign's
// batch: {"recipient","type","value","at","idempotency_key"}.
func decodeCampaignEventFast(raw []byte, ev *campaignEventRequest) bool {
	return fastMembers(raw, ev, func(out *campaignEventRequest, name []byte, s fastScan) (_ fastScan, ok bool) {
		switch string(name) {
		case "recipient":
			out.Recipient, ok = s.text()
		case "type":
			out.Type, ok = s.text()
		case "idempotency_key":
			out.IdempotencyKey, ok = s.text()
		case "value":
			out.Value, ok = s.number()
		case "at":
			var at string
			if at, ok = s.text(); ok {
				out.At = &at
			}
		}
		return s, ok
	})
}

// fastMembers reads raw, one object, into out: member reads the value of
// each member named name (s.text, s.number) into out and returns s moved
// past it, or false for a name or value it does not take. On false out is
// left zero, for the general decoder.
//
// raw must be an item of a body that decode accepted: valid JSON, valid
// UTF-8, no repeated names (checkJSONText). That is what lets this skip the
// checks of syntax the general decoder makes: a number token here is a
// valid JSON number, and a name is seen once. member captures nothing and
// takes the scanner by value: whatever is passed by address to a function
// value escapes, and an allocation per item was what this was to save.
func fastMembers[T any](raw []byte, out *T, member func(out *T, name []byte, s fastScan) (fastScan, bool)) bool {
	s := fastScan{raw: raw}
	for first := true; ; first = false {
		name, done, ok := s.member(first)
		if ok && done {
			return true
		}
		if ok {
			s, ok = member(out, name, s)
		}
		if !ok {
			var zero T
			*out = zero
			return false
		}
	}
}

// decodeEventsFast decodes the envelope of a batch of experiment events,
// {"events":[{…},…]}, into body (see batchEnvelope), for batchItems to
// decode item by item (decodeEventFast first). It reports false for any
// other body, which the general decoder then reads.
func decodeEventsFast(raw []byte, body *eventsRequest) bool {
	items, ok := batchEnvelope(raw)
	if ok {
		*body = eventsRequest{Events: items}
	}
	return ok
}

// decodeCampaignEventsFast is decodeEventsFast for a campaign's events.
func decodeCampaignEventsFast(raw []byte, body *campaignEventsRequest) bool {
	items, ok := batchEnvelope(raw)
	if ok {
		*body = campaignEventsRequest{Events: items}
	}
	return ok
}

// batchEnvelope reads the envelope of a batch, {"events":[{…},…]}: each
// item the part of raw it spans, as the general decoder's json.RawMessage
// holds it. encoding/json's pass over the envelope copied every item and
// walked the text twice (a second time to check exact fields): a sixth of
// the events route's CPU with batches of 1000. It reports false for any
// other shape (a single event, another member, an empty list, an item that
// is not an object).
//
// Unlike decodeEventFast's items, raw has only passed checkJSONText, which
// does not check the grammar, so it is checked here first: the items are
// split by their brackets, which only valid JSON makes meaningful.
func batchEnvelope(raw []byte) ([]json.RawMessage, bool) {
	if !json.Valid(raw) {
		return nil, false
	}
	s := fastScan{raw: raw}
	if !s.objectWith("events") || !s.next('[') {
		return nil, false
	}
	var items []json.RawMessage
	for {
		s.space()
		start := s.i
		if !s.object() {
			return nil, false
		}
		items = append(items, raw[start:s.i])
		s.space()
		if s.next(',') {
			continue
		}
		if s.next(']') {
			break
		}
		return nil, false
	}
	s.space()
	if !s.next('}') || !s.end() {
		return nil, false
	}
	return items, true
}
