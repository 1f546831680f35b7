package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// ProblemTypeBase prefixes the type URI of every problem the server sends;
// the rest is a stable machine code such as "not_found" (see Error.Code).
const ProblemTypeBase = "https://samplit.dev/problems/"

// Error is a failure answered by the server: an RFC 9457 problem decoded,
// or, for a response that is not one (a proxy's error page), its status
// with the start of its body as Detail. Use errors.As to get it from an
// error a method returned, or the Is… helpers for the common questions.
type Error struct {
	// Status is the HTTP status code of the response.
	Status int `json:"status"`
	// Type is the problem type URI, ProblemTypeBase followed by a code;
	// "about:blank" or empty for a response that was not a problem.
	Type string `json:"type"`
	// Title is a short summary of the kind of problem ("Not found").
	Title string `json:"title"`
	// Detail explains this occurrence, in words meant for people.
	Detail string `json:"detail"`
	// Instance is the path of the request that failed.
	Instance string `json:"instance"`
	// RequestID identifies the request in the server's logs: quote it when
	// reporting a problem.
	RequestID string `json:"request_id"`
	// Fields lists the invalid fields of a 400 or 422, each named by its
	// path in the request body ("variants[1].key", "settings.alpha").
	Fields []FieldError `json:"errors"`
}

// FieldError is one invalid field of a request and why it is invalid.
type FieldError struct {
	// Field is the path of the field in the request, such as
	// "variants[1].key" or "settings.decision_threshold".
	Field string `json:"field"`
	// Reason says what is wrong with it ("is taken", "must be greater
	// than 0 and less than 1").
	Reason string `json:"reason"`
}

// Error formats the problem on one line: status, title, detail, fields and
// request id.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "samplit: %d %s", e.Status, e.Title)
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Field + " " + f.Reason)
		if i == len(e.Fields)-1 {
			b.WriteString(")")
		}
	}
	if e.RequestID != "" {
		b.WriteString(" [request " + e.RequestID + "]")
	}
	return b.String()
}

// Code returns the machine code of the problem type, such as "not_found",
// "conflict", "invalid", "bad_request", "unauthorized", "forbidden",
// "rate_limited" or "unavailable"; empty when the response was not a
// Samplit problem.
func (e *Error) Code() string {
	code, ok := strings.CutPrefix(e.Type, ProblemTypeBase)
	if !ok {
		return ""
	}
	return code
}

// Field returns the error of the named field, if the server reported one.
func (e *Error) Field(name string) (FieldError, bool) {
	for _, f := range e.Fields {
		if f.Field == name {
			return f, true
		}
	}
	return FieldError{}, false
}

// decodeError turns a failed response into an *Error.
func decodeError(status int, header http.Header, body []byte) *Error {
	e := &Error{}
	if json.Unmarshal(body, e) != nil || (e.Type == "" && e.Title == "") {
		// Not a problem: keep what a person may need to see.
		detail := strings.TrimSpace(string(body))
		if len(detail) > 200 {
			detail = detail[:200]
			for !utf8.ValidString(detail) {
				detail = detail[:len(detail)-1]
			}
			detail += "…"
		}
		e = &Error{Detail: detail}
	}
	e.Status = status
	if e.Title == "" {
		e.Title = http.StatusText(status)
	}
	if e.RequestID == "" {
		e.RequestID = header.Get("X-Request-Id")
	}
	return e
}

// StatusOf returns the HTTP status of an *Error in err's chain, or 0 when
// err is nil or no response was received.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// IsNotFound reports whether err is a 404: no such experiment, funnel or
// route in this workspace.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// IsConflict reports whether err is a 409: a key that exists, a lifecycle
// change the current status does not allow (assigning to an experiment that
// is not running, starting one twice), or an idempotent request still in
// progress.
func IsConflict(err error) bool { return StatusOf(err) == http.StatusConflict }

// IsInvalid reports whether err is a 422: values the server refused; the
// *Error's Fields say which and why.
func IsInvalid(err error) bool { return StatusOf(err) == http.StatusUnprocessableEntity }

// IsBadRequest reports whether err is a 400: a body the server could not
// read (which, from this client, means a client bug or an unknown field).
func IsBadRequest(err error) bool { return StatusOf(err) == http.StatusBadRequest }

// IsUnauthorized reports whether err is a 401: a missing, unknown or
// revoked API key.
func IsUnauthorized(err error) bool { return StatusOf(err) == http.StatusUnauthorized }

// IsForbidden reports whether err is a 403: a valid key without the scope
// the call needs (an assign key reading results, a write key creating
// workspaces).
func IsForbidden(err error) bool { return StatusOf(err) == http.StatusForbidden }

// IsRateLimited reports whether err is a 429 that outlasted the retries.
func IsRateLimited(err error) bool { return StatusOf(err) == http.StatusTooManyRequests }
