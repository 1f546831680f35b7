// Package optimize sits between the HTTP API and the engine: it turns a
// stored experiment and its counters into decisions (which variant a unit
// gets), records what units did, and keeps each experiment's optimizer state
// and results.
//
// An Optimizer serves one kind of experiment; a Registry finds the one for a
// kind, so the API never switches on kinds itself. The standard experiment
// optimizer is Experiments (experiments.go); email, notification and funnel
// optimizers plug into the same registry.
package optimize

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/store"
)

var errClosed = apperr.New(apperr.Unavailable, "the server is shutting down")

// Assignment is the answer for one unit: its variant, or none when the unit
// is outside the experiment's traffic share.
type Assignment struct {
	UnitID  string
	Variant *store.Variant // nil: the unit is not in the experiment
	// New is true when this call made the assignment.
	New bool
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
	UpdatedAt    time.Time              `json:"updated_at"`
}

// Decision is the state of the decision rule and why, in words.
type Decision struct {
	State  string `json:"state"` // collecting | winner_found | completed
	Reason string `json:"reason"`
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

// Optimizer serves one kind of experiment.
type Optimizer interface {
	// Assign returns, in order, the assignment of each unit, making it if
	// the unit has none. The experiment must be running (or completed
	// with a fixed winner, which every unit then gets).
	Assign(ctx context.Context, e *store.Experiment, unitIDs []string) ([]Assignment, error)
	// RecordEvents stores events for assigned units; when it returns
	// without error, every accepted event is durable.
	RecordEvents(ctx context.Context, e *store.Experiment, events []store.Event) ([]store.EventResult, error)
	// Results analyses the experiment, recording a winner when the
	// decision rule declares one.
	Results(ctx context.Context, e *store.Experiment) (*Results, error)
	// Timeseries returns hourly points in [from, to).
	Timeseries(ctx context.Context, e *store.Experiment, from, to time.Time) ([]Point, error)
}

// Registry finds the optimizer of an experiment kind.
type Registry map[store.Kind]Optimizer

// For returns the optimizer of the kind.
func (r Registry) For(kind store.Kind) (Optimizer, error) {
	if o, ok := r[kind]; ok {
		return o, nil
	}
	return nil, apperr.New(apperr.Invalid, "experiments of kind %q cannot be served here", kind)
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
