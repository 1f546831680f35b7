package engine

import "math"

// sequential serves fixed weights (equal, or ControlShare for the control)
// and decides with the anytime-valid test every strategy shares (avtest.go).
// Under fixed weights that test is the mixture sequential probability ratio
// test of Johari, Pekelis & Walsh, "Always Valid Inference" (2017), on the
// difference of means: the inverse-propensity increments with the pooled
// centre reduce to the difference of the arms' means, and the mixture over
// the effect is the same normal mixture. What the strategy adds over uniform
// is only the fixed split with a control share: it keeps nothing between
// calls.
type sequential struct{}

func (sequential) Name() string { return "sequential" }

func (sequential) Plan(in Input) (*Plan, error) {
	in, err := in.validate()
	if err != nil {
		return nil, err
	}
	return newPlan(in, fixedSampler), nil
}

func (s sequential) Update(in Input) (State, error) { return stateless(s.Name(), in) }

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
