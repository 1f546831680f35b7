package store

import (
	"context"
	"encoding/json"
	"time"
)

// Assignment is the stored answer for one (experiment, unit): sticky forever.
type Assignment struct {
	UnitID    string
	VariantID string
	// Propensity is the probability the strategy gave VariantID for this
	// unit when it was assigned (for inverse-propensity corrections and
	// offline policy evaluation).
	Propensity float64
	// Epoch is the version of the allocation weights in force.
	Epoch      int64
	AssignedAt time.Time
	// Attributes are what the client said about the unit (a JSON object),
	// stored with a new assignment; nil for none.
	Attributes json.RawMessage
	// Segments are the breakdown values of a new unit (attribute → the
	// value's targeting.Text); the store counts the unit in them, within
	// the caps of MaxSegmentAttributes and MaxSegmentValues.
	Segments map[string]string
}

// AssignBatch is a set of new assignments for one experiment made under one
// set of weights. Weights (variant id → probability) is what every variant
// had for these units; the store adds len(new ones)·Weights[v] to each
// variant's Expected counter, so that a sample-ratio-mismatch test can compare
// observed units with what the policy intended even while weights move.
type AssignBatch struct {
	WorkspaceID  string
	ExperimentID string
	Weights      map[string]float64
	Items        []Assignment
	// Window is the experiment's conversion window, 0 when it has none.
	// With one, the store also keeps the maturity slots (MaturitySlots).
	Window time.Duration
}

// Assigned is the outcome for one item of an AssignBatch: the stored
// assignment (the earlier one when the unit already had one) and whether it
// was stored by this call.
type Assigned struct {
	Assignment
	New bool
}

// Event is one reported outcome for an assigned unit.
type Event struct {
	UnitID string
	// Value is the conversion value: 1 for a plain binary conversion, the
	// amount for a continuous metric.
	Value          float64
	IdempotencyKey string // optional; scoped to the experiment and the metric
	At             time.Time
	// Metric is the key of the metric the event is about; "" or
	// PrimaryMetric for the experiment's primary metric.
	Metric string
}

// Outcome is what happened to one event.
type Outcome string

// The event outcomes.
const (
	OutcomeAccepted  Outcome = "accepted"
	OutcomeDuplicate Outcome = "duplicate" // idempotency key seen, or a binary unit that already converted
	OutcomeRejected  Outcome = "rejected"  // e.g. the unit was never assigned
)

// EventBatch is a set of events for one experiment.
type EventBatch struct {
	WorkspaceID  string
	ExperimentID string
	Metric       Metric
	Events       []Event
	// Window is the experiment's conversion window, 0 when it has none.
	// With one, an event that comes more than Window after its unit's
	// assignment is late: counted in its maturity slot's Late, never as a
	// conversion or value; and the first counted outcome of each unit is
	// recorded in its slot's delay histogram.
	Window time.Duration
}

// EventResult is the outcome of one event and, when rejected, why.
type EventResult struct {
	Outcome Outcome
	Reason  string
	// Field names the request field a rejection is about, when it is not
	// the unit or recipient (say "at" for an event dated before its send).
	Field string
}

// Counters are a variant's additive sufficient statistics. Additive so that
// replicas merge by +=.
type Counters struct {
	VariantID   string
	Units       int64
	Conversions int64   // units with at least one event (binary: converted units)
	Sum         float64 // sum of event values
	SumSq       float64 // sum over units of (unit's total value)²
	// Expected is the sum, over assigned units, of the probability this
	// variant had when each unit was assigned (see AssignBatch).
	Expected float64
	// The statistics of the anytime-valid tests and of the revenue model, kept
	// for the whole experiment only (a Bucket leaves them zero); engine.Arm
	// says what each one is.
	ExpectedSq, InvExpected             float64 // Σ w² and Σ 1/w of the logged weights
	InvP, InvP2, YInvP, YInvP2, Y2InvP2 float64 // Σ1/p, Σ1/p², Σy/p, Σy/p², Σy²/p² over the variant's units
	Positive, Negative                  int64   // units whose total value is above / below zero
	LogSum, LogSumSq                    float64 // Σ ln y and Σ (ln y)² over the positive units
}

// FinishedExperiment is a completed experiment's primary metric and the
// counters of its variants, in variant order.
type FinishedExperiment struct {
	ID       string
	Metric   Metric
	Variants []FinishedVariant
}

// FinishedVariant is one variant of a FinishedExperiment.
type FinishedVariant struct {
	Control bool
	Counters
}

// Bucket is one hour of one variant's counters, for charts.
type Bucket struct {
	Hour time.Time // start of the hour, UTC
	Counters
}

// MaturitySlot is one hour of assignments of one variant of an experiment
// with a conversion window, and what its units did: what the delay model
// (engine/delay.go) needs to count each unit by the probability that its
// outcome has arrived.
type MaturitySlot struct {
	VariantID string
	// Start is the start of the hour the units were assigned in.
	Start time.Time
	Units int64
	// AssignedSum is Σ (assignment time − Start) in seconds: with Units, the
	// mean assignment time. LastAssigned is the latest assignment time.
	AssignedSum  float64
	LastAssigned time.Time
	// Conversions are the units whose first outcome came inside their
	// window; Late the events that came after it.
	Conversions, Late int64
	// Delays counts those first outcomes by the delay from the assignment
	// to the event, in the buckets of engine.DelayEdges.
	Delays [12]int64
}

// Serving stores what serving an experiment produces: assignments, events
// and the counters derived from them, each change and its counter update in
// one transaction so that they can never disagree.
type Serving interface {
	// Assign stores the batches in one transaction. For each item it returns
	// the stored assignment and whether it is new; units, the hourly bucket
	// and Expected are incremented only for new ones.
	Assign(ctx context.Context, batches []AssignBatch) ([][]Assigned, error)
	// Assignments returns the stored assignments of the units that have one.
	Assignments(ctx context.Context, workspaceID, experimentID string, unitIDs []string) (map[string]Assignment, error)
	// RecordEvents stores the batches in one transaction (so that a caller
	// can group-commit many requests) and returns one result per event, in
	// order. Binary: a unit converts at most once (a later event is a
	// duplicate). Continuous: values add up per unit. When it returns
	// without error, every accepted event is durable.
	RecordEvents(ctx context.Context, batches []EventBatch) ([][]EventResult, error)
	// Counters returns the counters of every variant of the experiment.
	Counters(ctx context.Context, workspaceID, experimentID string) ([]Counters, error)
	// FinishedCounters returns the primary counters of the workspace's
	// most recently completed experiments (completed_at set, archived ones
	// included), at most limit of them, newest first, each with its
	// variants in order: the history a prior on lifts is learned from
	// (engine.LearnLiftPrior).
	FinishedCounters(ctx context.Context, workspaceID string, limit int) ([]FinishedExperiment, error)
	// MetricCounters returns, by metric key, the outcome counters of every
	// variant (in variant order) for each of the experiment's other
	// metrics. Their unit fields (Units, Expected, InvP, …) are zero: every
	// metric shares the primary counters' units.
	MetricCounters(ctx context.Context, workspaceID, experimentID string) (map[string][]Counters, error)
	// Buckets returns the hourly counters in [from, to), ordered by hour.
	Buckets(ctx context.Context, workspaceID, experimentID string, from, to time.Time) ([]Bucket, error)
	// MaturitySlots returns the maturity slots of an experiment with a
	// conversion window, by variant then hour; none for one without.
	MaturitySlots(ctx context.Context, workspaceID, experimentID string) ([]MaturitySlot, error)
}

// SealedState is an experiment's optimizer state, sealed (encrypted and
// authenticated) by internal/seal before it reaches the store.
type SealedState struct {
	ExperimentID string
	KeyID        string
	Blob         []byte
	// Version increases by one on every save (optimistic concurrency).
	Version   int64
	UpdatedAt time.Time
}

// States stores sealed optimizer state.
type States interface {
	// LoadState returns the experiment's state; NotFound when none is stored.
	LoadState(ctx context.Context, experimentID string) (SealedState, error)
	// SaveState stores s when the stored version is s.Version-1 (none stored
	// counts as 0) and Conflict otherwise, so that of two replicas saving
	// the same version only one wins.
	SaveState(ctx context.Context, s SealedState) error
	// ListStates returns states ordered by experiment id, after the id.
	ListStates(ctx context.Context, afterExperimentID string, limit int) ([]SealedState, error)
}
