package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/store"
)

// Webhook pages need an admin key, as the API's webhook routes do: an
// endpoint's URL and its deliveries are workspace administration. They read
// through the store's Webhooks interface, scoped by the session's workspace,
// and send a test ping through the API like every other change.

// needsAdmin is the message a write key sees instead of webhook data.
const needsAdmin = "Webhook endpoints need an admin key. You are signed in with a write key: sign out and sign in with an admin key of this workspace to see them."

// adminOnly answers 403 unless the session's key has the admin scope.
func (d *Dashboard) adminOnly(w http.ResponseWriter, r *http.Request, s *session) bool {
	if s.scope == store.ScopeAdmin {
		return true
	}
	d.renderError(w, r, http.StatusForbidden, needsAdmin)
	return false
}

// webhookState says whether an endpoint receives deliveries and, when not,
// why: in words, since a coloured dot alone would not say it.
type webhookState struct {
	Enabled bool
	Label   string // "Enabled", "Disabled by Samplit", "Disabled"
	Reason  string
}

func stateOf(h store.Webhook) webhookState {
	switch {
	case h.Enabled:
		return webhookState{Enabled: true, Label: "Enabled"}
	case h.DisabledReason != "":
		return webhookState{Label: "Disabled by Samplit", Reason: h.DisabledReason}
	}
	return webhookState{Label: "Disabled", Reason: "disabled through the API"}
}

type webhookRow struct {
	store.Webhook
	State webhookState
}

type webhooksPage struct {
	pageBase
	Rows []webhookRow
	Next string
}

func (d *Dashboard) handleWebhookList(w http.ResponseWriter, r *http.Request, s *session) {
	if !d.adminOnly(w, r, s) {
		return
	}
	after := r.URL.Query().Get("after")
	if len(after) > 100 {
		d.renderError(w, r, http.StatusBadRequest, "This page address is not one the list links to.")
		return
	}
	list, err := d.store.ListWebhooks(r.Context(), s.workspaceID, store.ListParams{Limit: listLimit + 1, After: after})
	if err != nil {
		d.fail(w, r, err)
		return
	}
	page := webhooksPage{pageBase: d.base(r, s, "Webhooks")}
	if len(list) > listLimit {
		list = list[:listLimit]
		page.Next = "/webhooks?" + url.Values{"after": {list[len(list)-1].ID}}.Encode()
	}
	for _, h := range list {
		page.Rows = append(page.Rows, webhookRow{Webhook: h, State: stateOf(h)})
	}
	d.render(w, r, http.StatusOK, "webhooks", page)
}

// webhookOf finds the endpoint by id in the session's workspace.
func (d *Dashboard) webhookOf(ctx context.Context, s *session, id string) (store.Webhook, error) {
	if id == "" || len(id) > 100 {
		return store.Webhook{}, apperr.New(apperr.NotFound, "no webhook")
	}
	h, err := d.store.GetWebhook(ctx, s.workspaceID, id)
	if err == nil && h.WorkspaceID != s.workspaceID {
		return store.Webhook{}, apperr.New(apperr.NotFound, "no webhook")
	}
	return h, err
}

// deliveriesShown is how many recent deliveries an endpoint's page lists.
const deliveriesShown = 25

type attemptRow struct {
	store.DeliveryAttempt
	N int
}

type deliveryRow struct {
	store.Delivery
	Tries []attemptRow
}

type webhookPage struct {
	pageBase
	H          store.Webhook
	State      webhookState
	Deliveries []deliveryRow
	More       bool
	Flash      string
	Error      string
}

func (d *Dashboard) webhookPage(ctx context.Context, r *http.Request, s *session, h store.Webhook) (webhookPage, error) {
	list, err := d.store.ListDeliveries(ctx, s.workspaceID, h.ID, store.ListParams{Limit: deliveriesShown + 1})
	if err != nil {
		return webhookPage{}, err
	}
	page := webhookPage{pageBase: d.base(r, s, "Webhook "+h.URL), H: h, State: stateOf(h)}
	if len(list) > deliveriesShown {
		list, page.More = list[:deliveriesShown], true
	}
	for _, dl := range list {
		row := deliveryRow{Delivery: dl}
		for i, a := range dl.AttemptLog {
			row.Tries = append(row.Tries, attemptRow{DeliveryAttempt: a, N: i + 1})
		}
		page.Deliveries = append(page.Deliveries, row)
	}
	return page, nil
}

func (d *Dashboard) handleWebhook(w http.ResponseWriter, r *http.Request, s *session) {
	if !d.adminOnly(w, r, s) {
		return
	}
	h, err := d.webhookOf(r.Context(), s, r.PathValue("id"))
	if err != nil {
		d.notFoundOr(w, r, err, "such webhook endpoint")
		return
	}
	page, err := d.webhookPage(r.Context(), r, s, h)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if r.URL.Query().Get("done") == "ping" {
		page.Flash = "Test ping queued: it appears below once the worker has tried it (reload the page)."
	}
	d.render(w, r, http.StatusOK, "webhook", page)
}

// handleWebhookPing sends a test ping through the API.
func (d *Dashboard) handleWebhookPing(w http.ResponseWriter, r *http.Request, s *session) {
	if !d.adminOnly(w, r, s) {
		return
	}
	h, err := d.webhookOf(r.Context(), s, r.PathValue("id"))
	if err != nil {
		d.notFoundOr(w, r, err, "such webhook endpoint")
		return
	}
	res, err := d.callAPI(r.Context(), r, s, http.MethodPost, "/v1/webhooks/"+url.PathEscape(h.ID)+"/test", nil)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if res.Problem == nil {
		http.Redirect(w, r, "/webhooks/"+url.PathEscape(h.ID)+"?done=ping", http.StatusSeeOther)
		return
	}
	page, err := d.webhookPage(r.Context(), r, s, h)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	page.Error = res.Problem.message()
	d.render(w, r, res.Status, "webhook", page)
}

// latency formats an attempt's duration for people: 85 ms, 1.2 s.
func latency(dur time.Duration) string {
	if dur < time.Second {
		return itoa(dur.Milliseconds()) + " ms"
	}
	return short(dur.Seconds()) + " s"
}
