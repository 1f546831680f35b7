package api

import (
	"strconv"
)

// decodeEventFast decodes the common shape of one event of a batch,
// {"unit_id":"…","value":number,"idempotency_key":"…"} with members in any
// order, without encoding/json's reflection and per-item decoder, which
// were most of the events route's CPU outside the database. It reports
// false for anything else (an escape in a string, null, another member or
// type, whitespace it does not expect) and the caller then decodes the item
// the general way, which gives the same result and every error message.
//
// raw must be an item of a body that decode accepted: valid JSON, valid
// UTF-8, no repeated names (checkJSONText). That is what lets this skip the
// checks of syntax the general decoder makes: a number token here is a
// valid JSON number, which strconv.ParseFloat reads as encoding/json does.
func decodeEventFast(raw []byte, ev *eventRequest) bool {
	s := fastScan{raw: raw}
	// member reads one "name": value pair into out.
	member := func(out *eventRequest) bool {
		name, ok := s.str()
		if !ok {
			return false
		}
		s.space()
		if !s.next(':') {
			return false
		}
		s.space()
		switch string(name) {
		case "unit_id", "idempotency_key":
			v, ok := s.str()
			if !ok {
				return false
			}
			if string(name) == "unit_id" {
				out.UnitID = string(v)
			} else {
				out.IdempotencyKey = string(v)
			}
		case "value":
			j := s.i
			for j < len(raw) && (raw[j] >= '0' && raw[j] <= '9' || raw[j] == '-' || raw[j] == '+' || raw[j] == '.' || raw[j] == 'e' || raw[j] == 'E') {
				j++
			}
			if j == s.i {
				return false // null, a string, …: the general path says what is wrong
			}
			f, err := strconv.ParseFloat(string(raw[s.i:j]), 64)
			if err != nil {
				return false // out of range: the general path's error
			}
			out.Value = &f
			s.i = j
		default:
			return false
		}
		return true
	}
	s.space()
	if !s.next('{') {
		return false
	}
	var out eventRequest
	s.space()
	if !s.next('}') {
		for {
			if !member(&out) {
				return false
			}
			s.space()
			if s.next(',') {
				s.space()
				continue
			}
			if s.next('}') {
				break
			}
			return false
		}
	}
	if !s.end() {
		return false
	}
	*ev = out
	return true
}
