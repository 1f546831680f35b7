package client_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/samplit/samplit/client"
)

func TestCampaigns(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()

	req := client.CreateCampaignRequest{
		Key:     "spring-sale",
		Name:    "Spring sale subject lines",
		Channel: client.ChannelEmail,
		Variants: []client.CampaignVariantSpec{
			{Key: "plain", Payload: map[string]string{"subject": "Spring sale"}},
			{Key: "urgent", Payload: map[string]any{"subject": "48 hours only", "send_hour": 9}},
		},
		Settings: &client.CampaignSettingsSpec{
			AttributionWindow: "2d",
			Guardrail:         &client.CampaignGuardrailSpec{Event: client.CampaignUnsubscribe, MaxRate: 0.05},
			Seed:              new(int64(3)),
			MinEffect:         new(0.2),
			PriorLiftSD:       new(0.05),
			LearnPrior:        new(false),
		},
	}
	cp, err := c.CreateCampaign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Key != "spring-sale" || cp.Status != client.StatusDraft || cp.Channel != "email" || cp.Objective != client.ObjectiveClick ||
		cp.Mode != client.ModeWaves || len(cp.Variants) != 2 || cp.Variants[1].Stopped {
		t.Fatalf("created %+v", cp)
	}
	if s := cp.Settings; s.AttributionWindow != "2d" || s.Guardrail == nil || s.Guardrail.MaxRate != 0.05 || s.Guardrail.Confidence == 0 || s.TestShare == 0 ||
		s.MinEffect != 0.2 || s.Alpha != 0.05 || s.PriorLiftSD == nil || *s.PriorLiftSD != 0.05 || s.LearnPrior {
		t.Errorf("settings %+v", s)
	}
	if got, err := c.GetCampaign(ctx, cp.ID); err != nil || got.Key != cp.Key {
		t.Errorf("get: %+v, %v", got, err)
	}

	// Errors.
	if _, err := c.CreateCampaign(ctx, req); !client.IsConflict(err) {
		t.Errorf("key taken: %v", err)
	}
	_, err = c.CreateCampaign(ctx, client.CreateCampaignRequest{Key: "bad", Channel: "fax", Mode: client.ModeSplitThenWinner,
		Variants: []client.CampaignVariantSpec{{Key: "a", Payload: map[string]int{"send_hour": 25}}, {Key: "b"}}})
	e := apiError(t, err)
	var fields []string
	for _, f := range e.Fields {
		fields = append(fields, f.Field)
	}
	for _, want := range []string{"channel", "audience_size", "variants[0].payload.send_hour"} {
		if !slices.Contains(fields, want) {
			t.Errorf("invalid campaign: fields %v lack %s", fields, want)
		}
	}
	if _, err := c.GetCampaign(ctx, "nope"); !client.IsNotFound(err) {
		t.Errorf("unknown campaign: %v", err)
	}
	if _, err := c.Send(ctx, "spring-sale", []string{"r1"}); !client.IsConflict(err) {
		t.Errorf("send a draft: %v, want a 409", err)
	}

	// Lifecycle.
	if cp, err = c.StartCampaign(ctx, "spring-sale"); err != nil || cp.Status != client.StatusRunning {
		t.Fatalf("start: %+v, %v", cp, err)
	}
	if cp, err = c.PauseCampaign(ctx, "spring-sale"); err != nil || cp.Status != client.StatusPaused {
		t.Fatalf("pause: %+v, %v", cp, err)
	}
	if cp, err = c.ResumeCampaign(ctx, "spring-sale"); err != nil || cp.Status != client.StatusRunning {
		t.Fatalf("resume: %+v, %v", cp, err)
	}
	if _, err := c.StartCampaign(ctx, "spring-sale"); !client.IsConflict(err) {
		t.Errorf("start a running campaign: %v", err)
	}

	// A wave of 100 recipients; the same recipients again keep their variants.
	recipients := make([]string, 100)
	for i := range recipients {
		recipients[i] = fmt.Sprintf("r%d@example.com", i)
	}
	w1, err := c.Send(ctx, "spring-sale", recipients)
	if err != nil {
		t.Fatal(err)
	}
	if w1.Wave == nil || *w1.Wave != 1 || len(w1.Sends) != 100 {
		t.Fatalf("first wave: wave %v, %d sends", w1.Wave, len(w1.Sends))
	}
	count := map[string]int{}
	for i, s := range w1.Sends {
		if s.Recipient != recipients[i] || (s.Variant != "plain" && s.Variant != "urgent") || len(s.Payload) == 0 {
			t.Fatalf("send %d: %+v", i, s)
		}
		count[s.Variant]++
	}
	if count["plain"] == 0 || count["urgent"] == 0 {
		t.Errorf("variants of the wave: %v", count)
	}
	again, err := c.Send(ctx, "spring-sale", recipients[:10])
	if err != nil || again.Wave != nil || again.Sends[3].Variant != w1.Sends[3].Variant {
		t.Errorf("resend: %+v, %v", again, err)
	}
	if _, err := c.Send(ctx, "spring-sale", nil); !client.IsInvalid(err) {
		t.Errorf("no recipients: %v, want a 422", err)
	}

	// Events: 20 clicks, one duplicate, one of a recipient never sent.
	var events []client.CampaignEvent
	for i := range 20 {
		events = append(events, client.CampaignEvent{Recipient: recipients[i], Type: client.CampaignClick, IdempotencyKey: fmt.Sprint("click-", i)})
	}
	events = append(events,
		client.CampaignEvent{Recipient: recipients[0], Type: client.CampaignClick, IdempotencyKey: "click-0"},
		client.CampaignEvent{Recipient: "stranger@example.com", Type: client.CampaignOpen, IdempotencyKey: "x"})
	res, err := c.TrackCampaignMany(ctx, "spring-sale", events)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 20 || res.Duplicates != 1 || len(res.Rejected) != 1 || res.Rejected[0].Index != 21 {
		t.Errorf("events: %+v", res)
	}
	at := time.Now() // after its send: an event dated before it is refused
	one, err := c.TrackCampaign(ctx, "spring-sale", client.CampaignEvent{Recipient: recipients[50], Type: client.CampaignConversion, Value: new(30.0), At: &at})
	if err != nil || one.Accepted != 1 {
		t.Errorf("a conversion: %+v, %v", one, err)
	}
	_, err = c.TrackCampaign(ctx, "spring-sale", client.CampaignEvent{Recipient: "stranger@example.com", Type: client.CampaignOpen})
	if e := apiError(t, err); e.Status != 422 || e.Fields[0].Field != "recipient" {
		t.Errorf("one event of a recipient never sent: %v", err)
	}
	_, err = c.TrackCampaign(ctx, "spring-sale", client.CampaignEvent{Recipient: recipients[1], Type: "like"})
	if e := apiError(t, err); e.Status != 422 || e.Fields[0].Field != "type" {
		t.Errorf("an unknown event type: %v", err)
	}

	r, err := c.CampaignResults(ctx, "spring-sale")
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Prior; p == nil || p.Source != "prior_lift_sd" || p.LiftSD != 0.05 {
		t.Errorf("prior %+v, want the one set, 0.05", p)
	}
	var sent, clicks int64
	var value float64
	for _, v := range r.Variants {
		sent += v.Sent
		clicks += v.Clicks
		value += v.Value
		if v.Guardrail == nil || v.Guardrail.Event != client.CampaignUnsubscribe || v.Guardrail.Tripped {
			t.Errorf("%s guardrail %+v", v.Key, v.Guardrail)
		}
	}
	if r.CampaignID != cp.ID || r.Sent != 100 || sent != 100 || clicks != 20 || value != 30 || r.Status != client.StatusRunning ||
		len(r.Waves) != 1 || r.Waves[0].Sends != 100 || r.Decision.State == "" || r.UpdatedAt.IsZero() {
		t.Errorf("results %+v (sent %d, clicks %d, value %g)", r, sent, clicks, value)
	}

	// List and iterate; complete.
	if _, err := c.CreateCampaign(ctx, client.CreateCampaignRequest{Key: "push-1", Channel: client.ChannelPush,
		Variants: []client.CampaignVariantSpec{{Key: "a"}, {Key: "b"}}, Start: true}); err != nil {
		t.Fatal(err)
	}
	page, err := c.ListCampaigns(ctx, client.ListParams{Limit: 1})
	if err != nil || len(page.Items) != 1 || page.NextCursor == nil {
		t.Fatalf("list: %+v, %v", page, err)
	}
	var keys []string
	for cp, err := range c.Campaigns(ctx, client.ListParams{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, cp.Key)
	}
	if !slices.Equal(keys, []string{"spring-sale", "push-1"}) {
		t.Errorf("campaigns %v", keys)
	}
	if cp, err = c.CompleteCampaign(ctx, "spring-sale"); err != nil || cp.Status != client.StatusCompleted || cp.Sent != 100 {
		t.Errorf("complete: %+v, %v", cp, err)
	}
}
