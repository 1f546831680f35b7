package api

import (
	"context"
	"net/http"

	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

// completeRequest is the optional body of an experiment's complete.
type completeRequest struct {
	// Winner fixes the variant served from now on.
	Winner *string `json:"winner"`
}

// handleTransition serves POST /v1/{resources}/{ref}/{action}: it decodes
// the optional body, finds the object (by byRef) and applies the action
// through its Optimizer, which holds the lifecycle rules (the status
// machine and the webhook events of each transition); J is the object's
// JSON form. Only an experiment's complete takes a body; the other actions
// accept an empty one or {} so that clients that always send a JSON object
// keep working.
func handleTransition[T, J any](s *server, a optimize.Action, byRef func(context.Context, string) (T, error), toJSON func(T) J) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var body completeRequest
		var err error
		if _, isExp := any((*T)(nil)).(*store.Experiment); isExp && a == optimize.ActionComplete {
			err = decodeOptional(r, &body)
		} else {
			err = decodeOptional(r, &struct{}{})
		}
		if err != nil {
			return err
		}
		v, err := byRef(r.Context(), r.PathValue("ref"))
		if err != nil {
			return err
		}
		opt, err := s.optimizerFor(&v)
		if err != nil {
			return err
		}
		if err := opt.Transition(r.Context(), a, body.Winner); err != nil {
			return err
		}
		if f, ok := any(&v).(*store.Funnel); ok {
			// A progress call between the read above and the change may
			// have cached the funnel as it was (experiments have OnChange).
			s.funnelCache.forget(f.ID)
		}
		return respond(w, http.StatusOK, toJSON(v))
	}
}
