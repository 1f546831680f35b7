package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/samplit/samplit/internal/apperr"
)

// TestWriteError checks the one mapping from errors to problems, without a
// database: every code has its status, type and title; field errors are
// listed; anything that is not an *apperr.Error is a 500 that shows nothing
// of the error and logs all of it.
func TestWriteError(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		typ    string
		detail string
		fields []apperr.FieldError
	}{
		{"bad request", apperr.New(apperr.BadRequest, "malformed"), 400, "bad_request", "malformed", nil},
		{"unauthorized", apperr.New(apperr.Unauthorized, "who"), 401, "unauthorized", "who", nil},
		{"forbidden", apperr.New(apperr.Forbidden, "no"), 403, "forbidden", "no", nil},
		{"not found", apperr.New(apperr.NotFound, "gone"), 404, "not_found", "gone", nil},
		{"conflict", apperr.New(apperr.Conflict, "taken"), 409, "conflict", "taken", nil},
		{"too large", apperr.New(apperr.TooLarge, "big"), 413, "too_large", "big", nil},
		{"invalid", apperr.Fields([]apperr.FieldError{{Field: "a", Reason: "x"}, {Field: "b", Reason: "y"}}), 422, "invalid",
			"the request has invalid fields", []apperr.FieldError{{Field: "a", Reason: "x"}, {Field: "b", Reason: "y"}}},
		{"rate limited", apperr.New(apperr.RateLimited, "slow"), 429, "rate_limited", "slow", nil},
		{"unavailable", apperr.New(apperr.Unavailable, "db"), 503, "unavailable", "db", nil},
		{"wrapped apperr", errors.Join(errors.New("ctx"), apperr.New(apperr.NotFound, "gone")), 404, "not_found", "gone", nil},
		{"internal apperr", apperr.New(apperr.Internal, "secret detail"), 500, "internal", "", nil},
		{"plain error", errors.New("secret detail"), 500, "internal", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := newServer(Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, Options{})
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/v1/x", nil)
			s.writeError(w, r, tc.err)
			if w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("content type %q", ct)
			}
			var p problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if p.Type != ProblemTypeBase+tc.typ || p.Status != tc.status || p.Title == "" || p.Instance != "/v1/x" {
				t.Errorf("problem %+v", p)
			}
			if diff := cmp.Diff(tc.fields, p.Errors); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
			if tc.status == 500 {
				if strings.Contains(w.Body.String(), "secret") {
					t.Errorf("500 leaks the error: %s", w.Body)
				}
				if !strings.Contains(logs.String(), "secret detail") {
					t.Errorf("500 not logged: %s", logs.String())
				}
			} else if p.Detail != tc.detail {
				t.Errorf("detail %q, want %q", p.Detail, tc.detail)
			}
			if got := w.Header().Get("WWW-Authenticate"); (tc.status == http.StatusUnauthorized) != (got != "") {
				t.Errorf("WWW-Authenticate %q for status %d", got, tc.status)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	type inner struct {
		N int `json:"n"`
	}
	type body struct {
		S     string `json:"s"`
		Inner inner  `json:"inner"`
	}
	tests := []struct {
		in     string
		code   apperr.Code
		fields []string
	}{
		{`{"s":"x","inner":{"n":1}}`, "", nil},
		{`  {"s":"x"}  ` + "\n", "", nil},
		{``, apperr.BadRequest, nil},
		{`{"s":1}`, apperr.BadRequest, []string{"s"}},
		{`{"inner":{"n":"1"}}`, apperr.BadRequest, []string{"inner.n"}},
		{`{"inner":{"m":1}}`, apperr.BadRequest, []string{"m"}}, // encoding/json names no parent
		{`{"s":"x"}{"s":"y"}`, apperr.BadRequest, nil},
		{`{"s":"x"`, apperr.BadRequest, nil},
		{`{"s":"x",}`, apperr.BadRequest, nil},
		{`true`, apperr.BadRequest, nil},
	}
	for _, tc := range tests {
		var b body
		err := decodeReader(strings.NewReader(tc.in), &b, "", false)
		if tc.code == "" {
			if err != nil {
				t.Errorf("decode(%q) = %v", tc.in, err)
			}
			continue
		}
		var ae *apperr.Error
		if !errors.As(err, &ae) || ae.Code != tc.code {
			t.Errorf("decode(%q) = %v, want code %s", tc.in, err, tc.code)
			continue
		}
		var fields []string
		for _, f := range ae.Fields {
			fields = append(fields, f.Field)
		}
		if diff := cmp.Diff(tc.fields, fields); diff != "" {
			t.Errorf("decode(%q) fields mismatch (-want +got):\n%s", tc.in, diff)
		}
	}
	// A body over the limit is a 413 however far the decoder got.
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"s":"`+strings.Repeat("x", 100)+`"}`))
	r.Body = http.MaxBytesReader(w, r.Body, 10)
	var b body
	if err := decode(r, &b); !apperr.Is(err, apperr.TooLarge) {
		t.Errorf("decode over the limit = %v", err)
	}
}
