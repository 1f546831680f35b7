package storetest

import (
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

// newCampaign returns an unsaved running email campaign with variants a, b
// and a one-hour attribution window.
func newCampaign(ws store.Workspace, key string) store.Campaign {
	c := store.Campaign{
		ID: id.New(id.Campaign), WorkspaceID: ws.ID, Key: key, Name: "Campaign " + key,
		Channel: "email", Objective: "click", Mode: "waves", AudienceSize: 1000, Status: store.StatusRunning,
		Settings: store.CampaignSettings{TestShare: 0.2, AttributionWindow: time.Hour, Seed: ptr(int64(3)),
			Guardrail:  &store.CampaignGuardrail{Event: "unsubscribe", MaxRate: 0.01, Confidence: 0.95},
			MinSamples: 100, DecisionThreshold: 0.95, LossThreshold: 0.001, WeightFloor: 0.02},
		CreatedAt: t0, UpdatedAt: t0, StartedAt: ptr(t0),
	}
	for i, k := range []string{"a", "b"} {
		c.Variants = append(c.Variants, store.Variant{ID: id.New(id.Variant), Key: k, Name: k,
			Payload: json.RawMessage(fmt.Sprintf(`{"subject":%q}`, k)), Position: i})
	}
	return c
}

func createCampaign(t *testing.T, s store.Store, ws store.Workspace, key string) store.Campaign {
	t.Helper()
	c := newCampaign(ws, key)
	must(t, s.CreateCampaign(t.Context(), c), "create campaign")
	return c
}

// send sends the recipients variant v of c at at, expecting no race.
func send(t *testing.T, s store.Store, c store.Campaign, v int, at time.Time, recipients ...string) store.SendsResult {
	t.Helper()
	b := store.SendBatch{WorkspaceID: c.WorkspaceID, CampaignID: c.ID, ExpectSent: -1, At: at}
	for _, r := range recipients {
		b.Items = append(b.Items, store.Send{Recipient: r, VariantID: c.Variants[v].ID})
	}
	res, err := s.RecordSends(t.Context(), b)
	must(t, err, "record sends")
	return res
}

func campaignEvents(t *testing.T, s store.Store, c store.Campaign, evs ...store.CampaignEvent) []store.EventResult {
	t.Helper()
	res, err := s.RecordCampaignEvents(t.Context(), []store.CampaignEventBatch{{WorkspaceID: c.WorkspaceID,
		CampaignID: c.ID, Window: c.Settings.AttributionWindow, Items: evs}})
	must(t, err, "record campaign events")
	return res[0]
}

// totals adds up the slots by variant id.
func totals(t *testing.T, s store.Store, c store.Campaign) (map[string]store.CampaignCounters, store.CampaignCounts) {
	t.Helper()
	cc, err := s.CampaignCounts(t.Context(), c.WorkspaceID, c.ID)
	must(t, err, "campaign counts")
	out := map[string]store.CampaignCounters{}
	for _, sl := range cc.Slots {
		x := out[sl.VariantID]
		x.VariantID = sl.VariantID
		x.Sent += sl.Sent
		x.Delivered += sl.Delivered
		x.Opens += sl.Opens
		x.Clicks += sl.Clicks
		x.Unsubscribes += sl.Unsubscribes
		x.Bounces += sl.Bounces
		x.Conversions += sl.Conversions
		x.Value += sl.Value
		x.ValueSquares += sl.ValueSquares
		x.Late += sl.Late
		x.Tested += sl.Tested
		x.TestSum += sl.TestSum
		x.TestSumSquares += sl.TestSumSquares
		x.InvP += sl.InvP
		x.InvP2 += sl.InvP2
		x.YInvP += sl.YInvP
		x.YInvP2 += sl.YInvP2
		x.Y2InvP2 += sl.Y2InvP2
		x.Expected += sl.Expected
		x.ExpectedSquares += sl.ExpectedSquares
		x.InvExpected += sl.InvExpected
		out[sl.VariantID] = x
	}
	return out, cc
}

func testCampaignsCRUD(t *testing.T, s store.Store) {
	ws := newWorkspace(t, s, "campaigns")
	other := newWorkspace(t, s, "other")
	c := createCampaign(t, s, ws, "black-friday")
	for _, ref := range []string{c.ID, c.Key} {
		got, err := s.GetCampaign(t.Context(), ws.ID, ref)
		must(t, err, "get campaign")
		diff(t, "campaign", c, got, cmpopts.EquateEmpty())
	}
	_, err := s.GetCampaign(t.Context(), other.ID, c.ID)
	wantCode(t, err, apperr.NotFound, "get from another workspace")
	wantCode(t, s.CreateCampaign(t.Context(), newCampaign(ws, "black-friday")), apperr.Conflict, "duplicate key")
	second := createCampaign(t, s, ws, "second")
	list, err := s.ListCampaigns(t.Context(), ws.ID, store.ListParams{Limit: 1})
	must(t, err, "list")
	if len(list) != 1 || list[0].ID != c.ID || len(list[0].Variants) != 2 {
		t.Errorf("first page %+v", list)
	}
	list, err = s.ListCampaigns(t.Context(), ws.ID, store.ListParams{After: c.ID})
	must(t, err, "list")
	if len(list) != 1 || list[0].ID != second.ID {
		t.Errorf("second page %+v", list)
	}
	got, err := s.TransitionCampaign(t.Context(), ws.ID, c.ID, store.Transition{From: []store.Status{store.StatusRunning}, To: store.StatusPaused, At: t0})
	must(t, err, "pause")
	if got.Status != store.StatusPaused {
		t.Errorf("status %s", got.Status)
	}
	_, err = s.TransitionCampaign(t.Context(), ws.ID, c.ID, store.Transition{From: []store.Status{store.StatusRunning}, To: store.StatusPaused, At: t0})
	wantCode(t, err, apperr.Conflict, "pause twice")
	_, err = s.TransitionCampaign(t.Context(), other.ID, c.ID, store.Transition{From: []store.Status{store.StatusPaused}, To: store.StatusRunning, At: t0})
	wantCode(t, err, apperr.NotFound, "transition from another workspace")

	// The decision events are written, in the deciding transaction, by the
	// one call that records the decision.
	hook := createWebhook(t, s, ws, store.EventCampaignWinnerFound, store.EventCampaignGuardrail, store.EventCampaignNoDifference)
	w1, w2 := newEvent(store.EventCampaignWinnerFound, ws.ID, t0), newEvent(store.EventCampaignWinnerFound, ws.ID, t0)
	set, err := s.DeclareCampaignWinner(t.Context(), ws.ID, c.ID, "b", t0, w1)
	must(t, err, "declare")
	again, err := s.DeclareCampaignWinner(t.Context(), ws.ID, c.ID, "a", t0, w2)
	must(t, err, "declare again")
	if !set || again {
		t.Errorf("declare: first %v, second %v", set, again)
	}
	_, err = s.DeclareCampaignWinner(t.Context(), other.ID, c.ID, "a", t0)
	wantCode(t, err, apperr.NotFound, "declare in another workspace")
	g1, g2 := newEvent(store.EventCampaignGuardrail, ws.ID, t0), newEvent(store.EventCampaignGuardrail, ws.ID, t0)
	stop, err := s.StopCampaignVariant(t.Context(), ws.ID, c.ID, c.Variants[1].ID, t0, g1)
	must(t, err, "stop")
	stopAgain, err := s.StopCampaignVariant(t.Context(), ws.ID, c.ID, c.Variants[1].ID, t0, g2)
	must(t, err, "stop again")
	if !stop || stopAgain {
		t.Errorf("stop: first %v, second %v", stop, stopAgain)
	}
	if got, err := s.GetCampaign(t.Context(), ws.ID, c.ID); err != nil || got.NoDifferenceAt != nil {
		t.Errorf("NoDifferenceAt = %v (%v) before any was recorded", got.NoDifferenceAt, err)
	}
	n1, n2 := newEvent(store.EventCampaignNoDifference, ws.ID, t0), newEvent(store.EventCampaignNoDifference, ws.ID, t0)
	same, err := s.MarkCampaignNoDifference(t.Context(), ws.ID, c.ID, t0.Add(time.Hour), n1)
	must(t, err, "no difference")
	sameAgain, err := s.MarkCampaignNoDifference(t.Context(), ws.ID, c.ID, t0.Add(2*time.Hour), n2)
	must(t, err, "no difference again")
	if !same || sameAgain {
		t.Errorf("no difference: first %v, second %v", same, sameAgain)
	}
	_, err = s.MarkCampaignNoDifference(t.Context(), other.ID, c.ID, t0)
	wantCode(t, err, apperr.NotFound, "no difference in another workspace")
	deliveries := deliveriesOf(t, s, ws.ID, hook.ID)
	if _, ok := deliveries[w1.ID]; !ok || len(deliveries) != 3 {
		t.Errorf("deliveries %v, want exactly the first winner, guardrail and no-difference events", deliveries)
	}
	if _, ok := deliveries[n1.ID]; !ok {
		t.Errorf("no delivery of the first no-difference event: %v", deliveries)
	}
	if _, ok := deliveries[g1.ID]; !ok {
		t.Errorf("no delivery of the guardrail event: %v", deliveries)
	}
	_, err = s.StopCampaignVariant(t.Context(), other.ID, c.ID, c.Variants[0].ID, t0)
	wantCode(t, err, apperr.NotFound, "stop in another workspace")
	got, err = s.GetCampaign(t.Context(), ws.ID, c.ID)
	must(t, err, "get")
	if got.Winner != "b" || len(got.Stopped) != 1 || got.Stopped[0] != "b" {
		t.Errorf("winner %q stopped %v", got.Winner, got.Stopped)
	}
	if at := got.NoDifferenceAt; at == nil || !at.Equal(t0.Add(time.Hour)) {
		t.Errorf("NoDifferenceAt = %v, want %v", at, t0.Add(time.Hour))
	}
}

func testCampaignSends(t *testing.T, s store.Store) {
	ws := newWorkspace(t, s, "sends")
	c := createCampaign(t, s, ws, "sends")
	r1 := send(t, s, c, 0, t0, "r1", "r2")
	if r1.Wave != 1 || !r1.New[0] || !r1.New[1] {
		t.Fatalf("first wave %+v", r1)
	}
	// r2 again with the other variant: it keeps its first one.
	r2 := send(t, s, c, 1, t0.Add(time.Hour), "r2", "r3")
	if r2.Wave != 2 || r2.New[0] || r2.VariantIDs[0] != c.Variants[0].ID || !r2.New[1] || r2.VariantIDs[1] != c.Variants[1].ID {
		t.Fatalf("second wave %+v", r2)
	}
	r3 := send(t, s, c, 1, t0, "r1")
	if r3.Wave != 0 || r3.New[0] {
		t.Fatalf("repeat-only call %+v", r3)
	}
	got, err := s.CampaignRecipients(t.Context(), ws.ID, c.ID, []string{"r1", "r3", "nobody"})
	must(t, err, "recipients")
	diff(t, "recipients", map[string]string{"r1": c.Variants[0].ID, "r3": c.Variants[1].ID}, got)
	_, err = s.RecordSends(t.Context(), store.SendBatch{WorkspaceID: ws.ID, CampaignID: c.ID, ExpectSent: 2, At: t0,
		Items: []store.Send{{Recipient: "r9", VariantID: c.Variants[0].ID}}})
	wantCode(t, err, apperr.Conflict, "stale ExpectSent")
	tot, cc := totals(t, s, c)
	if tot[c.Variants[0].ID].Sent != 2 || tot[c.Variants[1].ID].Sent != 1 || len(cc.Slots) != 2 {
		t.Errorf("counters %+v", cc.Slots)
	}
	if len(cc.Waves) != 2 || cc.Waves[0].Sends != 2 || cc.Waves[1].VariantID != c.Variants[1].ID {
		t.Errorf("waves %+v", cc.Waves)
	}
	fresh, err := s.GetCampaign(t.Context(), ws.ID, c.ID)
	must(t, err, "get")
	if fresh.Sent != 3 || fresh.Waves != 2 {
		t.Errorf("sent %d waves %d", fresh.Sent, fresh.Waves)
	}

	// Concurrent calls with overlapping recipients: each recipient is
	// sent once, every caller sees its one variant.
	var wg sync.WaitGroup
	results := make([]store.SendsResult, 6)
	for g := range results {
		wg.Go(func() {
			b := store.SendBatch{WorkspaceID: ws.ID, CampaignID: c.ID, ExpectSent: -1, At: t0}
			for i := range 20 {
				b.Items = append(b.Items, store.Send{Recipient: fmt.Sprint("c", i), VariantID: c.Variants[g%2].ID})
			}
			res, err := s.RecordSends(t.Context(), b)
			if err != nil {
				t.Error(err)
			}
			results[g] = res
		})
	}
	wg.Wait()
	stored, err := s.CampaignRecipients(t.Context(), ws.ID, c.ID, []string{"c0", "c19"})
	must(t, err, "recipients")
	for _, res := range results {
		if len(res.VariantIDs) == 20 && (res.VariantIDs[0] != stored["c0"] || res.VariantIDs[19] != stored["c19"]) {
			t.Errorf("a caller saw %v, stored %v", res.VariantIDs, stored)
		}
	}
	fresh, err = s.GetCampaign(t.Context(), ws.ID, c.ID)
	must(t, err, "get")
	if fresh.Sent != 23 {
		t.Errorf("sent %d, want 23", fresh.Sent)
	}
}

func testCampaignEvents(t *testing.T, s store.Store) {
	ws := newWorkspace(t, s, "events")
	c := createCampaign(t, s, ws, "events")
	send(t, s, c, 0, t0, "r1", "r2", "r3", "r4")
	send(t, s, c, 1, t0, "r5")
	ev := func(r, typ string, after time.Duration, key string) store.CampaignEvent {
		return store.CampaignEvent{Recipient: r, Type: typ, Value: 0, At: t0.Add(after), IdempotencyKey: key}
	}
	res := campaignEvents(t, s, c,
		ev("r1", "click", 10*time.Minute, "k1"), // out of order: the click before its open
		ev("r1", "open", 5*time.Minute, ""),
		ev("r1", "click", 20*time.Minute, "k1"),  // retried
		ev("r2", "open", 2*time.Hour, ""),        // late
		ev("r3", "delivered", time.Minute, ""),   // delivered only
		ev("r3", "unsubscribe", time.Minute, ""), // unsubscribed
		ev("r4", "bounce", time.Minute, ""),      // bounced
		ev("nobody", "open", time.Minute, ""),    // never sent
		store.CampaignEvent{Recipient: "r5", Type: "conversion", Value: 3, At: t0},
		store.CampaignEvent{Recipient: "r5", Type: "conversion", Value: 4, At: t0},
		ev("r2", "click", -time.Second, "k9"),                                                            // before its send
		store.CampaignEvent{Recipient: "r3", Type: "open", At: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)}, // year 1
	)
	want := []store.Outcome{store.OutcomeAccepted, store.OutcomeAccepted, store.OutcomeDuplicate, store.OutcomeLate,
		store.OutcomeAccepted, store.OutcomeAccepted, store.OutcomeAccepted, store.OutcomeRejected,
		store.OutcomeAccepted, store.OutcomeAccepted, store.OutcomeRejected, store.OutcomeRejected}
	for i, r := range res {
		if r.Outcome != want[i] {
			t.Errorf("event %d: %s (%s), want %s", i, r.Outcome, r.Reason, want[i])
		}
	}
	tot, _ := totals(t, s, c)
	a, b := tot[c.Variants[0].ID], tot[c.Variants[1].ID]
	diff(t, "variant a", store.CampaignCounters{VariantID: c.Variants[0].ID, Sent: 4, Delivered: 2, Opens: 1, Clicks: 1,
		Unsubscribes: 1, Bounces: 1, Late: 1}, a)
	// One converting send worth 7: the sum of squares is 49, not 9 + 16.
	diff(t, "variant b", store.CampaignCounters{VariantID: c.Variants[1].ID, Sent: 1, Conversions: 1, Value: 7, ValueSquares: 49}, b, approx)

	// A late open followed by an in-window click of the same send: the
	// click counts (and implies the open), the late open never does.
	send(t, s, c, 1, t0, "r6")
	campaignEvents(t, s, c, ev("r6", "open", 3*time.Hour, ""))
	campaignEvents(t, s, c, ev("r6", "click", 30*time.Minute, ""))
	tot, _ = totals(t, s, c)
	if b := tot[c.Variants[1].ID]; b.Opens != 1 || b.Clicks != 1 || b.Late != 1 || b.Delivered != 1 {
		t.Errorf("late then in-window %+v", b)
	}
	other := newWorkspace(t, s, "other")
	_, err := s.RecordCampaignEvents(t.Context(), []store.CampaignEventBatch{{WorkspaceID: other.ID, CampaignID: c.ID,
		Window: time.Hour, Items: []store.CampaignEvent{ev("r1", "open", 0, "")}}})
	wantCode(t, err, apperr.NotFound, "events from another workspace")
	_, err = s.CampaignCounts(t.Context(), other.ID, c.ID)
	wantCode(t, err, apperr.NotFound, "counts from another workspace")
}

// testCampaignEventsBulk sends batches larger than one statement's rows
// (BatchRows: 64 on SQLite, 500 on PostgreSQL), so that every step of
// RecordCampaignEvents (the read of the sends, the claims of the keys, the
// inserts and the updates) runs in several statements: each recipient's
// counters move once, in the batch's order, and the outcomes are exact.
func testCampaignEventsBulk(t *testing.T, s store.Store) {
	ws := newWorkspace(t, s, "bulk")
	c := createCampaign(t, s, ws, "bulk")
	const n = 1100
	rcpt := func(i int) string { return fmt.Sprintf("bulk-%04d", i) }
	var even, odd []string
	for i := range n {
		if i%2 == 0 {
			even = append(even, rcpt(i))
		} else {
			odd = append(odd, rcpt(i))
		}
	}
	send(t, s, c, 0, t0, even...)
	send(t, s, c, 1, t0, odd...)

	var evs []store.CampaignEvent
	var want struct{ accepted, late, duplicate, rejected int }
	var counts [2]store.CampaignCounters
	for i := range n {
		v := &counts[i%2]
		key := ""
		if i%2 == 0 {
			key = fmt.Sprintf("open-%d", i)
		}
		// A click before its open: the click implies the open, which then
		// moves nothing.
		if i%3 == 0 {
			evs = append(evs, store.CampaignEvent{Recipient: rcpt(i), Type: "click", At: t0.Add(time.Minute)})
			want.accepted++
			v.Clicks++
		}
		evs = append(evs, store.CampaignEvent{Recipient: rcpt(i), Type: "open", At: t0.Add(2 * time.Minute), IdempotencyKey: key})
		want.accepted++
		v.Opens++
		v.Delivered++
		if i%10 == 1 {
			evs = append(evs, store.CampaignEvent{Recipient: rcpt(i), Type: "open", At: t0.Add(2 * time.Hour)})
			want.late++
			v.Late++
		}
		if i%7 == 0 {
			evs = append(evs, store.CampaignEvent{Recipient: rcpt(i), Type: "conversion", Value: 2, At: t0.Add(3 * time.Minute)},
				store.CampaignEvent{Recipient: rcpt(i), Type: "conversion", Value: 3, At: t0.Add(4 * time.Minute)})
			want.accepted += 2
			v.Conversions++
			v.Value += 5
			v.ValueSquares += 25
		}
	}
	// A key used twice in the batch, an unknown recipient, an event before
	// its send.
	evs = append(evs, store.CampaignEvent{Recipient: rcpt(2), Type: "open", At: t0.Add(time.Minute), IdempotencyKey: "open-0"},
		store.CampaignEvent{Recipient: "nobody", Type: "open", At: t0},
		store.CampaignEvent{Recipient: rcpt(5), Type: "open", At: t0.Add(-time.Second)})
	want.duplicate++
	want.rejected += 2

	outcomes := func(res []store.EventResult) map[store.Outcome]int {
		m := map[store.Outcome]int{}
		for _, r := range res {
			m[r.Outcome]++
		}
		return m
	}
	got := outcomes(campaignEvents(t, s, c, evs...))
	diff(t, "outcomes", map[store.Outcome]int{store.OutcomeAccepted: want.accepted, store.OutcomeLate: want.late,
		store.OutcomeDuplicate: want.duplicate, store.OutcomeRejected: want.rejected}, got)
	tot, _ := totals(t, s, c)
	for v := range counts {
		counts[v].VariantID = c.Variants[v].ID
		counts[v].Sent = n / 2
		diff(t, "variant "+c.Variants[v].Key, counts[v], tot[c.Variants[v].ID], approx)
	}

	// The same batch again: the keyed opens are duplicates, the rest is
	// accepted (or late) again and moves no counter.
	got = outcomes(campaignEvents(t, s, c, evs...))
	diff(t, "outcomes of the retry", map[store.Outcome]int{store.OutcomeAccepted: want.accepted - n/2, store.OutcomeLate: want.late,
		store.OutcomeDuplicate: n/2 + want.duplicate, store.OutcomeRejected: want.rejected}, got)
	tot, _ = totals(t, s, c)
	for v := range counts {
		counts[v].Late *= 2
		// Conversions stay: each send converts once. Its value doubles, its
		// square quadruples.
		counts[v].Value, counts[v].ValueSquares = 2*counts[v].Value, 4*counts[v].ValueSquares
		diff(t, "variant "+c.Variants[v].Key+" after the retry", counts[v], tot[c.Variants[v].ID], approx)
	}
}

// testCampaignDelays checks what the late-outcome model reads: the send
// times per slot (mean offset and latest) and the histogram of the delays
// from a send to the receipt of its objective's first counted event; and
// the split pick's compare and swap.
func testCampaignDelays(t *testing.T, s store.Store) {
	ws := newWorkspace(t, s, "delays")
	c := createCampaign(t, s, ws, "late")
	send(t, s, c, 0, t0.Add(10*time.Minute), "r1", "r2")
	send(t, s, c, 0, t0.Add(40*time.Minute), "r3")
	batch := func(received time.Time, evs ...store.CampaignEvent) {
		t.Helper()
		_, err := s.RecordCampaignEvents(t.Context(), []store.CampaignEventBatch{{WorkspaceID: c.WorkspaceID,
			CampaignID: c.ID, Window: c.Settings.AttributionWindow, Objective: c.Objective, ReceivedAt: received, Items: evs}})
		must(t, err, "record campaign events")
	}
	// r1 clicked 10 minutes after its send, reported an hour after it: the
	// delay is the receipt's. r2 opened (not the objective), then clicked,
	// with no receipt time: the event's own time. r1's second click moves
	// nothing.
	batch(t0.Add(70*time.Minute), store.CampaignEvent{Recipient: "r1", Type: store.CampaignClick, At: t0.Add(20 * time.Minute)})
	batch(time.Time{}, store.CampaignEvent{Recipient: "r2", Type: store.CampaignOpen, At: t0.Add(12 * time.Minute)},
		store.CampaignEvent{Recipient: "r2", Type: store.CampaignClick, At: t0.Add(25 * time.Minute)},
		store.CampaignEvent{Recipient: "r1", Type: store.CampaignClick, At: t0.Add(30 * time.Minute)})
	_, cc := totals(t, s, c)
	if len(cc.Slots) != 1 {
		t.Fatalf("slots %+v", cc.Slots)
	}
	sl := cc.Slots[0]
	var want [12]int64
	want[4] = 1 // r1: 60 minutes, in [1h, 2h)
	want[2] = 1 // r2: 15 minutes, in [15m, 30m)
	off := func(d time.Duration) float64 { return t0.Add(d).Sub(sl.Slot).Seconds() }
	wantSum := 2*off(10*time.Minute) + off(40*time.Minute)
	if sl.Sent != 3 || math.Abs(sl.SentAtSum-wantSum) > 1e-6 || !sl.LastSentAt.Equal(t0.Add(40*time.Minute)) || sl.Delays != want {
		t.Errorf("slot %+v, want 3 sends, offsets %vs, last at +40m, delays %v", sl, wantSum, want)
	}
	pick := func(old, p, want string) {
		t.Helper()
		got, err := s.PickCampaignSplit(t.Context(), c.WorkspaceID, c.ID, old, p)
		must(t, err, "pick")
		if got != want {
			t.Errorf("pick %q over %q: stored %q, want %q", p, old, got, want)
		}
	}
	pick("", "a", "a")
	pick("", "b", "a")  // another replica picked first
	pick("a", "b", "b") // replacing a stopped pick
	if got, err := s.GetCampaign(t.Context(), ws.ID, c.ID); err != nil || got.SplitPick != "b" {
		t.Errorf("campaign %+v, %v", got, err)
	}
	if _, err := s.PickCampaignSplit(t.Context(), "other", c.ID, "", "a"); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("another workspace's campaign: %v", err)
	}
}

// testCampaignTestSums checks the sums of the winner's anytime-valid test:
// a tested send adds 1/p and 1/p² to its variant and, to every variant, the
// probability it had; a counted objective adds y/p, y/p², y²/p² with the
// send's own p; an untested send (propensity 0) and a late or repeated
// event add nothing.
func testCampaignTestSums(t *testing.T, s store.Store) {
	ws := newWorkspace(t, s, "tests")
	c := createCampaign(t, s, ws, "clicks") // objective: click
	a, b := c.Variants[0].ID, c.Variants[1].ID
	call := store.SendBatch{WorkspaceID: ws.ID, CampaignID: c.ID, ExpectSent: -1, At: t0, Probs: map[string]float64{a: 0.25, b: 0.75},
		Items: []store.Send{{Recipient: "r1", VariantID: a, Propensity: 0.25}, {Recipient: "r2", VariantID: b, Propensity: 0.75},
			{Recipient: "r3", VariantID: b, Propensity: 0.75}}}
	_, err := s.RecordSends(t.Context(), call)
	must(t, err, "record tested sends")
	send(t, s, c, 0, t0, "r4") // untested (a split's second phase)
	ev := func(r, typ string, after time.Duration) store.CampaignEvent {
		return store.CampaignEvent{Recipient: r, Type: typ, At: t0.Add(after)}
	}
	res, err := s.RecordCampaignEvents(t.Context(), []store.CampaignEventBatch{{WorkspaceID: ws.ID, CampaignID: c.ID,
		Window: c.Settings.AttributionWindow, Objective: "click", Items: []store.CampaignEvent{
			ev("r1", "click", time.Minute), ev("r2", "open", time.Minute), ev("r3", "click", time.Minute),
			ev("r3", "click", 2*time.Minute), ev("r4", "click", time.Minute), ev("r2", "click", 2*time.Hour)}}})
	must(t, err, "record events")
	if len(res[0]) != 6 {
		t.Fatalf("%d results", len(res[0]))
	}
	const q, h = 4.0 / 3, 16.0 / 9 // 1/p and 1/p² at p = ¾
	got := testSums(t, s, c)
	diff(t, "test sums", map[string]store.CampaignCounters{
		a: {Tested: 1, TestSum: 1, TestSumSquares: 1, InvP: 4, InvP2: 16, YInvP: 4, YInvP2: 16, Y2InvP2: 16,
			Expected: 3 * 0.25, ExpectedSquares: 3 * 0.0625, InvExpected: 3 * 4},
		b: {Tested: 2, TestSum: 1, TestSumSquares: 1, InvP: 2 * q, InvP2: 2 * h, YInvP: q, YInvP2: h, Y2InvP2: h,
			Expected: 3 * 0.75, ExpectedSquares: 3 * 0.5625, InvExpected: 3 * q},
	}, got, approx)

	// A value objective: the send's value goes 0 → 3 → 7, so y²/p² gains
	// (9 − 0 + 49 − 9)/p².
	v := newCampaign(ws, "value")
	v.Objective = "value"
	must(t, s.CreateCampaign(t.Context(), v), "create value campaign")
	va, vb := v.Variants[0].ID, v.Variants[1].ID
	_, err = s.RecordSends(t.Context(), store.SendBatch{WorkspaceID: ws.ID, CampaignID: v.ID, ExpectSent: -1, At: t0,
		Probs: map[string]float64{va: 0.5, vb: 0.5}, Items: []store.Send{{Recipient: "r1", VariantID: va, Propensity: 0.5}}})
	must(t, err, "record value send")
	_, err = s.RecordCampaignEvents(t.Context(), []store.CampaignEventBatch{{WorkspaceID: ws.ID, CampaignID: v.ID,
		Window: v.Settings.AttributionWindow, Objective: "value", Items: []store.CampaignEvent{
			{Recipient: "r1", Type: "conversion", Value: 3, At: t0}, {Recipient: "r1", Type: "conversion", Value: 4, At: t0}}}})
	must(t, err, "record conversions")
	diff(t, "value test sums", map[string]store.CampaignCounters{
		va: {Tested: 1, TestSum: 7, TestSumSquares: 49, InvP: 2, InvP2: 4, YInvP: 14, YInvP2: 28, Y2InvP2: 196,
			Expected: 0.5, ExpectedSquares: 0.25, InvExpected: 2},
		vb: {Expected: 0.5, ExpectedSquares: 0.25, InvExpected: 2},
	}, testSums(t, s, v), approx)
}

// testSums returns the test sums of totals by variant id (the other
// fields left zero).
func testSums(t *testing.T, s store.Store, c store.Campaign) map[string]store.CampaignCounters {
	t.Helper()
	tot, _ := totals(t, s, c)
	out := map[string]store.CampaignCounters{}
	for v, x := range tot {
		out[v] = store.CampaignCounters{Tested: x.Tested, TestSum: x.TestSum, TestSumSquares: x.TestSumSquares,
			InvP: x.InvP, InvP2: x.InvP2, YInvP: x.YInvP, YInvP2: x.YInvP2, Y2InvP2: x.Y2InvP2,
			Expected: x.Expected, ExpectedSquares: x.ExpectedSquares, InvExpected: x.InvExpected}
	}
	return out
}
