package api

// decodeAssignFast decodes the common body of a single-unit assignment,
// {"unit_id":"…"}, without encoding/json's decoder, reflection and the
// exact-field check, which were a third of the assign route's CPU outside
// the database and the HTTP server. It reports false for anything else
// (another member, an escape, a control character, a second value,
// unexpected whitespace) and the caller then decodes the body the general
// way, which gives the same result and every error message.
//
// raw must have passed checkJSONText (valid UTF-8, no repeated names). It
// need not be valid JSON: what this accepts is, since it takes only the
// one shape, with the string's characters checked as the JSON grammar
// wants them (no control character, no quote or backslash).
func decodeAssignFast(raw []byte, body *assignRequest) bool {
	s := fastScan{raw: raw}
	if !s.objectWith("unit_id") {
		return false
	}
	unit, ok := s.str()
	if !ok {
		return false
	}
	s.space()
	if !s.next('}') || !s.end() {
		return false
	}
	u := string(unit)
	*body = assignRequest{UnitID: &u}
	return true
}
