package api

import "strconv"

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

// text is str as a Go string.
func (s *fastScan) text() (string, bool) {
	b, ok := s.str()
	return string(b), ok
}

// number reads a number token, which in a valid JSON text is a valid JSON
// number: strconv.ParseFloat reads it as encoding/json does. It reports
// false for any other value (null, a string: the general path says what is
// wrong) and for a number out of float64's range (the general path's
// error).
func (s *fastScan) number() (*float64, bool) {
	j := s.i
	for j < len(s.raw) && (s.raw[j] >= '0' && s.raw[j] <= '9' || s.raw[j] == '-' || s.raw[j] == '+' || s.raw[j] == '.' || s.raw[j] == 'e' || s.raw[j] == 'E') {
		j++
	}
	if j == s.i {
		return nil, false
	}
	f, err := strconv.ParseFloat(string(s.raw[s.i:j]), 64)
	if err != nil {
		return nil, false
	}
	s.i = j
	return &f, true
}

// member moves to the next member of the object that raw holds, whole:
// the opening brace first (first), else the comma after the previous
// value, then `"name" :`, leaving s at the value. done says that the object
// ended instead, with nothing after it.
func (s *fastScan) member(first bool) (name []byte, done, ok bool) {
	s.space()
	if first {
		if !s.next('{') {
			return nil, false, false
		}
		s.space()
		if s.next('}') {
			return nil, true, s.end()
		}
	} else {
		if s.next('}') {
			return nil, true, s.end()
		}
		if !s.next(',') {
			return nil, false, false
		}
		s.space()
	}
	name, ok = s.str()
	if !ok {
		return nil, false, false
	}
	s.space()
	if !s.next(':') {
		return nil, false, false
	}
	s.space()
	return name, false, true
}

// objectWith moves past the start of an object whose first member is
// name: `{ "name" :` and the whitespace after it.
func (s *fastScan) objectWith(name string) bool {
	got, done, ok := s.member(true)
	return ok && !done && string(got) == name
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
