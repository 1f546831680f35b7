package client

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"time"
)

// StrategyMultiStep is the funnels' default strategy: it picks each step's
// variants for the end-to-end conversion of the whole funnel, not for the
// next step alone.
const StrategyMultiStep Strategy = "multi_step"

// Funnel is a multi-step experiment: units progress through ordered steps,
// some of which show variants, and the last step is the goal.
type Funnel struct {
	ID          string         `json:"id"`
	Key         string         `json:"key"`
	Name        string         `json:"name"`
	Strategy    Strategy       `json:"strategy"`
	Status      Status         `json:"status"`
	Steps       []FunnelStep   `json:"steps"`
	Settings    FunnelSettings `json:"settings"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at"`
	StartedAt   *time.Time     `json:"started_at"`
	CompletedAt *time.Time     `json:"completed_at"`
}

// FunnelStep is one step of a funnel.
type FunnelStep struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	Name string `json:"name"`
	// Goal is true for the last step: reaching it is the conversion.
	Goal bool `json:"goal"`
	// Variants is empty for a step that only counts units.
	Variants []Variant `json:"variants"`
	// Winner is the key of the step's declared winner, nil while none.
	Winner *string `json:"winner"`
	// NoDifferenceAt is when the step's no_difference was recorded (its
	// variants provably within ± min_effect of each other), nil while not.
	NoDifferenceAt *time.Time `json:"no_difference_at"`
}

// FunnelSettings are a funnel's settings as stored.
type FunnelSettings struct {
	MinSamples        int     `json:"min_samples"`
	DecisionThreshold float64 `json:"decision_threshold"`
	LossThreshold     float64 `json:"loss_threshold"`
	WeightFloor       float64 `json:"weight_floor"`
	Seed              *int64  `json:"seed"`
	// AttributionWindowSeconds is how long after reaching a step a unit
	// may reach the goal and count as a conversion of it.
	AttributionWindowSeconds int64 `json:"attribution_window_seconds"`
	// ConversionWindow is the same window as "7d" or a Go duration.
	ConversionWindow string `json:"conversion_window"`
	// Alpha is the level of each step's anytime-valid winner test;
	// MinEffect the relative margin of a step's no_difference.
	Alpha     float64 `json:"alpha"`
	MinEffect float64 `json:"min_effect"`
	// PriorLiftSD is the prior on relative lifts a winner must also
	// convince, nil when there is none.
	PriorLiftSD *float64 `json:"prior_lift_sd"`
}

// AttributionWindow returns the attribution window as a duration.
func (s FunnelSettings) AttributionWindow() time.Duration {
	return time.Duration(s.AttributionWindowSeconds) * time.Second
}

// CreateFunnelRequest is the body of CreateFunnel: 2 to 20 steps, at least
// one with two or more variants, and none on the last (the goal).
type CreateFunnelRequest struct {
	Key  string `json:"key"`
	Name string `json:"name,omitempty"`
	// Strategy is StrategyMultiStep when empty.
	Strategy Strategy            `json:"strategy,omitempty"`
	Steps    []FunnelStepSpec    `json:"steps"`
	Settings *FunnelSettingsSpec `json:"settings,omitempty"`
	Start    bool                `json:"start,omitempty"`
}

// FunnelStepSpec is a step to create.
type FunnelStepSpec struct {
	Key      string        `json:"key"`
	Name     string        `json:"name,omitempty"`
	Variants []VariantSpec `json:"variants,omitempty"`
}

// FunnelSettingsSpec overrides settings of a new funnel; a nil field keeps
// its default (an attribution window of 7 days).
type FunnelSettingsSpec struct {
	MinSamples               *int64   `json:"min_samples,omitempty"`
	DecisionThreshold        *float64 `json:"decision_threshold,omitempty"`
	LossThreshold            *float64 `json:"loss_threshold,omitempty"`
	WeightFloor              *float64 `json:"weight_floor,omitempty"`
	Seed                     *int64   `json:"seed,omitempty"`
	AttributionWindowSeconds *int64   `json:"attribution_window_seconds,omitempty"`
	// ConversionWindow sets the same window as "24h" or "7d"; give one of
	// the two.
	ConversionWindow *string `json:"conversion_window,omitempty"`
	// Alpha and MinEffect are in (0, 1); nil keeps the defaults (0.05).
	Alpha     *float64 `json:"alpha,omitempty"`
	MinEffect *float64 `json:"min_effect,omitempty"`
	// PriorLiftSD, from 0 to 1, is a prior on relative lifts (e.g. 0.03)
	// a winner must also convince; nil or 0: none.
	PriorLiftSD *float64 `json:"prior_lift_sd,omitempty"`
}

// CreateFunnel creates a funnel (POST /v1/funnels), with an automatic
// Idempotency-Key like CreateExperiment.
func (c *Client) CreateFunnel(ctx context.Context, req CreateFunnelRequest, opts ...CallOption) (*Funnel, error) {
	var out Funnel
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("funnels"), body: req, keyed: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetFunnel returns the funnel whose id or key is ref.
func (c *Client) GetFunnel(ctx context.Context, ref string, opts ...CallOption) (*Funnel, error) {
	var out Funnel
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("funnels", ref), idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListFunnels returns one page of the workspace's funnels, oldest first
// (p.Status is ignored). Funnels iterates over all of them.
func (c *Client) ListFunnels(ctx context.Context, p ListParams, opts ...CallOption) (*Page[Funnel], error) {
	var out Page[Funnel]
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("funnels"), query: p.query(false), idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Funnels iterates over every funnel, page by page, like Experiments.
func (c *Client) Funnels(ctx context.Context, p ListParams, opts ...CallOption) iter.Seq2[Funnel, error] {
	return paginate(p, func(p ListParams) (*Page[Funnel], error) { return c.ListFunnels(ctx, p, opts...) })
}

func (c *Client) funnelTransition(ctx context.Context, ref, action string, opts []CallOption) (*Funnel, error) {
	var out Funnel
	if err := c.transition(ctx, pathOf("funnels", ref, action), nil, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// StartFunnel starts a draft funnel.
func (c *Client) StartFunnel(ctx context.Context, ref string, opts ...CallOption) (*Funnel, error) {
	return c.funnelTransition(ctx, ref, "start", opts)
}

// PauseFunnel pauses a running funnel: units stop progressing, but
// conversions of units already in it still count.
func (c *Client) PauseFunnel(ctx context.Context, ref string, opts ...CallOption) (*Funnel, error) {
	return c.funnelTransition(ctx, ref, "pause", opts)
}

// ResumeFunnel resumes a paused funnel.
func (c *Client) ResumeFunnel(ctx context.Context, ref string, opts ...CallOption) (*Funnel, error) {
	return c.funnelTransition(ctx, ref, "resume", opts)
}

// CompleteFunnel completes a running or paused funnel.
func (c *Client) CompleteFunnel(ctx context.Context, ref string, opts ...CallOption) (*Funnel, error) {
	return c.funnelTransition(ctx, ref, "complete", opts)
}

// ProgressRequest says that a unit reached a step of a funnel.
type ProgressRequest struct {
	UnitID string `json:"unit_id"`
	// Step is the step's key.
	Step string `json:"step"`
	// Value is revenue added with the conversion, only for the last step.
	Value *float64 `json:"value,omitempty"`
}

// StepAssignment is the variant a unit sees at a funnel step.
type StepAssignment struct {
	UnitID string `json:"unit_id"`
	Step   string `json:"step"`
	// Variant is the key of the variant to show; empty for a step without
	// variants.
	Variant string          `json:"variant"`
	Payload json.RawMessage `json:"payload"`
	// New is true when this call recorded the unit reaching the step.
	New bool `json:"new"`
}

// DecodePayload unmarshals the variant's payload into v.
func (a StepAssignment) DecodePayload(v any) error {
	return Assignment{Payload: a.Payload}.DecodePayload(v)
}

// Progress records that a unit reached a step and returns the variant it
// sees there. It is sticky per unit and step (a repeated call changes
// nothing), so it is retried on temporary failures. Reaching the last step
// is the funnel's conversion; a unit must have entered through an earlier
// step first (else a 422).
func (c *Client) Progress(ctx context.Context, ref string, p ProgressRequest, opts ...CallOption) (*StepAssignment, error) {
	var out StepAssignment
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("funnels", ref, "progress"), body: p, idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// FunnelResults is the analysis of a funnel.
type FunnelResults struct {
	FunnelID string   `json:"funnel_id"`
	Status   Status   `json:"status"`
	Strategy Strategy `json:"strategy"`
	// TotalUnits entered the funnel; Conversions reached the goal.
	TotalUnits  int64              `json:"total_units"`
	Conversions int64              `json:"conversions"`
	Steps       []FunnelStepResult `json:"steps"`
	// Paths lists every path of variants seen, most units first.
	Paths []FunnelPathResult `json:"paths"`
	// BestPath maps every step with variants to its winner's key, nil
	// while it has none.
	BestPath map[string]*string `json:"best_path"`
	// LeadingPath is the complete path with the highest posterior mean
	// conversion; nil before one is seen.
	LeadingPath *FunnelPathResult `json:"leading_path"`
	// MattersMost is the step whose choice of variant matters most.
	MattersMost *StepSpread `json:"matters_most"`
	Decision    Decision    `json:"decision"`
	UpdatedAt   time.Time   `json:"updated_at"`
}

// FunnelStepResult is one step of FunnelResults.
type FunnelStepResult struct {
	Key   string `json:"key"`
	Units int64  `json:"units"`
	// DropOff is the share of the previous step's units that did not reach
	// this one; nil for the first step.
	DropOff     *float64 `json:"drop_off"`
	Conversions int64    `json:"conversions"`
	Rate        float64  `json:"rate"`
	OpenUnits   int64    `json:"open_units"`
	Late        int64    `json:"late_conversions"`
	// MaturedWithin is the delay within which the matured rates count
	// completions when it is short of the window; nil otherwise.
	MaturedWithin *string               `json:"matured_within"`
	Variants      []FunnelVariantResult `json:"variants"`
	Winner        *string               `json:"winner"`
	Decision      *Decision             `json:"decision"`
}

// FunnelVariantResult is one variant of a funnel step; its rates are end to
// end (reaching the goal).
type FunnelVariantResult struct {
	Key           string  `json:"key"`
	Control       bool    `json:"control"`
	Units         int64   `json:"units"`
	Conversions   int64   `json:"conversions"`
	Rate          float64 `json:"rate"`
	CILow         float64 `json:"ci_low"`
	CIHigh        float64 `json:"ci_high"`
	NextStepUnits int64   `json:"next_step_units"`
	NextStepRate  float64 `json:"next_step_rate"`
	PBest         float64 `json:"p_best"`
	ExpectedLoss  float64 `json:"expected_loss"`
	Weight        float64 `json:"weight"`
	OpenUnits     int64   `json:"open_units"`
	Value         float64 `json:"value"`
	// MaturedUnits is the units counted as trials, the open ones weighed
	// by the probability that their completion would have arrived by now;
	// Rate, its interval, PBest and Weight use it. Nil until a completion
	// of the step has been seen.
	MaturedUnits *float64 `json:"matured_units"`
	// PValue is the always-valid p-value of "no difference to the step's
	// control" and DiffCILow, DiffCIHigh the anytime-valid interval of the
	// difference of rates, on the funnel strategy's objective; nil for the
	// control and while no test can be made.
	PValue     *float64 `json:"p_value"`
	DiffCILow  *float64 `json:"diff_ci_low"`
	DiffCIHigh *float64 `json:"diff_ci_high"`
}

// FunnelPathResult is one path of variants seen (step key → variant key).
type FunnelPathResult struct {
	Variants    map[string]string `json:"variants"`
	Complete    bool              `json:"complete"`
	Units       int64             `json:"units"`
	Conversions int64             `json:"conversions"`
	Rate        float64           `json:"rate"`
	CILow       float64           `json:"ci_low"`
	CIHigh      float64           `json:"ci_high"`
}

// StepSpread names a step and the spread of the end-to-end rate between
// its best and worst variant.
type StepSpread struct {
	Step   string  `json:"step"`
	Spread float64 `json:"spread"`
}

// FunnelResults returns the funnel's current analysis.
func (c *Client) FunnelResults(ctx context.Context, ref string, opts ...CallOption) (*FunnelResults, error) {
	var out FunnelResults
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("funnels", ref, "results"), idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}
