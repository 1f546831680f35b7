// Package store defines Samplit's persistent domain types and the repository
// interfaces that every storage backend implements.
//
// The interfaces take and return domain types, never HTTP request or response
// types, and know nothing of HTTP. Every method that reads or changes tenant
// data takes the workspace id and scopes its query by it, so that a caller
// holding one workspace's key cannot reach another's rows even by guessing ids.
//
// Errors: a missing row is an *apperr.Error with code NotFound, a uniqueness
// violation Conflict; anything else is an internal error wrapped with context.
//
// Implementations: internal/store/sqlstore holds the one SQL code path, opened
// over SQLite by internal/store/sqlite and over PostgreSQL by
// internal/store/postgres. internal/store/storetest is the conformance suite
// both must pass.
package store

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/samplit/samplit/internal/targeting"
)

// IsPostgresDSN reports whether dsn names a PostgreSQL database (a
// postgres:// or postgresql:// URL); anything else is a SQLite file. The
// configuration, the key loading and the backend all decide by it.
func IsPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Scope is what an API key may do.
type Scope string

// The key scopes, from most to least powerful.
const (
	ScopeAdmin  Scope = "admin"  // keys, webhooks, workspaces, everything
	ScopeWrite  Scope = "write"  // experiments and events
	ScopeAssign Scope = "assign" // assign and events only: safe to ship in a client app
)

// Allows reports whether a key with scope s may act where need is required.
func (s Scope) Allows(need Scope) bool {
	rank := map[Scope]int{ScopeAssign: 1, ScopeWrite: 2, ScopeAdmin: 3}
	return rank[s] > 0 && rank[s] >= rank[need]
}

// Valid reports whether s is one of the known scopes.
func (s Scope) Valid() bool { return s == ScopeAdmin || s == ScopeWrite || s == ScopeAssign }

// Workspace is a tenant. Every other row belongs to exactly one.
type Workspace struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// APIKey is a stored key. The secret itself is never stored: Hash is the
// SHA-256 of the whole key string, Lookup is the public part of the key used
// to find the row (the caller then compares hashes in constant time).
type APIKey struct {
	ID          string
	WorkspaceID string
	Name        string
	Scope       Scope
	Lookup      string
	Hash        []byte
	CreatedAt   time.Time
	RevokedAt   *time.Time
	// AllowedOrigins are the browser origins ("scheme://host[:port]") from
	// which an assign key may be used; a request that carries an Origin
	// header not in this list is refused. Empty (nil) for keys that no
	// browser may use, which includes every write and admin key.
	AllowedOrigins []string
}

// Kind is the stored kind of an experiment. Every experiment is standard:
// funnels and campaigns are objects of their own (optimize.Kind names the
// kinds of optimizer); the column stays so that a later kind needs no
// migration.
type Kind string

// KindStandard is the kind of every experiment.
const KindStandard Kind = "standard"

// Metric is what an event measures.
type Metric string

// The metrics.
const (
	MetricBinary     Metric = "binary"     // conversion: a unit converts at most once
	MetricContinuous Metric = "continuous" // a value such as revenue, added up per unit
)

// Status is an experiment's lifecycle state:
// draft → running ⇄ paused → completed, and archived.
type Status string

// The statuses.
const (
	StatusDraft     Status = "draft"
	StatusRunning   Status = "running"
	StatusPaused    Status = "paused"
	StatusCompleted Status = "completed"
	StatusArchived  Status = "archived"
)

// Settings are an experiment's tunables. Pointers distinguish "not given"
// from zero where zero is meaningful; after defaults are applied (by the API
// layer) every pointer that has a default is set. Stored as JSON, so adding a
// field needs no migration.
type Settings struct {
	MinSamples        int      `json:"min_samples"`
	DecisionThreshold float64  `json:"decision_threshold"`
	LossThreshold     float64  `json:"loss_threshold"`
	WeightFloor       float64  `json:"weight_floor"`
	Alpha             float64  `json:"alpha"`
	Traffic           float64  `json:"traffic"`
	Seed              *int64   `json:"seed"`
	ControlShare      *float64 `json:"control_share"`
	AutoComplete      bool     `json:"auto_complete"`
	// Tau2 is the mixing variance of the sequential test (mixture SPRT).
	Tau2 *float64 `json:"tau2,omitempty"`
	// Epsilon is the exploration constant c of ε-greedy (ε = min(1, c·K/t)).
	Epsilon *float64 `json:"epsilon,omitempty"`
	// Gamma is the per-hour decay of discounted Thompson sampling (1 = none).
	Gamma *float64 `json:"gamma,omitempty"`
	// MinEffect is the relative difference within which arms count as equal
	// (the no_difference decision); 0 in experiments stored before it
	// existed, which means the engine's default.
	MinEffect float64 `json:"min_effect,omitempty"`
	// PriorLiftSD, when positive, is the prior on relative lifts a winner
	// must also convince (engine.Settings.PriorLiftSD); 0: none.
	PriorLiftSD float64 `json:"prior_lift_sd,omitempty"`
	// LearnPrior, when false, turns off the prior on lifts learned from
	// the workspace's completed experiments (engine.LearnLiftPrior), used
	// when PriorLiftSD is 0; nil (the default) is true.
	LearnPrior *bool `json:"learn_prior,omitempty"`
	// ConversionWindow, when positive, is how long after its assignment a
	// unit's outcomes count: later ones are stored as late and never
	// counted, and a unit still inside its window counts by the
	// probability that its outcome would have arrived by now (the delay
	// model of engine/delay.go). 0: outcomes count whenever they arrive.
	ConversionWindow time.Duration `json:"conversion_window,omitempty"`
}

// The roles and directions of an experiment's metrics other than the primary.
const (
	RoleSecondary = "secondary" // described in the results, decides nothing
	RoleGuardrail = "guardrail" // stops a variant shown to harm it
	// PrimaryMetric is the key of the experiment's own metric, which
	// decides and allocates.
	PrimaryMetric = "primary"
)

// MetricDef is one of an experiment's metrics other than the primary one.
type MetricDef struct {
	ID       string
	Key      string
	Type     Metric
	Role     string
	Position int
	// Direction is which way is better: "increase" or "decrease".
	Direction string
	// MaxDegradation is, for a guardrail, how much worse than the control a
	// variant may be, relative to the control's mean.
	MaxDegradation float64
}

// GuardrailTrip records that a guardrail metric stopped a variant.
type GuardrailTrip struct {
	VariantID string
	Metric    string // the metric's key
	Reason    string
	At        time.Time
}

// Variant is one arm of an experiment. Variants are fixed once it runs.
type Variant struct {
	ID       string
	Key      string
	Name     string
	Control  bool
	Payload  json.RawMessage // any JSON value; "null" when none was given
	Position int             // order of creation, from 0
}

// Experiment is an experiment with its variants.
type Experiment struct {
	ID          string
	WorkspaceID string
	Key         string
	Name        string
	Kind        Kind
	Metric      Metric
	Strategy    string
	Status      Status
	Variants    []Variant
	Settings    Settings
	// Metrics are the experiment's other metrics, in position order.
	Metrics []MetricDef
	// Winner is the key of the declared or fixed winner, "" when none.
	Winner string
	// WinnerFixed is true when a user fixed the winner at completion (or
	// auto_complete did): from then on every assignment serves it.
	WinnerFixed bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
	StartedAt   *time.Time
	CompletedAt *time.Time
	// SRMAlertedAt is when a sample ratio mismatch was first recorded (and
	// announced) for the experiment; nil when none was.
	SRMAlertedAt *time.Time
	// NoDifferenceAt is when the no_difference decision was first recorded
	// (and announced); nil when it was not.
	NoDifferenceAt *time.Time
	// Targeting are the rules a unit's attributes must match to enter; nil
	// lets every unit in.
	Targeting *targeting.Rules
	// LayerID and LayerKey name the layer the experiment belongs to ("" for
	// none); it holds the slots [LayerFrom, LayerTo) of the layer's
	// LayerSlots, allocated by CreateExperiment from LayerShare.
	LayerID, LayerKey  string
	LayerShare         float64
	LayerFrom, LayerTo int64
}

// VariantByKey returns the variant with the key, and whether there is one.
func (e *Experiment) VariantByKey(key string) (Variant, bool) {
	for _, v := range e.Variants {
		if v.Key == key {
			return v, true
		}
	}
	return Variant{}, false
}

// ListParams selects one page of a list. Items are ordered by id (ids are
// time-ordered), the page starts after the id After, and holds at most Limit.
type ListParams struct {
	Limit  int
	After  string
	Status Status // optional filter
	// Newest lists newest first (ids descending; After is then the last
	// id of the previous page, and the page holds older ones), as the
	// dashboard's lists show them. The API lists oldest first.
	Newest bool
}

// Workspaces stores tenants.
type Workspaces interface {
	CreateWorkspace(ctx context.Context, ws Workspace) error
	GetWorkspace(ctx context.Context, id string) (Workspace, error)
	GetWorkspaceByName(ctx context.Context, name string) (Workspace, error)
	CountWorkspaces(ctx context.Context) (int, error)
	// CreateWorkspaceWithKey creates the workspace and its first key in one
	// transaction, so a tenant never exists without a way in.
	CreateWorkspaceWithKey(ctx context.Context, ws Workspace, key APIKey) error
}

// Keys stores API keys.
type Keys interface {
	CreateKey(ctx context.Context, k APIKey) error
	// KeyByLookup returns the key with the public lookup part, revoked or not.
	KeyByLookup(ctx context.Context, lookup string) (APIKey, error)
	ListKeys(ctx context.Context, workspaceID string) ([]APIKey, error)
	// ListKeysPage returns one page of the workspace's keys, revoked ones
	// included, ordered by id (p.Status is ignored).
	ListKeysPage(ctx context.Context, workspaceID string, p ListParams) ([]APIKey, error)
	// GetKey returns the workspace's key with the id, revoked or not;
	// NotFound if it is not in the workspace.
	GetKey(ctx context.Context, workspaceID, keyID string) (APIKey, error)
	// RevokeKey marks the key revoked; NotFound if it is not in the workspace.
	RevokeKey(ctx context.Context, workspaceID, keyID string, at time.Time) error
}

// Transition is a conditional status change: it applies only when the
// experiment's current status is one of From, otherwise Conflict.
type Transition struct {
	From []Status
	To   Status
	At   time.Time
	// Winner, when not nil, sets the winner key (and WinnerFixed when Fixed).
	Winner *string
	Fixed  bool
	// Events are written to the outbox in the transition's transaction,
	// and only if it applies.
	Events []OutboxEvent
}

// Experiments stores experiments and their variants.
type Experiments interface {
	// CreateExperiment stores e and its variants in one transaction, with
	// the events (e.g. experiment.started); Conflict when the key exists in
	// the workspace. When e names a layer (LayerID) it stores, whatever
	// e's LayerFrom and LayerTo, the first free range of LayerShare of the
	// LayerSlots there (FitRange), in the transaction that holds the
	// layer's row lock; Conflict when none is free, NotFound when the layer
	// is not in the workspace. GetExperiment then shows the range.
	CreateExperiment(ctx context.Context, e Experiment, events ...OutboxEvent) error
	// GetExperiment finds by id or, failing that, by key, in the workspace.
	GetExperiment(ctx context.Context, workspaceID, ref string) (Experiment, error)
	ListExperiments(ctx context.Context, workspaceID string, p ListParams) ([]Experiment, error)
	// TransitionExperiment applies t atomically and returns the new state.
	TransitionExperiment(ctx context.Context, workspaceID, id string, t Transition) (Experiment, error)
	// DeclareWinner records winner once: it returns true only for the call
	// that set it, so that with many replicas one decision is recorded once.
	// The events are written in the same transaction, only by that call.
	DeclareWinner(ctx context.Context, workspaceID, id, winner string, at time.Time, events ...OutboxEvent) (bool, error)
	// MarkSRM records a sample ratio mismatch once, like DeclareWinner: it
	// returns true (and writes the events) only for the call that set it.
	MarkSRM(ctx context.Context, workspaceID, id string, at time.Time, events ...OutboxEvent) (bool, error)
	// MarkNoDifference records the no_difference decision once, like MarkSRM.
	MarkNoDifference(ctx context.Context, workspaceID, id string, at time.Time, events ...OutboxEvent) (bool, error)
	// TripGuardrail records that a guardrail stopped the variant, once: it
	// returns true (and writes the events in the same transaction) only for
	// the call that recorded it. A variant is stopped at most once.
	TripGuardrail(ctx context.Context, workspaceID, id string, trip GuardrailTrip, events ...OutboxEvent) (bool, error)
	// GuardrailTrips returns the experiment's recorded trips.
	GuardrailTrips(ctx context.Context, workspaceID, id string) ([]GuardrailTrip, error)
}

// LearnsPrior says whether the experiment's winner must also convince the
// prior on lifts learned from its workspace's completed experiments, when
// it sets none (Settings.LearnPrior, true unless set false).
func (s Settings) LearnsPrior() bool { return s.LearnPrior == nil || *s.LearnPrior }

// MetricByKey returns the experiment's metric with the key, and whether
// there is one.
func (e *Experiment) MetricByKey(key string) (MetricDef, bool) {
	for _, m := range e.Metrics {
		if m.Key == key {
			return m, true
		}
	}
	return MetricDef{}, false
}

// Store is everything a backend provides.
type Store interface {
	Workspaces
	Keys
	Experiments
	Serving
	Segments
	Layers
	Funnels
	Campaigns
	States
	Idempotency
	Webhooks
	DecideLeases
	Sessions
	Retention
	// Ping checks that the database answers (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// IdempotencyRecord remembers the outcome of a write sent with an
// Idempotency-Key header, so that a retry replays it instead of repeating it.
type IdempotencyRecord struct {
	WorkspaceID string
	Key         string
	// Fingerprint identifies the request (method, path, body hash): the same
	// key with another fingerprint is a client error.
	Fingerprint string
	// Done is false while the first request is in flight.
	Done      bool
	Status    int
	Body      []byte
	CreatedAt time.Time
}

// Idempotency stores IdempotencyRecords.
type Idempotency interface {
	// ClaimIdempotency stores a new in-flight record and returns (nil, nil),
	// or returns the existing record for the workspace and key if there is
	// one that is newer than notBefore (older ones are replaced: keys expire).
	ClaimIdempotency(ctx context.Context, r IdempotencyRecord, notBefore time.Time) (*IdempotencyRecord, error)
	// FinishIdempotency stores the response of the claimed record.
	FinishIdempotency(ctx context.Context, workspaceID, key string, status int, body []byte) error
	// ReleaseIdempotency forgets an in-flight claim whose request failed
	// without a response worth replaying, so that a retry can run.
	ReleaseIdempotency(ctx context.Context, workspaceID, key string) error
}
