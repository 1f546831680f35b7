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
	i := 0
	skipSpace := func() {
		for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
			i++
		}
	}
	// str reads a string without escapes and returns its contents.
	str := func() (string, bool) {
		if i >= len(raw) || raw[i] != '"' {
			return "", false
		}
		start := i + 1
		for j := start; j < len(raw); j++ {
			switch raw[j] {
			case '\\':
				return "", false
			case '"':
				i = j + 1
				return string(raw[start:j]), true
			}
		}
		return "", false
	}
	// member reads one "name": value pair into out.
	member := func(out *eventRequest) bool {
		name, ok := str()
		if !ok {
			return false
		}
		skipSpace()
		if i >= len(raw) || raw[i] != ':' {
			return false
		}
		i++
		skipSpace()
		switch name {
		case "unit_id", "idempotency_key":
			v, ok := str()
			if !ok {
				return false
			}
			if name == "unit_id" {
				out.UnitID = v
			} else {
				out.IdempotencyKey = v
			}
		case "value":
			j := i
			for j < len(raw) && (raw[j] >= '0' && raw[j] <= '9' || raw[j] == '-' || raw[j] == '+' || raw[j] == '.' || raw[j] == 'e' || raw[j] == 'E') {
				j++
			}
			if j == i {
				return false // null, a string, …: the general path says what is wrong
			}
			f, err := strconv.ParseFloat(string(raw[i:j]), 64)
			if err != nil {
				return false // out of range: the general path's error
			}
			out.Value = &f
			i = j
		default:
			return false
		}
		return true
	}
	skipSpace()
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	i++
	var out eventRequest
	skipSpace()
	if i < len(raw) && raw[i] == '}' {
		i++
	} else {
		for {
			if !member(&out) {
				return false
			}
			skipSpace()
			if i < len(raw) && raw[i] == ',' {
				i++
				skipSpace()
				continue
			}
			if i < len(raw) && raw[i] == '}' {
				i++
				break
			}
			return false
		}
	}
	skipSpace()
	if i != len(raw) {
		return false
	}
	*ev = out
	return true
}
