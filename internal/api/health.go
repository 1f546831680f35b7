package api

import (
	"context"
	"net/http"

	"github.com/samplit/samplit/internal/apperr"
)

type statusJSON struct {
	Status string `json:"status"`
}

// handleHealthz serves GET /healthz: the process is alive. It checks
// nothing else, so that an orchestrator does not restart a healthy process
// because its database is down.
func (s *server) handleHealthz(w http.ResponseWriter, r *http.Request) error {
	return respond(w, http.StatusOK, statusJSON{Status: "ok"})
}

// handleReadyz serves GET /readyz: 200 when the database answers within
// Options.ReadyTimeout, else 503 so that a load balancer sends traffic
// elsewhere.
func (s *server) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ReadyTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.WarnContext(r.Context(), "readiness check failed", "request_id", infoFrom(r.Context()).ID, "error", err)
		return apperr.New(apperr.Unavailable, "the database is not reachable")
	}
	return respond(w, http.StatusOK, statusJSON{Status: "ok"})
}
