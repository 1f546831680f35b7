// Package apperr defines the one error type that crosses the layers of Samplit.
//
// Every layer below the HTTP API reports failures the caller can act on as an
// *Error with a machine code; the API turns exactly these into problem+json
// responses (see internal/api). Any other error is an internal failure: it is
// logged with its details and the client only learns that something went wrong.
package apperr

import (
	"errors"
	"fmt"
	"strings"
)

// Code is a stable, machine-readable error class.
type Code string

// The error codes. They map one to one onto HTTP statuses in the API layer.
const (
	Invalid      Code = "invalid"      // 422: the request is well formed but its values are not acceptable
	BadRequest   Code = "bad_request"  // 400: the request could not be read (malformed JSON, wrong types)
	NotFound     Code = "not_found"    // 404
	Conflict     Code = "conflict"     // 409: uniqueness or state-machine conflict
	Unauthorized Code = "unauthorized" // 401: no credentials or unknown credentials
	Forbidden    Code = "forbidden"    // 403: credentials without the needed scope
	TooLarge     Code = "too_large"    // 413: body over the limit
	RateLimited  Code = "rate_limited" // 429
	Unavailable  Code = "unavailable"  // 503: a dependency (the database) is not reachable
	Internal     Code = "internal"     // 500: a bug or an unexpected failure; details never reach a client
)

// FieldError names one invalid field and why it is invalid. Field is a JSON
// pointer-like dotted path such as "variants[1].key" or "settings.alpha".
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Error is the error type with a machine code. Message is safe to show to a
// client; Err (optional) is the cause, kept for logs and errors.Is/As.
type Error struct {
	Code    Code
	Message string
	Fields  []FieldError
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "; %s: %s", f.Field, f.Reason)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error with the code and a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the code and message whose cause is err.
func Wrap(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// Fields returns an Invalid error listing the field errors. It returns nil
// when fields is empty, so validators can end with `return apperr.Fields(errs)`.
func Fields(fields []FieldError) error {
	if len(fields) == 0 {
		return nil
	}
	msg := "the request has invalid fields"
	if len(fields) == 1 {
		msg = fields[0].Field + ": " + fields[0].Reason
	}
	return &Error{Code: Invalid, Message: msg, Fields: fields}
}

// CodeOf returns the code of the first *Error in err's chain, or Internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Is reports whether err carries the code.
func Is(err error, code Code) bool {
	return err != nil && CodeOf(err) == code
}

// statuses are the HTTP statuses of the codes: the API answers with them,
// and the dashboard, which calls the services directly, shows a refusal
// with the same status the API would have used.
var statuses = map[Code]int{
	BadRequest: 400, Unauthorized: 401, Forbidden: 403, NotFound: 404, Conflict: 409,
	TooLarge: 413, Invalid: 422, RateLimited: 429, Internal: 500, Unavailable: 503,
}

// HTTPStatus returns the HTTP status of the code (500 for an unknown one).
func HTTPStatus(c Code) int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return 500
}
