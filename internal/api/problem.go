package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/samplit/samplit/internal/apperr"
)

// ProblemTypeBase prefixes the type URI of every problem; the rest is the
// apperr code ("https://samplit.dev/problems/invalid"). The URIs are stable:
// clients may switch on them.
const ProblemTypeBase = "https://samplit.dev/problems/"

// problem is an RFC 9457 problem details object, with Samplit's extension
// members request_id and errors (field-level failures).
type problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail,omitempty"`
	Instance  string              `json:"instance,omitempty"`
	RequestID string              `json:"request_id,omitempty"`
	Errors    []apperr.FieldError `json:"errors,omitempty"`
}

// problemClass is how an error code is presented.
type problemClass struct {
	status int
	title  string
}

var problemClasses = map[apperr.Code]problemClass{}

func init() {
	// The statuses are apperr's (one table, which the dashboard uses too).
	for code, title := range map[apperr.Code]string{
		apperr.BadRequest:   "Bad request",
		apperr.Unauthorized: "Unauthorized",
		apperr.Forbidden:    "Forbidden",
		apperr.NotFound:     "Not found",
		apperr.Conflict:     "Conflict",
		apperr.TooLarge:     "Request body too large",
		apperr.Invalid:      "Invalid request",
		apperr.RateLimited:  "Too many requests",
		apperr.Internal:     "Internal server error",
		apperr.Unavailable:  "Service unavailable",
	} {
		problemClasses[code] = problemClass{apperr.HTTPStatus(code), title}
	}
}

// writeError is the one function that turns an error into a response.
//
// An *apperr.Error is shown as it is: its message and field errors are meant
// for clients. Anything else is a failure the client cannot act on: it is
// logged with the request id and the client gets a generic 500 that quotes
// the id, never the error text (which may hold SQL, paths or secrets).
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ri := infoFrom(r.Context())
	var ae *apperr.Error
	switch {
	case errors.As(err, &ae) && ae.Code != apperr.Internal:
	case errors.Is(err, context.DeadlineExceeded):
		// The handler timeout fired; the client may retry.
		s.log.WarnContext(r.Context(), "request timed out", "request_id", ri.ID, "error", err)
		ae = apperr.New(apperr.Unavailable, "the request took too long; retry later")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads this response.
		s.log.InfoContext(r.Context(), "request canceled by the client", "request_id", ri.ID)
		ae = apperr.New(apperr.Unavailable, "the request was canceled")
	default:
		s.log.ErrorContext(r.Context(), "internal error", "request_id", ri.ID,
			"method", r.Method, "path", r.URL.Path, "error", err)
		ae = apperr.New(apperr.Internal, "an internal error occurred; quote the request id %s when reporting it", ri.ID)
	}
	class, ok := problemClasses[ae.Code]
	if !ok {
		class = problemClasses[apperr.Internal]
	}
	if ae.Code == apperr.Unauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="samplit"`)
	}
	s.writeProblem(w, r, problem{
		Type:   ProblemTypeBase + string(ae.Code),
		Title:  class.title,
		Status: class.status,
		Detail: ae.Message,
		Errors: ae.Fields,
	})
}

// writeProblem writes p, filling in the instance and request id.
func (s *server) writeProblem(w http.ResponseWriter, r *http.Request, p problem) {
	p.Instance = r.URL.Path
	p.RequestID = infoFrom(r.Context()).ID
	body, err := json.Marshal(p)
	if err != nil { // cannot happen for this type; keep the client informed anyway
		s.log.ErrorContext(r.Context(), "encode problem", "error", err)
		body = []byte(`{"type":"about:blank","title":"Internal server error","status":500}`)
		p.Status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	w.WriteHeader(p.Status)
	if _, err := w.Write(append(body, '\n')); err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "write problem", slog.Any("error", err))
	}
}

// respond writes v as a JSON response with the status. The body is encoded
// before the header goes out, so an encoding failure can still become a 500.
func respond(w http.ResponseWriter, status int, v any) error {
	// Encoded into a pooled buffer (the encoder adds the newline and escapes
	// as json.Marshal does) instead of Marshal's fresh copy grown again by
	// the newline: two allocations and copies less per answer.
	buf := respondBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 { // do not keep the buffer of a huge list
			buf.Reset()
			respondBufs.Put(buf)
		}
	}()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// A failed write means the client is gone; there is nobody to tell.
	_, _ = w.Write(buf.Bytes())
	return nil
}

var respondBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// handleNoRoute answers paths no route matches: 405 with Allow when the path
// exists for other methods, else 404, both as problems (the mux's own plain
// text answers would break the problem+json promise).
func (s *server) handleNoRoute(w http.ResponseWriter, r *http.Request) error {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		if slices.Contains(allow, http.MethodGet) {
			allow = append(allow, http.MethodHead)
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeProblem(w, r, problem{
			Type:   ProblemTypeBase + "method_not_allowed",
			Title:  "Method not allowed",
			Status: http.StatusMethodNotAllowed,
			Detail: r.Method + " is not allowed here; allowed: " + strings.Join(allow, ", "),
		})
		return nil
	}
	return apperr.New(apperr.NotFound, "no such route: %s %s", r.Method, r.URL.Path)
}
