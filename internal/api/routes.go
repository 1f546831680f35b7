package api

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

// routes registers every route of the API. It is the one place to look for
// what the server answers and who may call it: s.public routes need no key,
// s.authed routes need a key with at least the given scope (admin > write >
// assign). Writes go through s.idempotent so that they honour an
// Idempotency-Key header.
//
// Every pattern here must be described in openapi.yaml and every path there
// served here; TestOpenAPIMatchesRoutes holds the two together.
func (s *server) routes(reg *prometheus.Registry) {
	s.public("GET /healthz", s.handleHealthz)
	s.public("GET /readyz", s.handleReadyz)
	if !s.opts.NoMetrics {
		s.publicHandler("GET /metrics", MetricsHandler(reg))
	}
	s.public("GET /openapi.json", s.handleOpenAPI)

	s.authed("POST /v1/workspaces", store.ScopeAdmin, s.idempotentWith(s.handleCreateWorkspace, workspaceReplay(s)))

	// Keys (admin). Create skips Idempotency-Key on purpose: replaying it
	// would mean storing the key it shows.
	s.authed("POST /v1/keys", store.ScopeAdmin, s.handleCreateKey)
	s.authed("GET /v1/keys", store.ScopeAdmin, s.handleListKeys)
	s.authed("DELETE /v1/keys/{id}", store.ScopeAdmin, s.handleDeleteKey)

	// CORS preflights of the routes a browser may call with an assign key
	// that allows its origin (cors.go).
	s.public("OPTIONS /v1/experiments/{ref}/assign", s.handlePreflight)
	s.public("OPTIONS /v1/experiments/{ref}/events", s.handlePreflight)
	s.public("OPTIONS /v1/funnels/{ref}/progress", s.handlePreflight)
	s.public("OPTIONS /v1/campaigns/{ref}/events", s.handlePreflight)

	s.authed("POST /v1/experiments", store.ScopeWrite, s.idempotent(s.handleCreateExperiment))
	s.authed("GET /v1/experiments", store.ScopeWrite, s.handleListExperiments)
	s.authed("GET /v1/experiments/{ref}", store.ScopeWrite, s.handleGetExperiment)
	s.authed("POST /v1/experiments/{ref}/start", store.ScopeWrite, s.idempotent(s.handleExperimentTransition(optimize.ActionStart)))
	s.authed("POST /v1/experiments/{ref}/pause", store.ScopeWrite, s.idempotent(s.handleExperimentTransition(optimize.ActionPause)))
	s.authed("POST /v1/experiments/{ref}/resume", store.ScopeWrite, s.idempotent(s.handleExperimentTransition(optimize.ActionResume)))
	s.authed("POST /v1/experiments/{ref}/complete", store.ScopeWrite, s.idempotent(s.handleExperimentTransition(optimize.ActionComplete)))
	s.authed("POST /v1/experiments/{ref}/archive", store.ScopeWrite, s.idempotent(s.handleExperimentTransition(optimize.ActionArchive)))

	// Serving. Assignment and events are what a client app does, so an
	// assign-scoped key may call them; they are idempotent by nature (sticky
	// assignments, per-event idempotency keys), so they skip the
	// Idempotency-Key machinery and its extra writes on the hot path.
	s.authed("POST /v1/experiments/{ref}/assign", store.ScopeAssign, s.handleAssign)
	s.authed("POST /v1/experiments/{ref}/events", store.ScopeAssign, s.handleEvents)
	s.authed("GET /v1/experiments/{ref}/results", store.ScopeWrite, s.handleResults)
	s.authed("GET /v1/experiments/{ref}/timeseries", store.ScopeWrite, s.handleTimeseries)

	// Layers: experiments that exclude each other (an experiment joins one
	// when it is created).
	s.authed("POST /v1/layers", store.ScopeWrite, s.idempotent(s.handleCreateLayer))
	s.authed("GET /v1/layers", store.ScopeWrite, s.handleListLayers)
	s.authed("GET /v1/layers/{ref}", store.ScopeWrite, s.handleGetLayer)

	s.authed("POST /v1/funnels", store.ScopeWrite, s.idempotent(s.handleCreateFunnel))
	s.authed("GET /v1/funnels", store.ScopeWrite, s.handleListFunnels)
	s.authed("GET /v1/funnels/{ref}", store.ScopeWrite, s.handleGetFunnel)
	s.authed("POST /v1/funnels/{ref}/start", store.ScopeWrite, s.idempotent(s.handleFunnelTransition(optimize.ActionStart)))
	s.authed("POST /v1/funnels/{ref}/pause", store.ScopeWrite, s.idempotent(s.handleFunnelTransition(optimize.ActionPause)))
	s.authed("POST /v1/funnels/{ref}/resume", store.ScopeWrite, s.idempotent(s.handleFunnelTransition(optimize.ActionResume)))
	s.authed("POST /v1/funnels/{ref}/complete", store.ScopeWrite, s.idempotent(s.handleFunnelTransition(optimize.ActionComplete)))
	s.authed("POST /v1/funnels/{ref}/progress", store.ScopeAssign, s.handleProgress)
	s.authed("GET /v1/funnels/{ref}/results", store.ScopeWrite, s.handleFunnelResults)

	s.authed("POST /v1/campaigns", store.ScopeWrite, s.idempotent(s.handleCreateCampaign))
	s.authed("GET /v1/campaigns", store.ScopeWrite, s.handleListCampaigns)
	s.authed("GET /v1/campaigns/{ref}", store.ScopeWrite, s.handleGetCampaign)
	s.authed("POST /v1/campaigns/{ref}/start", store.ScopeWrite, s.idempotent(s.handleCampaignTransition(optimize.ActionStart)))
	s.authed("POST /v1/campaigns/{ref}/pause", store.ScopeWrite, s.idempotent(s.handleCampaignTransition(optimize.ActionPause)))
	s.authed("POST /v1/campaigns/{ref}/resume", store.ScopeWrite, s.idempotent(s.handleCampaignTransition(optimize.ActionResume)))
	s.authed("POST /v1/campaigns/{ref}/complete", store.ScopeWrite, s.idempotent(s.handleCampaignTransition(optimize.ActionComplete)))
	s.authed("POST /v1/campaigns/{ref}/sends", store.ScopeWrite, s.handleSends)
	s.authed("POST /v1/campaigns/{ref}/events", store.ScopeAssign, s.handleCampaignEvents)
	s.authed("GET /v1/campaigns/{ref}/results", store.ScopeWrite, s.handleCampaignResults)

	// Webhooks (admin). Create and rotate-secret skip Idempotency-Key on
	// purpose: replaying them would mean storing the secret they show.
	s.authed("POST /v1/webhooks", store.ScopeAdmin, s.handleCreateWebhook)
	s.authed("GET /v1/webhooks", store.ScopeAdmin, s.handleListWebhooks)
	s.authed("GET /v1/webhooks/{id}", store.ScopeAdmin, s.handleGetWebhook)
	s.authed("PATCH /v1/webhooks/{id}", store.ScopeAdmin, s.idempotent(s.handlePatchWebhook))
	s.authed("DELETE /v1/webhooks/{id}", store.ScopeAdmin, s.handleDeleteWebhook)
	s.authed("POST /v1/webhooks/{id}/rotate-secret", store.ScopeAdmin, s.handleRotateWebhookSecret)
	s.authed("POST /v1/webhooks/{id}/test", store.ScopeAdmin, s.idempotent(s.handleTestWebhook))
	s.authed("GET /v1/webhooks/{id}/deliveries", store.ScopeAdmin, s.handleListDeliveries)
	s.authed("POST /v1/webhooks/{id}/deliveries/{did}/retry", store.ScopeAdmin, s.idempotent(s.handleRetryDelivery))

	// Anything else: a problem+json 404, or 405 when another method would
	// match. Not listed in s.patterns: it is not a route of the API.
	s.mux.Handle("/", s.adapt(s.handleNoRoute))
}

// public registers a route that needs no API key.
func (s *server) public(pattern string, h handlerFunc) {
	s.publicHandler(pattern, s.adapt(h))
}

// publicHandler registers a plain http.Handler that needs no API key.
func (s *server) publicHandler(pattern string, h http.Handler) {
	s.patterns = append(s.patterns, pattern)
	s.mux.Handle(pattern, s.labelRoute(pattern, s.limitBody(h)))
}

// authed registers a route that needs a key with at least the scope, and
// rate-limits it per key.
func (s *server) authed(pattern string, need store.Scope, h handlerFunc) {
	s.patterns = append(s.patterns, pattern)
	s.mux.Handle(pattern, s.labelRoute(pattern, s.limitBody(s.adapt(s.authenticate(need, s.rateLimit(h))))))
}
