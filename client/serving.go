package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// MaxBatch is the most units AssignMany and the most events TrackMany
// send in one call, the server's limit.
const MaxBatch = 1000

// Assignment is the variant a unit sees.
type Assignment struct {
	UnitID string `json:"unit_id"`
	// Variant is the key of the variant to show; empty when the unit falls
	// outside the experiment's traffic share (show the default experience,
	// and send no events for it).
	Variant string `json:"variant"`
	// Payload is the variant's payload ("null" when none or when Variant
	// is empty).
	Payload json.RawMessage `json:"payload"`
	// New is true the first time the unit is assigned; the same unit always
	// gets the same variant back, with New false.
	New bool `json:"new"`
	// Reason says why Variant is empty: ReasonNotTargeted, ReasonLayer or
	// ReasonTraffic.
	Reason string `json:"reason,omitempty"`
}

// DecodePayload unmarshals the variant's payload into v.
func (a Assignment) DecodePayload(v any) error {
	if len(a.Payload) == 0 {
		return json.Unmarshal([]byte("null"), v)
	}
	return json.Unmarshal(a.Payload, v)
}

// Assign returns the variant the unit sees in the running experiment ref,
// assigning one the first time. Assignment is sticky, so the call is
// retried on temporary failures. The experiment not running is a 409
// (IsConflict); an empty or over-long unit id a 422.
func (c *Client) Assign(ctx context.Context, ref, unitID string, opts ...CallOption) (*Assignment, error) {
	var out Assignment
	body := struct {
		UnitID string `json:"unit_id"`
	}{unitID}
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("experiments", ref, "assign"), body: body, idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// AssignMany assigns up to MaxBatch units in one call and returns their
// assignments in the order of unitIDs. An invalid unit id fails the whole
// call with a 422 naming it ("unit_ids[3]").
func (c *Client) AssignMany(ctx context.Context, ref string, unitIDs []string, opts ...CallOption) ([]Assignment, error) {
	var out struct {
		Assignments []Assignment `json:"assignments"`
	}
	body := struct {
		UnitIDs []string `json:"unit_ids"`
	}{unitIDs}
	if unitIDs == nil {
		body.UnitIDs = []string{} // the server's 422, not "unit_id is required"
	}
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("experiments", ref, "assign"), body: body, idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return out.Assignments, nil
}

// Event is an outcome of an assigned unit.
type Event struct {
	UnitID string `json:"unit_id"`
	// Metric is the key of the metric the event is about; empty for the
	// primary metric. Each metric has its own idempotency keys.
	Metric string `json:"metric,omitempty"`
	// Value is required for a continuous metric (the amount, added up per
	// unit). For a binary metric leave it nil: an event is a conversion,
	// and a unit converts at most once.
	Value *float64 `json:"value,omitempty"`
	// IdempotencyKey makes the event count once however often it is sent
	// (use the id of what happened: an order, a sign-up). Events without one
	// are sent exactly once: the client does not retry them, since a retry
	// could count a continuous value twice.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// EventsResult is the server's account of the events of one call.
type EventsResult struct {
	// Accepted counts the events recorded now.
	Accepted int `json:"accepted"`
	// Duplicates counts the events whose idempotency key was seen before,
	// and a binary unit's conversions after its first: not counted again.
	Duplicates int `json:"duplicates"`
	// Late counts the events that came after their unit's conversion
	// window (experiments with one): stored, never counted.
	Late int `json:"late"`
	// Rejected lists the events not recorded and why, for instance a unit
	// never assigned in this experiment.
	Rejected []RejectedEvent `json:"rejected"`
}

// RejectedEvent is an event the server did not record.
type RejectedEvent struct {
	// Index is the event's position in the call (0 for Track).
	Index int    `json:"index"`
	Error string `json:"error"`
}

// Track records one event. Once it returns without error the event is
// durable. A unit never assigned in the experiment is not an error: it is
// reported in the result's Rejected. An invalid event (a value on a binary
// metric, none on a continuous one) is a 422.
func (c *Client) Track(ctx context.Context, ref string, ev Event, opts ...CallOption) (*EventsResult, error) {
	return c.track(ctx, ref, ev, ev.IdempotencyKey != "", opts)
}

// TrackMany records up to MaxBatch events in one call, each accepted,
// counted as a duplicate or rejected on its own (see EventsResult). The
// call is retried on temporary failures only when every event has an
// IdempotencyKey.
func (c *Client) TrackMany(ctx context.Context, ref string, events []Event, opts ...CallOption) (*EventsResult, error) {
	if len(events) == 0 {
		return nil, errors.New("samplit: TrackMany needs at least one event")
	}
	keyed := true
	for _, ev := range events {
		keyed = keyed && ev.IdempotencyKey != ""
	}
	body := struct {
		Events []Event `json:"events"`
	}{events}
	return c.track(ctx, ref, body, keyed, opts)
}

func (c *Client) track(ctx context.Context, ref string, body any, idempotent bool, opts []CallOption) (*EventsResult, error) {
	var out EventsResult
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("experiments", ref, "events"), body: body, idempotent: idempotent}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Results is the analysis of an experiment.
type Results struct {
	ExperimentID string          `json:"experiment_id"`
	Status       Status          `json:"status"`
	Strategy     Strategy        `json:"strategy"`
	Metric       Metric          `json:"metric"`
	TotalUnits   int64           `json:"total_units"`
	Variants     []VariantResult `json:"variants"`
	// Winner is the variant key once the decision rule has declared one.
	Winner   *string  `json:"winner"`
	Decision Decision `json:"decision"`
	SRM      SRM      `json:"srm"`
	// Metrics are the other metrics' lines, by key.
	Metrics map[string]MetricResult `json:"metrics,omitempty"`
	// GuardrailTrips are the variants the guardrails stopped.
	GuardrailTrips []GuardrailTrip `json:"guardrail_trips,omitempty"`
	// UpdatedAt is when the numbers were computed.
	UpdatedAt time.Time `json:"updated_at"`
	// Breakdown is set by ResultsBy.
	Breakdown *Breakdown `json:"breakdown,omitempty"`
	// Prior is the prior on lifts a winner must also convince, nil when
	// there is none.
	Prior *LiftPrior `json:"prior"`
}

// LiftPrior is the prior on relative lifts in effect for a decision.
type LiftPrior struct {
	// Source is "prior_lift_sd" (the experiment's setting) or "learned"
	// (from the workspace's completed experiments).
	Source string `json:"source"`
	// LiftSD is the spread of true lifts it assumes.
	LiftSD float64 `json:"lift_sd"`
	// Comparisons is the number of finished comparisons a learned prior
	// comes from.
	Comparisons int `json:"comparisons,omitempty"`
}

// MetricResult is one of the other metrics in Results.
type MetricResult struct {
	Type           Metric                `json:"type"`
	Role           string                `json:"role"`
	Direction      string                `json:"direction"`
	MaxDegradation *float64              `json:"max_degradation,omitempty"`
	Variants       []MetricVariantResult `json:"variants"`
}

// MetricVariantResult is a variant's line of a metric: the fields of
// VariantResult that describe a metric, and for a guardrail its state.
type MetricVariantResult struct {
	Key         string   `json:"key"`
	Units       int64    `json:"units"`
	Conversions int64    `json:"conversions"`
	Sum         float64  `json:"sum"`
	Mean        float64  `json:"mean"`
	CILow       float64  `json:"ci_low"`
	CIHigh      float64  `json:"ci_high"`
	Lift        *float64 `json:"lift"`
	LiftCILow   *float64 `json:"lift_ci_low"`
	LiftCIHigh  *float64 `json:"lift_ci_high"`
	PValue      *float64 `json:"p_value"`
	DiffCILow   *float64 `json:"diff_ci_low"`
	DiffCIHigh  *float64 `json:"diff_ci_high"`
	// Guardrail is "ok" or "tripped" (guardrail metrics only), with the
	// finding in GuardrailReason.
	Guardrail       string `json:"guardrail,omitempty"`
	GuardrailReason string `json:"guardrail_reason,omitempty"`
}

// GuardrailTrip is a variant a guardrail stopped: weight 0, never the winner.
type GuardrailTrip struct {
	Variant string    `json:"variant"`
	Metric  string    `json:"metric"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// Variant returns the result of the variant with the key.
func (r *Results) Variant(key string) (VariantResult, bool) {
	for _, v := range r.Variants {
		if v.Key == key {
			return v, true
		}
	}
	return VariantResult{}, false
}

// VariantResult is one variant's line of Results.
type VariantResult struct {
	Key         string  `json:"key"`
	Units       int64   `json:"units"`
	Conversions int64   `json:"conversions"`
	Sum         float64 `json:"sum"`
	// Mean is the observed rate (binary) or average value (continuous).
	Mean float64 `json:"mean"`
	// CILow and CIHigh bound the 95% credible interval of the mean.
	CILow  float64 `json:"ci_low"`
	CIHigh float64 `json:"ci_high"`
	// PBest is the posterior probability that this variant is the best.
	PBest float64 `json:"p_best"`
	// ExpectedLoss is what choosing this variant costs on average, in the
	// metric's unit.
	ExpectedLoss float64 `json:"expected_loss"`
	// Weight is the share of new traffic the variant gets now.
	Weight float64 `json:"weight"`
	// Lift is the relative difference to the control's mean with its 95%
	// interval; nil for the control and where undefined.
	Lift       *float64 `json:"lift"`
	LiftCILow  *float64 `json:"lift_ci_low"`
	LiftCIHigh *float64 `json:"lift_ci_high"`
	// PValue is the always-valid p-value of no difference to the control
	// (every strategy; Bonferroni-adjusted over the pairs of variants), and
	// DiffCILow/DiffCIHigh the anytime-valid interval of the difference of
	// means to the control, in the metric's units: the interval the decision
	// uses. All three are nil for the control and while no test can be made.
	PValue     *float64 `json:"p_value"`
	DiffCILow  *float64 `json:"diff_ci_low"`
	DiffCIHigh *float64 `json:"diff_ci_high"`
	// MaturedUnits (experiments with a conversion window) is the units
	// counted as trials, each unit inside its window by the probability
	// that its outcome would have arrived by now; Mean, the intervals,
	// PBest and Weight use it. LateConversions counts the events after
	// their unit's window. Both nil without a window.
	MaturedUnits    *float64 `json:"matured_units,omitempty"`
	LateConversions *int64   `json:"late_conversions,omitempty"`
}

// The decision states of experiments, funnels and campaigns.
const (
	DecisionCollecting   = "collecting"
	DecisionWinnerFound  = "winner_found"
	DecisionNoDifference = "no_difference"
	DecisionCompleted    = "completed"
)

// Decision is the state of a decision rule and a sentence saying why.
type Decision struct {
	// State is DecisionCollecting, DecisionWinnerFound, DecisionNoDifference
	// (every variant provably within ± min_effect of the leader) or
	// DecisionCompleted.
	State  string `json:"state"`
	Reason string `json:"reason"`
}

// SRM is the sample ratio mismatch check of the assignment counts (nil
// p-value for adaptive strategies, whose weights move).
type SRM struct {
	PValue *float64 `json:"p_value"`
	Alert  bool     `json:"alert"`
}

// Results returns the experiment's current analysis. Reading results is
// also when the decision rule declares a winner.
func (c *Client) Results(ctx context.Context, ref string, opts ...CallOption) (*Results, error) {
	var out Results
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("experiments", ref, "results"), idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Timeseries is an experiment's hourly history, for charts.
type Timeseries struct {
	ExperimentID string    `json:"experiment_id"`
	From         time.Time `json:"from"`
	To           time.Time `json:"to"`
	Points       []Point   `json:"points"`
}

// Point is one hour of one variant.
type Point struct {
	// Hour is the start of the hour.
	Hour        time.Time `json:"hour"`
	Variant     string    `json:"variant"`
	Units       int64     `json:"units"`
	Conversions int64     `json:"conversions"`
	Sum         float64   `json:"sum"`
	// Weight is the variant's average share of new traffic in that hour.
	Weight float64 `json:"weight"`
}

// TimeseriesParams bounds a Timeseries; a zero time means the server's
// default (from the experiment's creation, to now).
type TimeseriesParams struct {
	From, To time.Time
}

// Timeseries returns the experiment's hourly points between p.From and
// p.To (at most 92 days apart; a long-running experiment without From
// gets its last 92 days).
func (c *Client) Timeseries(ctx context.Context, ref string, p TimeseriesParams, opts ...CallOption) (*Timeseries, error) {
	q := url.Values{}
	if !p.From.IsZero() {
		q.Set("from", p.From.UTC().Format(time.RFC3339))
	}
	if !p.To.IsZero() {
		q.Set("to", p.To.UTC().Format(time.RFC3339))
	}
	var out Timeseries
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("experiments", ref, "timeseries"), query: q, idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}
