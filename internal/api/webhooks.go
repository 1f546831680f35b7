package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/human"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/webhook"
)

// maxDescription bounds a webhook's description.
const maxDescription = 500

type createWebhookRequest struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
}

type patchWebhookRequest struct {
	URL         *string   `json:"url"`
	Events      *[]string `json:"events"`
	Description *string   `json:"description"`
	Enabled     *bool     `json:"enabled"`
}

type webhookJSON struct {
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	Description    string   `json:"description"`
	Events         []string `json:"events"`
	Enabled        bool     `json:"enabled"`
	DisabledReason *string  `json:"disabled_reason"`
	// PreviousSecretExpiresAt is when deliveries stop carrying the
	// signature of the secret before the last rotation.
	PreviousSecretExpiresAt *string `json:"previous_secret_expires_at"`
	CreatedAt               string  `json:"created_at"`
	UpdatedAt               string  `json:"updated_at"`
	// Secret is shown by create and rotate-secret only.
	Secret string `json:"secret,omitempty"`
}

func toWebhookJSON(w store.Webhook, secret string) webhookJSON {
	out := webhookJSON{ID: w.ID, URL: w.URL, Description: w.Description, Events: make([]string, 0, len(w.Events)),
		Enabled: w.Enabled, CreatedAt: timestamp(w.CreatedAt), UpdatedAt: timestamp(w.UpdatedAt), Secret: secret,
		PreviousSecretExpiresAt: optTimestamp(w.PrevUntil)}
	for _, t := range w.Events {
		out.Events = append(out.Events, string(t))
	}
	if w.DisabledReason != "" {
		r := w.DisabledReason
		out.DisabledReason = &r
	}
	return out
}

type attemptJSON struct {
	At         string  `json:"at"`
	StatusCode *int    `json:"status_code"`
	LatencyMS  float64 `json:"latency_ms"`
	Error      *string `json:"error"`
}

type deliveryJSON struct {
	ID            string        `json:"id"`
	WebhookID     string        `json:"webhook_id"`
	EventID       string        `json:"event_id"`
	EventType     string        `json:"event_type"`
	Status        string        `json:"status"`
	NextAttemptAt *string       `json:"next_attempt_at"`
	CreatedAt     string        `json:"created_at"`
	UpdatedAt     string        `json:"updated_at"`
	Attempts      []attemptJSON `json:"attempts"`
}

func toDeliveryJSON(d store.Delivery) deliveryJSON {
	out := deliveryJSON{ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, EventType: string(d.EventType),
		Status: string(d.Status), NextAttemptAt: optTimestamp(d.NextAttemptAt),
		CreatedAt: timestamp(d.CreatedAt), UpdatedAt: timestamp(d.UpdatedAt), Attempts: make([]attemptJSON, 0, len(d.AttemptLog))}
	for _, a := range d.AttemptLog {
		aj := attemptJSON{At: timestamp(a.At), LatencyMS: float64(a.Latency.Microseconds()) / 1000}
		if a.StatusCode != 0 {
			c := a.StatusCode
			aj.StatusCode = &c
		}
		if a.Error != "" {
			e := a.Error
			aj.Error = &e
		}
		out.Attempts = append(out.Attempts, aj)
	}
	return out
}

// webhookService returns the service, or a 503 when the server runs without
// one (a test server, or a tool that serves no webhooks).
func (s *server) webhookService() (*webhook.Service, error) {
	if s.webhooks == nil {
		return nil, apperr.New(apperr.Unavailable, "webhooks are not available on this server")
	}
	return s.webhooks, nil
}

// checkEvents validates a list of event types.
func checkEvents(fe *fieldErrors, field string, events []string) []store.EventType {
	if len(events) == 0 {
		fe.add(field, "must list at least one event type")
		return nil
	}
	out := make([]store.EventType, 0, len(events))
	for i, e := range events {
		t := store.EventType(e)
		if !t.Known() {
			fe.add(fmt.Sprintf("%s[%d]", field, i), "is not an event type; known types: %s", knownEventTypes())
			continue
		}
		out = append(out, t)
	}
	return out
}

func knownEventTypes() string {
	list := make([]string, len(store.EventTypes))
	for i, t := range store.EventTypes {
		list[i] = string(t)
	}
	return human.JoinOr(list)
}

// webhookID returns the {id} of the path, or the 404 of an id that cannot
// exist.
func webhookID(r *http.Request) (string, error) {
	v := r.PathValue("id")
	if !id.HasPrefix(v, id.Webhook) {
		return "", apperr.New(apperr.NotFound, "no webhook %q in this workspace", v)
	}
	return v, nil
}

// handleCreateWebhook serves POST /v1/webhooks. It is not idempotent by
// Idempotency-Key on purpose: a replayed response would have to be stored,
// and it holds the secret.
func (s *server) handleCreateWebhook(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.webhookService()
	if err != nil {
		return err
	}
	p := principalFrom(r.Context())
	var body createWebhookRequest
	if err := decode(r, &body); err != nil {
		return err
	}
	var fe fieldErrors
	if body.URL == "" {
		fe.add("url", "is required")
	} else if err := svc.CheckURL(r.Context(), body.URL); err != nil {
		fe = append(fe, apperr.FieldError{Field: "url", Reason: fieldReason(err)})
	}
	events := checkEvents(&fe, "events", body.Events)
	if body.Description != "" {
		checkText(&fe, "description", body.Description, maxDescription)
	}
	if err := fe.err(); err != nil {
		return err
	}
	hook, secret, err := svc.Create(r.Context(), store.Webhook{WorkspaceID: p.WorkspaceID, URL: body.URL, Description: body.Description, Events: events})
	if err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	return respond(w, http.StatusCreated, toWebhookJSON(hook, secret))
}

// fieldReason returns the reason of a URL refusal, for the field error.
func fieldReason(err error) string {
	if ue, ok := errors.AsType[*webhook.URLError](err); ok {
		return ue.Reason
	}
	return err.Error()
}

// handleListWebhooks serves GET /v1/webhooks.
func (s *server) handleListWebhooks(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	params, want, err := pageParams(r, id.Webhook)
	if err != nil {
		return err
	}
	list, err := s.store.ListWebhooks(r.Context(), p.WorkspaceID, params)
	if err != nil {
		return fmt.Errorf("list webhooks: %w", err)
	}
	return respond(w, http.StatusOK, page(list, want, func(h store.Webhook) string { return h.ID },
		func(h store.Webhook) webhookJSON { return toWebhookJSON(h, "") }))
}

// handleGetWebhook serves GET /v1/webhooks/{id}.
func (s *server) handleGetWebhook(w http.ResponseWriter, r *http.Request) error {
	hid, err := webhookID(r)
	if err != nil {
		return err
	}
	hook, err := s.store.GetWebhook(r.Context(), principalFrom(r.Context()).WorkspaceID, hid)
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, toWebhookJSON(hook, ""))
}

// handlePatchWebhook serves PATCH /v1/webhooks/{id}.
func (s *server) handlePatchWebhook(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.webhookService()
	if err != nil {
		return err
	}
	hid, err := webhookID(r)
	if err != nil {
		return err
	}
	var body patchWebhookRequest
	if err := decode(r, &body); err != nil {
		return err
	}
	var fe fieldErrors
	patch := store.WebhookPatch{URL: body.URL, Description: body.Description, Enabled: body.Enabled, At: svc.Now()}
	if body.URL != nil {
		if err := svc.CheckURL(r.Context(), *body.URL); err != nil {
			fe = append(fe, apperr.FieldError{Field: "url", Reason: fieldReason(err)})
		}
	}
	if body.Events != nil {
		patch.Events = checkEvents(&fe, "events", *body.Events)
	}
	if body.Description != nil && *body.Description != "" {
		checkText(&fe, "description", *body.Description, maxDescription)
	}
	if err := fe.err(); err != nil {
		return err
	}
	hook, err := s.store.UpdateWebhook(r.Context(), principalFrom(r.Context()).WorkspaceID, hid, patch)
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, toWebhookJSON(hook, ""))
}

// handleDeleteWebhook serves DELETE /v1/webhooks/{id}.
func (s *server) handleDeleteWebhook(w http.ResponseWriter, r *http.Request) error {
	hid, err := webhookID(r)
	if err != nil {
		return err
	}
	if err := s.store.DeleteWebhook(r.Context(), principalFrom(r.Context()).WorkspaceID, hid); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleRotateWebhookSecret serves POST /v1/webhooks/{id}/rotate-secret.
func (s *server) handleRotateWebhookSecret(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.webhookService()
	if err != nil {
		return err
	}
	hid, err := webhookID(r)
	if err != nil {
		return err
	}
	if err := decodeOptional(r, &struct{}{}); err != nil {
		return err
	}
	hook, secret, err := svc.RotateSecret(r.Context(), principalFrom(r.Context()).WorkspaceID, hid)
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, toWebhookJSON(hook, secret))
}

// handleTestWebhook serves POST /v1/webhooks/{id}/test: a ping, queued
// like any delivery (so it is signed, guarded and logged the same way).
func (s *server) handleTestWebhook(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.webhookService()
	if err != nil {
		return err
	}
	hid, err := webhookID(r)
	if err != nil {
		return err
	}
	if err := decodeOptional(r, &struct{}{}); err != nil {
		return err
	}
	d, err := svc.Test(r.Context(), principalFrom(r.Context()).WorkspaceID, hid)
	if err != nil {
		return err
	}
	return respond(w, http.StatusAccepted, toDeliveryJSON(d))
}

// handleListDeliveries serves GET /v1/webhooks/{id}/deliveries, newest
// first, each with every attempt.
func (s *server) handleListDeliveries(w http.ResponseWriter, r *http.Request) error {
	hid, err := webhookID(r)
	if err != nil {
		return err
	}
	params, want, err := pageParams(r, id.Delivery)
	if err != nil {
		return err
	}
	list, err := s.store.ListDeliveries(r.Context(), principalFrom(r.Context()).WorkspaceID, hid, params)
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, page(list, want, func(d store.Delivery) string { return d.ID }, toDeliveryJSON))
}

// handleRetryDelivery serves POST /v1/webhooks/{id}/deliveries/{did}/retry:
// the delivery is due now (one more attempt; if it fails, the schedule
// continues where it stood).
func (s *server) handleRetryDelivery(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.webhookService()
	if err != nil {
		return err
	}
	hid, err := webhookID(r)
	if err != nil {
		return err
	}
	did := r.PathValue("did")
	if !id.HasPrefix(did, id.Delivery) {
		return apperr.New(apperr.NotFound, "no delivery %q of webhook %s", did, hid)
	}
	if err := decodeOptional(r, &struct{}{}); err != nil {
		return err
	}
	d, err := s.store.RetryDelivery(r.Context(), principalFrom(r.Context()).WorkspaceID, hid, did, svc.Now())
	if err != nil {
		return err
	}
	return respond(w, http.StatusAccepted, toDeliveryJSON(d))
}
