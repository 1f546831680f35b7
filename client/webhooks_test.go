package client_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samplit/samplit/client"
	"github.com/samplit/samplit/internal/webhook"
)

func TestWebhooks(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()

	// A receiver that checks every delivery with VerifyWebhook.
	var mu sync.Mutex
	var secret string
	var got []string // event types of verified deliveries
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := client.VerifyWebhook(secret, r.Header, body, time.Now()); err != nil {
			t.Errorf("delivery does not verify: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got = append(got, string(body))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)

	h, err := c.CreateWebhook(ctx, client.CreateWebhookRequest{
		URL:         recv.URL + "/hooks",
		Events:      []client.WebhookEventType{client.WebhookExperimentStarted, client.WebhookPing},
		Description: "CI notifications",
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.ID == "" || !strings.HasPrefix(h.Secret, "whsec_") || !h.Enabled || h.Description != "CI notifications" ||
		!slices.Equal(h.Events, []client.WebhookEventType{client.WebhookExperimentStarted, client.WebhookPing}) {
		t.Fatalf("created %+v", h)
	}
	mu.Lock()
	secret = h.Secret
	mu.Unlock()

	g, err := c.GetWebhook(ctx, h.ID)
	if err != nil || g.URL != h.URL || g.Secret != "" {
		t.Errorf("get: %+v, %v; want the endpoint without its secret", g, err)
	}
	if _, err := c.GetWebhook(ctx, "whk_nope"); !client.IsNotFound(err) {
		t.Errorf("unknown webhook: %v", err)
	}
	_, err = c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: "not a url", Events: []client.WebhookEventType{"nonsense"}})
	e := apiError(t, err)
	var fields []string
	for _, f := range e.Fields {
		fields = append(fields, f.Field)
	}
	if e.Status != 422 || !slices.Contains(fields, "url") || !slices.Contains(fields, "events[0]") {
		t.Errorf("invalid webhook: %v (fields %v)", err, fields)
	}
	write := client.New(srv.URL, srv.key(t, "write"))
	if _, err := write.ListWebhooks(ctx, client.ListParams{}); !client.IsForbidden(err) {
		t.Errorf("write key lists webhooks: %v, want a 403", err)
	}

	// Update, list, iterate.
	off := false
	u, err := c.UpdateWebhook(ctx, h.ID, client.UpdateWebhookRequest{Description: new("paused for now"), Enabled: &off})
	if err != nil || u.Enabled || u.Description != "paused for now" || u.URL != h.URL {
		t.Errorf("update: %+v, %v", u, err)
	}
	u, err = c.UpdateWebhook(ctx, h.ID, client.UpdateWebhookRequest{Enabled: new(true), Events: []client.WebhookEventType{client.WebhookPing}})
	if err != nil || !u.Enabled || !slices.Equal(u.Events, []client.WebhookEventType{client.WebhookPing}) {
		t.Errorf("update: %+v, %v", u, err)
	}
	other, err := c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: recv.URL + "/other", Events: []client.WebhookEventType{client.WebhookFunnelWinnerFound}})
	if err != nil {
		t.Fatal(err)
	}
	page, err := c.ListWebhooks(ctx, client.ListParams{Limit: 1})
	if err != nil || len(page.Items) != 1 || page.NextCursor == nil || page.Items[0].Secret != "" {
		t.Fatalf("list: %+v, %v", page, err)
	}
	var ids []string
	for w, err := range c.Webhooks(ctx, client.ListParams{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.ID)
	}
	if !slices.Equal(ids, []string{h.ID, other.ID}) {
		t.Errorf("webhooks %v, want %v", ids, []string{h.ID, other.ID})
	}

	// Rotate: a new secret, the old one honoured for a while.
	r, err := c.RotateWebhookSecret(ctx, h.ID)
	if err != nil || r.Secret == h.Secret || !strings.HasPrefix(r.Secret, "whsec_") || r.PreviousSecretExpiresAt == nil {
		t.Fatalf("rotate: %+v, %v", r, err)
	}

	// A ping, queued, then delivered by a worker and verified by the
	// receiver with the new secret.
	d, err := c.TestWebhook(ctx, h.ID)
	if err != nil || d.WebhookID != h.ID || d.EventType != client.WebhookPing || d.Status != "pending" || d.ID == "" {
		t.Fatalf("test: %+v, %v", d, err)
	}
	mu.Lock()
	secret = r.Secret
	mu.Unlock()
	wctx, stop := context.WithCancel(context.Background())
	worker := webhook.NewWorker(srv.Store, srv.Ring, webhook.Options{AllowPrivate: true, PollInterval: 10 * time.Millisecond})
	done := make(chan struct{})
	go func() { defer close(done); worker.Run(wctx) }()
	t.Cleanup(func() { stop(); <-done })
	var delivered *client.Delivery
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		list, err := c.ListDeliveries(ctx, h.ID, client.ListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) == 1 && list.Items[0].Status == "succeeded" {
			delivered = &list.Items[0]
			break
		}
	}
	if delivered == nil {
		t.Fatal("the ping was not delivered within 5 s")
	}
	if len(delivered.Attempts) != 1 || delivered.Attempts[0].StatusCode == nil || *delivered.Attempts[0].StatusCode != 204 {
		t.Errorf("attempts %+v", delivered.Attempts)
	}
	mu.Lock()
	if len(got) != 1 || !strings.Contains(got[0], `"type":"ping"`) {
		t.Errorf("received %q, want one ping", got)
	}
	mu.Unlock()
	var n int
	for d, err := range c.Deliveries(ctx, h.ID, client.ListParams{Limit: 1}) {
		if err != nil || d.ID != delivered.ID {
			t.Errorf("deliveries: %+v, %v", d, err)
		}
		n++
	}
	if n != 1 {
		t.Errorf("%d deliveries", n)
	}
	again, err := c.RetryDelivery(ctx, h.ID, delivered.ID)
	if err != nil || again.ID != delivered.ID {
		t.Errorf("retry delivery: %+v, %v", again, err)
	}
	if _, err := c.RetryDelivery(ctx, h.ID, "dlv_nope"); !client.IsNotFound(err) {
		t.Errorf("retry an unknown delivery: %v", err)
	}

	// Delete.
	if err := c.DeleteWebhook(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetWebhook(ctx, other.ID); !client.IsNotFound(err) {
		t.Errorf("deleted webhook: %v", err)
	}
	if err := c.DeleteWebhook(ctx, other.ID); !client.IsNotFound(err) {
		t.Errorf("delete twice: %v", err)
	}
}

func TestWebhookWritesNotRetried(t *testing.T) {
	t.Parallel()
	f := &faults{match: func(r *http.Request) bool {
		return r.Method == "POST" && (r.URL.Path == "/v1/webhooks" || strings.HasSuffix(r.URL.Path, "/rotate-secret"))
	}}
	srv, c, s := faultyServer(t, f)
	ctx := t.Context()
	h, err := c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: srv.URL + "/hook", Events: []client.WebhookEventType{client.WebhookPing}})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.hits, f.plan = 0, []fault{unavailable, unavailable}
	f.mu.Unlock()
	if _, err := c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: srv.URL + "/hook2", Events: []client.WebhookEventType{client.WebhookPing}}); client.StatusOf(err) != 503 {
		t.Errorf("create after a 503: %v", err)
	}
	if _, err := c.RotateWebhookSecret(ctx, h.ID); client.StatusOf(err) != 503 {
		t.Errorf("rotate after a 503: %v", err)
	}
	if f.count() != 2 || len(s.all()) != 0 {
		t.Errorf("%d attempts and waits %v for two calls that must not be retried", f.count(), s.all())
	}
}
