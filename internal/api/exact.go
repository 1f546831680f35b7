package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/samplit/samplit/internal/apperr"
)

// encoding/json is lenient where an API must be exact (issue 14): it turns
// invalid UTF-8 and lone surrogate escapes into U+FFFD, so that two
// different unit ids or idempotency keys become one; it matches field names
// case-insensitively, so {"key":"a","KEY":"b"} sets key to "b"; and it lets
// a repeated name overwrite the first. checkJSONText and checkExactFields
// refuse all three before a body is used.

// checkJSONText refuses invalid UTF-8, lone surrogate escapes and repeated
// names within one object anywhere in raw (payloads included). It assumes
// nothing about the rest of the syntax, which the decoder checks.
func checkJSONText(raw []byte) error {
	if !utf8.Valid(raw) {
		return apperr.New(apperr.BadRequest, "the request body is not valid UTF-8")
	}
	// Surrogate escapes: a high one must be followed by a low one, and a low
	// one must not stand alone.
	for i := 0; i < len(raw); i++ {
		if raw[i] != '"' {
			continue
		}
		// Inside a string until the closing quote.
		for i++; i < len(raw) && raw[i] != '"'; i++ {
			if raw[i] != '\\' || i+1 >= len(raw) {
				continue
			}
			i++
			if raw[i] != 'u' {
				continue
			}
			r, ok := hex4(raw, i+1)
			if !ok {
				continue // the decoder reports the syntax error
			}
			i += 4
			switch {
			case r >= 0xd800 && r <= 0xdbff:
				lo, ok := uint16(0), false
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					lo, ok = hex4(raw, i+3)
				}
				if !ok || lo < 0xdc00 || lo > 0xdfff {
					return apperr.New(apperr.BadRequest, "the request body has an unpaired UTF-16 surrogate escape (\\u%04x)", r)
				}
				i += 6
			case r >= 0xdc00 && r <= 0xdfff:
				return apperr.New(apperr.BadRequest, "the request body has an unpaired UTF-16 surrogate escape (\\u%04x)", r)
			}
		}
	}
	return checkDuplicateNames(raw)
}

func hex4(b []byte, at int) (uint16, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var v uint16
	for _, c := range b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint16(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint16(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | uint16(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// MaxJSONDepth bounds how deeply arrays and objects may nest in a request
// body (payloads included): no request needs more, and a body of thousands
// of nested brackets costs every reader of the stored payload.
const MaxJSONDepth = 64

// checkDuplicateNames refuses an object that names a member twice, and
// nesting deeper than MaxJSONDepth. It scans the bytes of raw itself:
// encoding/json's Decoder.Token allocated per token, which made this check
// the largest allocator of a 1000-event request. For text the decoder
// accepts it decides as checkDuplicateNamesTokens (the token walk it
// replaces, kept for the differential test); for malformed text it may
// return nil or an error, and the decoder rejects the text anyway.
func checkDuplicateNames(raw []byte) error {
	type frame struct {
		object bool
		key    bool     // the next string is a member name
		names  [][]byte // the names so far, while few
		set    map[string]bool
	}
	var stack []frame
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '{', '[':
			if len(stack) >= MaxJSONDepth {
				return apperr.New(apperr.BadRequest, "the request body nests arrays and objects more than %d levels deep", MaxJSONDepth)
			}
			stack = append(stack, frame{object: c == '{', key: c == '{'})
		case '}', ']':
			if len(stack) == 0 {
				return nil // malformed: the decoder says so
			}
			stack = stack[:len(stack)-1]
		case ',':
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].key = true
			}
		case '"':
			start, escaped := i+1, false
			for i++; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					escaped = true
					i++
				}
			}
			if i >= len(raw) {
				return nil // unterminated string: the decoder says so
			}
			if len(stack) == 0 || !stack[len(stack)-1].object || !stack[len(stack)-1].key {
				continue
			}
			top := &stack[len(stack)-1]
			top.key = false
			name := raw[start:i]
			if escaped {
				var u string
				if json.Unmarshal(raw[start-1:i+1], &u) != nil {
					return nil
				}
				name = []byte(u)
			}
			dup := false
			if top.set != nil {
				dup = top.set[string(name)]
				top.set[string(name)] = true
			} else {
				for _, n := range top.names {
					if bytes.Equal(n, name) {
						dup = true
						break
					}
				}
				top.names = append(top.names, name)
				if len(top.names) > 16 { // many members: a set, not a quadratic scan
					top.set = make(map[string]bool, 32)
					for _, n := range top.names {
						top.set[string(n)] = true
					}
					top.names = nil
				}
			}
			if dup {
				t := string(name)
				return &apperr.Error{Code: apperr.BadRequest, Message: fmt.Sprintf("the name %q appears twice in one JSON object", t),
					Fields: []apperr.FieldError{{Field: t, Reason: "appears twice in one object"}}}
			}
		}
	}
	return nil
}

// checkDuplicateNamesTokens is checkDuplicateNames by encoding/json's
// tokens: the reference the byte scanner is tested against.
func checkDuplicateNamesTokens(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type frame struct {
		object bool
		names  map[string]bool
		key    bool // the next string token is a member name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // end of input, or a syntax error the decoder reports
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			if (t == '{' || t == '[') && len(stack) >= MaxJSONDepth {
				return apperr.New(apperr.BadRequest, "the request body nests arrays and objects more than %d levels deep", MaxJSONDepth)
			}
			switch t {
			case '{':
				stack = append(stack, &frame{object: true, names: map[string]bool{}, key: true})
				continue
			case '[':
				stack = append(stack, &frame{})
				continue
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if top != nil && top.object && top.key {
				if top.names[t] {
					return &apperr.Error{Code: apperr.BadRequest, Message: fmt.Sprintf("the name %q appears twice in one JSON object", t),
						Fields: []apperr.FieldError{{Field: t, Reason: "appears twice in one object"}}}
				}
				top.names[t] = true
				top.key = false
				continue
			}
		}
		// A value (scalar or a closed container) completes a member.
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = true
		}
	}
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// checkExactFields refuses a member name of an object decoded into a struct
// that matches a field only when case is ignored: encoding/json would take
// "KEY" for "key". Objects decoded into maps, json.RawMessage or any (the
// free-form payloads) are left alone.
func checkExactFields(raw []byte, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessageType {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		var members map[string]json.RawMessage
		if json.Unmarshal(raw, &members) != nil {
			return nil // not an object (null, say): nothing to check
		}
		fields := cachedJSONFields(t)
		for name, v := range members {
			f, ok := fields[name]
			if !ok {
				for exact := range fields {
					if strings.EqualFold(exact, name) {
						field := joinPath(path, name)
						return &apperr.Error{Code: apperr.BadRequest, Message: fmt.Sprintf("unknown field %q (names are case-sensitive: %q)", field, exact),
							Fields: []apperr.FieldError{{Field: field, Reason: fmt.Sprintf("unknown field; names are case-sensitive (%q)", exact)}}}
					}
				}
				continue // unknown fields are the decoder's to report
			}
			if err := checkExactFields(v, f, joinPath(path, name)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if t.Elem() == rawMessageType {
			return nil // nothing to check in the items; skip splitting them
		}
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return nil
		}
		for i, it := range items {
			if err := checkExactFields(it, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		var members map[string]json.RawMessage
		if json.Unmarshal(raw, &members) != nil {
			return nil
		}
		for name, v := range members {
			if err := checkExactFields(v, t.Elem(), joinPath(path, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// fieldsCache holds jsonFields per struct type: a type's fields never
// change, and building the map per decoded item (every event of a batch)
// was a measurable share of the events route.
var fieldsCache sync.Map // reflect.Type → map[string]reflect.Type

func cachedJSONFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldsCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	f := jsonFields(t)
	fieldsCache.Store(t, f)
	return f
}

// jsonFields maps a struct's JSON member names to their types, embedded
// structs flattened as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for n, typ := range jsonFields(ft) {
					if _, ok := out[n]; !ok {
						out[n] = typ
					}
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
