package client

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Metric is what an experiment measures.
type Metric string

// The metrics.
const (
	// MetricBinary counts conversions: a unit converts at most once.
	MetricBinary Metric = "binary"
	// MetricContinuous adds up values per unit (revenue, time spent).
	MetricContinuous Metric = "continuous"
)

// Strategy is how an experiment shares traffic between its variants.
type Strategy string

// The strategies of experiments (funnels use their own, see CreateFunnelRequest).
const (
	// StrategyAdaptive is Thompson sampling: traffic moves towards the
	// variants likely to be best while it learns.
	StrategyAdaptive Strategy = "adaptive"
	// StrategyFastLearning is top-two Thompson sampling: it finds the best
	// variant with fewer units, at some cost in conversions meanwhile.
	StrategyFastLearning Strategy = "fast_learning"
	// StrategyExplore splits traffic evenly, for learning about every variant.
	StrategyExplore Strategy = "explore"
	// StrategySequential is a fixed split with always-valid p-values, the
	// classic A/B test that may be looked at any time.
	StrategySequential Strategy = "sequential"
)

// Status is where an experiment or funnel is in its lifecycle:
// draft → running ⇄ paused → completed, and archived from any status but
// running.
type Status string

// The statuses.
const (
	StatusDraft     Status = "draft"
	StatusRunning   Status = "running"
	StatusPaused    Status = "paused"
	StatusCompleted Status = "completed"
	StatusArchived  Status = "archived"
)

// Experiment is an experiment as the server shows it.
type Experiment struct {
	// ID is the server's id ("exp_..."); Key is yours. Either may be used as
	// the ref argument of the methods.
	ID       string    `json:"id"`
	Key      string    `json:"key"`
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	Metric   Metric    `json:"metric"`
	Strategy Strategy  `json:"strategy"`
	Status   Status    `json:"status"`
	Variants []Variant `json:"variants"`
	// Metrics are the metrics besides the primary one (key "primary").
	Metrics []MetricDef `json:"metrics"`
	// Settings are the settings it runs with, defaults filled in.
	Settings Settings `json:"settings"`
	// Winner is the key of the variant the decision rule declared or that
	// CompleteExperiment fixed; nil while there is none.
	Winner *string `json:"winner"`
	// WinnerFixed is true when the winner is served to every unit from now on.
	WinnerFixed bool       `json:"winner_fixed"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	StartedAt   *time.Time `json:"started_at"`
	CompletedAt *time.Time `json:"completed_at"`
	// Targeting is nil when every unit may enter.
	Targeting *Targeting `json:"targeting"`
	// Layer is the key of the experiment's layer, nil when in none;
	// LayerRange the part [from, to) of it the experiment holds (nil once
	// it is completed or archived).
	Layer      *string     `json:"layer"`
	LayerShare *float64    `json:"layer_share"`
	LayerRange *[2]float64 `json:"layer_range"`
}

// The roles of an experiment's other metrics, and the directions of a metric.
const (
	// RoleSecondary metrics are described in the results and decide nothing.
	RoleSecondary = "secondary"
	// RoleGuardrail metrics stop a variant they show, anytime-valid, to be
	// worse than the control by more than MaxDegradation: it gets no more
	// traffic and can never be the winner.
	RoleGuardrail = "guardrail"
	// DirectionIncrease: higher is better. DirectionDecrease: lower is
	// better (refunds, errors, latency).
	DirectionIncrease = "increase"
	DirectionDecrease = "decrease"
	// PrimaryMetric is the key of the experiment's own metric, the default
	// of Event.Metric.
	PrimaryMetric = "primary"
)

// MetricDef is one of an experiment's metrics besides the primary one.
type MetricDef struct {
	Key       string `json:"key"`
	Type      Metric `json:"type"`
	Role      string `json:"role"`
	Direction string `json:"direction"`
	// MaxDegradation is a guardrail's allowed degradation relative to the
	// control (0.1 = 10%); nil for a secondary metric.
	MaxDegradation *float64 `json:"max_degradation"`
}

// MetricSpec is a metric to create besides the primary one. Key and Type
// are required; a guardrail needs Direction and MaxDegradation.
type MetricSpec struct {
	Key            string   `json:"key"`
	Type           Metric   `json:"type"`
	Role           string   `json:"role,omitempty"`
	Direction      string   `json:"direction,omitempty"`
	MaxDegradation *float64 `json:"max_degradation,omitempty"`
}

// Variant is one variant of an experiment or of a funnel step.
type Variant struct {
	ID      string `json:"id"`
	Key     string `json:"key"`
	Name    string `json:"name"`
	Control bool   `json:"control"`
	// Payload is the JSON value served with the variant ("null" when none).
	Payload json.RawMessage `json:"payload"`
}

// Settings are an experiment's decision and allocation settings as stored.
// The optional ones without a default are nil when not set, which means
// "the strategy's own default".
type Settings struct {
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
	// MinEffect is the relative margin of the no_difference decision.
	MinEffect float64 `json:"min_effect"`
	// ConversionWindow is the experiment's conversion window ("7d" or a
	// Go duration), nil when it has none.
	ConversionWindow *string `json:"conversion_window"`
	// PriorLiftSD is the prior on relative lifts a winner must also
	// convince, nil when there is none.
	PriorLiftSD *float64 `json:"prior_lift_sd"`
	// LearnPrior says whether, without PriorLiftSD, a winner must also
	// convince the prior learned from the workspace's completed
	// experiments (Results.Prior).
	LearnPrior bool `json:"learn_prior"`
}

// CreateExperimentRequest is the body of CreateExperiment. Key and at
// least two Variants are required; the rest has defaults (a binary metric,
// the adaptive strategy, the engine's decision settings).
type CreateExperimentRequest struct {
	// Key identifies the experiment in your code: 1 to 64 of a-z, 0-9,
	// '-' and '_', unique in the workspace.
	Key string `json:"key"`
	// Name is for people; the key when empty.
	Name     string        `json:"name,omitempty"`
	Metric   Metric        `json:"metric,omitempty"`
	Strategy Strategy      `json:"strategy,omitempty"`
	Variants []VariantSpec `json:"variants"`
	// Settings overrides some settings; nil keeps every default.
	Settings *SettingsSpec `json:"settings,omitempty"`
	// Start creates the experiment running instead of as a draft.
	Start bool `json:"start,omitempty"`
	// Targeting, when set, are the rules a unit must match to enter.
	Targeting *Targeting `json:"targeting,omitempty"`
	// Layer names a layer (CreateLayer) the experiment joins, taking
	// LayerShare of its units; a share that does not fit is a 409.
	Layer      string  `json:"layer,omitempty"`
	LayerShare float64 `json:"layer_share,omitempty"`
	// Metrics are up to 10 secondary and guardrail metrics; events name
	// theirs in Event.Metric.
	Metrics []MetricSpec `json:"metrics,omitempty"`
}

// VariantSpec is a variant to create. The first one is the control unless
// another says Control.
type VariantSpec struct {
	Key     string `json:"key"`
	Name    string `json:"name,omitempty"`
	Control bool   `json:"control,omitempty"`
	// Payload is any value encoding/json can marshal (a struct, a map, a
	// json.RawMessage), served with the variant; at most 16 KiB of JSON.
	Payload any `json:"payload,omitempty"`
}

// SettingsSpec overrides settings of a new experiment; a nil field keeps
// its default. Go 1.26's new(expr) makes the pointers short to write:
// &client.SettingsSpec{DecisionThreshold: new(0.99), Seed: new(int64(42))}.
type SettingsSpec struct {
	// MinSamples is how many units each variant needs before a winner may
	// be declared.
	MinSamples *int64 `json:"min_samples,omitempty"`
	// DecisionThreshold is the probability of being best a winner needs,
	// in (0, 1).
	DecisionThreshold *float64 `json:"decision_threshold,omitempty"`
	// LossThreshold is the expected loss a winner may still carry, in the
	// metric's unit.
	LossThreshold *float64 `json:"loss_threshold,omitempty"`
	// WeightFloor is the least share of traffic any variant keeps.
	WeightFloor *float64 `json:"weight_floor,omitempty"`
	// Alpha is the significance level of the sequential strategy.
	Alpha *float64 `json:"alpha,omitempty"`
	// Traffic is the share of units that take part, in (0, 1].
	Traffic *float64 `json:"traffic,omitempty"`
	// Seed makes the experiment's random draws reproducible.
	Seed         *int64   `json:"seed,omitempty"`
	ControlShare *float64 `json:"control_share,omitempty"`
	AutoComplete *bool    `json:"auto_complete,omitempty"`
	Tau2         *float64 `json:"tau2,omitempty"`
	Epsilon      *float64 `json:"epsilon,omitempty"`
	Gamma        *float64 `json:"gamma,omitempty"`
	// ConversionWindow ("24h", "7d") is how long after its assignment a
	// unit's events count: later ones are stored as late, never counted,
	// and units still inside their window count by the probability that
	// their outcome would have arrived by now. Nil: no window.
	ConversionWindow *string `json:"conversion_window,omitempty"`
	// MinEffect is the relative margin of no_difference, in (0, 1).
	MinEffect *float64 `json:"min_effect,omitempty"`
	// PriorLiftSD, when positive, is a prior on relative lifts that a
	// winner must also convince at DecisionThreshold: 0.03 for a team
	// whose true lifts are mostly within a few percent.
	PriorLiftSD *float64 `json:"prior_lift_sd,omitempty"`
	// LearnPrior false turns off the prior learned from the workspace's
	// completed experiments (on by default; used without PriorLiftSD).
	LearnPrior *bool `json:"learn_prior,omitempty"`
}

// CreateExperiment creates an experiment (POST /v1/experiments). It is sent
// with an Idempotency-Key, so a retry after a lost response returns the
// experiment created the first time. A key that exists is a 409
// (IsConflict), invalid values a 422 whose Fields name them (IsInvalid).
func (c *Client) CreateExperiment(ctx context.Context, req CreateExperimentRequest, opts ...CallOption) (*Experiment, error) {
	var out Experiment
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("experiments"), body: req, keyed: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetExperiment returns the experiment whose id or key is ref.
func (c *Client) GetExperiment(ctx context.Context, ref string, opts ...CallOption) (*Experiment, error) {
	var out Experiment
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("experiments", ref), idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListParams selects a page of a list.
type ListParams struct {
	// Limit is the page size, 1 to 100; 0 means the server's default (20).
	Limit int
	// Cursor is the NextCursor of the previous page; empty for the first.
	Cursor string
	// Status keeps only experiments with this status; empty keeps all.
	// Funnel lists ignore it.
	Status Status
}

func (p ListParams) query(withStatus bool) url.Values {
	q := url.Values{}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
	if withStatus && p.Status != "" {
		q.Set("status", string(p.Status))
	}
	return q
}

// Page is one page of a list, in the list's order (oldest first, but
// deliveries newest first).
type Page[T any] struct {
	Items []T `json:"items"`
	// NextCursor fetches the next page; nil on the last one.
	NextCursor *string `json:"next_cursor"`
}

// ListExperiments returns one page of the workspace's experiments, oldest
// first. Experiments iterates over all of them.
func (c *Client) ListExperiments(ctx context.Context, p ListParams, opts ...CallOption) (*Page[Experiment], error) {
	var out Page[Experiment]
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("experiments"), query: p.query(true), idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Experiments iterates over every experiment that p selects, fetching
// pages of p.Limit as it goes (p.Cursor starts later). An error ends the
// iteration after it is yielded:
//
//	for e, err := range c.Experiments(ctx, client.ListParams{Status: client.StatusRunning}) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(e.Key)
//	}
func (c *Client) Experiments(ctx context.Context, p ListParams, opts ...CallOption) iter.Seq2[Experiment, error] {
	return paginate(p, func(p ListParams) (*Page[Experiment], error) { return c.ListExperiments(ctx, p, opts...) })
}

// paginate walks the pages that list returns.
func paginate[T any](p ListParams, list func(ListParams) (*Page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			page, err := list(p)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range page.Items {
				if !yield(item, nil) {
					return
				}
			}
			if page.NextCursor == nil || *page.NextCursor == "" {
				return
			}
			p.Cursor = *page.NextCursor
		}
	}
}

// transition sends one lifecycle change of an experiment or funnel.
func (c *Client) transition(ctx context.Context, path string, body any, out any, opts []CallOption) error {
	return c.do(ctx, request{method: http.MethodPost, path: path, body: body, keyed: true}, out, opts)
}

func (c *Client) experimentTransition(ctx context.Context, ref, action string, body any, opts []CallOption) (*Experiment, error) {
	var out Experiment
	if err := c.transition(ctx, pathOf("experiments", ref, action), body, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// StartExperiment starts a draft experiment: it serves assignments from now
// on. Any other status is a 409 (IsConflict).
func (c *Client) StartExperiment(ctx context.Context, ref string, opts ...CallOption) (*Experiment, error) {
	return c.experimentTransition(ctx, ref, "start", nil, opts)
}

// PauseExperiment pauses a running experiment: assignments are refused
// (409) until ResumeExperiment; events of units already assigned still
// count.
func (c *Client) PauseExperiment(ctx context.Context, ref string, opts ...CallOption) (*Experiment, error) {
	return c.experimentTransition(ctx, ref, "pause", nil, opts)
}

// ResumeExperiment resumes a paused experiment.
func (c *Client) ResumeExperiment(ctx context.Context, ref string, opts ...CallOption) (*Experiment, error) {
	return c.experimentTransition(ctx, ref, "resume", nil, opts)
}

// CompleteExperiment completes a running or paused experiment. With a
// winner (a variant key) that variant is served to every unit from then
// on; with "" the experiment keeps the winner its decision rule declared,
// if any.
func (c *Client) CompleteExperiment(ctx context.Context, ref, winner string, opts ...CallOption) (*Experiment, error) {
	var body any
	if winner != "" {
		body = struct {
			Winner string `json:"winner"`
		}{winner}
	}
	return c.experimentTransition(ctx, ref, "complete", body, opts)
}

// ArchiveExperiment archives an experiment that is not running (pause or
// complete it first, so that archiving never silently stops traffic).
func (c *Client) ArchiveExperiment(ctx context.Context, ref string, opts ...CallOption) (*Experiment, error) {
	return c.experimentTransition(ctx, ref, "archive", nil, opts)
}
