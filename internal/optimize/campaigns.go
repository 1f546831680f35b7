package optimize

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/webhook"
)

// Campaigns is the email and push campaign optimizer: it allocates each
// call's new recipients (a wave) by the campaign's mode, records the sends
// and the events that follow (through a group commit), stops variants that
// trip the guardrail and records the winner.
//
// Like the funnel optimizer it keeps no sealed state. Discounted Thompson
// sampling (push) is computed from per-hour counters with the discount
// keyed to each send's age (engine.DiscountSlots), a function of the stored
// rows alone: replicas agree without a state to keep in step, and a reward
// that arrives late is weighed by when its send was made.
type Campaigns struct {
	st    store.Store
	now   func() time.Time
	log   *slog.Logger
	opts  Options
	hooks CampaignHooks
	m     *metrics

	eventQ *committer[store.CampaignEventBatch, []store.EventResult]

	// priors are the workspaces' priors on lifts learned from their
	// completed campaigns.
	priors liftPriors

	mu   sync.Mutex
	rngs map[string]*campaignRand // by campaign id
}

// CampaignHooks are called once per decision, on the replica that recorded
// it (the store's DeclareCampaignWinner and StopCampaignVariant say which).
// They are the seam for the campaign.winner_found and
// campaign.guardrail_tripped webhooks; nil hooks are skipped.
type CampaignHooks struct {
	OnWinner           func(ctx context.Context, c store.Campaign, winner string)
	OnGuardrailTripped func(ctx context.Context, c store.Campaign, variant string)
}

// NewCampaigns returns the campaign optimizer. Options.OnWinner is not used
// (see CampaignHooks). Close it to commit what is queued before the store
// closes.
func NewCampaigns(st store.Store, now func() time.Time, log *slog.Logger, opts Options, hooks CampaignHooks) *Campaigns {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	x := &Campaigns{st: st, now: now, log: log, opts: opts.withDefaults(), hooks: hooks, rngs: map[string]*campaignRand{}, m: newMetrics(opts.Registerer)}
	x.eventQ = newCommitter(x.opts, st.RecordCampaignEvents, x.m.observer("campaign_event"))
	return x
}

// Close commits what is queued and stops the writers.
func (x *Campaigns) Close() { x.eventQ.close() }

// campaignRand is a campaign's random source: one stream for a seeded
// campaign, so that a replayed campaign allocates the same way.
type campaignRand struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func (x *Campaigns) rngOf(c *store.Campaign) *campaignRand {
	x.mu.Lock()
	defer x.mu.Unlock()
	r, ok := x.rngs[c.ID]
	if !ok {
		// The experiments' seeding, keyed by the campaign's id and seed.
		r = &campaignRand{rng: newRand(&store.Experiment{ID: c.ID, Settings: store.Settings{Seed: c.Settings.Seed}})}
		x.rngs[c.ID] = r
	}
	return r
}

// CampaignMetric returns the engine metric of an objective.
func CampaignMetric(objective string) engine.Metric {
	if objective == "value" {
		return engine.Continuous
	}
	return engine.Binary
}

// variantTotals are one variant's counters added over its slots.
type variantTotals struct {
	store.CampaignCounters
	slots []engine.CampaignSlot
}

// trials are the sends that could earn the objective: not bounced.
func trials(c store.CampaignCounters) int64 { return c.Sent - c.Bounces }

// success returns the objective's count of c.
func success(objective string, c store.CampaignCounters) int64 {
	switch objective {
	case "open":
		return c.Opens
	case "click":
		return c.Clicks
	}
	return c.Conversions
}

// guardCounts returns the guardrail's events and trials: bounces among
// sends, any other event among sends not bounced.
func guardCounts(event string, c store.CampaignCounters) (events, trials int64) {
	switch event {
	case store.CampaignBounce:
		return c.Bounces, c.Sent
	case store.CampaignUnsubscribe:
		return c.Unsubscribes, c.Sent - c.Bounces
	}
	return 0, c.Sent - c.Bounces
}

// CampaignEngineSettings maps a campaign's settings onto the engine's.
func CampaignEngineSettings(s store.CampaignSettings) engine.Settings {
	return engineSettings(s.Decision())
}

// campaignInput builds the engine's input from the campaign and its
// counters at now: cumulative counts per variant, and, when the campaign
// discounts, the per-hour slots discounted to now.
func campaignInput(c *store.Campaign, counts store.CampaignCounts, now time.Time) (engine.CampaignInput, map[string]*variantTotals, engine.DelayModel) {
	by := map[string]*variantTotals{}
	var all []engine.CampaignSlot
	for _, v := range c.Variants {
		by[v.ID] = &variantTotals{CampaignCounters: store.CampaignCounters{VariantID: v.ID}}
	}
	for _, sl := range counts.Slots {
		t := by[sl.VariantID]
		if t == nil {
			continue
		}
		a := &t.CampaignCounters
		a.Sent += sl.Sent
		a.Delivered += sl.Delivered
		a.Opens += sl.Opens
		a.Clicks += sl.Clicks
		a.Unsubscribes += sl.Unsubscribes
		a.Bounces += sl.Bounces
		a.Conversions += sl.Conversions
		a.Value += sl.Value
		a.ValueSquares += sl.ValueSquares
		a.Late += sl.Late
		a.Tested += sl.Tested
		a.TestSum += sl.TestSum
		a.TestSumSquares += sl.TestSumSquares
		a.InvP += sl.InvP
		a.InvP2 += sl.InvP2
		a.YInvP += sl.YInvP
		a.YInvP2 += sl.YInvP2
		a.Y2InvP2 += sl.Y2InvP2
		a.Expected += sl.Expected
		a.ExpectedSquares += sl.ExpectedSquares
		a.InvExpected += sl.InvExpected
		es := engine.CampaignSlot{Start: sl.Slot, Trials: float64(trials(sl)),
			Successes: float64(success(c.Objective, sl)), Sum: sl.Value, SumSquares: sl.ValueSquares,
			Last: sl.LastSentAt, Delays: sl.Delays}
		if sl.Sent > 0 {
			es.Mean = sl.Slot.Add(time.Duration(sl.SentAtSum / float64(sl.Sent) * float64(time.Second)))
		}
		t.slots = append(t.slots, es)
		all = append(all, es)
	}
	// One delay distribution for the campaign, from every variant's slots.
	delays := engine.EstimateDelaysLongest(all, now, c.Settings.AttributionWindow)
	in := engine.CampaignInput{Metric: CampaignMetric(c.Objective), Mode: c.Mode, Settings: CampaignEngineSettings(c.Settings),
		Sent: c.Sent, TestSends: TestSends(c), Winner: c.Winner, Pick: c.SplitPick}
	if g := c.Settings.Guardrail; g != nil {
		in.Guardrail = &engine.Guardrail{MaxRate: g.MaxRate, Confidence: g.Confidence}
	}
	stopped := map[string]bool{}
	for _, k := range c.Stopped {
		stopped[k] = true
	}
	for _, v := range c.Variants {
		t := by[v.ID]
		a := engine.CampaignArm{Key: v.Key, Trials: trials(t.CampaignCounters), Successes: success(c.Objective, t.CampaignCounters),
			Stopped: stopped[v.Key], Test: engine.Arm{Units: t.Tested, Sum: t.TestSum, SumSquares: t.TestSumSquares,
				InvP: t.InvP, InvP2: t.InvP2, YInvP: t.YInvP, YInvP2: t.YInvP2, Y2InvP2: t.Y2InvP2,
				Expected: t.Expected, ExpectedSquares: t.ExpectedSquares, InvExpected: t.InvExpected}}
		if in.Metric == engine.Continuous {
			a.Sum, a.SumSquares = t.Value, t.ValueSquares
		}
		if g := c.Settings.Guardrail; g != nil {
			a.GuardEvents, a.GuardTrials = guardCounts(g.Event, t.CampaignCounters)
		}
		// Late outcomes: each send counts by the probability that its outcome
		// has arrived (engine/delay.go), discounted when the campaign is.
		matured := engine.MatureSlots(t.slots, now, 0, delays)
		a.Matured, a.Learn = &matured, &matured
		if c.Settings.DiscountHalfLife > 0 {
			l := engine.MatureSlots(t.slots, now, c.Settings.DiscountHalfLife, delays)
			a.Learn = &l
		}
		in.Arms = append(in.Arms, a)
	}
	return in, by, delays
}

// TestSends returns the size of a split campaign's test.
func TestSends(c *store.Campaign) int64 {
	return int64(c.Settings.TestShare*float64(c.AudienceSize) + 0.5)
}

// analyze loads the counters, analyses the campaign, and records what the
// analysis decided for the first time: guardrail trips (always) and the
// winner (while the campaign is active). It updates c to match.
func (x *Campaigns) analyze(ctx context.Context, c *store.Campaign) (*campaignAnalysis, error) {
	now := x.now()
	counts, err := x.st.CampaignCounts(ctx, c.WorkspaceID, c.ID)
	if err != nil {
		return nil, fmt.Errorf("load counters of %s: %w", c.ID, err)
	}
	in, totals, delays := campaignInput(c, counts, now)
	if in.Settings.LearnedPrior, err = x.learnedPrior(ctx, c, now); err != nil {
		return nil, err
	}
	a, err := engine.AnalyzeCampaign(in)
	if err != nil {
		return nil, apperr.Wrap(apperr.Invalid, err, "campaign %s cannot be analysed", c.Key)
	}
	for _, k := range a.Tripped {
		v, _ := c.VariantByKey(k)
		set, err := x.st.StopCampaignVariant(ctx, c.WorkspaceID, c.ID, v.ID, now, webhook.CampaignGuardrailTripped(*c, k, now))
		if err != nil {
			return nil, fmt.Errorf("stop variant %s of %s: %w", k, c.ID, err)
		}
		c.Stopped = append(c.Stopped, k)
		if set {
			x.m.decided(KindOfCampaign(c), "guardrail_tripped")
			x.log.Info("campaign guardrail tripped", "campaign", c.ID, "variant", k)
			if x.hooks.OnGuardrailTripped != nil {
				x.hooks.OnGuardrailTripped(ctx, *c, k)
			}
		}
	}
	active := c.Status == store.StatusRunning || c.Status == store.StatusPaused
	if c.Winner == "" && a.Winner != nil && active {
		set, err := x.st.DeclareCampaignWinner(ctx, c.WorkspaceID, c.ID, *a.Winner, now, webhook.CampaignWinnerFound(*c, *a.Winner, now))
		if err != nil {
			return nil, fmt.Errorf("record winner of %s: %w", c.ID, err)
		}
		if set {
			c.Winner = *a.Winner
			x.m.decided(KindOfCampaign(c), engine.StateWinnerFound)
			x.log.Info("campaign winner found", "campaign", c.ID, "winner", c.Winner)
			if x.hooks.OnWinner != nil {
				x.hooks.OnWinner(ctx, *c, c.Winner)
			}
		} else if fresh, err := x.st.GetCampaign(ctx, c.WorkspaceID, c.ID); err == nil {
			c.Winner = fresh.Winner // another replica declared first: report its winner
		}
	}
	if c.Winner == "" && c.NoDifferenceAt == nil && a.Decision.State == engine.StateNoDifference && active {
		// Recorded once among all replicas, with campaign.no_difference in
		// the same transaction, as an experiment's. Sending goes on as
		// before: any of the variants serves as well as the others.
		set, err := x.st.MarkCampaignNoDifference(ctx, c.WorkspaceID, c.ID, now, webhook.CampaignNoDifference(*c, a.Decision.Reason, now))
		if err != nil {
			return nil, fmt.Errorf("record no difference of %s: %w", c.ID, err)
		}
		if set {
			x.m.decided(KindOfCampaign(c), engine.StateNoDifference)
			x.log.Info("campaign shows no difference", "campaign", c.ID)
		}
		at := now
		c.NoDifferenceAt = &at
	}
	return &campaignAnalysis{CampaignAnalysis: a, totals: totals, waves: counts.Waves, delays: delays, prior: liftPriorOf(in.Settings)}, nil
}

// campaignAnalysis is the engine's analysis of a campaign with what the
// results show besides: the variants' totals, the latest waves, the delay
// model, and the prior on lifts in effect (nil: none).
type campaignAnalysis struct {
	*engine.CampaignAnalysis
	totals map[string]*variantTotals
	waves  []store.WaveCounters
	delays engine.DelayModel
	prior  *LiftPrior
}

// Sent is one recipient's variant.
type Sent struct {
	Recipient string
	Variant   store.Variant
}

// SendsOutcome is the answer to a sends call.
type SendsOutcome struct {
	// Wave numbers the call's new sends; 0 when every recipient had been
	// sent before.
	Wave  int64
	Sends []Sent
}

// maxSendAttempts bounds the retries of a split campaign's test sends when
// other calls keep sending between the read and the write.
const maxSendAttempts = 8

// Send allocates the variants of the recipients (sticky: one already sent
// gets its first variant again) and records the new sends as one wave.
// The campaign must be running.
func (x *Campaigns) Send(ctx context.Context, c *store.Campaign, recipients []string) (SendsOutcome, error) {
	if c.Status != store.StatusRunning {
		return SendsOutcome{}, apperr.New(apperr.Conflict, "campaign %s is %s; it sends only while running", c.Key, c.Status)
	}
	stored, err := x.st.CampaignRecipients(ctx, c.WorkspaceID, c.ID, recipients)
	if err != nil {
		return SendsOutcome{}, fmt.Errorf("look up recipients: %w", err)
	}
	var fresh []string
	seen := map[string]bool{}
	for _, r := range recipients {
		if _, ok := stored[r]; !ok && !seen[r] {
			fresh = append(fresh, r)
			seen[r] = true
		}
	}
	var wave int64
	if len(fresh) > 0 {
		wave, err = x.sendNew(ctx, c, fresh, stored)
		if err != nil {
			return SendsOutcome{}, err
		}
	}
	byID := map[string]store.Variant{}
	for _, v := range c.Variants {
		byID[v.ID] = v
	}
	// A send is a campaign's assignment: a recipient sent before gets its
	// first variant again (existing).
	x.m.assignments.WithLabelValues(string(KindOfCampaign(c)), assignNew).Add(float64(len(fresh)))
	if n := len(recipients) - len(fresh); n > 0 {
		x.m.assignments.WithLabelValues(string(KindOfCampaign(c)), assignExisting).Add(float64(n))
	}
	out := SendsOutcome{Wave: wave, Sends: make([]Sent, len(recipients))}
	for i, r := range recipients {
		out.Sends[i] = Sent{Recipient: r, Variant: byID[stored[r]]}
	}
	return out, nil
}

// sendNew allocates and records the new recipients, adding their variants
// to stored. A split campaign still in its test sends under an optimistic
// lock on the campaign's send count, so that racing calls cannot make the
// test uneven; they retry from fresh counters.
func (x *Campaigns) sendNew(ctx context.Context, c *store.Campaign, fresh []string, stored map[string]string) (int64, error) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			cur, err := x.st.GetCampaign(ctx, c.WorkspaceID, c.ID)
			if err != nil {
				return 0, fmt.Errorf("reload campaign %s: %w", c.ID, err)
			}
			*c = cur
			if c.Status != store.StatusRunning {
				return 0, apperr.New(apperr.Conflict, "campaign %s is %s; it sends only while running", c.Key, c.Status)
			}
		}
		a, err := x.analyze(ctx, c)
		if err != nil {
			return 0, err
		}
		if !a.Sendable() {
			return 0, apperr.New(apperr.Conflict, "campaign %s: every variant tripped the guardrail; nothing can be sent", c.Key)
		}
		if a.NeedsPick(len(fresh)) {
			// A split's second phase goes to one variant, chosen once on the
			// matured counts: later calls, and other replicas, keep it.
			pick, err := x.st.PickCampaignSplit(ctx, c.WorkspaceID, c.ID, c.SplitPick, a.Target())
			if err != nil {
				return 0, fmt.Errorf("pick the split variant of %s: %w", c.ID, err)
			}
			c.SplitPick = pick
			a.SetPick(pick)
		}
		r := x.rngOf(c)
		r.mu.Lock()
		alloc := a.AllocateTested(r.rng, len(fresh))
		r.mu.Unlock()
		b := store.SendBatch{WorkspaceID: c.WorkspaceID, CampaignID: c.ID, ExpectSent: -1, At: x.now(), Items: make([]store.Send, len(fresh))}
		if c.Mode == engine.CampaignSplit && c.Sent < TestSends(c) {
			b.ExpectSent = c.Sent
		}
		for i, rcp := range fresh {
			arm := alloc.Arms[i]
			b.Items[i] = store.Send{Recipient: rcp, VariantID: c.Variants[arm].ID}
			if i < alloc.Tested {
				// A random draw: the winner's test weighs the send by the
				// probability it had (engine.CampaignArm).
				b.Items[i].Propensity = alloc.Probs[arm]
			}
		}
		if alloc.Tested > 0 {
			b.Probs = make(map[string]float64, len(c.Variants))
			for i, w := range alloc.Probs {
				if w > 0 {
					b.Probs[c.Variants[i].ID] = w
				}
			}
		}
		res, err := x.st.RecordSends(ctx, b)
		if apperr.Is(err, apperr.Conflict) && attempt+1 < maxSendAttempts {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("record sends: %w", err)
		}
		for i, rcp := range fresh {
			stored[rcp] = res.VariantIDs[i]
		}
		return res.Wave, nil
	}
}

// RecordEvents stores the events of sent recipients through the group
// commit. Events are accepted in every status: outcomes of sends already
// made keep arriving after a pause or the end of a campaign.
func (x *Campaigns) RecordEvents(ctx context.Context, c *store.Campaign, events []store.CampaignEvent) ([]store.EventResult, error) {
	res, err := x.eventQ.do(ctx, c.ID, store.CampaignEventBatch{WorkspaceID: c.WorkspaceID, CampaignID: c.ID,
		Window: c.Settings.AttributionWindow, Objective: c.Objective, ReceivedAt: x.now(), Items: events})
	if err != nil {
		return nil, fmt.Errorf("record campaign events: %w", err)
	}
	x.m.countEvents(KindOfCampaign(c), res)
	return res, nil
}

// CampaignVariantResults is one variant's line of the results.
type CampaignVariantResults struct {
	Key          string  `json:"key"`
	Sent         int64   `json:"sent"`
	Delivered    int64   `json:"delivered"`
	Opens        int64   `json:"opens"`
	Clicks       int64   `json:"clicks"`
	Unsubscribes int64   `json:"unsubscribes"`
	Bounces      int64   `json:"bounces"`
	Conversions  int64   `json:"conversions"`
	Value        float64 `json:"value"`
	// Late counts events after the attribution window: stored, not counted.
	Late int64 `json:"late"`
	// Rate is the objective per matured send (each send not bounced counted
	// by the probability that its outcome has arrived: MaturedTrials), with
	// its 95% credible interval; RawRate is per send not bounced, the sends
	// whose outcome cannot have arrived yet included.
	MaturedTrials float64  `json:"matured_trials"`
	Rate          float64  `json:"rate"`
	RawRate       float64  `json:"raw_rate"`
	CILow         float64  `json:"ci_low"`
	CIHigh        float64  `json:"ci_high"`
	PBest         float64  `json:"p_best"`
	ExpectedLoss  *float64 `json:"expected_loss"`
	Weight        float64  `json:"weight"`
	// Guardrail is nil for a campaign without one.
	Guardrail *CampaignGuardrailResult `json:"guardrail"`
}

// CampaignGuardrailResult is a variant's guardrail state.
type CampaignGuardrailResult struct {
	Event   string  `json:"event"`
	MaxRate float64 `json:"max_rate"`
	engine.GuardrailState
}

// WaveResult is one wave: when it went out, how many sends, and each
// variant's share of them.
type WaveResult struct {
	Wave   int64              `json:"wave"`
	At     time.Time          `json:"at"`
	Sends  int64              `json:"sends"`
	Shares map[string]float64 `json:"shares"`
}

// OutcomeDelay describes the estimated delay distribution F of the
// objective (engine.DelayModel): the time from a send to the receipt of its
// open, click or conversion.
type OutcomeDelay struct {
	// Events is the number of observed delays the estimate rests on; with
	// none, every send counts as a trial (F ≡ 1).
	Events int64 `json:"events"`
	// Horizon is the largest delay F is estimated to (it is relative to
	// it), at most the attribution window; Median is F's median. Both are
	// Go durations, "0s" while nothing is known.
	Horizon string `json:"horizon"`
	Median  string `json:"median"`
	// Matured is the share of the sends not bounced that the matured
	// trials count: Σ F(age) / sends.
	Matured float64 `json:"matured"`
	// CDF is F at the ages it is estimated at.
	CDF []DelayPoint `json:"cdf"`
}

// DelayPoint is F at one age.
type DelayPoint struct {
	Age string  `json:"age"`
	F   float64 `json:"f"`
}

// CampaignResults is a campaign's analysis as the API returns it.
type CampaignResults struct {
	CampaignID string                   `json:"campaign_id"`
	Status     store.Status             `json:"status"`
	Channel    string                   `json:"channel"`
	Objective  string                   `json:"objective"`
	Mode       string                   `json:"mode"`
	Sent       int64                    `json:"sent"`
	Variants   []CampaignVariantResults `json:"variants"`
	Leader     *string                  `json:"leader"`
	Winner     *string                  `json:"winner"`
	Decision   Decision                 `json:"decision"`
	// SplitPick is the variant a split_then_winner campaign sends to after
	// its test, chosen once on the matured counts; nil until then.
	SplitPick *string `json:"split_pick"`
	// OutcomeDelay is the estimated delay distribution of the objective.
	OutcomeDelay OutcomeDelay `json:"outcome_delay"`
	// Waves are the most recent waves (store.MaxResultWaves), oldest first.
	Waves     []WaveResult `json:"waves"`
	UpdatedAt time.Time    `json:"updated_at"`
	// Prior is the prior on lifts a winner must also convince; nil when
	// there is none.
	Prior *LiftPrior `json:"prior"`
}

// Results analyses the campaign, records the decisions it makes for the
// first time, and returns the results document. A declared winner stays
// the winner, as for experiments.
func (x *Campaigns) Results(ctx context.Context, c *store.Campaign) (*CampaignResults, error) {
	a, err := x.analyze(ctx, c)
	if err != nil {
		return nil, err
	}
	totals, waves, delays := a.totals, a.waves, a.delays
	out := &CampaignResults{CampaignID: c.ID, Status: c.Status, Channel: c.Channel, Objective: c.Objective, Mode: c.Mode,
		Sent: c.Sent, Decision: Decision(a.Decision), Waves: []WaveResult{}, UpdatedAt: x.now(), Prior: a.prior}
	if a.Leader != "" {
		l := a.Leader
		out.Leader = &l
	}
	keys := map[string]string{}
	for i, v := range c.Variants {
		keys[v.ID] = v.Key
		t, r := totals[v.ID], a.Variants[i]
		vr := CampaignVariantResults{Key: v.Key, Sent: t.Sent, Delivered: t.Delivered, Opens: t.Opens, Clicks: t.Clicks,
			Unsubscribes: t.Unsubscribes, Bounces: t.Bounces, Conversions: t.Conversions, Value: t.Value, Late: t.Late,
			MaturedTrials: r.MaturedTrials, Rate: r.Rate, RawRate: r.RawRate, CILow: r.CILow, CIHigh: r.CIHigh, PBest: r.PBest, ExpectedLoss: r.ExpectedLoss, Weight: r.Weight}
		if g := c.Settings.Guardrail; g != nil && r.Guardrail != nil {
			vr.Guardrail = &CampaignGuardrailResult{Event: g.Event, MaxRate: g.MaxRate, GuardrailState: *r.Guardrail}
		}
		out.Variants = append(out.Variants, vr)
	}
	switch {
	case c.Status == store.StatusCompleted || c.Status == store.StatusArchived:
		out.Decision = Decision{State: engine.StateCompleted, Reason: "completed"}
	case c.Winner != "" && (a.Winner == nil || *a.Winner != c.Winner):
		out.Decision = recordedWinner(c.Winner, a.Decision.Reason)
	case c.Winner == "" && c.NoDifferenceAt != nil && a.Decision.State != engine.StateNoDifference:
		out.Decision = recordedNoDifference(*c.NoDifferenceAt, a.Decision.Reason)
	}
	if c.Winner != "" {
		w := c.Winner
		out.Winner = &w
	}
	if c.SplitPick != "" {
		p := c.SplitPick
		out.SplitPick = &p
	}
	out.OutcomeDelay = OutcomeDelay{Events: delays.Events, Horizon: delays.Horizon.String(), Median: "0s", CDF: []DelayPoint{}}
	if delays.Events > 0 {
		out.OutcomeDelay.Median = delays.Quantile(0.5).Round(time.Second).String()
	}
	for i, p := range delays.Points {
		out.OutcomeDelay.CDF = append(out.OutcomeDelay.CDF, DelayPoint{Age: p.String(), F: delays.CDF[i]})
	}
	var raw, matured float64
	for _, r := range a.Variants {
		raw += float64(r.Trials)
		matured += r.MaturedTrials
	}
	if raw > 0 {
		out.OutcomeDelay.Matured = matured / raw
	}
	for _, w := range waves {
		if n := len(out.Waves); n == 0 || out.Waves[n-1].Wave != w.Wave {
			out.Waves = append(out.Waves, WaveResult{Wave: w.Wave, At: w.At, Shares: map[string]float64{}})
		}
		cur := &out.Waves[len(out.Waves)-1]
		cur.Sends += w.Sends
		cur.Shares[keys[w.VariantID]] += float64(w.Sends)
	}
	for i := range out.Waves {
		for k := range out.Waves[i].Shares {
			out.Waves[i].Shares[k] /= float64(out.Waves[i].Sends)
		}
	}
	return out, nil
}
