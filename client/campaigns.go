package client

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"net/http"
	"time"
)

// MaxSends is the most recipients Send and the most events
// TrackCampaignMany send in one call, the server's limit.
const MaxSends = 10_000

// The campaign channels, objectives, modes and event types.
const (
	ChannelEmail = "email"
	ChannelPush  = "push"

	ObjectiveOpen  = "open"
	ObjectiveClick = "click"
	ObjectiveValue = "value"

	// ModeWaves sends the audience in waves, each shared by the current
	// posterior (batched Thompson sampling).
	ModeWaves = "waves"
	// ModeSplitThenWinner is the classic test: a share of the audience is
	// split evenly, then every send gets the leader.
	ModeSplitThenWinner = "split_then_winner"

	CampaignDelivered   = "delivered"
	CampaignOpen        = "open"
	CampaignClick       = "click"
	CampaignUnsubscribe = "unsubscribe"
	CampaignBounce      = "bounce"
	CampaignConversion  = "conversion"
)

// Campaign is a message (email or push) whose variants compete for an
// objective while the audience is being sent.
type Campaign struct {
	ID        string `json:"id"`
	Key       string `json:"key"`
	Name      string `json:"name"`
	Channel   string `json:"channel"`
	Objective string `json:"objective"`
	Mode      string `json:"mode"`
	// AudienceSize is the number of recipients planned (0 when not given).
	AudienceSize int64             `json:"audience_size"`
	Status       Status            `json:"status"`
	Variants     []CampaignVariant `json:"variants"`
	Settings     CampaignSettings  `json:"settings"`
	Winner       *string           `json:"winner"`
	// NoDifferenceAt is when the no_difference decision was recorded (every
	// variant provably within ± min_effect of the leader), nil while not.
	NoDifferenceAt *time.Time `json:"no_difference_at"`
	// Sent counts the sends so far, in Waves calls of Send.
	Sent        int64      `json:"sent"`
	Waves       int64      `json:"waves"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	StartedAt   *time.Time `json:"started_at"`
	CompletedAt *time.Time `json:"completed_at"`
}

// CampaignVariant is one variant of a campaign.
type CampaignVariant struct {
	ID      string          `json:"id"`
	Key     string          `json:"key"`
	Name    string          `json:"name"`
	Payload json.RawMessage `json:"payload"`
	// Stopped is true once the guardrail stopped the variant.
	Stopped bool `json:"stopped"`
}

// CampaignSettings are a campaign's settings as stored. Durations are
// written as the API takes them: "72h", "7d".
type CampaignSettings struct {
	TestShare         float64            `json:"test_share"`
	AttributionWindow string             `json:"attribution_window"`
	DiscountHalfLife  *string            `json:"discount_half_life"`
	Guardrail         *CampaignGuardrail `json:"guardrail"`
	Seed              *int64             `json:"seed"`
	WeightFloor       float64            `json:"weight_floor"`
	MinSamples        int                `json:"min_samples"`
	DecisionThreshold float64            `json:"decision_threshold"`
	LossThreshold     float64            `json:"loss_threshold"`
	// Alpha is the level of the anytime-valid winner test; MinEffect the
	// relative margin within which every variant must provably lie for
	// the no_difference decision.
	Alpha     float64 `json:"alpha"`
	MinEffect float64 `json:"min_effect"`
	// PriorLiftSD is the prior on relative lifts a winner must also
	// convince, nil when there is none.
	PriorLiftSD *float64 `json:"prior_lift_sd"`
	// LearnPrior says whether, without PriorLiftSD, a winner must also
	// convince the prior learned from the workspace's completed campaigns
	// (CampaignResults.Prior).
	LearnPrior bool `json:"learn_prior"`
}

// CampaignGuardrail stops a variant whose rate of Event (unsubscribe or
// bounce) is above MaxRate with the given Confidence.
type CampaignGuardrail struct {
	Event      string  `json:"event"`
	MaxRate    float64 `json:"max_rate"`
	Confidence float64 `json:"confidence"`
}

// CreateCampaignRequest is the body of CreateCampaign. Key, Channel and two
// or more Variants are required; AudienceSize too in ModeSplitThenWinner.
type CreateCampaignRequest struct {
	Key      string                `json:"key"`
	Name     string                `json:"name,omitempty"`
	Channel  string                `json:"channel"`
	Variants []CampaignVariantSpec `json:"variants"`
	// Objective defaults to "click" for email and "open" for push.
	Objective string `json:"objective,omitempty"`
	// Mode defaults to ModeWaves.
	Mode         string                `json:"mode,omitempty"`
	AudienceSize *int64                `json:"audience_size,omitempty"`
	Settings     *CampaignSettingsSpec `json:"settings,omitempty"`
	Start        bool                  `json:"start,omitempty"`
}

// CampaignVariantSpec is a campaign variant to create. A payload object
// with a "send_hour" (0 to 23) makes the variant a send slot.
type CampaignVariantSpec struct {
	Key     string `json:"key"`
	Name    string `json:"name,omitempty"`
	Payload any    `json:"payload,omitempty"`
}

// CampaignSettingsSpec overrides settings of a new campaign; a zero field
// keeps its default.
type CampaignSettingsSpec struct {
	TestShare *float64 `json:"test_share,omitempty"`
	// AttributionWindow and DiscountHalfLife are durations such as "36h"
	// or "7d" ("0" turns discounting off).
	AttributionWindow string                 `json:"attribution_window,omitempty"`
	DiscountHalfLife  string                 `json:"discount_half_life,omitempty"`
	Guardrail         *CampaignGuardrailSpec `json:"guardrail,omitempty"`
	Seed              *int64                 `json:"seed,omitempty"`
	WeightFloor       *float64               `json:"weight_floor,omitempty"`
	MinSamples        *int64                 `json:"min_samples,omitempty"`
	DecisionThreshold *float64               `json:"decision_threshold,omitempty"`
	LossThreshold     *float64               `json:"loss_threshold,omitempty"`
	// Alpha and MinEffect are in (0, 1); nil keeps the defaults (0.05).
	Alpha     *float64 `json:"alpha,omitempty"`
	MinEffect *float64 `json:"min_effect,omitempty"`
	// PriorLiftSD, from 0 to 1, is a prior on relative lifts (e.g. 0.03)
	// a winner must also convince; nil or 0: none.
	PriorLiftSD *float64 `json:"prior_lift_sd,omitempty"`
	// LearnPrior false turns off the prior learned from the workspace's
	// completed campaigns (on by default; used without PriorLiftSD).
	LearnPrior *bool `json:"learn_prior,omitempty"`
}

// CampaignGuardrailSpec sets a campaign's guardrail.
type CampaignGuardrailSpec struct {
	// Event is CampaignUnsubscribe or CampaignBounce.
	Event string `json:"event"`
	// MaxRate is required, in (0, 1).
	MaxRate float64 `json:"max_rate"`
	// Confidence is in [0.5, 1); nil keeps the default.
	Confidence *float64 `json:"confidence,omitempty"`
}

// CreateCampaign creates a campaign (POST /v1/campaigns), with an
// automatic Idempotency-Key like CreateExperiment.
func (c *Client) CreateCampaign(ctx context.Context, req CreateCampaignRequest, opts ...CallOption) (*Campaign, error) {
	var out Campaign
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("campaigns"), body: req, keyed: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetCampaign returns the campaign whose id or key is ref.
func (c *Client) GetCampaign(ctx context.Context, ref string, opts ...CallOption) (*Campaign, error) {
	var out Campaign
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("campaigns", ref), idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListCampaigns returns one page of the workspace's campaigns, oldest first
// (p.Status is ignored). Campaigns iterates over all of them.
func (c *Client) ListCampaigns(ctx context.Context, p ListParams, opts ...CallOption) (*Page[Campaign], error) {
	var out Page[Campaign]
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("campaigns"), query: p.query(false), idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Campaigns iterates over every campaign, page by page, like Experiments.
func (c *Client) Campaigns(ctx context.Context, p ListParams, opts ...CallOption) iter.Seq2[Campaign, error] {
	return paginate(p, func(p ListParams) (*Page[Campaign], error) { return c.ListCampaigns(ctx, p, opts...) })
}

func (c *Client) campaignTransition(ctx context.Context, ref, action string, opts []CallOption) (*Campaign, error) {
	var out Campaign
	if err := c.transition(ctx, pathOf("campaigns", ref, action), nil, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// StartCampaign starts a draft campaign.
func (c *Client) StartCampaign(ctx context.Context, ref string, opts ...CallOption) (*Campaign, error) {
	return c.campaignTransition(ctx, ref, "start", opts)
}

// PauseCampaign pauses a running campaign.
func (c *Client) PauseCampaign(ctx context.Context, ref string, opts ...CallOption) (*Campaign, error) {
	return c.campaignTransition(ctx, ref, "pause", opts)
}

// ResumeCampaign resumes a paused campaign.
func (c *Client) ResumeCampaign(ctx context.Context, ref string, opts ...CallOption) (*Campaign, error) {
	return c.campaignTransition(ctx, ref, "resume", opts)
}

// CompleteCampaign completes a running or paused campaign.
func (c *Client) CompleteCampaign(ctx context.Context, ref string, opts ...CallOption) (*Campaign, error) {
	return c.campaignTransition(ctx, ref, "complete", opts)
}

// SendsResult is the variant of each recipient of a Send call.
type SendsResult struct {
	// Wave numbers the call's new sends; nil when every recipient had been
	// sent before.
	Wave  *int64 `json:"wave"`
	Sends []Send `json:"sends"`
}

// Send is one recipient's message.
type Send struct {
	Recipient string          `json:"recipient"`
	Variant   string          `json:"variant"`
	Payload   json.RawMessage `json:"payload"`
}

// Send picks the variant of each recipient (up to MaxSends) as one wave,
// in the order given. A recipient keeps its variant, so the call is
// retried on temporary failures.
func (c *Client) Send(ctx context.Context, ref string, recipients []string, opts ...CallOption) (*SendsResult, error) {
	body := struct {
		Recipients []string `json:"recipients"`
	}{recipients}
	if recipients == nil {
		body.Recipients = []string{}
	}
	var out SendsResult
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("campaigns", ref, "sends"), body: body, idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// CampaignEvent is something a recipient did with a message.
type CampaignEvent struct {
	Recipient string `json:"recipient"`
	// Type is one of CampaignDelivered, CampaignOpen, CampaignClick,
	// CampaignUnsubscribe, CampaignBounce and CampaignConversion.
	Type string `json:"type"`
	// Value is for conversions only (revenue).
	Value *float64 `json:"value,omitempty"`
	// At is when it happened (default: when the server receives it);
	// events after the attribution window of their send are kept but not
	// counted.
	At *time.Time `json:"at,omitempty"`
	// IdempotencyKey makes the event count once however often it is sent
	// (an email provider's event id); events without one are not retried.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// CampaignEventsResult is the server's account of the events of one call.
type CampaignEventsResult struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	// Late counts events after the attribution window of their send.
	Late     int             `json:"late"`
	Rejected []RejectedEvent `json:"rejected"`
}

// TrackCampaign records one event. A recipient never sent is a 422.
func (c *Client) TrackCampaign(ctx context.Context, ref string, ev CampaignEvent, opts ...CallOption) (*CampaignEventsResult, error) {
	return c.trackCampaign(ctx, ref, ev, ev.IdempotencyKey != "", opts)
}

// TrackCampaignMany records up to MaxSends events, each accepted, counted
// as a duplicate or late, or rejected on its own. It is retried on
// temporary failures only when every event has an IdempotencyKey.
func (c *Client) TrackCampaignMany(ctx context.Context, ref string, events []CampaignEvent, opts ...CallOption) (*CampaignEventsResult, error) {
	if len(events) == 0 {
		return nil, errors.New("samplit: TrackCampaignMany needs at least one event")
	}
	keyed := true
	for _, ev := range events {
		keyed = keyed && ev.IdempotencyKey != ""
	}
	body := struct {
		Events []CampaignEvent `json:"events"`
	}{events}
	return c.trackCampaign(ctx, ref, body, keyed, opts)
}

func (c *Client) trackCampaign(ctx context.Context, ref string, body any, idempotent bool, opts []CallOption) (*CampaignEventsResult, error) {
	var out CampaignEventsResult
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("campaigns", ref, "events"), body: body, idempotent: idempotent}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// CampaignResults is the analysis of a campaign.
type CampaignResults struct {
	CampaignID string                  `json:"campaign_id"`
	Status     Status                  `json:"status"`
	Channel    string                  `json:"channel"`
	Objective  string                  `json:"objective"`
	Mode       string                  `json:"mode"`
	Sent       int64                   `json:"sent"`
	Variants   []CampaignVariantResult `json:"variants"`
	// Leader is the variant most likely to be best now; Winner the one
	// the decision rule declared.
	Leader   *string  `json:"leader"`
	Winner   *string  `json:"winner"`
	Decision Decision `json:"decision"`
	// SplitPick is the variant a split_then_winner campaign sends to after
	// its test, chosen once on the matured counts; nil until then.
	SplitPick *string `json:"split_pick"`
	// OutcomeDelay is the estimated delay from a send to the receipt of its
	// objective event, by which each send is counted.
	OutcomeDelay OutcomeDelay `json:"outcome_delay"`
	// Waves are the most recent waves, oldest first.
	Waves     []Wave    `json:"waves"`
	UpdatedAt time.Time `json:"updated_at"`
	// Prior is the prior on lifts a winner must also convince, nil when
	// there is none.
	Prior *LiftPrior `json:"prior"`
}

// OutcomeDelay is a campaign's estimated outcome delay distribution F.
type OutcomeDelay struct {
	// Events is the number of delays observed; with none every send counts
	// as a trial.
	Events int64 `json:"events"`
	// Horizon (the largest delay F is estimated to) and Median are Go
	// durations.
	Horizon string `json:"horizon"`
	Median  string `json:"median"`
	// Matured is the matured trials' share of the sends not bounced.
	Matured float64      `json:"matured"`
	CDF     []DelayPoint `json:"cdf"`
}

// DelayPoint is F at one age.
type DelayPoint struct {
	Age string  `json:"age"`
	F   float64 `json:"f"`
}

// CampaignVariantResult is one variant's line of CampaignResults.
type CampaignVariantResult struct {
	Key          string  `json:"key"`
	Sent         int64   `json:"sent"`
	Delivered    int64   `json:"delivered"`
	Opens        int64   `json:"opens"`
	Clicks       int64   `json:"clicks"`
	Unsubscribes int64   `json:"unsubscribes"`
	Bounces      int64   `json:"bounces"`
	Conversions  int64   `json:"conversions"`
	Value        float64 `json:"value"`
	Late         int64   `json:"late"`
	// MaturedTrials are the sends not bounced, each counted by the
	// probability that its outcome has arrived; Rate is the objective per
	// matured trial (what allocation and decisions use), with its 95%
	// credible interval, and RawRate per send not bounced, counting the
	// sends whose outcome cannot have arrived yet as failures.
	MaturedTrials float64  `json:"matured_trials"`
	Rate          float64  `json:"rate"`
	RawRate       float64  `json:"raw_rate"`
	CILow         float64  `json:"ci_low"`
	CIHigh        float64  `json:"ci_high"`
	PBest         float64  `json:"p_best"`
	ExpectedLoss  *float64 `json:"expected_loss"`
	Weight        float64  `json:"weight"`
	// Guardrail is nil for a campaign without one.
	Guardrail *GuardrailResult `json:"guardrail"`
}

// GuardrailResult is a variant's guardrail state.
type GuardrailResult struct {
	Event   string  `json:"event"`
	MaxRate float64 `json:"max_rate"`
	// Rate is the observed rate, PAbove the posterior probability that the
	// true rate is above MaxRate (for reading; it decides nothing).
	Rate   float64 `json:"rate"`
	PAbove float64 `json:"p_above"`
	// EValue is the anytime-valid evidence that the rate is above MaxRate
	// and PValue = min(1, 1/EValue) its always-valid p-value: the variant is
	// stopped (Tripped) when PValue falls to 1 − the guardrail's confidence,
	// however often anyone looked (docs/campaigns.md).
	EValue  float64 `json:"e_value"`
	PValue  float64 `json:"p_value"`
	Tripped bool    `json:"tripped"`
}

// Wave is one Send call that sent new recipients.
type Wave struct {
	Wave  int64     `json:"wave"`
	At    time.Time `json:"at"`
	Sends int64     `json:"sends"`
	// Shares maps each variant to its share of the wave.
	Shares map[string]float64 `json:"shares"`
}

// CampaignResults returns the campaign's current analysis.
func (c *Client) CampaignResults(ctx context.Context, ref string, opts ...CallOption) (*CampaignResults, error) {
	var out CampaignResults
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("campaigns", ref, "results"), idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}
