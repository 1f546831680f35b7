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

// Funnels is the funnel optimizer: it assigns each unit a sticky variant at
// every step with variants it reaches, by the funnel's strategy
// (engine.MultiStep or engine.PerStep), records the unit's progress through
// a group commit, and analyses the funnel from its counters.
//
// It keeps no sealed state: both funnel strategies are Thompson sampling on
// posteriors that are a function of the stored counters alone, so there is
// nothing to remember between calls that the database does not hold, and
// any number of replicas agree by reading the same counters.
type Funnels struct {
	st   store.Store
	now  func() time.Time
	log  *slog.Logger
	opts Options
	m    *metrics

	progressQ *committer[store.ProgressBatch, []store.ProgressResult]

	mu      sync.Mutex
	entries map[string]*funnelEntry // by funnel id
}

// NewFunnels returns the funnel optimizer. Options.OnWinner is not used
// (funnels have a winner per step); Close it to commit what is queued before
// the store closes.
func NewFunnels(st store.Store, now func() time.Time, log *slog.Logger, opts Options) *Funnels {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	x := &Funnels{st: st, now: now, log: log, opts: opts.withDefaults(), entries: map[string]*funnelEntry{}, m: newMetrics(opts.Registerer)}
	x.progressQ = newCommitter(x.opts, x.flushProgress, x.m.observer("funnel_progress"))
	return x
}

// Close commits what is queued and stops the writers.
func (x *Funnels) Close() { x.progressQ.close() }

// funnelEntry is what a replica keeps in memory for one funnel: its random
// source (one stream for a seeded funnel) and the current plans.
type funnelEntry struct {
	mu  sync.Mutex
	rng *rand.Rand
	// plans are by step position, nil for steps without variants; rebuilt
	// every RefreshEvery (plansFor).
	plans rebuilt[[]*engine.Plan]
}

func (x *Funnels) entryOf(f *store.Funnel) *funnelEntry {
	x.mu.Lock()
	defer x.mu.Unlock()
	en, ok := x.entries[f.ID]
	if !ok {
		// The experiments' seeding, keyed by the funnel's id and seed.
		en = &funnelEntry{rng: newRand(&store.Experiment{ID: f.ID, Settings: store.Settings{Seed: f.Settings.Seed}})}
		x.entries[f.ID] = en
	}
	return en
}

// funnelSettings maps a funnel's settings onto the engine's.
func funnelSettings(s store.FunnelSettings) engine.Settings {
	return engineSettings(s.Decision())
}

// funnelInput builds the engine's input from the funnel and its counters at
// now, the open units weighed by the delay model (funnelMaturity).
func funnelInput(f *store.Funnel, c store.FunnelCounts, now time.Time) engine.FunnelInput {
	in := engine.FunnelInput{Strategy: f.Strategy, Settings: funnelSettings(f.Settings), Steps: make([]engine.FunnelStepInput, len(f.Steps))}
	type key struct {
		step    int
		variant string
	}
	byKey := make(map[key]store.StepCounters, len(c.Steps))
	for _, sc := range c.Steps {
		byKey[key{sc.Step, sc.VariantID}] = sc
	}
	arm := func(k string, control bool, sc store.StepCounters) engine.FunnelArm {
		return engine.FunnelArm{Key: k, Control: control, Units: sc.Units, Conversions: sc.Conversions,
			Advanced: sc.Advanced, Late: sc.Late, Open: sc.Open, Value: sc.Value,
			InvP: sc.InvP, InvP2: sc.InvP2, ConvInvP: sc.ConvInvP, ConvInvP2: sc.ConvInvP2, AdvInvP: sc.AdvInvP, AdvInvP2: sc.AdvInvP2,
			Expected: sc.Expected, ExpectedSquares: sc.ExpectedSquares, InvExpected: sc.InvExpected}
	}
	keys := map[string]string{} // variant id → key
	for i, st := range f.Steps {
		si := engine.FunnelStepInput{Key: st.Key}
		if len(st.Variants) == 0 {
			si.Arms = []engine.FunnelArm{arm("", false, byKey[key{i, ""}])}
		}
		for _, v := range st.Variants {
			keys[v.ID] = v.Key
			si.Arms = append(si.Arms, arm(v.Key, v.Control, byKey[key{i, v.ID}]))
		}
		in.Steps[i] = si
	}
	for _, p := range c.Paths {
		fp := engine.FunnelPath{Variants: make([]string, len(f.Steps)), Units: p.Units, Conversions: p.Conversions}
		for step, vid := range p.Path {
			if step >= 0 && step < len(fp.Variants) {
				fp.Variants[step] = keys[vid]
			}
		}
		in.Paths = append(in.Paths, fp)
	}
	funnelMaturity(f, c, &in, now)
	return in
}

// plansFor returns the funnel's current plans, rebuilt from the stored
// counters when older than RefreshEvery (see rebuilt: the rebuilding
// request releases en.mu, the others are served the plans being replaced).
// The caller holds en.mu, and holds it again on return.
func (x *Funnels) plansFor(ctx context.Context, f *store.Funnel, en *funnelEntry) ([]*engine.Plan, error) {
	now := x.now()
	return en.plans.get(&en.mu, now, x.opts.RefreshEvery, func() ([]*engine.Plan, error) {
		c, err := x.st.FunnelCounts(ctx, f.WorkspaceID, f.ID, now)
		if err != nil {
			return nil, fmt.Errorf("load counters of %s: %w", f.ID, err)
		}
		plans, err := engine.PlanFunnel(funnelInput(f, c, now))
		if err != nil {
			return nil, apperr.Wrap(apperr.Invalid, err, "funnel %s cannot be optimized", f.Key)
		}
		return plans, nil
	})
}

// Reached is the answer to one unit reaching one step.
type Reached struct {
	UnitID string
	Step   store.FunnelStep
	// Variant is the unit's variant at the step, nil for a step without
	// variants.
	Variant *store.Variant
	// New is true when this call recorded the unit reaching the step.
	New bool
}

// Progress records that the unit reached the step (by key) and returns its
// variant there: sticky per (unit, step); a repeated call changes nothing;
// a step the unit skipped and is now behind it is answered with the
// control and not recorded (see store.ProgressBehind); reaching the last
// step is the conversion, with value added to the revenue.
//
// Progress is accepted while the funnel runs. While it is paused or
// completed only conversions of units already in it are, so that a pause
// loses no outcome of units that were already served.
func (x *Funnels) Progress(ctx context.Context, f *store.Funnel, unitID, stepKey string, value float64) (out Reached, err error) {
	defer func() {
		if err == nil {
			countAssignments(x.m, KindFunnel, []Assignment{{Variant: out.Variant, New: out.New}})
		}
	}()
	step, ok := f.StepByKey(stepKey)
	if !ok {
		return Reached{}, apperr.Fields([]apperr.FieldError{{Field: "step", Reason: fmt.Sprintf("is not a step of funnel %s", f.Key)}})
	}
	goal := len(f.Steps) - 1
	switch {
	case f.Status == store.StatusRunning:
	case (f.Status == store.StatusPaused || f.Status == store.StatusCompleted) && step.Position == goal:
	default:
		return Reached{}, apperr.New(apperr.Conflict, "funnel %s is %s; units progress only while it runs (conversions also while paused or completed)", f.Key, f.Status)
	}
	out = Reached{UnitID: unitID, Step: step}
	byID := map[string]*store.Variant{}
	for i := range step.Variants {
		byID[step.Variants[i].ID] = &step.Variants[i]
	}
	behind := func() Reached {
		out.Variant = control(step)
		return out
	}
	notEntered := apperr.Fields([]apperr.FieldError{{Field: "unit_id", Reason: fmt.Sprintf(
		"never entered funnel %s: a unit reaches the goal %q only after an earlier step", f.Key, step.Key)}})

	// The fast path of repeated calls: a read, no write.
	seen, err := x.st.UnitSteps(ctx, f.WorkspaceID, f.ID, []string{unitID})
	if err != nil {
		return Reached{}, fmt.Errorf("look up progress: %w", err)
	}
	if mine, ok := seen[unitID]; ok {
		if vid, ok := mine[step.Position]; ok {
			out.Variant = byID[vid]
			return out, nil
		}
		furthest := -1
		for s := range mine {
			furthest = max(furthest, s)
		}
		if step.Position < furthest {
			return behind(), nil
		}
	} else if step.Position == goal {
		return Reached{}, notEntered
	}

	item := store.Progress{UnitID: unitID, Step: step.Position, Value: value, Propensity: 1}
	if len(step.Variants) > 0 {
		en := x.entryOf(f)
		en.mu.Lock()
		plans, err := x.plansFor(ctx, f, en)
		if err != nil {
			en.mu.Unlock()
			return Reached{}, err
		}
		plan := plans[step.Position]
		pick := plan.Pick(en.rng)
		en.mu.Unlock()
		item.VariantID, item.Propensity = step.Variants[pick.Index].ID, pick.Propensity
		// Every variant's weight now: the step's anytime-valid tests
		// count each unit's chance of landing on every variant.
		item.Weights = make(map[string]float64, len(step.Variants))
		for i, w := range plan.Weights() {
			item.Weights[step.Variants[i].ID] = w
		}
	}
	item.At = x.now()
	res, err := x.progressQ.do(ctx, f.ID, store.ProgressBatch{
		WorkspaceID: f.WorkspaceID, FunnelID: f.ID, Goal: goal,
		Window: f.Settings.AttributionWindow, BucketWidth: f.Settings.BucketWidth,
		Items: []store.Progress{item},
	})
	if err != nil {
		return Reached{}, fmt.Errorf("record progress: %w", err)
	}
	r := res[0]
	switch r.Outcome {
	case store.ProgressRecorded:
		out.New = true
		out.Variant = byID[r.VariantID]
	case store.ProgressRepeated:
		out.Variant = byID[r.VariantID]
	case store.ProgressBehind:
		return behind(), nil
	case store.ProgressNotEntered:
		return Reached{}, notEntered
	}
	return out, nil
}

// control returns the step's control variant (the first when none is
// marked), nil for a step without variants.
func control(s store.FunnelStep) *store.Variant {
	for i := range s.Variants {
		if s.Variants[i].Control {
			return &s.Variants[i]
		}
	}
	if len(s.Variants) > 0 {
		return &s.Variants[0]
	}
	return nil
}

// FunnelResults is a funnel's analysis as the API returns it.
type FunnelResults struct {
	FunnelID string       `json:"funnel_id"`
	Status   store.Status `json:"status"`
	*engine.FunnelResult
	UpdatedAt time.Time `json:"updated_at"`
}

// Results analyses the funnel and records the winner of every step whose
// decision rule declares one, and the no_difference of a step whose rule
// finds its variants alike. A recorded decision stays the step's (shown
// with the latest data's reason), as for experiments: a decision is an
// event, not a moving estimate.
func (x *Funnels) Results(ctx context.Context, f *store.Funnel) (*FunnelResults, error) {
	now := x.now()
	c, err := x.st.FunnelCounts(ctx, f.WorkspaceID, f.ID, now)
	if err != nil {
		return nil, fmt.Errorf("load counters of %s: %w", f.ID, err)
	}
	r, err := engine.AnalyzeFunnel(funnelInput(f, c, now))
	if err != nil {
		return nil, apperr.Wrap(apperr.Invalid, err, "funnel %s cannot be analysed", f.Key)
	}
	active := f.Status == store.StatusRunning || f.Status == store.StatusPaused
	for k := range r.Steps {
		sr := &r.Steps[k]
		st := &f.Steps[k]
		if len(st.Variants) == 0 {
			continue
		}
		if st.Winner == "" && sr.Winner != nil && active {
			set, err := x.st.DeclareStepWinner(ctx, f.WorkspaceID, f.ID, k, *sr.Winner, now,
				webhook.FunnelWinnerFound(*f, st.Key, *sr.Winner, now))
			if err != nil {
				return nil, fmt.Errorf("record winner of %s step %s: %w", f.ID, st.Key, err)
			}
			if set {
				st.Winner = *sr.Winner
				x.m.decided(KindFunnel, engine.StateWinnerFound)
				x.log.Info("funnel step winner found", "funnel", f.ID, "step", st.Key, "winner", st.Winner)
			} else if fresh, err := x.st.GetFunnel(ctx, f.WorkspaceID, f.ID); err == nil {
				*f = fresh // another replica declared first: report its winner
				st = &f.Steps[k]
			}
		}
		if st.Winner == "" && st.NoDifferenceAt == nil && sr.NoDifference() && active {
			// Recorded once among all replicas, with funnel.no_difference
			// in the same transaction, as an experiment's. The funnel keeps
			// running; the step counts as decided in the funnel's decision.
			set, err := x.st.MarkStepNoDifference(ctx, f.WorkspaceID, f.ID, k, now,
				webhook.FunnelNoDifference(*f, st.Key, sr.Decision.Reason, now))
			if err != nil {
				return nil, fmt.Errorf("record no difference of %s step %s: %w", f.ID, st.Key, err)
			}
			if set {
				x.m.decided(KindFunnel, engine.StateNoDifference)
				x.log.Info("funnel step shows no difference", "funnel", f.ID, "step", st.Key)
			}
			at := now
			st.NoDifferenceAt = &at
		}
		switch w := st.Winner; {
		case w != "":
			if sr.Winner == nil || *sr.Winner != w {
				d := engine.Decision(recordedWinner(w, sr.Decision.Reason))
				sr.Decision = &d
			}
			sr.Winner = &w
			r.BestPath[st.Key] = &w
		case st.NoDifferenceAt != nil && sr.Decision.State != engine.StateNoDifference:
			sr.Winner, r.BestPath[st.Key] = nil, nil
			d := engine.Decision(recordedNoDifference(*st.NoDifferenceAt, sr.Decision.Reason))
			sr.Decision = &d
		}
	}
	if f.Status == store.StatusCompleted || f.Status == store.StatusArchived {
		r.Decision = engine.Decision{State: engine.StateCompleted, Reason: "completed"}
	} else {
		r.Decision = engine.FunnelDecision(r.Steps)
	}
	return &FunnelResults{FunnelID: f.ID, Status: f.Status, FunnelResult: r, UpdatedAt: now}, nil
}
