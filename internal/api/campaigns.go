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

// Limits and defaults of campaigns.
const (
	// MaxSendsPerCall bounds the recipients of one sends call, and the
	// events of one events call.
	MaxSendsPerCall   = 10_000
	maxAudienceSize   = 10_000_000_000
	DefaultTestShare  = 0.2
	DefaultEmailAttrb = 72 * time.Hour
	DefaultPushAttrb  = 24 * time.Hour
	// DefaultPushHalfLife is the discount half-life of push campaigns:
	// audiences tire of a message within days.
	DefaultPushHalfLife = 7 * 24 * time.Hour
	// DefaultCampaignWeightFloor keeps every variant in each wave: rewards
	// arrive late, and a variant starved early could never come back.
	DefaultCampaignWeightFloor = 0.01
)

var (
	campaignChannels   = []string{"email", "push"}
	campaignObjectives = []string{"open", "click", "value"}
	guardrailEvents    = []string{store.CampaignUnsubscribe, store.CampaignBounce}
)

type campaignJSON struct {
	ID           string                `json:"id"`
	Key          string                `json:"key"`
	Name         string                `json:"name"`
	Channel      string                `json:"channel"`
	Objective    string                `json:"objective"`
	Mode         string                `json:"mode"`
	AudienceSize int64                 `json:"audience_size"`
	Status       string                `json:"status"`
	Variants     []campaignVariantJSON `json:"variants"`
	Settings     campaignSettingsJSON  `json:"settings"`
	Winner       *string               `json:"winner"`
	// NoDifferenceAt: when the no_difference decision was recorded, else null.
	NoDifferenceAt *string `json:"no_difference_at"`
	Sent           int64   `json:"sent"`
	Waves          int64   `json:"waves"`
	CreatedAt      string  `json:"created_at"`
	UpdatedAt      string  `json:"updated_at"`
	StartedAt      *string `json:"started_at"`
	CompletedAt    *string `json:"completed_at"`
}

type campaignVariantJSON struct {
	ID      string          `json:"id"`
	Key     string          `json:"key"`
	Name    string          `json:"name"`
	Payload json.RawMessage `json:"payload"`
	// Stopped is true once the guardrail stopped the variant.
	Stopped bool `json:"stopped"`
}

type guardrailJSON struct {
	Event      string  `json:"event"`
	MaxRate    float64 `json:"max_rate"`
	Confidence float64 `json:"confidence"`
}

type campaignSettingsJSON struct {
	TestShare         float64        `json:"test_share"`
	AttributionWindow string         `json:"attribution_window"`
	DiscountHalfLife  *string        `json:"discount_half_life"`
	Guardrail         *guardrailJSON `json:"guardrail"`
	Seed              *int64         `json:"seed"`
	WeightFloor       float64        `json:"weight_floor"`
	MinSamples        int            `json:"min_samples"`
	DecisionThreshold float64        `json:"decision_threshold"`
	LossThreshold     float64        `json:"loss_threshold"`
	Alpha             float64        `json:"alpha"`
	MinEffect         float64        `json:"min_effect"`
	// PriorLiftSD is null when the campaign has no prior on lifts.
	PriorLiftSD *float64 `json:"prior_lift_sd"`
	// LearnPrior says whether, without prior_lift_sd, a winner must also
	// convince the prior learned from the workspace's completed campaigns.
	LearnPrior bool `json:"learn_prior"`
}

// formatDays and parseDays are the one form of durations in settings
// (optimize.FormatDays, optimize.ParseDays).
var formatDays, parseDays = optimize.FormatDays, optimize.ParseDays

func toCampaignJSON(c store.Campaign) campaignJSON {
	s := c.Settings
	out := campaignJSON{
		ID: c.ID, Key: c.Key, Name: c.Name, Channel: c.Channel, Objective: c.Objective, Mode: c.Mode,
		AudienceSize: c.AudienceSize, Status: string(c.Status), Variants: []campaignVariantJSON{},
		Settings: campaignSettingsJSON{TestShare: s.TestShare, AttributionWindow: formatDays(s.AttributionWindow),
			Seed: s.Seed, WeightFloor: s.WeightFloor, MinSamples: s.MinSamples,
			DecisionThreshold: s.DecisionThreshold, LossThreshold: s.LossThreshold,
			Alpha: cmp.Or(s.Alpha, engine.DefaultAlpha), MinEffect: cmp.Or(s.MinEffect, engine.DefaultMinEffect),
			LearnPrior: s.Decision().LearnsPrior()},
		Sent: c.Sent, Waves: c.Waves,
		CreatedAt: timestamp(c.CreatedAt), UpdatedAt: timestamp(c.UpdatedAt),
		StartedAt: optTimestamp(c.StartedAt), CompletedAt: optTimestamp(c.CompletedAt),
		NoDifferenceAt: optTimestamp(c.NoDifferenceAt),
	}
	if sd := s.PriorLiftSD; sd > 0 {
		out.Settings.PriorLiftSD = &sd
	}
	if s.DiscountHalfLife > 0 {
		h := formatDays(s.DiscountHalfLife)
		out.Settings.DiscountHalfLife = &h
	}
	if g := s.Guardrail; g != nil {
		out.Settings.Guardrail = &guardrailJSON{Event: g.Event, MaxRate: g.MaxRate, Confidence: g.Confidence}
	}
	if c.Winner != "" {
		w := c.Winner
		out.Winner = &w
	}
	for _, v := range c.Variants {
		out.Variants = append(out.Variants, campaignVariantJSON{ID: v.ID, Key: v.Key, Name: v.Name,
			Payload: v.Payload, Stopped: slices.Contains(c.Stopped, v.Key)})
	}
	return out
}

type createCampaignRequest struct {
	Key          string            `json:"key"`
	Name         string            `json:"name"`
	Channel      string            `json:"channel"`
	Variants     []json.RawMessage `json:"variants"`
	Objective    string            `json:"objective"`
	Mode         string            `json:"mode"`
	AudienceSize *int64            `json:"audience_size"`
	Settings     json.RawMessage   `json:"settings"`
	Start        bool              `json:"start"`
}

type campaignVariantRequest struct {
	Key     string          `json:"key"`
	Name    string          `json:"name"`
	Payload json.RawMessage `json:"payload"`
}

type guardrailRequest struct {
	Event      string   `json:"event"`
	MaxRate    *float64 `json:"max_rate"`
	Confidence *float64 `json:"confidence"`
}

type campaignSettingsRequest struct {
	TestShare         *float64          `json:"test_share"`
	AttributionWindow *string           `json:"attribution_window"`
	DiscountHalfLife  *string           `json:"discount_half_life"`
	Guardrail         *guardrailRequest `json:"guardrail"`
	Seed              *int64            `json:"seed"`
	WeightFloor       *float64          `json:"weight_floor"`
	MinSamples        *int64            `json:"min_samples"`
	DecisionThreshold *float64          `json:"decision_threshold"`
	LossThreshold     *float64          `json:"loss_threshold"`
	Alpha             *float64          `json:"alpha"`
	MinEffect         *float64          `json:"min_effect"`
	PriorLiftSD       *float64          `json:"prior_lift_sd"`
	LearnPrior        *bool             `json:"learn_prior"`
}

// buildCampaign decodes and validates the body of POST /v1/campaigns and
// returns the campaign to store (without ids and times). Variants follow
// the experiments' rules (buildExperiment) and the decision settings are
// the experiments' (buildSettings), so that they mean the same everywhere.
func buildCampaign(body createCampaignRequest) (store.Campaign, error) {
	var fe fieldErrors
	checkSlug(&fe, "key", body.Key)
	if id.HasPrefix(body.Key, id.Campaign) {
		fe.add("key", "must not look like a campaign id")
	}
	c := store.Campaign{Key: body.Key, Name: body.Name, Channel: body.Channel, Objective: body.Objective,
		Mode: body.Mode, Status: store.StatusDraft}
	if c.Name == "" {
		c.Name = body.Key
	} else {
		checkText(&fe, "name", c.Name, MaxNameLen)
	}
	if !slices.Contains(campaignChannels, c.Channel) {
		fe.add("channel", "must be one of %s", strings.Join(campaignChannels, ", "))
	}
	if c.Objective == "" {
		c.Objective = "click"
		if c.Channel == "push" {
			c.Objective = "open"
		}
	} else if !slices.Contains(campaignObjectives, c.Objective) {
		fe.add("objective", "must be one of %s", strings.Join(campaignObjectives, ", "))
	}
	if c.Mode == "" {
		c.Mode = engine.CampaignWaves
	} else if !slices.Contains(engine.CampaignModes(), c.Mode) {
		fe.add("mode", "must be one of %s", strings.Join(engine.CampaignModes(), ", "))
	}
	switch v := body.AudienceSize; {
	case v == nil && c.Mode == engine.CampaignSplit:
		fe.add("audience_size", "is required in mode %s: the test is a share of it", engine.CampaignSplit)
	case v != nil && (*v < 1 || *v > maxAudienceSize):
		fe.add("audience_size", "must be an integer from 1 to %d", int64(maxAudienceSize))
	case v != nil:
		c.AudienceSize = *v
	}

	variants := make([]variantRequest, len(body.Variants))
	for i, raw := range body.Variants {
		var vr campaignVariantRequest
		if err := decodeField(raw, &vr, fmt.Sprintf("variants[%d]", i)); err != nil {
			return c, err
		}
		variants[i] = variantRequest{Key: vr.Key, Name: vr.Name, Payload: vr.Payload}
		checkSendHour(&fe, fmt.Sprintf("variants[%d].payload.send_hour", i), vr.Payload)
	}
	var sr campaignSettingsRequest
	if len(body.Settings) > 0 {
		if err := decodeField(body.Settings, &sr, "settings"); err != nil {
			return c, err
		}
	}
	floor := DefaultCampaignWeightFloor
	if sr.WeightFloor != nil {
		floor = *sr.WeightFloor
	}
	e, err := buildExperiment(createExperimentRequest{Key: "campaign", Variants: body.Variants}, variants, settingsRequest{
		MinSamples: sr.MinSamples, DecisionThreshold: sr.DecisionThreshold, LossThreshold: sr.LossThreshold,
		WeightFloor: &floor, Seed: sr.Seed, Alpha: sr.Alpha, MinEffect: sr.MinEffect, PriorLiftSD: sr.PriorLiftSD,
		LearnPrior: sr.LearnPrior,
	})
	var ae *apperr.Error
	if errors.As(err, &ae) {
		fe = append(fe, ae.Fields...)
	} else if err != nil {
		return c, err
	}
	c.Variants = e.Variants
	for i := range c.Variants {
		c.Variants[i].Control = false // campaigns compare every variant with every other
	}
	c.Settings = store.CampaignSettings{
		TestShare: DefaultTestShare, AttributionWindow: DefaultEmailAttrb, Seed: e.Settings.Seed,
		WeightFloor: e.Settings.WeightFloor, MinSamples: e.Settings.MinSamples,
		DecisionThreshold: e.Settings.DecisionThreshold, LossThreshold: e.Settings.LossThreshold,
		Alpha: e.Settings.Alpha, MinEffect: e.Settings.MinEffect, PriorLiftSD: e.Settings.PriorLiftSD,
		LearnPrior: e.Settings.LearnPrior,
	}
	if c.Channel == "push" {
		c.Settings.AttributionWindow, c.Settings.DiscountHalfLife = DefaultPushAttrb, DefaultPushHalfLife
	}
	if v := sr.TestShare; v != nil {
		if !(*v > 0 && *v <= 1) {
			fe.add("settings.test_share", "must be greater than 0 and at most 1")
		}
		c.Settings.TestShare = *v
	}
	if v := sr.AttributionWindow; v != nil {
		d, err := parseDays(*v)
		if err != nil || d < time.Minute || d > maxAttributionWindow {
			fe.add("settings.attribution_window", "must be a duration such as \"24h\" or \"7d\", from 1m to 365d")
		}
		c.Settings.AttributionWindow = d
	}
	if v := sr.DiscountHalfLife; v != nil {
		d, err := parseDays(*v)
		if err != nil || (d != 0 && d < time.Hour) || d > maxAttributionWindow {
			fe.add("settings.discount_half_life", "must be 0 (no discounting) or a duration such as \"36h\" or \"7d\", from 1h to 365d")
		}
		c.Settings.DiscountHalfLife = d
	}
	if g := sr.Guardrail; g != nil {
		cg := &store.CampaignGuardrail{Event: g.Event, Confidence: engine.DefaultGuardrailConfidence}
		if !slices.Contains(guardrailEvents, g.Event) {
			fe.add("settings.guardrail.event", "must be one of %s", strings.Join(guardrailEvents, ", "))
		}
		if g.MaxRate == nil || !(*g.MaxRate > 0 && *g.MaxRate < 1) {
			fe.add("settings.guardrail.max_rate", "is required: a rate greater than 0 and less than 1")
		} else {
			cg.MaxRate = *g.MaxRate
		}
		if v := g.Confidence; v != nil {
			if !(*v >= 0.5 && *v < 1) {
				fe.add("settings.guardrail.confidence", "must be at least 0.5 and less than 1")
			}
			cg.Confidence = *v
		}
		c.Settings.Guardrail = cg
	}
	return c, fe.err()
}

// checkSendHour checks payload.send_hour, when the payload is an object
// that has one: an hour of the day, 0 to 23. Send slots are ordinary
// variants; the check only catches a typo before a campaign runs on it.
func checkSendHour(fe *fieldErrors, field string, payload json.RawMessage) {
	var p struct {
		SendHour *json.Number `json:"send_hour"`
	}
	if json.Unmarshal(payload, &p) != nil || p.SendHour == nil {
		return
	}
	if h, err := p.SendHour.Int64(); err != nil || h < 0 || h > 23 {
		fe.add(field, "must be an hour of the day, an integer from 0 to 23")
	}
}

// handleCreateCampaign serves POST /v1/campaigns.
func (s *server) handleCreateCampaign(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	var body createCampaignRequest
	if err := decode(r, &body); err != nil {
		return err
	}
	c, err := buildCampaign(body)
	if err != nil {
		return err
	}
	now := s.now()
	c.ID, c.WorkspaceID = id.New(id.Campaign), p.WorkspaceID
	c.CreatedAt, c.UpdatedAt = now, now
	for i := range c.Variants {
		c.Variants[i].ID = id.New(id.Variant)
	}
	if body.Start {
		c.Status, c.StartedAt = store.StatusRunning, &now
	}
	if err := s.store.CreateCampaign(r.Context(), c); err != nil {
		return createError(err, "a", "campaign", c.Key)
	}
	return respond(w, http.StatusCreated, toCampaignJSON(c))
}

// campaignByRef finds a campaign of the caller's workspace by id or key;
// any other is the same 404 (see experimentByRef).
func (s *server) campaignByRef(ctx context.Context, ref string) (store.Campaign, error) {
	return byRef(ctx, "campaign", ref, s.store.GetCampaign, func(c store.Campaign) string { return c.WorkspaceID })
}

// handleGetCampaign serves GET /v1/campaigns/{ref}.
func (s *server) handleGetCampaign(w http.ResponseWriter, r *http.Request) error {
	c, err := s.campaignByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, toCampaignJSON(c))
}

// handleListCampaigns serves GET /v1/campaigns, paginated like experiments.
func (s *server) handleListCampaigns(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	params, want, err := pageParams(r, id.Campaign, statusFilter)
	if err != nil {
		return err
	}
	list, err := s.store.ListCampaigns(r.Context(), p.WorkspaceID, params)
	if err != nil {
		return fmt.Errorf("list campaigns: %w", err)
	}
	return respond(w, http.StatusOK, page(list, want, func(c store.Campaign) string { return c.ID }, toCampaignJSON))
}

// handleCampaignTransition serves POST /v1/campaigns/{ref}/{action}: the
// lifecycle of optimize, without a winner to fix.
func (s *server) handleCampaignTransition(a optimize.Action) handlerFunc {
	return handleTransition(s, a, s.campaignByRef, toCampaignJSON)
}

type sendsRequest struct {
	Recipients []string `json:"recipients"`
}

type sendJSON struct {
	Recipient string          `json:"recipient"`
	Variant   string          `json:"variant"`
	Payload   json.RawMessage `json:"payload"`
}

type sendsResponse struct {
	// Wave numbers the call's new sends; null when every recipient had
	// been sent before.
	Wave  *int64     `json:"wave"`
	Sends []sendJSON `json:"sends"`
}

// handleSends serves POST /v1/campaigns/{ref}/sends. Like assignment it is
// idempotent by nature (a recipient keeps its variant), so it skips the
// Idempotency-Key machinery.
func (s *server) handleSends(w http.ResponseWriter, r *http.Request) error {
	var body sendsRequest
	if err := decode(r, &body); err != nil {
		return err
	}
	var fe fieldErrors
	if len(body.Recipients) == 0 || len(body.Recipients) > MaxSendsPerCall {
		fe.add("recipients", "must hold 1 to %d recipients, got %d", MaxSendsPerCall, len(body.Recipients))
	}
	for i, rcp := range body.Recipients {
		if reason := checkUnitID(rcp); reason != "" {
			fe.add(fmt.Sprintf("recipients[%d]", i), "%s", reason)
			if len(fe) >= 20 {
				break // enough to show what is wrong
			}
		}
	}
	if err := fe.err(); err != nil {
		return err
	}
	c, err := s.campaignByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	opt, err := s.optimizerFor(&c)
	if err != nil {
		return err
	}
	units := make([]optimize.Unit, len(body.Recipients))
	for i, rcp := range body.Recipients {
		units[i].ID = rcp
	}
	got, err := opt.Allocate(r.Context(), units)
	if err != nil {
		return err
	}
	out := sendsResponse{Sends: make([]sendJSON, len(got.Assignments))}
	if got.Wave > 0 {
		out.Wave = &got.Wave
	}
	for i, sd := range got.Assignments {
		payload := sd.Variant.Payload
		if len(payload) == 0 {
			payload = json.RawMessage("null")
		}
		out.Sends[i] = sendJSON{Recipient: sd.UnitID, Variant: sd.Variant.Key, Payload: payload}
	}
	return respond(w, http.StatusOK, out)
}

type campaignEventRequest struct {
	Recipient      string   `json:"recipient"`
	Type           string   `json:"type"`
	Value          *float64 `json:"value"`
	At             *string  `json:"at"`
	IdempotencyKey string   `json:"idempotency_key"`
}

type campaignEventsRequest struct {
	campaignEventRequest
	Events []json.RawMessage `json:"events"`
}

type campaignEventsResponse struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	// Late counts events stored after the attribution window of their send:
	// kept, not counted.
	Late     int            `json:"late"`
	Rejected []rejectedJSON `json:"rejected"`
}

// maxEventSkew bounds how far in the future an event's "at" may be.
const maxEventSkew = 5 * time.Minute

// checkCampaignEvent validates one event and returns it to store, or the
// field that makes it unacceptable.
func checkCampaignEvent(ev campaignEventRequest, now time.Time) (store.CampaignEvent, *apperr.FieldError) {
	bad := func(field, format string, args ...any) (store.CampaignEvent, *apperr.FieldError) {
		return store.CampaignEvent{}, &apperr.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if reason := checkUnitID(ev.Recipient); reason != "" {
		return bad("recipient", "%s", reason)
	}
	if !slices.Contains(store.CampaignEventTypes(), ev.Type) {
		return bad("type", "must be one of %s", strings.Join(store.CampaignEventTypes(), ", "))
	}
	if len(ev.IdempotencyKey) > maxIdemKey || strings.ContainsFunc(ev.IdempotencyKey, isControl) {
		return bad("idempotency_key", "must be at most %d bytes without control characters", maxIdemKey)
	}
	out := store.CampaignEvent{Recipient: ev.Recipient, Type: ev.Type, IdempotencyKey: ev.IdempotencyKey, At: now}
	if v := ev.Value; v != nil {
		if ev.Type != store.CampaignConversion {
			return bad("value", "is only for conversion events")
		}
		if math.IsNaN(*v) || math.Abs(*v) > maxEventValue {
			return bad("value", "must be a number between -%g and %g", maxEventValue, maxEventValue)
		}
		out.Value = *v
	}
	if ev.At != nil {
		at, err := time.Parse(time.RFC3339Nano, *ev.At)
		if err != nil {
			return bad("at", "must be an RFC 3339 time such as 2026-11-27T10:00:00Z")
		}
		if at.After(now.Add(maxEventSkew)) {
			return bad("at", "must not be in the future")
		}
		out.At = at.UTC()
	}
	return out, nil
}

// handleCampaignEvents serves POST /v1/campaigns/{ref}/events, for one
// event or a batch. As for experiment events, the 202 is sent only after
// the accepted events are committed. A single event of a recipient never
// sent is a 422; in a batch it is listed as rejected.
func (s *server) handleCampaignEvents(w http.ResponseWriter, r *http.Request) error {
	var body campaignEventsRequest
	if err := decodeFast(r, &body, decodeCampaignEventsFast); err != nil {
		return err
	}
	single := body.Events == nil
	if !single && (body.Recipient != "" || body.Type != "" || body.Value != nil || body.At != nil || body.IdempotencyKey != "") {
		return apperr.Fields([]apperr.FieldError{{Field: "events", Reason: "send either one event or an events list, not both"}})
	}
	if !single && (len(body.Events) == 0 || len(body.Events) > MaxSendsPerCall) {
		return apperr.Fields([]apperr.FieldError{{Field: "events", Reason: fmt.Sprintf("must hold 1 to %d events, got %d", MaxSendsPerCall, len(body.Events))}})
	}
	c, err := s.campaignByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	opt, err := s.optimizerFor(&c)
	if err != nil {
		return err
	}
	now := s.now()
	raw, err := batchItems(single, body.campaignEventRequest, body.Events, decodeCampaignEventFast)
	if err != nil {
		return err
	}
	valid, index, rejected, err := checkBatch(raw, single, func(ev campaignEventRequest) (store.CampaignEvent, *apperr.FieldError) {
		return checkCampaignEvent(ev, now)
	})
	if err != nil {
		return err
	}
	resp := campaignEventsResponse{Rejected: rejected}
	if len(valid) > 0 {
		outcomes := make([]optimize.Outcome, len(valid))
		for i, ev := range valid {
			outcomes[i] = optimize.Outcome{Unit: ev.Recipient, Type: ev.Type, Value: ev.Value, At: ev.At, IdempotencyKey: ev.IdempotencyKey}
		}
		results, err := opt.Record(r.Context(), outcomes)
		if err != nil {
			return err
		}
		for j, res := range results {
			switch res.Outcome {
			case store.OutcomeAccepted:
				resp.Accepted++
			case store.OutcomeDuplicate:
				resp.Duplicates++
			case store.OutcomeLate:
				resp.Late++
			default:
				if single {
					return apperr.Fields([]apperr.FieldError{{Field: cmp.Or(res.Field, "recipient"), Reason: res.Reason}})
				}
				resp.Rejected = append(resp.Rejected, rejectedJSON{Index: index[j], Error: res.Reason})
			}
		}
	}
	slices.SortFunc(resp.Rejected, func(a, b rejectedJSON) int { return a.Index - b.Index })
	return respond(w, http.StatusAccepted, resp)
}

// handleCampaignResults serves GET /v1/campaigns/{ref}/results.
func (s *server) handleCampaignResults(w http.ResponseWriter, r *http.Request) error {
	c, err := s.campaignByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	opt, err := s.optimizerFor(&c)
	if err != nil {
		return err
	}
	res, err := opt.Analyze(r.Context())
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, res)
}
