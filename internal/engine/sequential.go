package engine

import (
	"math"
)

// sequential serves fixed weights (equal, or ControlShare for the control) and tests
// each variant against the control with the mixture sequential probability ratio test
// of Johari, Pekelis & Walsh, "Always Valid Inference" (2017), on the difference of
// means with a normal approximation.
//
// At a look with difference estimate Δ̂ and plug-in variance V = σ_v²/n_v + σ_c²/n_c,
// mixing Δ ~ N(0, τ²) gives the likelihood ratio
//
//	Λ = √(V/(V+τ²)) · exp(τ²Δ̂² / (2V(V+τ²))),
//
// and the always-valid p-value is the running minimum of min(1, 1/Λ); the confidence
// sequence is the running intersection of Δ̂ ± √(V(V+τ²)/τ² · (2 ln(1/α) + ln((V+τ²)/V))).
// τ² = Settings.Tau2 times the average per-unit variance of the two arms. No look
// counts before every arm has MinSamples units (at least 2): a plug-in variance from
// the first few units is too noisy and would inflate false positives.
type sequential struct{}

func (sequential) Name() string { return "sequential" }

func (sequential) Plan(in Input) (*Plan, error) {
	in, err := in.validate()
	if err != nil {
		return nil, err
	}
	return newPlan(in, fixedSampler, true), nil
}

// Update performs one look: it folds the current statistics into the running
// p-values and confidence sequences.
func (s sequential) Update(in Input) (State, error) {
	in, err := in.validate()
	if err != nil {
		return State{}, err
	}
	st := sequentialLook(in)
	st.Strategy = s.Name()
	return st, nil
}

// sequentialLook returns the state after a look at in.Arms.
func sequentialLook(in Input) State {
	st := State{Version: StateVersion, Strategy: in.State.Strategy, UpdatedAt: in.Now, Arms: make([]ArmState, len(in.Arms))}
	ci := controlIndex(in.Arms)
	for i, a := range in.Arms {
		ns := ArmState{Key: a.Key, SeenUnits: a.Units, SeenConversions: a.Conversions, SeenSum: a.Sum, SeenSumSquares: a.SumSquares}
		if prev := in.State.find(a.Key); prev != nil {
			ns.PValue, ns.DiffLow, ns.DiffHigh = prev.PValue, prev.DiffLow, prev.DiffHigh
		}
		if i != ci {
			if p, lo, hi, ok := msprt(in.Metric, a, in.Arms[ci], in.Settings); ok {
				if ns.PValue == nil || p < *ns.PValue {
					ns.PValue = &p
				}
				if ns.DiffLow == nil || lo > *ns.DiffLow {
					ns.DiffLow = &lo
				}
				if ns.DiffHigh == nil || hi < *ns.DiffHigh {
					ns.DiffHigh = &hi
				}
			}
		}
		st.Arms[i] = ns
	}
	return st
}

// unitVariance returns the mean and the per-unit variance of an arm.
func unitVariance(m Metric, a Arm) (mean, v float64) {
	n := float64(a.Units)
	if m == Binary {
		p := float64(a.Conversions) / n
		return p, p * (1 - p)
	}
	mean = a.Sum / n
	return mean, math.Max(0, a.SumSquares-a.Sum*mean) / (n - 1)
}

// msprt computes the current always-valid p-value and confidence interval of the
// difference mean(v) − mean(c). ok is false during the burn-in or without variance.
func msprt(m Metric, v, c Arm, s Settings) (p, lo, hi float64, ok bool) {
	minN := max(s.MinSamples, 2)
	if v.Units < minN || c.Units < minN {
		return 0, 0, 0, false
	}
	mv, sv := unitVariance(m, v)
	mc, sc := unitVariance(m, c)
	if sv+sc == 0 {
		// Both arms constant (say, no conversions yet): no evidence either way.
		return 0, 0, 0, false
	}
	d := mv - mc
	vv := sv/float64(v.Units) + sc/float64(c.Units)
	tau2 := s.Tau2 * 0.5 * (sv + sc)
	logL := 0.5*math.Log(vv/(vv+tau2)) + tau2*d*d/(2*vv*(vv+tau2))
	p = math.Exp(-math.Max(0, logL))
	half := math.Sqrt(vv * (vv + tau2) / tau2 * (2*math.Log(1/s.Alpha) + math.Log((vv+tau2)/vv)))
	return p, d - half, d + half, true
}
