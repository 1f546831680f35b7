package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

// Limits and defaults of funnels.
const (
	MinFunnelSteps = 2
	MaxFunnelSteps = 20
	// DefaultFunnelStrategy is the end-to-end strategy, the point of funnels.
	DefaultFunnelStrategy = engine.MultiStep
	// DefaultAttributionWindow is how long after reaching a step a unit may
	// complete the funnel and count as a conversion of it.
	DefaultAttributionWindow = 7 * 24 * time.Hour
	maxAttributionWindow     = 365 * 24 * time.Hour
	// windowSlots is the number of reach-time buckets per attribution
	// window: the open-unit count is exact to within one bucket, 1/168 of
	// the window (an hour of a week).
	windowSlots = 168
	// stepIDPrefix prefixes the ids of funnel steps.
	stepIDPrefix = "stp"
)

type funnelJSON struct {
	ID          string             `json:"id"`
	Key         string             `json:"key"`
	Name        string             `json:"name"`
	Strategy    string             `json:"strategy"`
	Status      string             `json:"status"`
	Steps       []funnelStepJSON   `json:"steps"`
	Settings    funnelSettingsJSON `json:"settings"`
	CreatedAt   string             `json:"created_at"`
	UpdatedAt   string             `json:"updated_at"`
	StartedAt   *string            `json:"started_at"`
	CompletedAt *string            `json:"completed_at"`
}

type funnelStepJSON struct {
	ID       string        `json:"id"`
	Key      string        `json:"key"`
	Name     string        `json:"name"`
	Goal     bool          `json:"goal"`
	Variants []variantJSON `json:"variants"`
	Winner   *string       `json:"winner"`
	// NoDifferenceAt: when the step's no_difference was recorded, else null.
	NoDifferenceAt *string `json:"no_difference_at"`
}

type funnelSettingsJSON struct {
	MinSamples               int     `json:"min_samples"`
	DecisionThreshold        float64 `json:"decision_threshold"`
	LossThreshold            float64 `json:"loss_threshold"`
	WeightFloor              float64 `json:"weight_floor"`
	Seed                     *int64  `json:"seed"`
	AttributionWindowSeconds int64   `json:"attribution_window_seconds"`
	ConversionWindow         string  `json:"conversion_window"`
	Alpha                    float64 `json:"alpha"`
	MinEffect                float64 `json:"min_effect"`
	// PriorLiftSD is null when the funnel has no prior on lifts.
	PriorLiftSD *float64 `json:"prior_lift_sd"`
}

func toFunnelJSON(f store.Funnel) funnelJSON {
	out := funnelJSON{
		ID: f.ID, Key: f.Key, Name: f.Name, Strategy: f.Strategy, Status: string(f.Status),
		Steps: make([]funnelStepJSON, 0, len(f.Steps)),
		Settings: funnelSettingsJSON{
			MinSamples: f.Settings.MinSamples, DecisionThreshold: f.Settings.DecisionThreshold,
			LossThreshold: f.Settings.LossThreshold, WeightFloor: f.Settings.WeightFloor, Seed: f.Settings.Seed,
			AttributionWindowSeconds: int64(f.Settings.AttributionWindow / time.Second),
			ConversionWindow:         formatDays(f.Settings.AttributionWindow),
			Alpha:                    cmp.Or(f.Settings.Alpha, engine.DefaultAlpha),
			MinEffect:                cmp.Or(f.Settings.MinEffect, engine.DefaultMinEffect),
		},
		CreatedAt: timestamp(f.CreatedAt), UpdatedAt: timestamp(f.UpdatedAt),
		StartedAt: optTimestamp(f.StartedAt), CompletedAt: optTimestamp(f.CompletedAt),
	}
	if sd := f.Settings.PriorLiftSD; sd > 0 {
		out.Settings.PriorLiftSD = &sd
	}
	for i, st := range f.Steps {
		// The variants' JSON is the experiments' (ids, keys, payloads).
		vs := toExperimentJSON(store.Experiment{Variants: st.Variants}).Variants
		sj := funnelStepJSON{ID: st.ID, Key: st.Key, Name: st.Name, Goal: i == len(f.Steps)-1, Variants: vs,
			NoDifferenceAt: optTimestamp(st.NoDifferenceAt)}
		if st.Winner != "" {
			w := st.Winner
			sj.Winner = &w
		}
		out.Steps = append(out.Steps, sj)
	}
	return out
}

type createFunnelRequest struct {
	Key      string            `json:"key"`
	Name     string            `json:"name"`
	Strategy string            `json:"strategy"`
	Steps    []json.RawMessage `json:"steps"`
	Settings json.RawMessage   `json:"settings"`
	Start    bool              `json:"start"`
}

type funnelStepRequest struct {
	Key      string            `json:"key"`
	Name     string            `json:"name"`
	Variants []json.RawMessage `json:"variants"`
}

type funnelSettingsRequest struct {
	MinSamples               *int64   `json:"min_samples"`
	DecisionThreshold        *float64 `json:"decision_threshold"`
	LossThreshold            *float64 `json:"loss_threshold"`
	WeightFloor              *float64 `json:"weight_floor"`
	Seed                     *int64   `json:"seed"`
	AttributionWindowSeconds *int64   `json:"attribution_window_seconds"`
	// ConversionWindow is the same window as a Go duration or days ("7d"),
	// the name experiments use for it.
	ConversionWindow *string  `json:"conversion_window"`
	Alpha            *float64 `json:"alpha"`
	MinEffect        *float64 `json:"min_effect"`
	PriorLiftSD      *float64 `json:"prior_lift_sd"`
}

// buildFunnel decodes and validates the body of POST /v1/funnels and
// returns the funnel to store (without ids and times). A step's variants
// are validated by the experiments' own rules (buildExperiment), so that a
// variant means the same everywhere; its field errors are renamed below
// steps[i].
func buildFunnel(body createFunnelRequest) (store.Funnel, error) {
	var fe fieldErrors
	checkSlug(&fe, "key", body.Key)
	if id.HasPrefix(body.Key, id.Funnel) {
		fe.add("key", "must not look like a funnel id")
	}
	f := store.Funnel{Key: body.Key, Name: body.Name, Strategy: body.Strategy, Status: store.StatusDraft}
	if f.Name == "" {
		f.Name = body.Key
	} else {
		checkText(&fe, "name", f.Name, MaxNameLen)
	}
	if f.Strategy == "" {
		f.Strategy = DefaultFunnelStrategy
	} else if !slices.Contains(engine.FunnelStrategies(), f.Strategy) {
		fe.add("strategy", "must be one of %s", strings.Join(engine.FunnelStrategies(), ", "))
	}
	if len(body.Steps) < MinFunnelSteps || len(body.Steps) > MaxFunnelSteps {
		fe.add("steps", "must hold between %d and %d steps, not %d", MinFunnelSteps, MaxFunnelSteps, len(body.Steps))
	}
	seen := map[string]int{}
	withVariants, widest := 0, 0
	for i, raw := range body.Steps {
		field := fmt.Sprintf("steps[%d]", i)
		var sr funnelStepRequest
		if err := decodeField(raw, &sr, field); err != nil {
			return f, err
		}
		checkSlug(&fe, field+".key", sr.Key)
		if j, dup := seen[sr.Key]; dup && sr.Key != "" {
			fe.add(field+".key", "duplicates steps[%d].key %q", j, sr.Key)
		} else {
			seen[sr.Key] = i
		}
		st := store.FunnelStep{Key: sr.Key, Name: sr.Name, Position: i}
		if st.Name == "" {
			st.Name = sr.Key
		} else {
			checkText(&fe, field+".name", st.Name, MaxNameLen)
		}
		if len(sr.Variants) > 0 {
			if i == len(body.Steps)-1 {
				fe.add(field+".variants", "must be empty: the last step is the goal, and every unit that reaches it converts whatever it sees")
			}
			variants := make([]variantRequest, len(sr.Variants))
			for j, rv := range sr.Variants {
				if err := decodeField(rv, &variants[j], fmt.Sprintf("%s.variants[%d]", field, j)); err != nil {
					return f, err
				}
			}
			e, err := buildExperiment(createExperimentRequest{Key: "step", Variants: sr.Variants}, variants, settingsRequest{})
			var ae *apperr.Error
			if errors.As(err, &ae) {
				for _, x := range ae.Fields {
					fe = append(fe, apperr.FieldError{Field: field + "." + x.Field, Reason: x.Reason})
				}
			} else if err != nil {
				return f, err
			}
			st.Variants = e.Variants
			withVariants++
			widest = max(widest, len(variants))
		}
		f.Steps = append(f.Steps, st)
	}
	if len(body.Steps) >= MinFunnelSteps && withVariants == 0 {
		fe.add("steps", "at least one step must carry two or more variants")
	}
	var sr funnelSettingsRequest
	if len(body.Settings) > 0 {
		if err := decodeField(body.Settings, &sr, "settings"); err != nil {
			return f, err
		}
	}
	// The decision settings are the experiments', validated the same way.
	// Every step runs Thompson sampling, so the weight floor defaults as
	// for the experiments' adaptive strategies: a step's winner is judged
	// by its units weighted by their propensities, which must stay away
	// from 0 (docs/funnels.md, "Winners").
	if sr.WeightFloor == nil {
		f := engine.DefaultAdaptiveWeightFloor
		if f*float64(max(widest, MinVariants)) >= 1 {
			f = 0
		}
		sr.WeightFloor = &f
	}
	s := buildSettings(&fe, settingsRequest{
		MinSamples: sr.MinSamples, DecisionThreshold: sr.DecisionThreshold,
		LossThreshold: sr.LossThreshold, WeightFloor: sr.WeightFloor, Seed: sr.Seed,
		Alpha: sr.Alpha, MinEffect: sr.MinEffect, PriorLiftSD: sr.PriorLiftSD,
	}, max(widest, MinVariants))
	f.Settings = store.FunnelSettings{
		MinSamples: s.MinSamples, DecisionThreshold: s.DecisionThreshold, LossThreshold: s.LossThreshold,
		WeightFloor: s.WeightFloor, Seed: s.Seed, AttributionWindow: DefaultAttributionWindow,
		Alpha: s.Alpha, MinEffect: s.MinEffect, PriorLiftSD: s.PriorLiftSD,
	}
	if v := sr.AttributionWindowSeconds; v != nil {
		if *v < 1 || time.Duration(*v)*time.Second > maxAttributionWindow {
			fe.add("settings.attribution_window_seconds", "must be an integer from 1 to %d (a year)", int64(maxAttributionWindow/time.Second))
		} else {
			f.Settings.AttributionWindow = time.Duration(*v) * time.Second
		}
	}
	if v := sr.ConversionWindow; v != nil {
		d, err := parseDays(*v)
		switch {
		case err != nil || d < time.Second || d > maxAttributionWindow:
			fe.add("settings.conversion_window", "must be a duration such as \"24h\" or \"7d\", from 1s to 365d")
		case sr.AttributionWindowSeconds != nil && time.Duration(*sr.AttributionWindowSeconds)*time.Second != d:
			fe.add("settings.conversion_window", "names the same window as attribution_window_seconds, with another value; give one of them")
		default:
			f.Settings.AttributionWindow = d
		}
	}
	f.Settings.BucketWidth = min(max(f.Settings.AttributionWindow/windowSlots, time.Second), time.Hour)
	return f, fe.err()
}

// handleCreateFunnel serves POST /v1/funnels.
func (s *server) handleCreateFunnel(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	var body createFunnelRequest
	if err := decode(r, &body); err != nil {
		return err
	}
	f, err := buildFunnel(body)
	if err != nil {
		return err
	}
	now := s.now()
	f.ID, f.WorkspaceID = id.New(id.Funnel), p.WorkspaceID
	f.CreatedAt, f.UpdatedAt = now, now
	for i := range f.Steps {
		f.Steps[i].ID = id.New(stepIDPrefix)
		for j := range f.Steps[i].Variants {
			f.Steps[i].Variants[j].ID = id.New(id.Variant)
		}
	}
	if body.Start {
		f.Status, f.StartedAt = store.StatusRunning, &now
	}
	if err := s.store.CreateFunnel(r.Context(), f); err != nil {
		return createError(err, "a", "funnel", f.Key)
	}
	return respond(w, http.StatusCreated, toFunnelJSON(f))
}

// funnelByRef finds a funnel of the caller's workspace by id or key; any
// other is the same 404 (see experimentByRef). The progress route may use
// a funnel read less than experimentCacheTTL ago (cache.go); every other
// route reads it, and drops what the progress route would have used.
func (s *server) funnelByRef(ctx context.Context, ref string) (store.Funnel, error) {
	read := func(ctx context.Context) (store.Funnel, error) {
		return byRef(ctx, "funnel", ref, s.store.GetFunnel, func(f store.Funnel) string { return f.WorkspaceID })
	}
	if infoFrom(ctx).Route == progressRoute {
		return s.funnelCache.load(ctx, experimentRef{principalFrom(ctx).WorkspaceID, ref}, experimentCacheTTL, read)
	}
	f, err := read(ctx)
	if err == nil {
		s.funnelCache.forget(f.ID)
	}
	return f, err
}

// progressRoute is the funnel's serving route.
const progressRoute = "POST /v1/funnels/{ref}/progress"

// handleGetFunnel serves GET /v1/funnels/{ref}.
func (s *server) handleGetFunnel(w http.ResponseWriter, r *http.Request) error {
	f, err := s.funnelByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, toFunnelJSON(f))
}

// handleListFunnels serves GET /v1/funnels, paginated like experiments.
func (s *server) handleListFunnels(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	params, want, err := pageParams(r, id.Funnel, statusFilter)
	if err != nil {
		return err
	}
	list, err := s.store.ListFunnels(r.Context(), p.WorkspaceID, params)
	if err != nil {
		return fmt.Errorf("list funnels: %w", err)
	}
	return respond(w, http.StatusOK, page(list, want, func(f store.Funnel) string { return f.ID }, toFunnelJSON))
}

// handleFunnelTransition serves POST /v1/funnels/{ref}/{action}: the
// lifecycle of optimize, without a winner to fix.
func (s *server) handleFunnelTransition(a optimize.Action) handlerFunc {
	return handleTransition(s, a, s.funnelByRef, toFunnelJSON)
}

type progressRequest struct {
	UnitID string   `json:"unit_id"`
	Step   string   `json:"step"`
	Value  *float64 `json:"value"`
}

type progressJSON struct {
	UnitID  string          `json:"unit_id"`
	Step    string          `json:"step"`
	Variant *string         `json:"variant"`
	Payload json.RawMessage `json:"payload"`
	New     bool            `json:"new"`
}

// handleProgress serves POST /v1/funnels/{ref}/progress: a unit reached a
// step. Like assignment it is idempotent by nature (sticky per unit and
// step), so it skips the Idempotency-Key machinery.
func (s *server) handleProgress(w http.ResponseWriter, r *http.Request) error {
	var body progressRequest
	if err := decode(r, &body); err != nil {
		return err
	}
	var fe fieldErrors
	if reason := checkUnitID(body.UnitID); reason != "" {
		fe.add("unit_id", "%s", reason)
	}
	if body.Step == "" {
		fe.add("step", "is required")
	}
	if v := body.Value; v != nil && (math.IsNaN(*v) || math.Abs(*v) > maxEventValue) {
		fe.add("value", "must be a number between -%g and %g", maxEventValue, maxEventValue)
	}
	if err := fe.err(); err != nil {
		return err
	}
	f, err := s.funnelByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	opt, err := s.optimizerFor(&f)
	if err != nil {
		return err
	}
	var value float64
	if body.Value != nil {
		if st, ok := f.StepByKey(body.Step); ok && st.Position != len(f.Steps)-1 {
			return apperr.Fields([]apperr.FieldError{{Field: "value", Reason: "is only for the last step (the goal), where it adds revenue"}})
		}
		value = *body.Value
	}
	alloc, err := opt.Allocate(r.Context(), []optimize.Unit{{ID: body.UnitID, Step: body.Step, Value: value}})
	if err != nil {
		return err
	}
	got := alloc.Assignments[0]
	out := progressJSON{UnitID: got.UnitID, Step: got.Step, Payload: json.RawMessage("null"), New: got.New}
	if got.Variant != nil {
		k := got.Variant.Key
		out.Variant = &k
		if len(got.Variant.Payload) > 0 {
			out.Payload = got.Variant.Payload
		}
	}
	return respond(w, http.StatusOK, out)
}

// handleFunnelResults serves GET /v1/funnels/{ref}/results.
func (s *server) handleFunnelResults(w http.ResponseWriter, r *http.Request) error {
	f, err := s.funnelByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	opt, err := s.optimizerFor(&f)
	if err != nil {
		return err
	}
	res, err := opt.Analyze(r.Context())
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, res)
}
