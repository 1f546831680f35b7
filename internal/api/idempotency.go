package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/store"
)

// IdempotencyHeader is the request header of the IETF httpapi draft
// "The Idempotency-Key HTTP Header Field".
const IdempotencyHeader = "Idempotency-Key"

const maxIdempotencyKeyLen = 255

// idempotent makes a write safe to retry. Without an Idempotency-Key header
// the request runs as usual. With one, scoped to the caller's API key (one
// key's record is no other key's to replay: a second admin key replaying a
// POST /v1/workspaces would otherwise be handed an admin key of a workspace
// it did not create):
//
//   - the first request claims the key, runs, and its response is stored;
//   - a retry with the same key and the same request (method, path and body)
//     gets the stored response again (with Idempotent-Replayed: true) and
//     changes nothing;
//   - the same key with a different request is a 422;
//   - a retry while the first is still running is a 409;
//   - keys expire after Options.IdempotencyTTL (24 h by default): after that
//     the same key runs the request anew.
//
// Responses with a 5xx status or 429 are not stored (the claim is released)
// because retrying them may rightly give another answer.
func (s *server) idempotent(next handlerFunc) handlerFunc {
	return s.idempotentWith(next, nil)
}

// secretReplay is for responses that hold a secret shown only once (a new
// API key): the idempotency store must not keep it in plaintext, so redact
// removes it before the response is stored, and replay answers a retry
// from the redacted body (for instance with a freshly made secret).
type secretReplay struct {
	redact func(status int, body []byte) []byte
	replay func(w http.ResponseWriter, r *http.Request, status int, body []byte) error
}

// idempotentWith is idempotent with an optional secretReplay.
func (s *server) idempotentWith(next handlerFunc, secret *secretReplay) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		key := r.Header.Get(IdempotencyHeader)
		if key == "" {
			return next(w, r)
		}
		if !validIdempotencyKey(key) {
			return &apperr.Error{Code: apperr.BadRequest,
				Message: fmt.Sprintf("the %s header must be 1 to %d printable ASCII characters", IdempotencyHeader, maxIdempotencyKeyLen),
				Fields:  []apperr.FieldError{{Field: IdempotencyHeader, Reason: "invalid"}}}
		}
		// The body is needed twice: to fingerprint and to handle. It is
		// already capped by MaxBodyBytes.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return decodeError(err, "")
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		fingerprint := requestFingerprint(r.Method, r.URL.Path, body)

		p := principalFrom(r.Context())
		key = idempotencyScope(p.KeyID, key)
		now := s.now()
		prev, err := s.store.ClaimIdempotency(r.Context(), store.IdempotencyRecord{
			WorkspaceID: p.WorkspaceID, Key: key, Fingerprint: fingerprint, CreatedAt: now,
		}, now.Add(-s.opts.IdempotencyTTL))
		if err != nil {
			return fmt.Errorf("claim idempotency key: %w", err)
		}
		if prev != nil {
			switch {
			case prev.Fingerprint != fingerprint:
				return apperr.New(apperr.Invalid, "the %s %q was used for a different request", IdempotencyHeader, r.Header.Get(IdempotencyHeader))
			case !prev.Done:
				return apperr.New(apperr.Conflict, "a request with the %s %q is still in progress; retry later", IdempotencyHeader, r.Header.Get(IdempotencyHeader))
			}
			if secret != nil {
				w.Header().Set("Idempotent-Replayed", "true")
				return secret.replay(w, r, prev.Status, prev.Body)
			}
			contentType := "application/json"
			if prev.Status >= 400 {
				contentType = "application/problem+json"
			}
			w.Header().Set("Content-Type", contentType)
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(prev.Status)
			_, _ = w.Write(prev.Body)
			return nil
		}

		// We hold the claim: run the request, record its response, and in
		// every other case (a 5xx, a panic) release the claim so that a
		// retry is not stuck behind "in progress" for a whole TTL.
		rec := &recorder{ResponseWriter: w}
		finished := false
		defer func() {
			if finished {
				return
			}
			// context.WithoutCancel: the client may be gone, the claim must
			// still be released.
			if err := s.store.ReleaseIdempotency(context.WithoutCancel(r.Context()), p.WorkspaceID, key); err != nil {
				s.log.ErrorContext(r.Context(), "release idempotency key", "request_id", infoFrom(r.Context()).ID, "error", err)
			}
		}()
		if err := next(rec, r); err != nil {
			s.writeError(rec, r, err)
		}
		if rec.status >= 500 || rec.status == http.StatusTooManyRequests {
			return nil
		}
		stored := rec.body.Bytes()
		if secret != nil {
			stored = secret.redact(rec.status, stored)
		}
		if err := s.store.FinishIdempotency(context.WithoutCancel(r.Context()), p.WorkspaceID, key, rec.status, stored); err != nil {
			// The response went out already; the retry will see a claim
			// that was released by the deferred call.
			s.log.ErrorContext(r.Context(), "store idempotent response", "request_id", infoFrom(r.Context()).ID, "error", err)
			return nil
		}
		finished = true
		return nil
	}
}

// idempotencyScope is the stored key of a request's Idempotency-Key: the
// caller's API key id, then the header's value.
func idempotencyScope(keyID, key string) string { return keyID + " " + key }

// requestFingerprint identifies a request for the idempotency check: the
// same key may only be reused for the same method, path and body.
func requestFingerprint(method, path string, body []byte) string {
	sum := sha256.Sum256(body)
	return method + " " + path + " " + hex.EncodeToString(sum[:])
}

func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > maxIdempotencyKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// recorder passes a response through to the client and keeps a copy of its
// status and body for the idempotency store.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
