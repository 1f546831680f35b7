package optimize

import (
	"context"
	"fmt"
	"time"

	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/store"
)

// Conversion windows: the late-outcome model of campaigns (engine/delay.go)
// for experiments and funnels. A unit is a trial from its assignment (or
// from reaching a funnel step), while its conversion arrives minutes to days
// later; within its window, the unit counts by the probability that its
// conversion would have arrived by now, F(age), F estimated from the
// observed delays of the object itself. Only experiments with a
// conversion_window are modelled (without one, outcomes count when they
// arrive, as the contract says); a funnel always has its window.

// maturity is what the delay model says of one variant.
type maturity struct {
	// trials is Σ F(age) over the variant's units.
	trials float64
	// late counts the events that came after their unit's window.
	late int64
}

// slotOf returns the engine's view of a slot of units: its trials (units),
// successes, and the mean and latest time of its units' start.
func engineSlot(start time.Time, units, successes int64, startSum float64, last time.Time, delays [engine.DelayBuckets]int64) engine.CampaignSlot {
	es := engine.CampaignSlot{Start: start, Trials: float64(units), Successes: float64(successes), Last: last, Delays: delays}
	if units > 0 && startSum > 0 {
		es.Mean = start.Add(time.Duration(startSum / float64(units) * float64(time.Second)))
	}
	return es
}

// experimentMaturity returns, per variant id, the matured trials and late
// events of an experiment with a conversion window, with the delay model
// they come from; nil for one without.
func (x *Experiments) experimentMaturity(ctx context.Context, e *store.Experiment, now time.Time) (map[string]maturity, engine.DelayModel, error) {
	w := e.Settings.ConversionWindow
	if w <= 0 {
		return nil, engine.DelayModel{}, nil
	}
	slots, err := x.st.MaturitySlots(ctx, e.WorkspaceID, e.ID)
	if err != nil {
		return nil, engine.DelayModel{}, fmt.Errorf("load maturity of %s: %w", e.ID, err)
	}
	by := map[string][]engine.CampaignSlot{}
	all := make([]engine.CampaignSlot, 0, len(slots))
	out := map[string]maturity{}
	for _, s := range slots {
		es := engineSlot(s.Start, s.Units, s.Conversions, s.AssignedSum, s.LastAssigned, s.Delays)
		by[s.VariantID] = append(by[s.VariantID], es)
		all = append(all, es)
		m := out[s.VariantID]
		m.late += s.Late
		out[s.VariantID] = m
	}
	// One delay distribution for the experiment, from every variant's
	// slots: the delay is a property of the product, not of the variant.
	model := engine.EstimateDelaysLongest(all, now, w)
	for v, ss := range by {
		m := out[v]
		m.trials = engine.MatureSlots(ss, now, 0, model).Trials
		out[v] = m
	}
	return out, model, nil
}

// matureInput replaces each arm of in by its matured view (engine.MatureArm).
func matureInput(e *store.Experiment, in engine.Input, m map[string]maturity) engine.Input {
	if m == nil {
		return in
	}
	arms := make([]engine.Arm, len(in.Arms))
	for i, a := range in.Arms {
		if mv, ok := m[e.Variants[i].ID]; ok {
			a = engine.MatureArm(a, mv.trials)
		}
		arms[i] = a
	}
	in.Arms = arms
	return in
}

// funnelMaturity sets each step arm's Matured from the slots of the last
// window (engine.MatureFunnel).
func funnelMaturity(f *store.Funnel, c store.FunnelCounts, in *engine.FunnelInput, now time.Time) {
	arm := map[string]int{} // "step/variant id" → arm index
	for k, st := range f.Steps {
		if len(st.Variants) == 0 {
			arm[fmt.Sprint(k, "/")] = 0
		}
		for j, v := range st.Variants {
			arm[fmt.Sprint(k, "/", v.ID)] = j
		}
	}
	slots := make([]engine.FunnelSlot, 0, len(c.Slots))
	for _, s := range c.Slots {
		j, ok := arm[fmt.Sprint(s.Step, "/", s.VariantID)]
		if !ok {
			continue
		}
		es := engineSlot(s.Start, s.Units, s.Conversions, s.ReachedSum, s.LastReached, s.Delays)
		if s.LastReached.IsZero() {
			// A bucket written before reach times were kept: its end
			// bounds them.
			es.Last = s.Start.Add(f.Settings.BucketWidth)
		}
		slots = append(slots, engine.FunnelSlot{Step: s.Step, Arm: j, CampaignSlot: es})
	}
	engine.MatureFunnel(in, slots, now, f.Settings.AttributionWindow)
}
