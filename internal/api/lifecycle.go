package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/store"
)

// transition is one lifecycle action: the statuses it starts from and the
// one it leads to.
type transition struct {
	action string
	from   []store.Status
	to     store.Status
}

// The lifecycle: draft → running ⇄ paused → completed, and archived from any
// status that is not running (pause or complete a running one first, so
// that archiving never silently stops traffic).
var (
	transitionStart    = transition{"start", []store.Status{store.StatusDraft}, store.StatusRunning}
	transitionPause    = transition{"pause", []store.Status{store.StatusRunning}, store.StatusPaused}
	transitionResume   = transition{"resume", []store.Status{store.StatusPaused}, store.StatusRunning}
	transitionComplete = transition{"complete", []store.Status{store.StatusRunning, store.StatusPaused}, store.StatusCompleted}
	transitionArchive  = transition{"archive", []store.Status{store.StatusDraft, store.StatusPaused, store.StatusCompleted}, store.StatusArchived}
)

// lifecycleOf is what handleLifecycle needs of a kind of resource (funnel,
// campaign) whose lifecycle actions take no body and write no event: T is
// its stored form and J its JSON form.
type lifecycleOf[T, J any] struct {
	noun  string // in messages: "funnel"
	byRef func(ctx context.Context, ref string) (T, error)
	state func(T) (id string, status store.Status)
	apply func(ctx context.Context, workspaceID, id string, t store.Transition) (T, error)
	json  func(T) J
}

// handleLifecycle serves POST /v1/{resources}/{ref}/{action} for the
// transition t: the experiments' lifecycle, without a winner to fix. An
// empty body or {} is accepted.
func handleLifecycle[T, J any](s *server, t transition, l lifecycleOf[T, J]) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p := principalFrom(r.Context())
		if err := decodeOptional(r, &struct{}{}); err != nil {
			return err
		}
		v, err := l.byRef(r.Context(), r.PathValue("ref"))
		if err != nil {
			return err
		}
		vid, status := l.state(v)
		wrong := func(cur store.Status) error {
			return apperr.New(apperr.Conflict, "cannot %s a %s that is %s", t.action, l.noun, cur)
		}
		if !slices.Contains(t.from, status) {
			return wrong(status)
		}
		updated, err := l.apply(r.Context(), p.WorkspaceID, vid, store.Transition{From: t.from, To: t.to, At: s.now()})
		if apperr.Is(err, apperr.Conflict) {
			// Another request changed the status between our read and
			// write; report the status it left.
			if cur, gerr := l.byRef(r.Context(), vid); gerr == nil {
				_, st := l.state(cur)
				return wrong(st)
			}
			return err
		}
		if err != nil {
			return fmt.Errorf("%s %s %s: %w", t.action, l.noun, vid, err)
		}
		return respond(w, http.StatusOK, l.json(updated))
	}
}
