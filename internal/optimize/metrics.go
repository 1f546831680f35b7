package optimize

import (
	"context"
	"fmt"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/webhook"
)

// MetricResults is one of an experiment's other metrics in its results.
type MetricResults struct {
	Type      store.Metric `json:"type"`
	Role      string       `json:"role"`
	Direction string       `json:"direction"`
	// MaxDegradation is the guardrail's allowed degradation; nil for a
	// secondary metric.
	MaxDegradation *float64        `json:"max_degradation,omitempty"`
	Variants       []MetricVariant `json:"variants"`
}

// MetricVariant is one variant's line of a metric: the same numbers as the
// primary metric's lines (engine.AnalyzeMetric), without what only the
// primary metric has (P(best), expected loss, weight), and for a guardrail
// its state.
type MetricVariant struct {
	Key         string   `json:"key"`
	Units       int64    `json:"units"`
	Conversions int64    `json:"conversions"`
	Sum         float64  `json:"sum"`
	Mean        float64  `json:"mean"`
	CILow       float64  `json:"ci_low"`
	CIHigh      float64  `json:"ci_high"`
	Lift        *float64 `json:"lift"`
	LiftCILow   *float64 `json:"lift_ci_low"`
	LiftCIHigh  *float64 `json:"lift_ci_high"`
	PValue      *float64 `json:"p_value"`
	DiffLow     *float64 `json:"diff_ci_low"`
	DiffHigh    *float64 `json:"diff_ci_high"`
	// Guardrail is "ok" or "tripped" for a guardrail metric ("tripped" once
	// the variant is stopped, by this metric or another), absent for a
	// secondary one; GuardrailReason says why in a sentence.
	Guardrail       string `json:"guardrail,omitempty"`
	GuardrailReason string `json:"guardrail_reason,omitempty"`
}

// GuardrailTrip is a recorded trip in the results.
type GuardrailTrip struct {
	Variant string    `json:"variant"`
	Metric  string    `json:"metric"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// metricsEval is what an experiment's other metrics say on the current
// counters.
type metricsEval struct {
	// arms are every other metric's arms, by key (engine.MetricArms).
	arms map[string][]engine.Arm
	// testArms are, with a conversion window, the same from the primary
	// arms' raw counts, for the anytime-valid tests (engine.Input.TestArms).
	testArms map[string][]engine.Arm
	// verdicts are every guardrail's findings, by metric key.
	verdicts map[string][]engine.GuardrailVerdict
	// trips are the recorded trips (those found now included), by variant key.
	trips map[string]store.GuardrailTrip
	// recorded is true when this evaluation recorded a trip.
	recorded bool
}

// guardrailCount is the number of the experiment's guardrail metrics.
func guardrailCount(e *store.Experiment) int {
	n := 0
	for _, m := range e.Metrics {
		if m.Role == store.RoleGuardrail {
			n++
		}
	}
	return n
}

// armOf is a variant's engine arm from its counters.
func armOf(v store.Variant, c store.Counters) engine.Arm {
	return engine.Arm{Key: v.Key, Control: v.Control, Units: c.Units, Conversions: c.Conversions, Sum: c.Sum, SumSquares: c.SumSq,
		Expected: c.Expected, ExpectedSquares: c.ExpectedSq, InvExpected: c.InvExpected, InvP: c.InvP, InvP2: c.InvP2, YInvP: c.YInvP, YInvP2: c.YInvP2, Y2InvP2: c.Y2InvP2,
		Positive: c.Positive, Negative: c.Negative, LogSum: c.LogSum, LogSumSquares: c.LogSumSq}
}

// evalMetrics computes the other metrics' arms and the guardrails' findings
// from the primary arms (in variant order) and records, once among all
// replicas and with experiment.guardrail_tripped in the same transaction,
// every trip found. Both the allocation (buildPolicy) and the decision
// (Results, which the decision loop runs) call it, so that a harmful variant
// loses its traffic at the next refresh whoever looks first. A trip, once
// recorded, stays: a stopped variant gets no more units, so no later data
// could clear it.
//
// rawPrimary, when not nil, are the primary arms' raw counts where primary
// is their matured view (a conversion window): the metrics' anytime-valid
// tests then count units from them (engine.Input.TestArms).
func (x *Experiments) evalMetrics(ctx context.Context, e *store.Experiment, primary, rawPrimary []engine.Arm, set engine.Settings) (*metricsEval, error) {
	ev := &metricsEval{arms: map[string][]engine.Arm{}, testArms: map[string][]engine.Arm{},
		verdicts: map[string][]engine.GuardrailVerdict{}, trips: map[string]store.GuardrailTrip{}}
	if len(e.Metrics) == 0 {
		return ev, nil
	}
	mc, err := x.st.MetricCounters(ctx, e.WorkspaceID, e.ID)
	if err != nil {
		return nil, fmt.Errorf("load metric counters of %s: %w", e.ID, err)
	}
	recorded, err := x.st.GuardrailTrips(ctx, e.WorkspaceID, e.ID)
	if err != nil {
		return nil, fmt.Errorf("load guardrail trips of %s: %w", e.ID, err)
	}
	keyOf := map[string]string{}
	for _, v := range e.Variants {
		keyOf[v.ID] = v.Key
	}
	for _, t := range recorded {
		ev.trips[keyOf[t.VariantID]] = t
	}
	g := guardrailCount(e)
	for _, m := range e.Metrics {
		byID := map[string]store.Counters{}
		for _, c := range mc[m.Key] {
			byID[c.VariantID] = c
		}
		outcomes := make([]engine.Arm, len(e.Variants))
		for i, v := range e.Variants {
			outcomes[i] = armOf(v, byID[v.ID])
		}
		arms := engine.MetricArms(primary, outcomes)
		ev.arms[m.Key] = arms
		if rawPrimary != nil {
			ev.testArms[m.Key] = engine.MetricArms(rawPrimary, outcomes)
		}
		if m.Role != store.RoleGuardrail {
			continue
		}
		in := engine.Input{Metric: engine.Metric(m.Type), Arms: arms, TestArms: ev.testArms[m.Key], Settings: set}
		verdicts, err := engine.CheckGuardrail(e.Strategy, m.Key, in, engine.GuardrailRule{Direction: m.Direction, MaxDegradation: m.MaxDegradation}, g)
		if err != nil {
			return nil, apperr.Wrap(apperr.Invalid, err, "guardrail %s of experiment %s cannot be checked", m.Key, e.Key)
		}
		ev.verdicts[m.Key] = verdicts
		if e.Status != store.StatusRunning && e.Status != store.StatusPaused {
			continue // a completed experiment's data no longer changes what it serves
		}
		for i, vd := range verdicts {
			v := e.Variants[i]
			if _, done := ev.trips[v.Key]; !vd.Tripped || done || v.Control {
				continue
			}
			now := x.now()
			trip := store.GuardrailTrip{VariantID: v.ID, Metric: m.Key, Reason: vd.Reason, At: now}
			set, err := x.st.TripGuardrail(ctx, e.WorkspaceID, e.ID, trip, webhook.GuardrailTripped(*e, v.Key, m.Key, vd.Reason, now))
			if err != nil {
				return nil, fmt.Errorf("record guardrail trip of %s: %w", e.ID, err)
			}
			if set {
				x.log.Warn("guardrail tripped", "experiment", e.ID, "variant", v.Key, "metric", m.Key)
				ev.trips[v.Key] = trip
				ev.recorded = true
				continue
			}
			// Another replica recorded it (perhaps by another metric):
			// take what it stored.
			again, err := x.st.GuardrailTrips(ctx, e.WorkspaceID, e.ID)
			if err != nil {
				return nil, fmt.Errorf("load guardrail trips of %s: %w", e.ID, err)
			}
			for _, t := range again {
				ev.trips[keyOf[t.VariantID]] = t
			}
		}
	}
	return ev, nil
}

// constrain marks the primary arms that a guardrail stopped, and those that
// a guardrail has not yet shown within its allowed degradation (they keep
// their traffic, but may not win yet).
func (ev *metricsEval) constrain(arms []engine.Arm) {
	stopped := make(map[string]bool, len(ev.trips))
	for k := range ev.trips {
		stopped[k] = true
	}
	engine.Constrain(arms, stopped, ev.verdicts)
}

// results returns every other metric's lines.
func (ev *metricsEval) results(e *store.Experiment, set engine.Settings) (map[string]MetricResults, error) {
	if len(e.Metrics) == 0 {
		return nil, nil
	}
	out := make(map[string]MetricResults, len(e.Metrics))
	for _, m := range e.Metrics {
		lines, err := engine.AnalyzeMetric(e.Strategy, engine.Input{Metric: engine.Metric(m.Type), Arms: ev.arms[m.Key], TestArms: ev.testArms[m.Key], Settings: set})
		if err != nil {
			return nil, apperr.Wrap(apperr.Invalid, err, "metric %s of experiment %s cannot be analysed", m.Key, e.Key)
		}
		mr := MetricResults{Type: m.Type, Role: m.Role, Direction: m.Direction, Variants: make([]MetricVariant, len(lines))}
		if m.Role == store.RoleGuardrail {
			d := m.MaxDegradation
			mr.MaxDegradation = &d
		}
		for i, l := range lines {
			mv := MetricVariant{Key: l.Key, Units: l.Units, Conversions: l.Conversions, Sum: l.Sum, Mean: l.Mean, CILow: l.CILow, CIHigh: l.CIHigh,
				Lift: l.Lift, LiftCILow: l.LiftCILow, LiftCIHigh: l.LiftCIHigh, PValue: l.PValue, DiffLow: l.DiffLow, DiffHigh: l.DiffHigh}
			if m.Role == store.RoleGuardrail {
				mv.Guardrail = "ok"
				if vs := ev.verdicts[m.Key]; i < len(vs) {
					mv.GuardrailReason = vs[i].Reason
				}
				if t, ok := ev.trips[l.Key]; ok {
					mv.Guardrail = "tripped"
					if t.Metric == m.Key {
						mv.GuardrailReason = t.Reason
					} else {
						mv.GuardrailReason = fmt.Sprintf("stopped by the guardrail %s", t.Metric)
					}
				}
			}
			mr.Variants[i] = mv
		}
		out[m.Key] = mr
	}
	return out, nil
}

// tripList is the recorded trips in variant order, for the results.
func (ev *metricsEval) tripList(e *store.Experiment) []GuardrailTrip {
	var out []GuardrailTrip
	for _, v := range e.Variants {
		if t, ok := ev.trips[v.Key]; ok {
			out = append(out, GuardrailTrip{Variant: v.Key, Metric: t.Metric, Reason: t.Reason, At: t.At.UTC()})
		}
	}
	return out
}

// forgetPolicy drops the replica's allocation of the experiment, so that the
// next assignment rebuilds it (with a trip just recorded) instead of serving
// the old one until RefreshEvery. Other replicas follow at their refresh.
func (x *Experiments) forgetPolicy(experimentID string) {
	x.mu.Lock()
	en := x.entries[experimentID]
	x.mu.Unlock()
	if en == nil {
		return
	}
	en.mu.Lock()
	en.pol.forget()
	en.mu.Unlock()
}
