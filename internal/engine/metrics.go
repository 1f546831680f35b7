package engine

import (
	"fmt"
	"slices"
)

// Several metrics per experiment. The primary metric allocates and decides;
// the others (secondary and guardrail metrics) are described with the same
// numbers (AnalyzeMetric), and a guardrail metric stops a variant that it
// shows, with anytime-valid confidence, to be worse than the control by more
// than the allowed degradation (CheckGuardrail). Every metric's units are
// the experiment's units with the propensities they were assigned with, so
// the inverse-propensity tests of avtest.go hold for each of them.

// The directions of a metric: which way is better.
const (
	// Increase: higher is better (harm is a decrease).
	Increase = "increase"
	// Decrease: lower is better (harm is an increase), e.g. refunds.
	Decrease = "decrease"
)

// GuardrailRule is a guardrail metric's limit: the variant may not be worse
// than the control by more than MaxDegradation, relative to the control's
// mean, in the harmful direction (the opposite of Direction).
type GuardrailRule struct {
	Direction      string
	MaxDegradation float64
}

// GuardrailVerdict is one arm's guardrail finding on one metric.
type GuardrailVerdict struct {
	// Tripped is true when the arm is shown to be worse than allowed.
	Tripped bool
	// Safe is true when the arm is shown to be within the allowed
	// degradation (the other side of the same interval): only then may it
	// be declared the winner.
	Safe bool
	// Reason is a sentence for people.
	Reason string
}

// AnalyzeMetric describes a metric other than the primary one: per arm, the
// counts, mean, credible interval, lift and the anytime-valid comparison with
// the control, computed exactly as the primary metric's are (describeArm).
// P(best), expected loss and weights are left zero: only the primary metric
// allocates. strategy is the experiment's, for the tests' preconditions.
func AnalyzeMetric(strategy string, in Input) ([]VariantResult, error) {
	in, err := in.validate()
	if err != nil {
		return nil, err
	}
	tests := newAVTests(in, strategy)
	means := observedMeans(in.Metric, in.Arms)
	cis := intervals(in.Metric, in.Arms, in.Settings)
	ci := controlIndex(in.Arms)
	out := make([]VariantResult, len(in.Arms))
	for i := range in.Arms {
		out[i] = describeArm(in, tests, means, cis, ci, i)
	}
	return out, nil
}

// CheckGuardrail tests every arm but the control of in (the guardrail
// metric's statistics, with the logged propensities) against rule.
//
// The test is one-sided and anytime-valid: with Direction decrease (lower is
// better) the arm trips when the confidence sequence of μ_arm − (1+m)·μ_control
// lies above zero, with increase when that of μ_arm − (1−m)·μ_control lies
// below zero (m = MaxDegradation; avTests.contrast, the pairwise interval of
// avtest.go generalised). Checked after every event, a variant whose true
// degradation is at most m trips with probability at most Alpha over the
// whole experiment, whatever the allocation did; the level is divided
// (Bonferroni) among the K−1 arms and the experiment's guardrails metrics,
// so that the chance that any guardrail falsely stops any variant stays
// below Alpha. A variant that is merely not yet shown to be safe is not
// tripped. The control is never tripped.
func CheckGuardrail(strategy string, metricKey string, in Input, rule GuardrailRule, guardrails int) ([]GuardrailVerdict, error) {
	in, err := in.validate()
	if err != nil {
		return nil, err
	}
	if rule.Direction != Increase && rule.Direction != Decrease {
		return nil, invalid("direction must be %q or %q", Increase, Decrease)
	}
	if !(rule.MaxDegradation > 0) {
		return nil, invalid("max_degradation must be positive")
	}
	guardrails = max(guardrails, 1)
	out := make([]GuardrailVerdict, len(in.Arms))
	tests := newAVTests(in, strategy)
	ci := controlIndex(in.Arms)
	level := in.Settings.Alpha / float64((len(in.Arms)-1)*guardrails)
	means := observedMeans(in.Metric, in.Arms)
	m := rule.MaxDegradation
	for i, a := range in.Arms {
		if i == ci {
			out[i].Reason = fmt.Sprintf("%s is the control, which the guardrail compares every other variant with", a.Key)
			continue
		}
		if !tests.OK {
			out[i].Reason = "not tested: " + tests.Why
			continue
		}
		if a.Units == 0 || in.Arms[ci].Units == 0 {
			out[i].Reason = "not tested yet: no units"
			continue
		}
		var tripped, safe bool
		var worse string
		if rule.Direction == Decrease {
			_, lo, hi := tests.contrast(i, ci, 1+m, level)
			tripped, safe, worse = lo > 0, hi < 0, "higher"
		} else {
			_, lo, hi := tests.contrast(i, ci, 1-m, level)
			tripped, safe, worse = hi < 0, lo > 0, "lower"
		}
		out[i].Safe = safe
		if tripped {
			out[i] = GuardrailVerdict{Tripped: true, Reason: fmt.Sprintf(
				"%s tripped the guardrail %s: its mean is %s than %s's by more than the allowed %s (observed %s vs %s), always-valid at %s",
				a.Key, metricKey, worse, in.Arms[ci].Key, pct(m), num(means[i]), num(means[ci]), pct(1-in.Settings.Alpha))}
		} else if safe {
			out[i].Reason = fmt.Sprintf("%s is within the allowed %s of %s on %s, always-valid at %s", a.Key, pct(m), in.Arms[ci].Key, metricKey, pct(1-in.Settings.Alpha))
		} else {
			out[i].Reason = fmt.Sprintf("the guardrail %s has not yet shown %s within the allowed %s of %s", metricKey, a.Key, pct(m), in.Arms[ci].Key)
		}
	}
	return out, nil
}

// MetricArms returns the arms of a metric other than the primary one: the
// outcome statistics of outcomes (conversions, sums, the inverse-propensity
// sums of the outcomes, the log-normal statistics) with the unit statistics
// of units (the primary metric's arms: units, logged propensities and
// weights), which every metric of an experiment shares because they all
// measure the same assigned units. Keys, the control and Stopped come from
// units. The store keeps only the outcome part per metric.
func MetricArms(units, outcomes []Arm) []Arm {
	out := make([]Arm, len(units))
	for i, u := range units {
		o := Arm{}
		if i < len(outcomes) {
			o = outcomes[i]
		}
		out[i] = Arm{Key: u.Key, Control: u.Control, Stopped: u.Stopped, Units: u.Units,
			Conversions: o.Conversions, Sum: o.Sum, SumSquares: o.SumSquares,
			Expected: u.Expected, ExpectedSquares: u.ExpectedSquares, InvExpected: u.InvExpected,
			InvP: u.InvP, InvP2: u.InvP2, YInvP: o.YInvP, YInvP2: o.YInvP2, Y2InvP2: o.Y2InvP2,
			Positive: o.Positive, Negative: o.Negative, LogSum: o.LogSum, LogSumSquares: o.LogSumSquares}
	}
	return out
}

// Constrain applies the guardrails to the primary metric's arms: an arm
// whose key is in stopped (its recorded trip) is Stopped, and an arm that a
// guardrail has not yet shown within its allowed degradation (verdicts, by
// metric key, in arm order) is Unproven: it keeps its traffic but may not
// win yet. The control is neither. The server's allocation and decision
// and the simulations go through this one function.
func Constrain(arms []Arm, stopped map[string]bool, verdicts map[string][]GuardrailVerdict) {
	ci := controlIndex(arms)
	keys := make([]string, 0, len(verdicts))
	for k := range verdicts {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first undecided metric in key order names the reason
	for i := range arms {
		if i == ci {
			continue
		}
		arms[i].Stopped = stopped[arms[i].Key]
		arms[i].Unproven = ""
		for _, k := range keys {
			if v := verdicts[k]; i < len(v) && !v[i].Safe {
				arms[i].Unproven = fmt.Sprintf("the guardrail %s has not yet shown it within its allowed degradation", k)
				break
			}
		}
	}
}
