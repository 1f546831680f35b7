package client

import (
	"context"
	"iter"
	"net/http"
	"time"
)

// WebhookEventType names an event a webhook endpoint may subscribe to.
type WebhookEventType string

// The event types.
const (
	WebhookExperimentStarted     WebhookEventType = "experiment.started"
	WebhookExperimentPaused      WebhookEventType = "experiment.paused"
	WebhookExperimentResumed     WebhookEventType = "experiment.resumed"
	WebhookExperimentCompleted   WebhookEventType = "experiment.completed"
	WebhookExperimentWinnerFound WebhookEventType = "experiment.winner_found"
	WebhookExperimentSRMDetected WebhookEventType = "experiment.srm_detected"
	// WebhookExperimentNoDifference: every variant provably within
	// ± min_effect of the leader (decision state no_difference).
	WebhookExperimentNoDifference WebhookEventType = "experiment.no_difference"
	WebhookFunnelWinnerFound      WebhookEventType = "funnel.winner_found"
	// WebhookFunnelNoDifference: a funnel step's variants provably within
	// ± min_effect of each other.
	WebhookFunnelNoDifference  WebhookEventType = "funnel.no_difference"
	WebhookCampaignWinnerFound WebhookEventType = "campaign.winner_found"
	// WebhookCampaignNoDifference: a campaign's variants provably within
	// ± min_effect of each other.
	WebhookCampaignNoDifference WebhookEventType = "campaign.no_difference"
	WebhookCampaignGuardrail    WebhookEventType = "campaign.guardrail_tripped"
	// WebhookPing is what TestWebhook sends.
	WebhookPing WebhookEventType = "ping"
)

// Webhook is an endpoint that receives signed event deliveries (Standard
// Webhooks; check them with VerifyWebhook).
type Webhook struct {
	ID          string             `json:"id"`
	URL         string             `json:"url"`
	Description string             `json:"description"`
	Events      []WebhookEventType `json:"events"`
	// Enabled is false after UpdateWebhook disabled it or the server did,
	// in which case DisabledReason says why.
	Enabled        bool    `json:"enabled"`
	DisabledReason *string `json:"disabled_reason"`
	// PreviousSecretExpiresAt is when deliveries stop carrying a second
	// signature made with the secret before the last rotation.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
	// Secret ("whsec_...") signs the deliveries. Only CreateWebhook and
	// RotateWebhookSecret return it: keep it then.
	Secret string `json:"secret,omitempty"`
}

// CreateWebhookRequest is the body of CreateWebhook.
type CreateWebhookRequest struct {
	// URL receives the deliveries; the server refuses addresses of private
	// networks unless configured otherwise.
	URL         string             `json:"url"`
	Events      []WebhookEventType `json:"events"`
	Description string             `json:"description,omitempty"`
}

// CreateWebhook registers an endpoint (admin keys only) and returns it
// with its secret. It is not retried: the server does not take an
// Idempotency-Key here (a replay would have to store the secret), and a
// blind retry could register the endpoint twice.
func (c *Client) CreateWebhook(ctx context.Context, req CreateWebhookRequest, opts ...CallOption) (*Webhook, error) {
	var out Webhook
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("webhooks"), body: req}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetWebhook returns the endpoint with the id (without its secret).
func (c *Client) GetWebhook(ctx context.Context, id string, opts ...CallOption) (*Webhook, error) {
	var out Webhook
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("webhooks", id), idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListWebhooks returns one page of the workspace's endpoints (p.Status is
// ignored). Webhooks iterates over all of them.
func (c *Client) ListWebhooks(ctx context.Context, p ListParams, opts ...CallOption) (*Page[Webhook], error) {
	var out Page[Webhook]
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("webhooks"), query: p.query(false), idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Webhooks iterates over every endpoint, page by page, like Experiments.
func (c *Client) Webhooks(ctx context.Context, p ListParams, opts ...CallOption) iter.Seq2[Webhook, error] {
	return paginate(p, func(p ListParams) (*Page[Webhook], error) { return c.ListWebhooks(ctx, p, opts...) })
}

// UpdateWebhookRequest changes an endpoint; a nil field is left as it is.
type UpdateWebhookRequest struct {
	URL         *string            `json:"url,omitempty"`
	Events      []WebhookEventType `json:"events,omitempty"`
	Description *string            `json:"description,omitempty"`
	// Enabled turns deliveries off or (back) on.
	Enabled *bool `json:"enabled,omitempty"`
}

// UpdateWebhook changes an endpoint (PATCH), with an automatic
// Idempotency-Key, so it is retried on temporary failures.
func (c *Client) UpdateWebhook(ctx context.Context, id string, req UpdateWebhookRequest, opts ...CallOption) (*Webhook, error) {
	var out Webhook
	if err := c.do(ctx, request{method: http.MethodPatch, path: pathOf("webhooks", id), body: req, keyed: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteWebhook removes an endpoint and its pending deliveries. A DELETE
// is idempotent, so it is retried; when the first attempt went through
// unanswered, the retry reports a 404 (IsNotFound), which then also means
// "gone".
func (c *Client) DeleteWebhook(ctx context.Context, id string, opts ...CallOption) error {
	return c.do(ctx, request{method: http.MethodDelete, path: pathOf("webhooks", id), idempotent: true}, nil, opts)
}

// RotateWebhookSecret gives the endpoint a new secret and returns it.
// Deliveries carry signatures of both secrets until
// PreviousSecretExpiresAt, so receivers can switch without losing any. It
// is not retried (a second rotation would retire the secret the first one
// returned).
func (c *Client) RotateWebhookSecret(ctx context.Context, id string, opts ...CallOption) (*Webhook, error) {
	var out Webhook
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("webhooks", id, "rotate-secret")}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Delivery is one event's delivery to one endpoint, with every attempt.
type Delivery struct {
	ID        string           `json:"id"`
	WebhookID string           `json:"webhook_id"`
	EventID   string           `json:"event_id"`
	EventType WebhookEventType `json:"event_type"`
	// Status is "pending" (waiting for its next attempt), "succeeded" or
	// "failed" (every scheduled attempt failed).
	Status        string            `json:"status"`
	NextAttemptAt *time.Time        `json:"next_attempt_at"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
	Attempts      []DeliveryAttempt `json:"attempts"`
}

// DeliveryAttempt is one try of a delivery.
type DeliveryAttempt struct {
	At time.Time `json:"at"`
	// StatusCode is the endpoint's answer; nil when none came (Error says
	// why).
	StatusCode *int    `json:"status_code"`
	LatencyMS  float64 `json:"latency_ms"`
	Error      *string `json:"error"`
}

// TestWebhook queues a ping delivery to the endpoint, signed and logged
// like any other, and returns it.
func (c *Client) TestWebhook(ctx context.Context, id string, opts ...CallOption) (*Delivery, error) {
	var out Delivery
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("webhooks", id, "test"), keyed: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListDeliveries returns one page of the endpoint's deliveries, newest
// first (p.Status is ignored). Deliveries iterates over all of them.
func (c *Client) ListDeliveries(ctx context.Context, webhookID string, p ListParams, opts ...CallOption) (*Page[Delivery], error) {
	var out Page[Delivery]
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("webhooks", webhookID, "deliveries"), query: p.query(false), idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Deliveries iterates over every delivery of the endpoint, newest first.
func (c *Client) Deliveries(ctx context.Context, webhookID string, p ListParams, opts ...CallOption) iter.Seq2[Delivery, error] {
	return paginate(p, func(p ListParams) (*Page[Delivery], error) { return c.ListDeliveries(ctx, webhookID, p, opts...) })
}

// RetryDelivery makes a delivery due now: one more attempt, after which,
// if it fails, its schedule continues where it stood.
func (c *Client) RetryDelivery(ctx context.Context, webhookID, deliveryID string, opts ...CallOption) (*Delivery, error) {
	var out Delivery
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("webhooks", webhookID, "deliveries", deliveryID, "retry"), keyed: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}
