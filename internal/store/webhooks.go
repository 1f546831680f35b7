package store

import (
	"context"
	"encoding/json"
	"time"
)

// EventType names what happened, as webhook subscribers see it.
type EventType string

// The event types. Campaign events are emitted by the campaign optimizer;
// ping only by a test delivery, to the endpoint it tests.
const (
	EventExperimentStarted     EventType = "experiment.started"
	EventExperimentPaused      EventType = "experiment.paused"
	EventExperimentResumed     EventType = "experiment.resumed"
	EventExperimentCompleted   EventType = "experiment.completed"
	EventExperimentWinnerFound EventType = "experiment.winner_found"
	EventExperimentSRMDetected EventType = "experiment.srm_detected"
	// EventExperimentNoDifference: every variant is provably within
	// ± min_effect of the leader (decision state no_difference).
	EventExperimentNoDifference EventType = "experiment.no_difference"
	// EventExperimentGuardrail: a guardrail metric stopped a variant.
	EventExperimentGuardrail EventType = "experiment.guardrail_tripped"
	EventFunnelWinnerFound   EventType = "funnel.winner_found"
	// EventFunnelNoDifference: every variant of a funnel step is provably
	// within ± min_effect of the step's leader.
	EventFunnelNoDifference  EventType = "funnel.no_difference"
	EventCampaignWinnerFound EventType = "campaign.winner_found"
	// EventCampaignNoDifference: every variant of a campaign is provably
	// within ± min_effect of the leader.
	EventCampaignNoDifference EventType = "campaign.no_difference"
	EventCampaignGuardrail    EventType = "campaign.guardrail_tripped"
	EventPing                 EventType = "ping"
)

// EventTypes lists every event type an endpoint may subscribe to.
var EventTypes = []EventType{
	EventExperimentStarted, EventExperimentPaused, EventExperimentResumed, EventExperimentCompleted,
	EventExperimentWinnerFound, EventExperimentSRMDetected, EventExperimentNoDifference, EventExperimentGuardrail, EventFunnelWinnerFound,
	EventFunnelNoDifference, EventCampaignWinnerFound, EventCampaignNoDifference, EventCampaignGuardrail, EventPing,
}

// Known reports whether t is one of EventTypes.
func (t EventType) Known() bool {
	for _, k := range EventTypes {
		if t == k {
			return true
		}
	}
	return false
}

// OutboxEvent is something that happened, written in the same transaction
// as the change that caused it (the transactional outbox): a crash can
// neither lose it nor announce a change that did not commit. The store fans
// it out, in that transaction, into one Delivery per enabled endpoint of the
// workspace subscribed to its type.
type OutboxEvent struct {
	ID          string // "evt_…": the webhook-id of every delivery of it
	WorkspaceID string // set by the store to the workspace of the change when empty
	Type        EventType
	Data        json.RawMessage // the "data" object of the payload
	CreatedAt   time.Time
}

// Webhook is an endpoint that receives the workspace's events.
//
// Secrets are stored sealed (internal/seal, under the state key, bound to
// the webhook's id): a copy of the database alone does not let anyone forge
// deliveries. The store handles the sealed bytes only.
type Webhook struct {
	ID          string
	WorkspaceID string
	URL         string
	Description string
	Events      []EventType
	Enabled     bool
	// DisabledReason says why Samplit disabled the endpoint ("" when a user
	// did, or when it is enabled).
	DisabledReason string
	// Secret is the sealed signing secret and SecretKeyID the state key it
	// is sealed under.
	SecretKeyID string
	Secret      []byte
	// PrevSecret, sealed under PrevKeyID, is the secret before the last
	// rotation; deliveries are signed with it too until PrevUntil.
	PrevKeyID  string
	PrevSecret []byte
	PrevUntil  *time.Time
	// FailingSince is the first failed attempt since the last success: the
	// endpoint is disabled once it has failed for the whole retry horizon.
	FailingSince *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// WebhookPatch changes some fields of a webhook; nil fields stay.
type WebhookPatch struct {
	URL         *string
	Description *string
	Events      []EventType // nil: unchanged
	Enabled     *bool
	At          time.Time
}

// SecretRotation replaces a webhook's secret; the old one stays valid
// (deliveries carry both signatures) until PrevUntil.
type SecretRotation struct {
	KeyID     string
	Secret    []byte
	PrevUntil time.Time
	At        time.Time
}

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

// The delivery statuses.
const (
	DeliveryPending   DeliveryStatus = "pending"   // waiting for its next attempt
	DeliverySucceeded DeliveryStatus = "succeeded" // a 2xx answer was received
	DeliveryFailed    DeliveryStatus = "failed"    // every scheduled attempt failed
)

// DeliveryBacklog is what waits in the outbox (Webhooks.DeliveryBacklog).
type DeliveryBacklog struct {
	Pending   int64         // deliveries still to send to enabled endpoints
	OldestDue time.Duration // how long the most overdue one has been due
}

// Delivery is one event for one endpoint, with its attempts.
type Delivery struct {
	ID            string // "dlv_…"
	WebhookID     string
	WorkspaceID   string
	EventID       string
	EventType     EventType
	Status        DeliveryStatus
	Attempts      int
	NextAttemptAt *time.Time // nil once succeeded or failed
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// AttemptLog lists the attempts, oldest first (filled by
	// ListDeliveries and GetDelivery only).
	AttemptLog []DeliveryAttempt
}

// DeliveryAttempt is one HTTP request of a delivery.
type DeliveryAttempt struct {
	At         time.Time
	StatusCode int // 0 when no response was received
	Latency    time.Duration
	Error      string // "" on success
}

// ClaimedDelivery is a delivery leased to one worker, with everything
// needed to send it: the event and the endpoint as they are now.
type ClaimedDelivery struct {
	Delivery
	Event   OutboxEvent
	Webhook Webhook
}

// AttemptOutcome is what a worker reports after an attempt.
type AttemptOutcome struct {
	Attempt DeliveryAttempt
	// Succeeded is true for a 2xx answer.
	Succeeded bool
	// NextAttemptAt is when to try again; nil when it succeeded or the
	// schedule is exhausted. In the latter case the delivery fails, and the
	// endpoint is disabled when nothing has succeeded since the delivery's
	// first attempt: it has been failing for the whole retry horizon.
	NextAttemptAt *time.Time
}

// Webhooks stores webhook endpoints, the outbox and the deliveries.
type Webhooks interface {
	// CreateWebhook stores w; NotFound when the workspace does not exist.
	CreateWebhook(ctx context.Context, w Webhook) error
	GetWebhook(ctx context.Context, workspaceID, id string) (Webhook, error)
	// ListWebhooks returns one page of the workspace's webhooks, by id.
	ListWebhooks(ctx context.Context, workspaceID string, p ListParams) ([]Webhook, error)
	// UpdateWebhook applies p and returns the webhook. Enabling an endpoint
	// clears its DisabledReason and FailingSince.
	UpdateWebhook(ctx context.Context, workspaceID, id string, p WebhookPatch) (Webhook, error)
	// DeleteWebhook deletes it with its deliveries.
	DeleteWebhook(ctx context.Context, workspaceID, id string) error
	// RotateWebhookSecret makes r.Secret current and keeps the current one
	// as the previous secret until r.PrevUntil.
	RotateWebhookSecret(ctx context.Context, workspaceID, id string, r SecretRotation) (Webhook, error)
	// ListAllWebhooks returns webhooks of every workspace ordered by id,
	// after the id: for maintenance (state key rotation), never for a
	// client.
	ListAllWebhooks(ctx context.Context, afterID string, limit int) ([]Webhook, error)
	// ResealWebhook stores the secrets of w, sealed anew (same plaintext,
	// another state key), when the row's secrets are still sealed under
	// oldKeyID and oldPrevKeyID; false when a concurrent rotation changed
	// them first (the caller reloads and tries again).
	ResealWebhook(ctx context.Context, w Webhook, oldKeyID, oldPrevKeyID string) (bool, error)

	// EmitEvents writes events to the outbox and fans them out, in one
	// transaction; for events with no cause in the database (or in tests).
	// Changes that cause events write them in their own transaction.
	EmitEvents(ctx context.Context, events ...OutboxEvent) error
	// TestWebhook writes a ping event and one delivery of it to the
	// endpoint (subscribed to ping or not), due now.
	TestWebhook(ctx context.Context, workspaceID, webhookID string, ev OutboxEvent) (Delivery, error)
	// ListDeliveries returns one page of the endpoint's deliveries, newest
	// first (p.After is a delivery id), each with its attempts.
	ListDeliveries(ctx context.Context, workspaceID, webhookID string, p ListParams) ([]Delivery, error)
	GetDelivery(ctx context.Context, workspaceID, webhookID, deliveryID string) (Delivery, error)
	// RetryDelivery makes the delivery pending and due at at, whatever its
	// status; Conflict when the endpoint is disabled.
	RetryDelivery(ctx context.Context, workspaceID, webhookID, deliveryID string, at time.Time) (Delivery, error)

	// DeliveriesDue reports whether a delivery may be claimable at now: a
	// cheap read so that idle workers do not take SQLite's write lock.
	DeliveriesDue(ctx context.Context, now time.Time) (bool, error)
	// DeliveryBacklog counts the pending deliveries of enabled endpoints
	// and how long the most overdue of them has been due at now (zero when
	// none is due), for the webhook backlog metrics.
	DeliveryBacklog(ctx context.Context, now time.Time) (DeliveryBacklog, error)
	// ClaimDeliveries leases up to limit due deliveries of enabled
	// endpoints (not of the endpoints in skip) to owner until leaseUntil:
	// while the lease holds no other worker claims them.
	ClaimDeliveries(ctx context.Context, owner string, now, leaseUntil time.Time, limit int, skip []string) ([]ClaimedDelivery, error)
	// ReleaseDelivery gives back a lease owner holds, without an attempt.
	ReleaseDelivery(ctx context.Context, owner, deliveryID string) error
	// RecordAttempt logs the attempt and moves the delivery on (succeeded,
	// retried at NextAttemptAt, or failed, disabling the endpoint when it
	// has failed for the whole horizon), releasing owner's lease. It
	// reports whether the endpoint was disabled by this call.
	RecordAttempt(ctx context.Context, owner, deliveryID string, o AttemptOutcome) (disabled bool, err error)
}
