// Package optimize sits between the HTTP API and the engine: it turns a
// stored experiment and its counters into decisions (which variant a unit
// gets), records what units did, and keeps each experiment's optimizer state
// and results.
//
// Experiments, funnels, email and push campaigns each implement one
// Optimizer interface (optimizer.go: allocate, record outcomes, analyze,
// decide, and the lifecycle), built by one factory (Services.For) from the
// object's kind, so that the API, the dashboard and the decision loop never
// switch on kinds themselves. The lifecycle rules (the status machine and
// the webhook events a transition writes) live here too (lifecycle.go), so
// that every caller applies the same ones.
package optimize

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/seal"
	"github.com/samplit/samplit/internal/store"
)

var errClosed = apperr.New(apperr.Unavailable, "the server is shutting down")

// Assignment is the answer for one unit: its variant, or none when the unit
// is outside the experiment's traffic share (or at a funnel step without
// variants).
type Assignment struct {
	UnitID string
	// Step is the key of the step reached, for funnels.
	Step    string
	Variant *store.Variant // nil: the unit is not in the experiment
	// New is true when this call made the assignment.
	New bool
	// Reason says why Variant is nil: ReasonNotTargeted, ReasonLayer or
	// ReasonTraffic; "" otherwise.
	Reason string
}

// Results is an experiment's analysis as the API returns it.
type Results struct {
	ExperimentID string                 `json:"experiment_id"`
	Status       store.Status           `json:"status"`
	Strategy     string                 `json:"strategy"`
	Metric       store.Metric           `json:"metric"`
	TotalUnits   int64                  `json:"total_units"`
	Variants     []engine.VariantResult `json:"variants"`
	Winner       *string                `json:"winner"`
	Decision     Decision               `json:"decision"`
	SRM          engine.SRM             `json:"srm"`
	// Metrics are the other metrics' lines, by key; absent when the
	// experiment has none.
	Metrics map[string]MetricResults `json:"metrics,omitempty"`
	// GuardrailTrips are the variants the guardrails stopped.
	GuardrailTrips []GuardrailTrip `json:"guardrail_trips,omitempty"`
	UpdatedAt      time.Time       `json:"updated_at"`
	// Breakdown is set when the results are asked for by an attribute.
	Breakdown *Breakdown `json:"breakdown,omitempty"`
	// Prior is the prior on lifts a winner must also convince; nil when
	// there is none.
	Prior *LiftPrior `json:"prior"`
}

// LiftPrior is the prior on relative lifts in effect: set by
// prior_lift_sd, or learned from the workspace's completed experiments.
type LiftPrior struct {
	// Source is "prior_lift_sd" or "learned".
	Source string `json:"source"`
	// LiftSD is the spread of true lifts it assumes (for a learned prior,
	// the median of its posterior; the decision integrates over it).
	LiftSD float64 `json:"lift_sd"`
	// Comparisons is the number of finished comparisons (a variant against
	// its control) a learned prior comes from.
	Comparisons int `json:"comparisons,omitempty"`
}

// liftPriorOf describes the prior of the settings, if any.
func liftPriorOf(s engine.Settings) *LiftPrior {
	switch {
	case s.PriorLiftSD > 0:
		return &LiftPrior{Source: "prior_lift_sd", LiftSD: s.PriorLiftSD}
	case s.LearnedPrior != nil:
		return &LiftPrior{Source: "learned", LiftSD: s.LearnedPrior.SD(), Comparisons: s.LearnedPrior.Comparisons}
	}
	return nil
}

// Decision is the state of the decision rule and why, in words.
type Decision struct {
	State  string `json:"state"` // collecting | winner_found | completed
	Reason string `json:"reason"`
}

// recordedWinner is what the results say of a recorded winner when the
// engine's decision on the latest data (latest) names none or another: a
// decision is an event, not a moving estimate.
func recordedWinner(winner, latest string) Decision {
	return Decision{State: engine.StateWinnerFound, Reason: fmt.Sprintf("%s was declared the winner; on the latest data: %s", winner, latest)}
}

// recordedNoDifference is what the results say of a no_difference recorded
// at when the latest data no longer show it: an anytime-valid claim does
// not expire, and a winner found later replaces it.
func recordedNoDifference(at time.Time, latest string) Decision {
	return Decision{State: engine.StateNoDifference, Reason: fmt.Sprintf("no difference was recorded %s; on the latest data: %s",
		at.UTC().Format(time.RFC3339), latest)}
}

// Point is one hour of one variant, for charts.
type Point struct {
	Hour        time.Time `json:"hour"`
	Variant     string    `json:"variant"`
	Units       int64     `json:"units"`
	Conversions int64     `json:"conversions"`
	Sum         float64   `json:"sum"`
	// Weight is the average share of new traffic the variant had in that
	// hour (from the weights logged with each assignment).
	Weight float64 `json:"weight"`
}

// Deps are what NewServices needs besides the store.
type Deps struct {
	// Keyring seals experiment state.
	Keyring *seal.Keyring
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives failures; nil discards them.
	Logger *slog.Logger
	// CampaignHooks are called on campaign decisions.
	CampaignHooks CampaignHooks
}

// stateBlob is what an experiment's sealed state holds: the strategy's own
// versioned state and the allocation in force, so that every replica serves
// the same epoch of weights and a restart resumes where it stopped.
type stateBlob struct {
	Format   int             `json:"format"`
	Strategy string          `json:"strategy"`
	Epoch    int64           `json:"epoch"`
	Weights  []float64       `json:"weights"`
	Engine   json.RawMessage `json:"engine"`
	At       time.Time       `json:"at"`
}

const stateFormat = 1

func decodeState(b []byte) (stateBlob, error) {
	var s stateBlob
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decode optimizer state: %w", err)
	}
	if s.Format != stateFormat {
		return s, errors.New("decode optimizer state: unknown format " + fmt.Sprint(s.Format))
	}
	return s, nil
}
