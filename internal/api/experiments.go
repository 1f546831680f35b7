package api

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/webhook"
)

// experimentJSON is the public shape of an experiment. It is separate from
// store.Experiment so that storage can change without changing the API.
type experimentJSON struct {
	ID          string        `json:"id"`
	Key         string        `json:"key"`
	Name        string        `json:"name"`
	Kind        string        `json:"kind"`
	Metric      string        `json:"metric"`
	Strategy    string        `json:"strategy"`
	Status      string        `json:"status"`
	Variants    []variantJSON `json:"variants"`
	Settings    settingsJSON  `json:"settings"`
	Winner      *string       `json:"winner"`
	WinnerFixed bool          `json:"winner_fixed"`
	CreatedAt   string        `json:"created_at"`
	UpdatedAt   string        `json:"updated_at"`
	StartedAt   *string       `json:"started_at"`
	CompletedAt *string       `json:"completed_at"`
}

type variantJSON struct {
	ID      string          `json:"id"`
	Key     string          `json:"key"`
	Name    string          `json:"name"`
	Control bool            `json:"control"`
	Payload json.RawMessage `json:"payload"`
}

// settingsJSON shows every setting; the optional ones without a default
// (seed, control_share, tau2, epsilon, gamma) are null when not set, which
// means "the strategy's own default".
type settingsJSON struct {
	MinSamples        int      `json:"min_samples"`
	DecisionThreshold float64  `json:"decision_threshold"`
	LossThreshold     float64  `json:"loss_threshold"`
	WeightFloor       float64  `json:"weight_floor"`
	Alpha             float64  `json:"alpha"`
	Traffic           float64  `json:"traffic"`
	Seed              *int64   `json:"seed"`
	ControlShare      *float64 `json:"control_share"`
	AutoComplete      bool     `json:"auto_complete"`
	Tau2              *float64 `json:"tau2"`
	Epsilon           *float64 `json:"epsilon"`
	Gamma             *float64 `json:"gamma"`
	MinEffect         float64  `json:"min_effect"`
}

// timestamp formats t as RFC 3339 in UTC with millisecond precision, the one
// timestamp format of the API.
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func optTimestamp(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := timestamp(*t)
	return &s
}

func toExperimentJSON(e store.Experiment) experimentJSON {
	out := experimentJSON{
		ID: e.ID, Key: e.Key, Name: e.Name, Kind: string(e.Kind), Metric: string(e.Metric),
		Strategy: e.Strategy, Status: string(e.Status),
		Variants: make([]variantJSON, 0, len(e.Variants)),
		Settings: settingsJSON{
			MinSamples: e.Settings.MinSamples, DecisionThreshold: e.Settings.DecisionThreshold,
			LossThreshold: e.Settings.LossThreshold, WeightFloor: e.Settings.WeightFloor,
			Alpha: e.Settings.Alpha, Traffic: e.Settings.Traffic, Seed: e.Settings.Seed,
			ControlShare: e.Settings.ControlShare, AutoComplete: e.Settings.AutoComplete,
			Tau2: e.Settings.Tau2, Epsilon: e.Settings.Epsilon, Gamma: e.Settings.Gamma,
			MinEffect: cmp.Or(e.Settings.MinEffect, engine.DefaultMinEffect),
		},
		WinnerFixed: e.WinnerFixed,
		CreatedAt:   timestamp(e.CreatedAt),
		UpdatedAt:   timestamp(e.UpdatedAt),
		StartedAt:   optTimestamp(e.StartedAt),
		CompletedAt: optTimestamp(e.CompletedAt),
	}
	if e.Winner != "" {
		w := e.Winner
		out.Winner = &w
	}
	variants := slices.Clone(e.Variants)
	slices.SortStableFunc(variants, func(a, b store.Variant) int { return a.Position - b.Position })
	for _, v := range variants {
		payload := v.Payload
		if len(payload) == 0 {
			payload = json.RawMessage("null")
		}
		out.Variants = append(out.Variants, variantJSON{ID: v.ID, Key: v.Key, Name: v.Name, Control: v.Control, Payload: payload})
	}
	return out
}

// experimentByRef finds an experiment of the caller's workspace by id or
// key. Anything else, including another workspace's experiment, is the same
// 404, so that a key cannot even learn that an id exists elsewhere.
func (s *server) experimentByRef(ctx context.Context, ref string) (store.Experiment, error) {
	p := principalFrom(ctx)
	notFound := apperr.New(apperr.NotFound, "no experiment %q in this workspace", ref)
	if !isSlug(ref) { // neither an id nor a key: no need to ask the database
		return store.Experiment{}, notFound
	}
	// The serving routes may use an experiment read less than
	// experimentCacheTTL ago (cache.go); the others always read it.
	cacheable := cachedRoutes[infoFrom(ctx).Route]
	cref := experimentRef{p.WorkspaceID, ref}
	if cacheable {
		if e, ok := s.experimentCache.get(cref); ok {
			return e, nil
		}
	}
	e, err := s.store.GetExperiment(ctx, p.WorkspaceID, ref)
	if apperr.Is(err, apperr.NotFound) {
		return store.Experiment{}, notFound
	}
	if err != nil {
		return store.Experiment{}, fmt.Errorf("get experiment %q: %w", ref, err)
	}
	if e.WorkspaceID != "" && e.WorkspaceID != p.WorkspaceID {
		// Defence in depth: the store scopes by workspace already.
		return store.Experiment{}, notFound
	}
	if cacheable {
		s.experimentCache.put(cref, e, experimentCacheTTL)
	} else {
		// A fresh read refreshes what the serving routes see too, so that
		// results that recorded a winner (or anything read after a change)
		// is not followed by older serving answers on this replica.
		s.experimentCache.forget(e.ID)
	}
	return e, nil
}

// handleCreateExperiment serves POST /v1/experiments.
func (s *server) handleCreateExperiment(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	var body createExperimentRequest
	if err := decode(r, &body); err != nil {
		return err
	}
	variants, settings, err := decodeCreateExperiment(body)
	if err != nil {
		return err
	}
	e, err := buildExperiment(body, variants, settings)
	if err != nil {
		return err
	}
	now := s.now()
	e.ID = id.New(id.Experiment)
	e.WorkspaceID = p.WorkspaceID
	e.CreatedAt, e.UpdatedAt = now, now
	for i := range e.Variants {
		e.Variants[i].ID = id.New(id.Variant)
	}
	var events []store.OutboxEvent
	if body.Start {
		e.Status = store.StatusRunning
		e.StartedAt = &now
		events = append(events, webhook.ExperimentEvent(store.EventExperimentStarted, e, now))
	}
	if err := s.store.CreateExperiment(r.Context(), e, events...); err != nil {
		return createError(err, "an", "experiment", e.Key)
	}
	return respond(w, http.StatusCreated, toExperimentJSON(e))
}

// handleGetExperiment serves GET /v1/experiments/{ref}.
func (s *server) handleGetExperiment(w http.ResponseWriter, r *http.Request) error {
	e, err := s.experimentByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, toExperimentJSON(e))
}

// experimentListJSON is one page of experiments.
type experimentListJSON = pageJSON[experimentJSON]

// handleListExperiments serves GET /v1/experiments. The cursor is opaque to
// clients (base64url of the last id of the page): ids are time-ordered, so
// paging by id is stable while experiments are being created.
func (s *server) handleListExperiments(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	params, want, err := pageParams(r, id.Experiment, statusFilter)
	if err != nil {
		return err
	}
	list, err := s.store.ListExperiments(r.Context(), p.WorkspaceID, params)
	if err != nil {
		return fmt.Errorf("list experiments: %w", err)
	}
	return respond(w, http.StatusOK, page(list, want, func(e store.Experiment) string { return e.ID }, toExperimentJSON))
}

// completeRequest is the optional body of complete.
type completeRequest struct {
	// Winner fixes the variant served from now on.
	Winner *string `json:"winner"`
}

// handleTransition serves POST /v1/experiments/{ref}/{action}.
func (s *server) handleTransition(t transition) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p := principalFrom(r.Context())
		// Only complete takes a body; the others accept an empty one or {}
		// so that clients that always send a JSON object keep working.
		var body completeRequest
		if t.to == store.StatusCompleted {
			if err := decodeOptional(r, &body); err != nil {
				return err
			}
		} else if err := decodeOptional(r, &struct{}{}); err != nil {
			return err
		}
		e, err := s.experimentByRef(r.Context(), r.PathValue("ref"))
		if err != nil {
			return err
		}
		if body.Winner != nil {
			if _, ok := e.VariantByKey(*body.Winner); !ok {
				return apperr.Fields([]apperr.FieldError{{Field: "winner", Reason: "must be the key of one of the experiment's variants"}})
			}
		}
		if !slices.Contains(t.from, e.Status) {
			return wrongStatus(t, e.Status)
		}
		tr := store.Transition{From: t.from, To: t.to, At: s.now()}
		if body.Winner != nil {
			tr.Winner, tr.Fixed = body.Winner, true
		}
		// The webhook event commits with the transition or not at all.
		tr.Events = transitionEvent(t, e, tr)
		updated, err := s.store.TransitionExperiment(r.Context(), p.WorkspaceID, e.ID, tr)
		if apperr.Is(err, apperr.Conflict) {
			// Another request changed the status between our read and
			// write; report the status it left.
			if cur, gerr := s.experimentByRef(r.Context(), e.ID); gerr == nil {
				return wrongStatus(t, cur.Status)
			}
			return err
		}
		if err != nil {
			return fmt.Errorf("%s experiment %s: %w", t.action, e.ID, err)
		}
		// This replica serves the new status from the next request on.
		s.experimentCache.forget(e.ID)
		return respond(w, http.StatusOK, toExperimentJSON(updated))
	}
}

func wrongStatus(t transition, current store.Status) error {
	from := make([]string, len(t.from))
	for i, st := range t.from {
		from[i] = string(st)
	}
	return apperr.New(apperr.Conflict, "cannot %s an experiment that is %s (current status: %s); %s needs status %s",
		t.action, current, current, t.action, joinOr(from))
}

func joinOr(list []string) string {
	switch len(list) {
	case 0:
		return ""
	case 1:
		return list[0]
	}
	out := list[0]
	for _, s := range list[1 : len(list)-1] {
		out += ", " + s
	}
	return out + " or " + list[len(list)-1]
}
