package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/samplit/samplit/internal/apikey"
	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

// handlerFunc is the shape of every handler: it writes a success response
// itself and returns any failure, which s.adapt turns into problem+json. A
// handler must not return an error after it started writing.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// adapt turns a handlerFunc into an http.Handler: the one place where a
// returned error becomes a response.
func (s *server) adapt(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// requestInfo travels in the request context from the outermost middleware
// down; inner layers fill it in (the route once matched, the workspace once
// authenticated) so that the access log and metrics, which run outermost,
// can report them.
type requestInfo struct {
	ID          string
	Route       string // the mux pattern, never the raw path
	WorkspaceID string
	KeyID       string
	// principal is set by authenticate (authed says so). Kept here rather
	// than in a context value of its own: that cost a context and a copy of
	// the request per call.
	principal principal
	authed    bool
	// sw is observe's view of the response, kept here so that the request
	// allocates one object for both.
	sw statusWriter
}

type requestInfoKey struct{}

// infoFrom returns the request's info; a detached one when there is none
// (a handler called directly in a test), so callers need no nil checks.
func infoFrom(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// requestID gives every request an id: a sane incoming X-Request-Id (so a
// proxy's id can be followed across services) or a new one. It is echoed in
// the response header, the access log and every problem. It also starts
// the request's deadline (HandlerTimeout).
func (s *server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rid := r.Header.Get("X-Request-Id")
		if !validRequestID(rid) {
			rid = id.NewRequest()
		}
		w.Header()["X-Request-Id"] = []string{rid}
		// The handler may run at most HandlerTimeout; database calls obey
		// the context and give up after it. Set here, with the request's
		// info, so that the request is copied once (WithContext) for both.
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.HandlerTimeout)
		defer cancel()
		ctx = context.WithValue(ctx, requestInfoKey{}, &requestInfo{ID: rid})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// validRequestID accepts 1 to 128 characters of a conservative set, so that
// an incoming id cannot inject anything into logs or headers.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.:", c) >= 0) {
			return false
		}
	}
	return true
}

// statusWriter remembers the status and size of a response for logs and
// metrics. Unwrap lets http.ResponseController reach the real writer.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe writes the access log line and the HTTP metrics of every request.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now() // wall time for latency, not the injected clock
		ri := infoFrom(r.Context())
		sw := &ri.sw
		sw.ResponseWriter = w
		next.ServeHTTP(sw, r)
		elapsed := time.Since(start)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		route := ri.Route
		if route == "" {
			route = "unmatched" // bounded label: never the raw path
		}
		c := s.metrics.of(route, r.Method, sw.status)
		c.requests.Inc()
		c.duration.Observe(elapsed.Seconds())

		level := slog.LevelInfo
		if sw.status >= 500 {
			level = slog.LevelError
		}
		if !s.log.Enabled(r.Context(), level) {
			return // the attributes below escape to the heap even when dropped
		}
		s.log.LogAttrs(r.Context(), level, "request",
			slog.String("request_id", ri.ID),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", route),
			slog.Int("status", sw.status),
			slog.Int64("bytes", sw.bytes),
			slog.Duration("duration", elapsed),
			slog.String("workspace_id", ri.WorkspaceID),
			slog.String("key_id", ri.KeyID),
			slog.String("remote", r.RemoteAddr),
		)
	})
}

// recoverPanics turns a panic into a 500 problem and logs the stack, so that
// a bug in one handler costs one request, not the process, and the client
// never sees the stack.
func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v) // the server's way to abort a response on purpose
			}
			s.log.ErrorContext(r.Context(), "panic serving request",
				"request_id", infoFrom(r.Context()).ID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			// If the handler had started its response the status cannot
			// change any more; the client sees a truncated body.
			s.writeError(w, r, fmt.Errorf("panic: %v", v))
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody caps the request body of a route at MaxBodyBytes; decode and
// the idempotency layer turn the resulting *http.MaxBytesError into a 413.
// A declared Content-Length over the cap is refused before reading.
// Unmatched paths never read their body. (The handler's time is bounded by
// requestID, for every request.)
func (s *server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.opts.MaxBodyBytes {
			s.writeError(w, r, errTooLarge(s.opts.MaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

func errTooLarge(limit int64) error {
	return apperr.New(apperr.TooLarge, "the request body is larger than %d bytes", limit)
}

// labelRoute records the matched pattern for the access log and metrics.
func (s *server) labelRoute(pattern string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		infoFrom(r.Context()).Route = pattern
		next.ServeHTTP(w, r)
	})
}

// principal is who is calling: the authenticated key and its workspace.
type principal struct {
	WorkspaceID string
	KeyID       string
	Scope       store.Scope
}

type principalKey struct{}

// principalFrom returns the caller of an authenticated route. It panics on
// a route registered without s.authed: that is a programming error, and the
// panic (a 500) is safer than serving a request without a workspace.
func principalFrom(ctx context.Context) principal {
	if ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok && ri.authed {
		return ri.principal
	}
	p, ok := ctx.Value(principalKey{}).(principal)
	if !ok {
		panic("api: principalFrom on a route without authentication")
	}
	return p
}

// authenticate checks the Bearer key and its scope. Missing, malformed,
// unknown and revoked keys are 401 (with WWW-Authenticate, see writeError);
// a valid key without the scope is 403.
func (s *server) authenticate(need store.Scope, next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
		if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return apperr.New(apperr.Unauthorized, "send an API key as Authorization: Bearer <key>")
		}
		token = strings.TrimSpace(token)
		// A key verified less than keyCacheTTL ago is trusted again without
		// the database (cache.go says what that means for revocation).
		sum := sha256.Sum256([]byte(token))
		k, err := s.keyCache.load(r.Context(), sum, keyCacheTTL, func(ctx context.Context) (store.APIKey, error) {
			// An address that failed too often is refused before its key
			// costs a lookup. A cached key is served without this check;
			// only the caller that refreshes it comes here, and a refusal
			// then drops the entry, as any failed refresh does.
			addr := apikey.ClientAddr(r)
			if wait, blocked := s.authFails.Blocked(addr); blocked {
				w.Header().Set("Retry-After", apikey.RetryAfter(wait))
				return store.APIKey{}, apperr.New(apperr.RateLimited, "too many failed authentications from this address; retry later")
			}
			k, err := apikey.Verify(ctx, s.store, token)
			if apperr.Is(err, apperr.Unauthorized) {
				s.authFails.Failed(addr)
			}
			return k, err
		})
		if err != nil {
			return err
		}
		ri := infoFrom(r.Context())
		ri.WorkspaceID, ri.KeyID = k.WorkspaceID, k.ID
		if err := allowBrowser(w, r, k); err != nil {
			return err
		}
		if !k.Scope.Allows(need) {
			return apperr.New(apperr.Forbidden, "this API key has the scope %q; this call needs %q", k.Scope, need)
		}
		p := principal{WorkspaceID: k.WorkspaceID, KeyID: k.ID, Scope: k.Scope}
		if ri, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
			ri.principal, ri.authed = p, true
			return next(w, r)
		}
		return next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}

// rateLimit applies the per-key token bucket. The buckets live in this
// process only (per replica, see Options.RateLimit); there is one per key
// that has authenticated, so memory is bounded by the number of keys.
func (s *server) rateLimit(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.opts.RateLimit <= 0 {
			return next(w, r)
		}
		p := principalFrom(r.Context())
		s.limitersMu.Lock()
		lim, ok := s.limiters[p.KeyID]
		if !ok {
			lim = rate.NewLimiter(rate.Limit(s.opts.RateLimit), s.opts.RateBurst)
			s.limiters[p.KeyID] = lim
		}
		s.limitersMu.Unlock()
		if !lim.Allow() {
			// One token comes back every 1/rate seconds.
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(1/s.opts.RateLimit)))))
			return apperr.New(apperr.RateLimited, "too many requests for this API key; retry later")
		}
		return next(w, r)
	}
}

// metrics are the HTTP metrics. Labels use the mux pattern as the route and
// one of a fixed set of methods, so that their number stays bounded
// whatever paths and methods clients send.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// series caches the series of each (route, method, status): looking
	// them up in the vectors hashed the label values and formatted the
	// status on every request.
	series sync.Map // seriesKey -> *series
}

type seriesKey struct {
	route, method string
	status        int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// of returns the series of one request's labels. Every label is bounded
// (the route is a pattern or "unmatched", the method is methodLabel's, the
// status one the handlers write), and so is the cache.
func (m *metrics) of(route, method string, status int) *series {
	k := seriesKey{route, methodLabel(method), status}
	if c, ok := m.series.Load(k); ok {
		return c.(*series)
	}
	c, _ := m.series.LoadOrStore(k, &series{
		requests: m.requests.WithLabelValues(k.route, k.method, strconv.Itoa(status)),
		duration: m.duration.WithLabelValues(k.route),
	})
	return c.(*series)
}

// methodLabel is the method as a label: one the routes use, or "other".
// net/http accepts any token as a method, and without this each new one a
// client sent (to any path, before authentication) was a series kept for
// the life of the process.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samplit_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "samplit_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	m.requests = register(reg, m.requests)
	m.duration = register(reg, m.duration)
	return m
}

// register registers c, or returns the collector already registered under
// its name, so that several servers (tests, or one per listener) can share a
// registry.
func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("api: register metrics: %v", err))
	}
	return c
}
