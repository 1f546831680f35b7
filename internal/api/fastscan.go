package api

// fastScan reads the few JSON shapes of the fast decoders (decodeAssignFast,
// decodeEventFast) from a body that passed checkJSONText. Each method moves
// past what it read and reports false, at once, on anything it does not
// expect: the caller then gives the body to the general decoder, which says
// what is wrong.
type fastScan struct {
	raw []byte
	i   int
}

// space skips JSON whitespace.
func (s *fastScan) space() {
	for s.i < len(s.raw) && (s.raw[s.i] == ' ' || s.raw[s.i] == '\t' || s.raw[s.i] == '\n' || s.raw[s.i] == '\r') {
		s.i++
	}
}

// next reports whether c comes next, and then moves past it.
func (s *fastScan) next(c byte) bool {
	if s.i < len(s.raw) && s.raw[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes and returns its contents, a part of
// raw. A control character is refused as the JSON grammar wants: the body
// may not have been checked as JSON beyond its text (decodeAssignFast).
func (s *fastScan) str() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	for j := s.i; j < len(s.raw); j++ {
		switch c := s.raw[j]; {
		case c == '"':
			out := s.raw[s.i:j]
			s.i = j + 1
			return out, true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// objectWith moves past the start of an object whose first member is
// name: `{ "name" :` and the whitespace after it.
func (s *fastScan) objectWith(name string) bool {
	s.space()
	if !s.next('{') {
		return false
	}
	s.space()
	if got, ok := s.str(); !ok || string(got) != name {
		return false
	}
	s.space()
	if !s.next(':') {
		return false
	}
	s.space()
	return true
}

// end reports whether only whitespace is left.
func (s *fastScan) end() bool {
	s.space()
	return s.i == len(s.raw)
}

// object moves past an object, nested values and all, of a text that is
// valid JSON (only there do brackets outside strings pair up).
func (s *fastScan) object() bool {
	if !s.next('{') {
		return false
	}
	depth := 1
	for s.i < len(s.raw) {
		c := s.raw[s.i]
		s.i++
		switch c {
		case '"':
			for s.i < len(s.raw) && s.raw[s.i] != '"' {
				if s.raw[s.i] == '\\' {
					s.i++
				}
				s.i++
			}
			s.i++
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return true
			}
		}
	}
	return false
}
