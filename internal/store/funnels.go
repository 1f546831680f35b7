package store

import (
	"context"
	"time"
)

// Funnel is an ordered list of steps, each optionally carrying variants,
// optimised for the end-to-end conversion: a unit that reaches the last
// step (the goal) converts. See design.md, "Funnel optimizer".
type Funnel struct {
	ID          string
	WorkspaceID string
	Key         string
	Name        string
	// Strategy is multi_step (per-step Thompson sampling on end-to-end
	// posteriors) or per_step (the naive baseline: each step optimises its
	// own next-step rate).
	Strategy string
	Status   Status
	// Steps are in funnel order; Steps[i].Position == i. The last is the goal.
	Steps       []FunnelStep
	Settings    FunnelSettings
	CreatedAt   time.Time
	UpdatedAt   time.Time
	StartedAt   *time.Time
	CompletedAt *time.Time
}

// FunnelStep is one step of a funnel. A step without variants is only
// counted; a step with variants is a small experiment whose arms are judged
// by what happens at the end of the funnel.
type FunnelStep struct {
	ID       string
	Key      string
	Name     string
	Position int
	Variants []Variant
	// Winner is the key of the variant the decision rule declared, "" when
	// none was.
	Winner string
	// NoDifferenceAt is when the step's no_difference decision (every
	// variant provably within ± min_effect of the leader) was first
	// recorded; nil while it has not been.
	NoDifferenceAt *time.Time
}

// VariantByKey returns the step's variant with the key, and whether there
// is one.
func (s *FunnelStep) VariantByKey(key string) (Variant, bool) {
	for _, v := range s.Variants {
		if v.Key == key {
			return v, true
		}
	}
	return Variant{}, false
}

// StepByKey returns the funnel's step with the key, and whether there is one.
func (f *Funnel) StepByKey(key string) (FunnelStep, bool) {
	for _, s := range f.Steps {
		if s.Key == key {
			return s, true
		}
	}
	return FunnelStep{}, false
}

// FunnelSettings are a funnel's tunables, stored as JSON (a new field needs
// no migration). The API fills every default at creation, so what a funnel
// runs with is stored and a later change of a default changes no funnel.
type FunnelSettings struct {
	MinSamples        int     `json:"min_samples"`
	DecisionThreshold float64 `json:"decision_threshold"`
	LossThreshold     float64 `json:"loss_threshold"`
	WeightFloor       float64 `json:"weight_floor"`
	Seed              *int64  `json:"seed"`
	// AttributionWindow is how long after reaching a step a unit may
	// complete the funnel and still count as a conversion of that step.
	AttributionWindow time.Duration `json:"attribution_window"`
	// BucketWidth is the width of the time buckets that count units by
	// when they reached a step, from which the units still inside their
	// window ("open") are counted; derived from AttributionWindow at
	// creation and fixed since, because the buckets already written use it.
	BucketWidth time.Duration `json:"bucket_width"`
	// Alpha and MinEffect are the step winners' test level and the
	// relative margin of no_difference, as in an experiment's Settings; 0
	// in funnels stored before they existed, which means the engine's
	// defaults.
	Alpha     float64 `json:"alpha,omitempty"`
	MinEffect float64 `json:"min_effect,omitempty"`
	// PriorLiftSD, when positive, is the prior on relative lifts a step's
	// winner must also convince, as in an experiment's Settings; 0: none.
	PriorLiftSD float64 `json:"prior_lift_sd,omitempty"`
}

// Decision returns the settings of the steps' winner and no_difference
// rule as an experiment's Settings, the form the engine's mapping and the
// dashboard read; the other fields are zero.
func (s FunnelSettings) Decision() Settings {
	return Settings{MinSamples: s.MinSamples, DecisionThreshold: s.DecisionThreshold, LossThreshold: s.LossThreshold,
		WeightFloor: s.WeightFloor, Alpha: s.Alpha, MinEffect: s.MinEffect, PriorLiftSD: s.PriorLiftSD}
}

// Progress is one unit reaching one step.
type Progress struct {
	UnitID string
	// Step is the position of the step reached.
	Step int
	// VariantID is the variant the unit is assigned at the step if this
	// call makes the first visit: "" for a step without variants.
	VariantID  string
	Propensity float64
	// Weights, with a variant on a first visit, are the weights every
	// variant of the step had when the unit came, by variant id: the
	// predictable part of the step's anytime-valid tests
	// (StepCounters.Expected).
	Weights map[string]float64
	// Value is the conversion value added when Step is the goal.
	Value float64
	At    time.Time
}

// ProgressBatch is a set of progress items of one funnel, applied in order.
type ProgressBatch struct {
	WorkspaceID string
	FunnelID    string
	// Goal is the position of the last step; Window the attribution window
	// and BucketWidth the width of the reach-time buckets (FunnelSettings).
	Goal        int
	Window      time.Duration
	BucketWidth time.Duration
	Items       []Progress
}

// ProgressOutcome is what a progress item did.
type ProgressOutcome string

// The progress outcomes.
const (
	// ProgressRecorded: the unit reached the step for the first time and
	// it was recorded (with the item's variant).
	ProgressRecorded ProgressOutcome = "recorded"
	// ProgressRepeated: the unit had reached the step before; the stored
	// variant is returned and nothing changes.
	ProgressRepeated ProgressOutcome = "repeated"
	// ProgressBehind: the unit is already past the step and never visited
	// it (it skipped it). Nothing is recorded: a trial at a step must begin
	// before the unit moves past it, or units already further down would
	// count for the step and bias it.
	ProgressBehind ProgressOutcome = "behind"
	// ProgressNotEntered: the goal was reached by a unit that never entered
	// the funnel; nothing is recorded.
	ProgressNotEntered ProgressOutcome = "not_entered"
)

// ProgressResult is the outcome of one progress item: for Recorded and
// Repeated, the variant stored for the unit at the step.
type ProgressResult struct {
	Outcome   ProgressOutcome
	VariantID string
}

// StepCounters are the additive counters of one (step, variant) of a
// funnel; VariantID is "" for a step without variants.
type StepCounters struct {
	Step      int
	VariantID string
	// Units reached the step (and saw the variant).
	Units int64
	// Conversions are those units that completed the funnel within the
	// attribution window from reaching the step.
	Conversions int64
	// Advanced are those units that reached a later step within the window
	// (the step-to-next rate of the per_step baseline).
	Advanced int64
	// Late are completions after the window: stored, never counted.
	Late int64
	// Value is the sum of the conversion values of Conversions.
	Value float64
	// Open are units that reached the step less than a window ago and have
	// not completed: they count as not converted so far.
	Open int64
	// The inverse-propensity sums of the step's anytime-valid tests
	// (engine.FunnelArm): Σ1/p and Σ1/p² over Units, over Conversions and
	// over Advanced, p the propensity each unit was served the variant
	// with; Σw, Σw² and Σ1/w over every unit that reached the step of the
	// weight w the variant had then.
	InvP, InvP2                            float64
	ConvInvP, ConvInvP2                    float64
	AdvInvP, AdvInvP2                      float64
	Expected, ExpectedSquares, InvExpected float64
}

// PathCounters count units by the variants they saw: Path maps a step
// position to a variant id, for the steps with variants the units reached.
type PathCounters struct {
	Path  map[int]string
	Units int64
	// Conversions completed within the window from entering the funnel.
	Conversions int64
}

// StepSlot is one reach-time bucket of one (step, variant) of a funnel:
// the units that reached the step in it and what they did, what the delay
// model (engine/delay.go) needs to count the units still inside their
// window by the probability that their completion has arrived.
type StepSlot struct {
	Step      int
	VariantID string
	// Start is the start of the bucket (FunnelSettings.BucketWidth wide).
	Start time.Time
	Units int64
	// Conversions are the units that completed within the window.
	Conversions int64
	// ReachedSum is Σ (reach time − Start) in seconds, LastReached the
	// latest reach time; zero in buckets written before they were kept.
	ReachedSum  float64
	LastReached time.Time
	// Delays counts the Conversions by the delay from reaching the step to
	// the completion, in the buckets of engine.DelayEdges.
	Delays [12]int64
}

// FunnelCounts is everything a funnel's results are computed from: its size
// is O(steps × variants × buckets in a window + paths seen), whatever the
// number of units.
type FunnelCounts struct {
	Steps []StepCounters
	Paths []PathCounters
	// Slots are the reach-time buckets of the last window (those with open
	// units), by step, variant and time.
	Slots []StepSlot
}

// Funnels stores funnels, the progress of units through them and the
// counters derived from it, each progress and its counter updates in one
// transaction.
type Funnels interface {
	// CreateFunnel stores f with its steps and variants in one
	// transaction; Conflict when the key exists in the workspace.
	CreateFunnel(ctx context.Context, f Funnel) error
	// GetFunnel finds by id or, failing that, by key, in the workspace.
	GetFunnel(ctx context.Context, workspaceID, ref string) (Funnel, error)
	ListFunnels(ctx context.Context, workspaceID string, p ListParams) ([]Funnel, error)
	// TransitionFunnel applies t (its Winner fields are ignored) atomically.
	TransitionFunnel(ctx context.Context, workspaceID, id string, t Transition) (Funnel, error)
	// DeclareStepWinner records the step's winner once and reports whether
	// this call set it; only that call writes the events, in its transaction.
	DeclareStepWinner(ctx context.Context, workspaceID, funnelID string, step int, winner string, at time.Time, events ...OutboxEvent) (bool, error)
	// MarkStepNoDifference records the step's no_difference decision once,
	// as DeclareStepWinner records a winner.
	MarkStepNoDifference(ctx context.Context, workspaceID, funnelID string, step int, at time.Time, events ...OutboxEvent) (bool, error)
	// UnitSteps returns, per unit that has entered the funnel, its stored
	// variant id by step position ("" for a step without variants).
	UnitSteps(ctx context.Context, workspaceID, funnelID string, unitIDs []string) (map[string]map[int]string, error)
	// RecordProgress applies the batches in one transaction and returns
	// one result per item, in order. When it returns without error, every
	// recorded item is durable.
	RecordProgress(ctx context.Context, batches []ProgressBatch) ([][]ProgressResult, error)
	// FunnelCounts returns the funnel's counters; Open counts units that
	// reached a step after now minus the window.
	FunnelCounts(ctx context.Context, workspaceID, funnelID string, now time.Time) (FunnelCounts, error)
}
