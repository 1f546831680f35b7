package store

import (
	"context"
	"time"
)

// Campaign is an email or push campaign: variants (subject lines, messages,
// send slots) sent to an audience by the user's own sender, which asks
// Samplit for each recipient's variant and reports what happened. See
// design.md, "Email and notification optimizers".
type Campaign struct {
	ID          string
	WorkspaceID string
	Key         string
	Name        string
	// Channel is email or push; Objective open, click or value; Mode
	// waves or split_then_winner (engine.CampaignModes).
	Channel      string
	Objective    string
	Mode         string
	AudienceSize int64
	Status       Status
	Variants     []Variant
	Settings     CampaignSettings
	// Winner is the key of the declared winner, "" while none is.
	Winner string
	// NoDifferenceAt is when the no_difference decision (every variant
	// provably within ± min_effect of the leader) was first recorded; nil
	// while it has not been.
	NoDifferenceAt *time.Time
	// SplitPick is the key of the variant a split_then_winner campaign sends
	// to after its test, chosen once (PickCampaignSplit); "" until then.
	SplitPick string
	// Stopped holds the keys of the variants the guardrail stopped, in
	// variant order.
	Stopped []string
	// Sent is the number of recipients sent, Waves the number of calls
	// that sent at least one new recipient.
	Sent        int64
	Waves       int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	StartedAt   *time.Time
	CompletedAt *time.Time
}

// VariantByKey returns the campaign's variant with the key.
func (c *Campaign) VariantByKey(key string) (Variant, bool) {
	for _, v := range c.Variants {
		if v.Key == key {
			return v, true
		}
	}
	return Variant{}, false
}

// CampaignSettings are a campaign's tunables, stored as JSON; the API fills
// every default at creation.
type CampaignSettings struct {
	// TestShare is the share of AudienceSize a split campaign tests on.
	TestShare float64 `json:"test_share"`
	// AttributionWindow is how long after its send an event counts; later
	// events are stored and reported as late, never counted.
	AttributionWindow time.Duration `json:"attribution_window"`
	// DiscountHalfLife, when positive, discounts sends by their age
	// (discounted Thompson sampling); push campaigns have one by default.
	DiscountHalfLife  time.Duration      `json:"discount_half_life"`
	Guardrail         *CampaignGuardrail `json:"guardrail,omitempty"`
	Seed              *int64             `json:"seed"`
	WeightFloor       float64            `json:"weight_floor"`
	MinSamples        int                `json:"min_samples"`
	DecisionThreshold float64            `json:"decision_threshold"`
	LossThreshold     float64            `json:"loss_threshold"`
	// Alpha and MinEffect are the winner test's level and the relative
	// margin of no_difference, as in an experiment's Settings; 0 in
	// campaigns stored before they existed, which means the engine's
	// defaults.
	Alpha     float64 `json:"alpha,omitempty"`
	MinEffect float64 `json:"min_effect,omitempty"`
	// PriorLiftSD, when positive, is the prior on relative lifts a winner
	// must also convince, as in an experiment's Settings; 0: none.
	PriorLiftSD float64 `json:"prior_lift_sd,omitempty"`
	// LearnPrior, when false, turns off the prior learned from the
	// workspace's completed campaigns; nil (the default) is true.
	LearnPrior *bool `json:"learn_prior,omitempty"`
}

// Decision returns the settings of the campaign's winner and no_difference
// rule as an experiment's Settings, the form the engine's mapping and the
// dashboard read; the other fields are zero.
func (s CampaignSettings) Decision() Settings {
	return Settings{MinSamples: s.MinSamples, DecisionThreshold: s.DecisionThreshold, LossThreshold: s.LossThreshold,
		WeightFloor: s.WeightFloor, Alpha: s.Alpha, MinEffect: s.MinEffect, PriorLiftSD: s.PriorLiftSD, LearnPrior: s.LearnPrior}
}

// CampaignGuardrail stops a variant whose Event rate is credibly above
// MaxRate (posterior probability at least Confidence).
type CampaignGuardrail struct {
	Event      string  `json:"event"`
	MaxRate    float64 `json:"max_rate"`
	Confidence float64 `json:"confidence"`
}

// The campaign event types.
const (
	CampaignDelivered   = "delivered"
	CampaignOpen        = "open"
	CampaignClick       = "click"
	CampaignUnsubscribe = "unsubscribe"
	CampaignBounce      = "bounce"
	CampaignConversion  = "conversion"
)

// CampaignEventTypes lists the event types in the order of the API.
func CampaignEventTypes() []string {
	return []string{CampaignDelivered, CampaignOpen, CampaignClick, CampaignUnsubscribe, CampaignBounce, CampaignConversion}
}

// Send is one recipient sent one variant.
type Send struct {
	Recipient string
	VariantID string
	// Propensity, when positive, is the probability the send had of getting
	// its variant in a random draw among two or more variants (a wave, a
	// split's test): the send is tested (CampaignCounters.Tested). 0: not
	// drawn at random (a split's second phase).
	Propensity float64
}

// SendBatch is the sends of one call (one wave), recorded in one
// transaction.
type SendBatch struct {
	WorkspaceID string
	CampaignID  string
	// ExpectSent, when not negative, makes the batch fail with Conflict
	// unless the campaign has exactly that many sends: the optimistic lock
	// that keeps a split campaign's test exactly even when calls race.
	ExpectSent int64
	At         time.Time
	Items      []Send
	// Probs are the probabilities, by variant id, that each tested send of
	// the call had of getting each variant (CampaignCounters.Expected).
	Probs map[string]float64
}

// SendsResult is what RecordSends did.
type SendsResult struct {
	// Wave numbers the call's new sends (from 1); 0 when it had none.
	Wave int64
	// VariantIDs is, per item, the variant stored for the recipient: the
	// item's own, or the one of an earlier send when it raced another call.
	VariantIDs []string
	// New is, per item, whether this call sent the recipient.
	New []bool
}

// CampaignEvent is one thing that happened to a send.
type CampaignEvent struct {
	Recipient      string
	Type           string
	Value          float64
	At             time.Time
	IdempotencyKey string
}

// CampaignEventBatch is a set of events of one campaign, applied in order.
type CampaignEventBatch struct {
	WorkspaceID string
	CampaignID  string
	// Window is the attribution window: an event later than this after its
	// send is stored but counted only as late.
	Window time.Duration
	// Objective (open, click or value) names the event whose delays the
	// slots' histograms record: the first counted open, click or conversion
	// of a send. ReceivedAt is when the server received the batch (zero:
	// each event's own time); the delay recorded is from the send to it.
	Objective  string
	ReceivedAt time.Time
	Items      []CampaignEvent
}

// OutcomeLate is the outcome of an event stored after the attribution
// window of its send, or after the conversion window of its experiment
// unit: kept (counted as late, its idempotency key claimed), never counted
// as an outcome.
const OutcomeLate Outcome = "late"

// CampaignCounters are the additive counters of the sends of one variant
// made in one hour (Slot), with what those sends did: rewards are credited
// to the hour of their send, which is what discounting by send age needs.
type CampaignCounters struct {
	VariantID string
	Slot      time.Time
	Sent      int64
	// Delivered, Opens, … count sends (each at most once) whose event came
	// within the window; open implies delivered, click implies open.
	Delivered, Opens, Clicks, Unsubscribes, Bounces, Conversions int64
	// Value and ValueSquares add up the per-send conversion values and
	// their squares.
	Value, ValueSquares float64
	// Late counts events after the window.
	Late int64
	// SentAtSum is Σ (send time − Slot) in seconds over the slot's sends, so
	// that SentAtSum/Sent is their mean offset; LastSentAt is the latest
	// send. Delays counts the objective's first counted event per send by the
	// delay from the send to its receipt, in the buckets of engine.DelayEdges
	// (engine.DelayBuckets of them).
	SentAtSum  float64
	LastSentAt time.Time
	Delays     [12]int64
	// The anytime-valid tests' sums (engine.CampaignArm) over the slot's
	// tested sends, each with its propensity p: Tested counts them,
	// TestSum and TestSumSquares add up their objective's outcome y (1 for
	// an open or a click; the value of a value objective) and its square;
	// InvP, InvP2, YInvP, YInvP2, Y2InvP2 are Σ1/p, Σ1/p², Σy/p, Σy/p²,
	// Σy²/p². Expected, ExpectedSquares and InvExpected are Σw, Σw², Σ1/w
	// over every tested send of the hour of the probability w the variant
	// had of getting it.
	Tested                                 int64
	TestSum, TestSumSquares                float64
	InvP, InvP2, YInvP, YInvP2, Y2InvP2    float64
	Expected, ExpectedSquares, InvExpected float64
}

// WaveCounters count the sends of one variant in one wave.
type WaveCounters struct {
	Wave      int64
	VariantID string
	Sends     int64
	At        time.Time
}

// MaxResultWaves bounds the waves CampaignCounts returns (the most recent):
// a push sender that calls once per recipient makes a wave per send.
const MaxResultWaves = 100

// CampaignCounts is everything a campaign's results are computed from:
// O(variants × hours with sends + waves) rows, whatever the audience.
type CampaignCounts struct {
	Slots []CampaignCounters
	Waves []WaveCounters
}

// Campaigns stores campaigns, their sends and events, and the counters
// derived from them, each change and its counter updates in one
// transaction.
type Campaigns interface {
	// CreateCampaign stores c and its variants; Conflict when the key exists.
	CreateCampaign(ctx context.Context, c Campaign) error
	// GetCampaign finds by id or, failing that, by key, in the workspace.
	GetCampaign(ctx context.Context, workspaceID, ref string) (Campaign, error)
	ListCampaigns(ctx context.Context, workspaceID string, p ListParams) ([]Campaign, error)
	// TransitionCampaign applies t (its Winner fields are ignored).
	TransitionCampaign(ctx context.Context, workspaceID, id string, t Transition) (Campaign, error)
	// DeclareCampaignWinner records the winner once and reports whether
	// this call set it. It is the one place a campaign's winner is
	// recorded: the campaign.winner_found webhook belongs with it.
	// The events (campaign.winner_found) are written in the same transaction
	// by the call that records it, and by no other.
	DeclareCampaignWinner(ctx context.Context, workspaceID, id, winner string, at time.Time, events ...OutboxEvent) (bool, error)
	// MarkCampaignNoDifference records the no_difference decision once, as
	// DeclareCampaignWinner records a winner (campaign.no_difference).
	MarkCampaignNoDifference(ctx context.Context, workspaceID, id string, at time.Time, events ...OutboxEvent) (bool, error)
	// StopCampaignVariant records once that the guardrail stopped the
	// variant and reports whether this call did: the one place for the
	// campaign.guardrail_tripped webhook.
	// The events (campaign.guardrail_tripped) are written likewise.
	StopCampaignVariant(ctx context.Context, workspaceID, campaignID, variantID string, at time.Time, events ...OutboxEvent) (bool, error)
	// PickCampaignSplit records pick as the split campaign's pick if the
	// stored one is still old (compare and swap: "" for the first pick, a
	// stopped variant to replace it) and returns the pick stored after the
	// call, this one's or another replica's.
	PickCampaignSplit(ctx context.Context, workspaceID, id, old, pick string) (string, error)
	// CampaignRecipients returns the stored variant id of each recipient
	// already sent.
	CampaignRecipients(ctx context.Context, workspaceID, campaignID string, recipients []string) (map[string]string, error)
	// RecordSends stores a call's sends in one transaction.
	RecordSends(ctx context.Context, b SendBatch) (SendsResult, error)
	// RecordCampaignEvents applies the batches in one transaction and
	// returns one result per event, in order; when it returns without
	// error, every accepted event is durable.
	RecordCampaignEvents(ctx context.Context, batches []CampaignEventBatch) ([][]EventResult, error)
	// CampaignCounts returns the campaign's counters, with its last
	// MaxResultWaves waves.
	CampaignCounts(ctx context.Context, workspaceID, campaignID string) (CampaignCounts, error)
	// FinishedCampaignCounters returns the totals of the workspace's most
	// recently completed campaigns (completed_at set), at most limit of
	// them, newest first, each variant's counters added over its slots, in
	// variant order: the history a campaign's prior on lifts is learned
	// from (engine.LearnLiftPrior).
	FinishedCampaignCounters(ctx context.Context, workspaceID string, limit int) ([]FinishedCampaign, error)
}

// FinishedCampaign is a completed campaign's objective and its variants'
// totals (VariantID, Sent, Bounces, Opens, Clicks and Conversions set), in
// variant order.
type FinishedCampaign struct {
	ID        string
	Objective string
	Variants  []CampaignCounters
}
