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
	const name = `"unit_id"`
	i := 0
	skipSpace := func() {
		for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
			i++
		}
	}
	skipSpace()
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	i++
	skipSpace()
	if len(raw)-i < len(name) || string(raw[i:i+len(name)]) != name {
		return false
	}
	i += len(name)
	skipSpace()
	if i >= len(raw) || raw[i] != ':' {
		return false
	}
	i++
	skipSpace()
	if i >= len(raw) || raw[i] != '"' {
		return false
	}
	start := i + 1
	end := -1
	for j := start; j < len(raw); j++ {
		c := raw[j]
		if c == '"' {
			end = j
			break
		}
		if c == '\\' || c < 0x20 {
			return false
		}
	}
	if end < 0 {
		return false
	}
	i = end + 1
	skipSpace()
	if i >= len(raw) || raw[i] != '}' {
		return false
	}
	i++
	skipSpace()
	if i != len(raw) {
		return false
	}
	u := string(raw[start:end])
	*body = assignRequest{UnitID: &u}
	return true
}
