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
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/targeting"
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
	Metrics     []metricJSON  `json:"metrics"`
	Settings    settingsJSON  `json:"settings"`
	Winner      *string       `json:"winner"`
	WinnerFixed bool          `json:"winner_fixed"`
	CreatedAt   string        `json:"created_at"`
	UpdatedAt   string        `json:"updated_at"`
	StartedAt   *string       `json:"started_at"`
	CompletedAt *string       `json:"completed_at"`
	// Targeting is null when every unit may enter.
	Targeting *targeting.Rules `json:"targeting"`
	// Layer is the layer's key (null when in none), LayerRange the part
	// [from, to) of the layer's units the experiment holds (null once it
	// is completed or archived and has left the layer).
	Layer      *string     `json:"layer"`
	LayerShare *float64    `json:"layer_share"`
	LayerRange *[2]float64 `json:"layer_range"`
}

// metricJSON is one of an experiment's other metrics.
type metricJSON struct {
	Key            string   `json:"key"`
	Type           string   `json:"type"`
	Role           string   `json:"role"`
	Direction      string   `json:"direction"`
	MaxDegradation *float64 `json:"max_degradation"`
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
	// ConversionWindow is null when the experiment has none.
	ConversionWindow *string `json:"conversion_window"`
	// PriorLiftSD is null when the experiment has no prior on lifts.
	PriorLiftSD *float64 `json:"prior_lift_sd"`
	// LearnPrior says whether, without prior_lift_sd, a winner must also
	// convince the prior learned from the workspace's completed
	// experiments.
	LearnPrior bool `json:"learn_prior"`
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
			MinEffect:  cmp.Or(e.Settings.MinEffect, engine.DefaultMinEffect),
			LearnPrior: e.Settings.LearnsPrior(),
		},
		WinnerFixed: e.WinnerFixed,
		CreatedAt:   timestamp(e.CreatedAt),
		UpdatedAt:   timestamp(e.UpdatedAt),
		StartedAt:   optTimestamp(e.StartedAt),
		CompletedAt: optTimestamp(e.CompletedAt),
	}
	if w := e.Settings.ConversionWindow; w > 0 {
		cw := formatDays(w)
		out.Settings.ConversionWindow = &cw
	}
	if e.Winner != "" {
		w := e.Winner
		out.Winner = &w
	}
	out.Targeting = e.Targeting
	if e.LayerID != "" {
		l, share := e.LayerKey, e.LayerShare
		out.Layer, out.LayerShare = &l, &share
		if e.Status != store.StatusCompleted && e.Status != store.StatusArchived {
			out.LayerRange = &[2]float64{float64(e.LayerFrom) / store.LayerSlots, float64(e.LayerTo) / store.LayerSlots}
		}
	}
	out.Metrics = make([]metricJSON, 0, len(e.Metrics))
	for _, m := range e.Metrics {
		mj := metricJSON{Key: m.Key, Type: string(m.Type), Role: m.Role, Direction: m.Direction}
		if m.Role == store.RoleGuardrail {
			d := m.MaxDegradation
			mj.MaxDegradation = &d
		}
		out.Metrics = append(out.Metrics, mj)
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
	if sd := e.Settings.PriorLiftSD; sd > 0 {
		out.Settings.PriorLiftSD = &sd
	}
	return out
}

// experimentByRef finds an experiment of the caller's workspace by id or
// key. Anything else, including another workspace's experiment, is the same
// 404, so that a key cannot even learn that an id exists elsewhere.
func (s *server) experimentByRef(ctx context.Context, ref string) (store.Experiment, error) {
	p := principalFrom(ctx)
	// Made only when it is the answer: formatting it for every request was
	// two allocations of the assign route's few dozen.
	notFound := func() error { return apperr.New(apperr.NotFound, "no experiment %q in this workspace", ref) }
	if !isSlug(ref) { // neither an id nor a key: no need to ask the database
		return store.Experiment{}, notFound()
	}
	// The serving routes may use an experiment read less than
	// experimentCacheTTL ago (cache.go); the others always read it.
	if cachedRoutes[infoFrom(ctx).Route] {
		return s.experimentCache.load(ctx, experimentRef{p.WorkspaceID, ref}, experimentCacheTTL, func(ctx context.Context) (store.Experiment, error) {
			return s.readExperiment(ctx, p.WorkspaceID, ref, notFound)
		})
	}
	e, err := s.readExperiment(ctx, p.WorkspaceID, ref, notFound)
	if err == nil {
		// A fresh read refreshes what the serving routes see too, so that
		// results that recorded a winner (or anything read after a change)
		// is not followed by older serving answers on this replica.
		s.experimentCache.forget(e.ID)
	}
	return e, err
}

// readExperiment reads the experiment ref of workspace ws from the database.
func (s *server) readExperiment(ctx context.Context, ws, ref string, notFound func() error) (store.Experiment, error) {
	e, err := s.store.GetExperiment(ctx, ws, ref)
	if apperr.Is(err, apperr.NotFound) {
		return store.Experiment{}, notFound()
	}
	if err != nil {
		return store.Experiment{}, fmt.Errorf("get experiment %q: %w", ref, err)
	}
	if e.WorkspaceID != "" && e.WorkspaceID != ws {
		// Defence in depth: the store scopes by workspace already.
		return store.Experiment{}, notFound()
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
	if s.optimizers == nil || s.optimizers.Experiments == nil {
		return apperr.New(apperr.Unavailable, "experiments are not served by this server")
	}
	e, err := s.optimizers.Experiments.Create(r.Context(), p.WorkspaceID, specOf(body, variants, settings))
	if err != nil {
		return err
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

// handleExperimentTransition serves POST /v1/experiments/{ref}/{action}:
// the lifecycle of optimize; complete may fix a winner.
func (s *server) handleExperimentTransition(a optimize.Action) handlerFunc {
	return handleTransition(s, a, s.experimentByRef, toExperimentJSON)
}
