// Package api is Samplit's public HTTP API: the handlers of every /v1 route,
// the middleware around them (request ids, access logs, panic recovery, body
// limits, authentication, rate limits, metrics), RFC 9457 problem+json
// errors, and the OpenAPI document that describes it all.
//
// NewServer returns a plain http.Handler; the caller (cmd/samplit) owns the
// http.Server, its timeouts and graceful shutdown. Every route is listed in
// routes.go. Handlers return an error instead of writing one, and exactly
// one function (writeError in problem.go) turns errors into responses.
//
// Handler helpers meant for every endpoint, including the serving endpoints
// of later issues: decode (strict JSON bodies), respond (JSON responses),
// principalFrom (the authenticated key), s.experimentByRef (lookup by id or
// key inside the caller's workspace, a 404 for anything else), fieldErrors
// (collect every invalid field, then a 422) and s.idempotent (the
// Idempotency-Key header). A route open to assign-scoped keys is one line in
// routes.go: s.authed("POST /v1/experiments/{ref}/assign", store.ScopeAssign, ...).
package api

import (
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/samplit/samplit/internal/apikey"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/webhook"
)

// Options tunes the server. The zero value of each field means its default.
type Options struct {
	// MaxBodyBytes caps every request body; a larger body is refused with
	// 413. Default 1 MiB.
	MaxBodyBytes int64
	// RateLimit is the sustained number of requests per second one API key
	// may make (0 or less: no limit), and RateBurst how many it may make at
	// once above that (default: twice the rate, at least 1). The buckets are
	// kept in memory per replica: with N replicas behind a load balancer a
	// key may make up to N times as many requests.
	RateLimit float64
	RateBurst int
	// HandlerTimeout bounds the time one request may spend in its handler
	// (through its context, so database calls give up). Default 30 s.
	HandlerTimeout time.Duration
	// ReadyTimeout bounds the database ping of /readyz. Default 2 s.
	ReadyTimeout time.Duration
	// IdempotencyTTL is how long an Idempotency-Key is remembered. Default
	// 24 h; a key reused after that runs the request again.
	IdempotencyTTL time.Duration
	// AuthFailLimit is how many failed authentications (unknown, revoked
	// or malformed keys) one client address may make per minute on this
	// replica; beyond it the address is answered 429 with Retry-After
	// until a failure is allowed again, without its key being looked up.
	// A key verified recently (in the key cache) still passes. 0 or less:
	// no limit.
	AuthFailLimit int
	// NoMetrics leaves /metrics out of this handler (a 404 here), for a
	// server that serves it on an address of its own (--metrics-addr):
	// MetricsHandler serves the same registry there.
	NoMetrics bool
}

// The defaults of Options.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultHandlerTimeout = 30 * time.Second
	DefaultReadyTimeout   = 2 * time.Second
	DefaultIdempotencyTTL = 24 * time.Hour
)

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.RateLimit > 0 && o.RateBurst <= 0 {
		o.RateBurst = max(1, int(math.Ceil(2*o.RateLimit)))
	}
	if o.HandlerTimeout <= 0 {
		o.HandlerTimeout = DefaultHandlerTimeout
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	if o.IdempotencyTTL <= 0 {
		o.IdempotencyTTL = DefaultIdempotencyTTL
	}
	return o
}

// server holds the dependencies every handler shares.
type server struct {
	store      store.Store
	optimizers *optimize.Services
	webhooks   *webhook.Service
	log        *slog.Logger
	now        func() time.Time
	opts       Options
	metrics    *metrics
	mux        *http.ServeMux
	handler    http.Handler // mux wrapped in the middleware of every request
	// patterns lists every registered route pattern in registration order,
	// for the test that holds the routes and the OpenAPI document together.
	patterns []string

	limitersMu sync.Mutex
	limiters   map[string]*rate.Limiter // by key id
	authFails  *apikey.FailLimiter      // nil: no limit

	// Short-lived caches of the serving hot path (cache.go).
	keyCache        keyCache
	experimentCache experimentCache
	funnelCache     funnelCache
}

// Deps are what the server needs from the rest of the program. Later issues
// add the optimizer services here.
type Deps struct {
	// Store is the database; required.
	Store store.Store
	// Optimizers serve assignments, events, results and lifecycle changes
	// of experiments, funnels and campaigns (optimize.Services.For);
	// required for the experiment routes. A nil Funnels or Campaigns
	// answers those routes with 503.
	Optimizers *optimize.Services
	// Webhooks registers webhook endpoints (URL checks, sealed secrets);
	// nil answers the webhook writes with 503.
	Webhooks *webhook.Service
	// Logger receives the access log and the details of internal errors;
	// nil discards them.
	Logger *slog.Logger
	// Now is the clock: time.Now in production (the default), a fixed clock
	// in tests.
	Now func() time.Time
	// Registry is the Prometheus registry the HTTP metrics are registered
	// on and /metrics serves (a new one when nil). Several servers may
	// share one registry: the second reuses the first one's collectors.
	Registry *prometheus.Registry
}

// NewServer returns the HTTP handler of the whole API. The caller owns the
// http.Server (timeouts, graceful shutdown) and the store.
func NewServer(deps Deps, opts Options) http.Handler {
	return newServer(deps, opts)
}

func newServer(deps Deps, opts Options) *server {
	st, logger, now, reg := deps.Store, deps.Logger, deps.Now, deps.Registry
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &server{
		store:      st,
		optimizers: deps.Optimizers,
		webhooks:   deps.Webhooks,
		log:        logger,
		now:        func() time.Time { return now().UTC() },
		opts:       opts.withDefaults(),
		metrics:    newMetrics(reg),
		mux:        http.NewServeMux(),
		limiters:   map[string]*rate.Limiter{},
	}
	s.authFails = apikey.NewFailLimiter(s.opts.AuthFailLimit, now)
	if deps.Optimizers != nil && deps.Optimizers.Experiments != nil {
		// A change made through this replica, by the API or the dashboard,
		// is served from the next request on (cache.go).
		deps.Optimizers.Experiments.OnChange(s.experimentCache.forget)
	}
	s.routes(reg)
	// The middleware every request goes through, matched or not, innermost
	// first (the per-route middleware is in routes.go). The order matters:
	// the request id comes first so that all after it can log it; recovery
	// sits inside the access log and metrics so that a panic is logged and
	// counted as the 500 it became.
	h := http.Handler(s.mux)
	h = s.recoverPanics(h)
	h = s.observe(h)
	h = s.requestID(h)
	s.handler = h
	return s
}

// MetricsHandler serves reg in the Prometheus text format: what /metrics
// answers, for a listener of its own.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// ServeHTTP serves one request.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }
