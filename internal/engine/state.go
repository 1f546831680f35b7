package engine

import (
	"math"
	"time"
)

// StateVersion is the version of the State layout this package writes. Decoders of
// older versions live here too, so that a stored state is never silently misread.
const StateVersion = 1

// State is what a strategy keeps between calls: a plain value with JSON tags, to be
// stored (sealed) by the caller and passed back unchanged in the next Input.
//
// Strategies that need nothing between calls (adaptive without discounting,
// fast_learning, explore, ucb1, uniform) return a State with only the version and name.
type State struct {
	// Version is StateVersion when written by this package; zero means "no state yet".
	Version int `json:"version"`
	// Strategy names the strategy that wrote the state.
	Strategy string `json:"strategy"`
	// UpdatedAt is the Now of the last Update.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// Arms holds per-variant state, matched to Input.Arms by key.
	Arms []ArmState `json:"arms,omitempty"`
}

// ArmState is the per-variant part of State.
type ArmState struct {
	Key string `json:"key"`
	// SeenUnits … SeenSumSquares are the cumulative statistics at the last Update, so
	// that the next Update can tell what is new.
	SeenUnits       int64   `json:"seen_units"`
	SeenConversions int64   `json:"seen_conversions"`
	SeenSum         float64 `json:"seen_sum"`
	SeenSumSquares  float64 `json:"seen_sum_squares"`
	// Units … SumSquares are the discounted statistics of discounted Thompson
	// sampling: every past count shrinks by Gamma per DecayUnit.
	Units       float64 `json:"units,omitempty"`
	Conversions float64 `json:"conversions,omitempty"`
	Sum         float64 `json:"sum,omitempty"`
	SumSquares  float64 `json:"sum_squares,omitempty"`
}

// find returns the state of the arm with key k, or nil.
func (s *State) find(k string) *ArmState {
	for i := range s.Arms {
		if s.Arms[i].Key == k {
			return &s.Arms[i]
		}
	}
	return nil
}

// counts are sufficient statistics as floats, so that discounted counts fit.
type counts struct {
	n, c, sum, sumSq float64
	// logKnown says whether the log-normal statistics below are known (they
	// are for an experiment's cumulative counts, not for discounted or
	// campaign counts), so that allocation and P(best) use the same
	// zero-inflated log-normal model as the reported interval.
	logKnown                   bool
	pos, neg, logSum, logSumSq float64
}

func armCounts(a Arm) counts {
	c := counts{n: float64(a.Units), c: float64(a.Conversions), sum: a.Sum, sumSq: a.SumSquares,
		logKnown: true, pos: float64(a.Positive), neg: float64(a.Negative), logSum: a.LogSum, logSumSq: a.LogSumSquares}
	if f := a.EvidenceShare; f > 0 && f < 1 {
		// The same means and rates on fewer observations: a wider posterior.
		c.n, c.c, c.sum, c.sumSq = f*c.n, f*c.c, f*c.sum, f*c.sumSq
		c.pos, c.neg, c.logSum, c.logSumSq = f*c.pos, f*c.neg, f*c.logSum, f*c.logSumSq
	}
	return c
}

// discounted returns the state after folding in.Arms at in.Now with discount Gamma:
// the stored discounted counts shrink by Gamma^(elapsed/DecayUnit) and the increments
// since the last update are added at full weight. A clock that went backwards counts
// as no time elapsed. Counts that went down (statistics reset) restart from the
// current totals.
func discounted(in Input) State {
	out := State{Version: StateVersion, Strategy: in.State.Strategy, UpdatedAt: in.Now, Arms: make([]ArmState, len(in.Arms))}
	factor := 1.0
	if !in.State.UpdatedAt.IsZero() && in.Now.After(in.State.UpdatedAt) && in.Settings.Gamma < 1 {
		units := float64(in.Now.Sub(in.State.UpdatedAt)) / float64(in.Settings.DecayUnit)
		factor = math.Pow(in.Settings.Gamma, units)
	}
	for i, a := range in.Arms {
		prev := in.State.find(a.Key)
		ns := ArmState{Key: a.Key, SeenUnits: a.Units, SeenConversions: a.Conversions, SeenSum: a.Sum, SeenSumSquares: a.SumSquares}
		if prev == nil || a.Units < prev.SeenUnits || a.Conversions < prev.SeenConversions {
			ns.Units, ns.Conversions, ns.Sum, ns.SumSquares = float64(a.Units), float64(a.Conversions), a.Sum, a.SumSquares
		} else {
			ns.Units = factor*prev.Units + float64(a.Units-prev.SeenUnits)
			ns.Conversions = factor*prev.Conversions + float64(a.Conversions-prev.SeenConversions)
			ns.Sum = factor*prev.Sum + (a.Sum - prev.SeenSum)
			ns.SumSquares = math.Max(0, factor*prev.SumSquares+(a.SumSquares-prev.SeenSumSquares))
			ns.Conversions = math.Min(math.Max(ns.Conversions, 0), ns.Units)
		}
		out.Arms[i] = ns
	}
	return out
}
