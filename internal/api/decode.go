package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/samplit/samplit/internal/apperr"
)

// decode reads the request body into v strictly: exactly one JSON value,
// no unknown fields, every type as declared. An empty body is a 400, since
// the route needs one; use decodeOptional where a body may be left out.
//
// Failures are 400 (the request cannot be read) with the offending field
// named when encoding/json says which, or 413 over the body limit. Value
// checks (ranges, formats) are the caller's and are 422.
func decode(r *http.Request, v any) error {
	return decodeReader(r.Body, v, "", false)
}

// decodeOptional is decode for routes whose body may be empty (or absent);
// then v is left as it is and the result is nil.
func decodeOptional(r *http.Request, v any) error {
	return decodeReader(r.Body, v, "", true)
}

// decodeField decodes a part of a body that was kept as json.RawMessage,
// naming errors below the path prefix (such as "variants[1]"). Decoding in
// two steps this way gives errors an array index, which encoding/json's own
// field paths lack.
//
// raw is a part of a body that decode already passed through checkJSONText
// (which looks at the whole text, nested values included), so it is not
// checked again nor copied: for a batch of 1000 events the second check and
// copy per item were a fifth of the request's CPU.
func decodeField(raw json.RawMessage, v any, prefix string) error {
	return decodeChecked(raw, v, prefix, false)
}

func decodeReader(body io.Reader, v any, prefix string, optional bool) error {
	raw, err := readJSONText(body, prefix)
	if err != nil {
		return err
	}
	return decodeChecked(raw, v, prefix, optional)
}

// decodeFast is decode for a route with a fast path: fast reads the
// route's common body from the checked text into v and reports true, or
// reports false and leaves v alone, and the body is then decoded the
// general way. fast must accept only bodies the general way decodes to the
// same v (a fuzz test holds each to it).
func decodeFast[T any](r *http.Request, v *T, fast func(raw []byte, v *T) bool) error {
	raw, err := readJSONText(r.Body, "")
	if err != nil {
		return err
	}
	if fast(raw, v) {
		return nil
	}
	return decodeChecked(raw, v, "", false)
}

// readJSONText reads a body and checks what encoding/json lets pass
// (checkJSONText).
func readJSONText(body io.Reader, prefix string) ([]byte, error) {
	if body == nil {
		body = http.NoBody
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, decodeError(err, prefix)
	}
	if err := checkJSONText(raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// decodeChecked decodes raw, whose text checkJSONText accepted, into v.
func decodeChecked(raw []byte, v any, prefix string, optional bool) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			if optional {
				return nil
			}
			return apperr.New(apperr.BadRequest, "the request body is empty; send a JSON object")
		}
		return decodeError(err, prefix)
	}
	// A second value (or trailing garbage) after the first is refused: a
	// body that means two things must not be read as the first.
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			if e := decodeError(err, prefix); apperr.Is(e, apperr.TooLarge) {
				return e
			}
		}
		return apperr.New(apperr.BadRequest, "the request body must hold a single JSON value")
	}
	return checkExactFields(raw, reflect.TypeOf(v), prefix)
}

// decodeError turns an encoding/json failure into a 400 (or 413) that says
// what is wrong and where, without echoing Go type names.
func decodeError(err error, prefix string) error {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		return errTooLarge(maxErr.Limit)
	case errors.As(err, &syntaxErr):
		return apperr.Wrap(apperr.BadRequest, err, "malformed JSON at byte %d: %s", syntaxErr.Offset, syntaxErr.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.Wrap(apperr.BadRequest, err, "malformed JSON: the body ends too early")
	case errors.As(err, &typeErr):
		field := joinPath(prefix, typeErr.Field)
		reason := fmt.Sprintf("must be %s, not %s", jsonTypeName(typeErr.Type.Kind().String()), typeErr.Value)
		if strings.HasPrefix(typeErr.Value, "number") && isNumberKind(typeErr.Type.Kind().String()) {
			reason = "must be " + jsonTypeName(typeErr.Type.Kind().String()) + " in range, not " + strings.TrimPrefix(typeErr.Value, "number ")
		}
		if field == "" {
			return apperr.Wrap(apperr.BadRequest, err, "the request body must be a JSON object, not %s", typeErr.Value)
		}
		return &apperr.Error{Code: apperr.BadRequest, Message: field + ": " + reason, Err: err,
			Fields: []apperr.FieldError{{Field: field, Reason: reason}}}
	}
	// encoding/json reports unknown fields only as text.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if unq, uerr := strconv.Unquote(name); uerr == nil {
			name = unq
		}
		field := joinPath(prefix, name)
		return &apperr.Error{Code: apperr.BadRequest, Message: "unknown field " + strconv.Quote(field), Err: err,
			Fields: []apperr.FieldError{{Field: field, Reason: "unknown field"}}}
	}
	return apperr.Wrap(apperr.BadRequest, err, "the request body is not valid JSON")
}

func joinPath(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	}
	return prefix + "." + field
}

func isNumberKind(kind string) bool {
	return strings.HasPrefix(kind, "int") || strings.HasPrefix(kind, "uint") || strings.HasPrefix(kind, "float")
}

// jsonTypeName names a Go kind in JSON terms.
func jsonTypeName(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "an integer"
	case strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "a boolean"
	case kind == "slice", kind == "array":
		return "an array"
	case kind == "struct", kind == "map":
		return "an object"
	}
	return "another type"
}
