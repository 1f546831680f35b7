// Package engine is Samplit's decision engine: it turns per-variant sufficient
// statistics into allocation weights, assignments and decisions.
//
// It is a pure core. It performs no I/O, reads no clock and uses no global random
// source: callers pass the statistics (Arm), the settings (Settings), the strategy's
// saved State, the current time and a seeded *rand.Rand. The same inputs therefore
// always give the same outputs, and a simulation replays bit for bit.
//
// The usual call sequence of a serving layer is:
//
//	s, err := engine.Lookup(exp.Strategy)           // "adaptive", "fast_learning", ...
//	in := engine.Input{Metric: m, Arms: arms, Settings: set, State: st, Now: now}
//	plan, err := s.Plan(in)                          // cheap; cache it until the counts change
//	pick := plan.Pick(rng)                           // or plan.PickN(rng, n) for a batch
//	st, err = s.Update(in)                           // after new events: fold them into the state
//	res, err := engine.Analyze(s, in)                // the results document
package engine

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Metric says what is measured per unit.
type Metric string

// The metrics the engine knows.
const (
	// Binary is a conversion: each unit converts or not.
	Binary Metric = "binary"
	// Continuous is a value per unit, such as revenue.
	Continuous Metric = "continuous"
)

// Arm carries the additive sufficient statistics of one variant.
type Arm struct {
	// Key identifies the variant.
	Key string `json:"key"`
	// Control marks the variant that lifts and sequential tests compare against. If
	// no arm is marked, the first arm is the control.
	Control bool `json:"control,omitempty"`
	// Units is the number of units assigned.
	Units int64 `json:"units"`
	// Conversions is the number of converted units (binary metrics).
	Conversions int64 `json:"conversions"`
	// Sum and SumSquares are the sum of the values and of their squares
	// (continuous metrics).
	Sum        float64 `json:"sum"`
	SumSquares float64 `json:"sum_squares"`

	// Expected and ExpectedSquares are Σ w and Σ w² over every unit assigned to
	// the experiment (whatever arm it got) of the weight w this arm had when the
	// unit came: the logged propensities. The sequential SRM test compares Units
	// with Expected, a martingale whose variance is Expected − ExpectedSquares.
	Expected        float64 `json:"expected,omitempty"`
	ExpectedSquares float64 `json:"expected_squares,omitempty"`
	// InvExpected is Σ 1/w over the same units: the predictable variance of
	// this arm's inverse-propensity sum is the outcome's second moment times
	// InvExpected, whatever the arm's units happened to show (avtest.go).
	InvExpected float64 `json:"inv_expected,omitempty"`

	// Inverse-propensity sums over the units assigned to this arm, each with the
	// propensity p it was assigned with and its outcome y (1 or 0 for a binary
	// metric, the unit's total value for a continuous one): Σ1/p, Σ1/p², Σy/p,
	// Σy/p² and Σy²/p². They make the anytime-valid tests valid under adaptive
	// allocation (see avtest.go). Update them with AddUnit and AddOutcome.
	InvP    float64 `json:"inv_p,omitempty"`
	InvP2   float64 `json:"inv_p2,omitempty"`
	YInvP   float64 `json:"y_inv_p,omitempty"`
	YInvP2  float64 `json:"y_inv_p2,omitempty"`
	Y2InvP2 float64 `json:"y2_inv_p2,omitempty"`

	// Positive and Negative count the units whose total value is above and below
	// zero; LogSum and LogSumSquares are Σ ln y and Σ (ln y)² over the positive
	// ones (continuous metrics): the statistics of the zero-inflated log-normal
	// model of revenue-like metrics.
	Positive      int64   `json:"positive,omitempty"`
	Negative      int64   `json:"negative,omitempty"`
	LogSum        float64 `json:"log_sum,omitempty"`
	LogSumSquares float64 `json:"log_sum_squares,omitempty"`

	// Served, when above Units, is the number of units the arm was served,
	// of which Units counts only the matured share (MatureArm): the burn-in
	// (burnInSampler) then counts the units served. Set for funnel steps
	// only (FunnelArm.endToEndArm).
	Served int64 `json:"-"`
	// EvidenceShare, when in (0, 1), is the share of the arm's counts the
	// posterior learns from: its Units are matured trials resting on an
	// estimated delay distribution, whose error the counts do not show
	// (FunnelArm.endToEndArm). 0 means all of them.
	EvidenceShare float64 `json:"-"`

	// Stopped marks an arm that a guardrail metric has shown to be harmful
	// (GuardrailTrips): it gets weight 0, and can never be the winner. The
	// control cannot be stopped.
	Stopped bool `json:"stopped,omitempty"`
	// Unproven, when not empty, says why the arm may not be declared the
	// winner yet although it keeps its traffic: a guardrail metric has not
	// yet shown it within its allowed degradation (GuardrailVerdict.Safe).
	Unproven string `json:"unproven,omitempty"`
}

// AddUnit counts a new unit assigned to this arm with propensity p (0 < p ≤ 1).
// It does not touch Expected, which every arm of the experiment gets (AddExpected).
func (a *Arm) AddUnit(p float64) {
	a.Units++
	addInverse(&a.InvP, &a.InvP2, p) // nothing when never logged by a plan
}

// addInverse adds 1/p and 1/p² to the sums; a propensity that is not
// positive (never logged) adds nothing.
func addInverse(sum, sum2 *float64, p float64) {
	if p > 0 {
		*sum += 1 / p
		*sum2 += 1 / (p * p)
	}
}

// AddExpected adds the weight w this arm had when a unit (of any arm) came.
func (a *Arm) AddExpected(w float64) {
	a.Expected += w
	a.ExpectedSquares += w * w
	if w > 0 {
		// A weight of 0 (a fixed winner's losers) cannot be picked; such
		// units lie outside the tests' guarantee, which needs w > 0.
		a.InvExpected += 1 / w
	}
}

// AddOutcome records that the total outcome of one of this arm's units, assigned
// with propensity p, went from before to after: a conversion is 0 → 1, a value
// v adds before → before+v. It updates Conversions (a unit counts once, when its
// first outcome arrives: firstOutcome), Sum, SumSquares, the inverse-propensity
// sums and the log-normal statistics. Every caller that keeps Arm statistics
// (the store's counters, the simulator) goes through this one function.
func (a *Arm) AddOutcome(p, before, after float64, firstOutcome bool) {
	if firstOutcome {
		a.Conversions++
	}
	d := after - before
	a.Sum += d
	a.SumSquares += after*after - before*before
	if p > 0 {
		a.YInvP += d / p
		a.YInvP2 += d / (p * p)
		a.Y2InvP2 += (after*after - before*before) / (p * p)
	}
	sign := func(x float64) int {
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return 0
	}
	switch sign(before) {
	case 1:
		l := math.Log(before)
		a.Positive--
		a.LogSum -= l
		a.LogSumSquares -= l * l
	case -1:
		a.Negative--
	}
	switch sign(after) {
	case 1:
		l := math.Log(after)
		a.Positive++
		a.LogSum += l
		a.LogSumSquares += l * l
	case -1:
		a.Negative++
	}
}

// AssumeFixedSplit fills the logged-propensity statistics of an arm given only
// its Units, Conversions, Sum and SumSquares, as if every one of total units
// had been assigned with this arm's fixed weight w (the sums of AddUnit,
// AddExpected and AddOutcome in closed form). It is for counts from outside —
// `samplit analyze`, an A/B test run elsewhere with a fixed split — where the
// observed split n/total is the natural w. Binary: y = 1 for each conversion.
func (a *Arm) AssumeFixedSplit(m Metric, w float64, total int64) {
	n := float64(a.Units)
	a.InvP, a.InvP2 = n/w, n/(w*w)
	a.Expected, a.ExpectedSquares, a.InvExpected = float64(total)*w, float64(total)*w*w, float64(total)/w
	y, y2 := a.Sum, a.SumSquares
	if m == Binary {
		y, y2 = float64(a.Conversions), float64(a.Conversions)
	}
	a.YInvP, a.YInvP2, a.Y2InvP2 = y/w, y/(w*w), y2/(w*w)
}

// Merge adds the statistics of o (increments of the same arm) to a.
func (a *Arm) Merge(o Arm) {
	a.Units += o.Units
	a.Conversions += o.Conversions
	a.Sum += o.Sum
	a.SumSquares += o.SumSquares
	a.Expected += o.Expected
	a.ExpectedSquares += o.ExpectedSquares
	a.InvExpected += o.InvExpected
	a.InvP += o.InvP
	a.InvP2 += o.InvP2
	a.YInvP += o.YInvP
	a.YInvP2 += o.YInvP2
	a.Y2InvP2 += o.Y2InvP2
	a.Positive += o.Positive
	a.Negative += o.Negative
	a.LogSum += o.LogSum
	a.LogSumSquares += o.LogSumSquares
}

// Default settings. The API layer fills unset fields from these constants.
const (
	DefaultMinSamples        = 100
	DefaultDecisionThreshold = 0.95
	DefaultLossThreshold     = 0.001
	DefaultWeightFloor       = 0.0
	DefaultAlpha             = 0.05
	// DefaultMinEffect is the relative difference below which arms count as
	// equal for the no_difference decision.
	DefaultMinEffect = 0.05
	// DefaultAdaptiveWeightFloor is the weight floor of the strategies whose
	// weights follow the data: every arm keeps at least 1% of the traffic, so
	// that the logged propensities stay away from 0 and the inverse-propensity
	// intervals of the decision stay tight (docs/decisions.md weighs its cost
	// in regret against its benefit in power).
	DefaultAdaptiveWeightFloor = 0.01
	// DefaultGuardrailControlShare is the control's least share of traffic
	// while a guardrail is undecided, for experiments with guardrail
	// metrics (docs/metrics.md weighs it).
	DefaultGuardrailControlShare = 0.2
	// DefaultTau2 is the mixing variance of the sequential test, in units of the
	// per-unit variance (a standardised effect size of about 0.07).
	DefaultTau2 = 0.001
	// DefaultEpsilonC is c in the ε-greedy schedule ε = min(1, c·K/t).
	DefaultEpsilonC = 5.0
	// DefaultGamma is the discount factor per time unit; 1 means no discounting.
	DefaultGamma = 1.0
	// DefaultDecayUnit is the time unit of Gamma.
	DefaultDecayUnit = time.Hour
	// DefaultTopTwoBeta is β of top-two Thompson sampling (Russo 2016).
	DefaultTopTwoBeta = 0.5
	// DefaultPrior is the Beta(1, 1) prior of binary metrics.
	DefaultPriorAlpha = 1.0
	DefaultPriorBeta  = 1.0
	// SRMAlertP is the p-value under which a sample ratio mismatch raises an alert.
	SRMAlertP = 0.001
)

// Settings are the tunable parameters of strategies and of the decision rule.
type Settings struct {
	// MinSamples is the number of units every variant needs before a decision.
	MinSamples int64 `json:"min_samples"`
	// MinConversions is the number of matured conversions per competing
	// variant that variants whose outcomes mature with a delay (Arm.Served
	// set) need together before the Thompson strategies leave their
	// burn-in (burnInSampler); 0 for none. Funnels set FunnelMinConversions.
	MinConversions int64 `json:"-"`
	// DecisionThreshold is the P(best) a winner needs, in (0, 1).
	DecisionThreshold float64 `json:"decision_threshold"`
	// LossThreshold is the expected loss a winner may not exceed, in the metric's unit.
	LossThreshold float64 `json:"loss_threshold"`
	// WeightFloor is the minimum share of traffic of every competing variant.
	WeightFloor float64 `json:"weight_floor"`
	// Alpha is the level of the anytime-valid tests behind every claim.
	Alpha float64 `json:"alpha"`
	// MinEffect is the relative difference (to the average) within which all
	// arms must provably lie for the no_difference decision.
	MinEffect float64 `json:"min_effect,omitempty"`
	// PriorLiftSD, if positive, is the standard deviation of a normal prior
	// on the relative lift between two variants (on the log scale: 0.03 says
	// most true lifts are within about ±3%, ±6% at most). A winner then also
	// needs, against every other live variant, a posterior probability of
	// beating it of at least DecisionThreshold under that prior. Declared
	// winners are then right as often as the threshold says, for a team
	// whose true effects are of that size, however often it looks (the
	// posterior of a correct prior is calibrated under optional stopping);
	// the flat prior of P(best) is not. 0: none set (LearnedPrior may then apply).
	PriorLiftSD float64 `json:"prior_lift_sd,omitempty"`
	// LearnedPrior, when PriorLiftSD is 0, is the prior on lifts learned
	// from the team's finished experiments (LearnLiftPrior); nil: none.
	LearnedPrior *LiftPrior `json:"-"`
	// ControlShare, if positive, is the fixed share of traffic of the control while
	// the other variants compete for the rest.
	ControlShare float64 `json:"control_share,omitempty"`
	// GuardrailControlShare, if positive, is the least share of traffic of
	// the control while some arm's guardrail is undecided (Arm.Unproven):
	// the guardrail compares each arm with the control, and a bandit that
	// starves the control would leave a harmful arm undetected for ever.
	GuardrailControlShare float64 `json:"guardrail_control_share,omitempty"`
	// Tau2 is the mixing variance of the mixture SPRT, relative to the per-unit variance.
	Tau2 float64 `json:"tau2,omitempty"`
	// EpsilonC is c of the explore strategy's ε = min(1, c·K/t).
	EpsilonC float64 `json:"epsilon_c,omitempty"`
	// Gamma, in (0, 1], is the factor by which discounted Thompson sampling shrinks
	// past counts per DecayUnit of time; 1 disables discounting.
	Gamma float64 `json:"gamma,omitempty"`
	// DecayUnit is the time unit of Gamma.
	DecayUnit time.Duration `json:"decay_unit,omitempty"`
	// TopTwoBeta is the probability that fast_learning serves the leader.
	TopTwoBeta float64 `json:"top_two_beta,omitempty"`
	// PriorAlpha and PriorBeta are the Beta prior of binary metrics.
	PriorAlpha float64 `json:"prior_alpha,omitempty"`
	PriorBeta  float64 `json:"prior_beta,omitempty"`
	// PooledPriorCV, when positive, replaces the Beta prior of the arms of a
	// binary metric by one centred on the pooled rate of all arms with this
	// coefficient of variation (pooledPrior). Set by the campaign and funnel
	// analyses (CampaignPriorCV, FunnelPriorCV), not by users.
	PooledPriorCV float64 `json:"-"`
}

// DefaultWeightFloorFor returns the weight floor a strategy gets when none is
// set: DefaultAdaptiveWeightFloor for the strategies whose weights follow the
// data, 0 for the fixed-weight ones (whose weights are never near 0).
func DefaultWeightFloorFor(strategy string) float64 {
	switch strategy {
	case "sequential", "uniform":
		return 0
	}
	return DefaultAdaptiveWeightFloor
}

// DefaultSettings returns the settings with every field at its default.
func DefaultSettings() Settings {
	return Settings{
		MinSamples:        DefaultMinSamples,
		DecisionThreshold: DefaultDecisionThreshold,
		LossThreshold:     DefaultLossThreshold,
		WeightFloor:       DefaultWeightFloor,
		Alpha:             DefaultAlpha,
		MinEffect:         DefaultMinEffect,
		Tau2:              DefaultTau2,
		EpsilonC:          DefaultEpsilonC,
		Gamma:             DefaultGamma,
		DecayUnit:         DefaultDecayUnit,
		TopTwoBeta:        DefaultTopTwoBeta,
		PriorAlpha:        DefaultPriorAlpha,
		PriorBeta:         DefaultPriorBeta,
	}
}

// WithDefaults returns s with every zero field whose zero value is meaningless (all
// but MinSamples, WeightFloor and ControlShare, for which zero is a valid choice)
// set to its default.
func (s Settings) WithDefaults() Settings {
	d := DefaultSettings()
	fill := func(v *float64, def float64) {
		if *v == 0 {
			*v = def
		}
	}
	fill(&s.DecisionThreshold, d.DecisionThreshold)
	fill(&s.LossThreshold, d.LossThreshold)
	fill(&s.Alpha, d.Alpha)
	fill(&s.MinEffect, d.MinEffect)
	fill(&s.Tau2, d.Tau2)
	fill(&s.EpsilonC, d.EpsilonC)
	fill(&s.Gamma, d.Gamma)
	fill(&s.TopTwoBeta, d.TopTwoBeta)
	fill(&s.PriorAlpha, d.PriorAlpha)
	fill(&s.PriorBeta, d.PriorBeta)
	if s.DecayUnit == 0 {
		s.DecayUnit = d.DecayUnit
	}
	return s
}

// ErrInvalid is wrapped by every error about impossible inputs, so that callers can
// map them to a 422 with errors.Is.
var ErrInvalid = errors.New("invalid input")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Validate reports the first setting outside its domain. Settings are validated after
// WithDefaults, so zero values that WithDefaults fills are errors here.
func (s Settings) Validate(arms int) error {
	in01 := func(v float64) bool { return v > 0 && v < 1 }
	switch {
	case s.MinSamples < 0:
		return invalid("min_samples must not be negative")
	case !in01(s.DecisionThreshold):
		return invalid("decision_threshold must be in (0, 1)")
	case !(s.LossThreshold > 0) || math.IsInf(s.LossThreshold, 0):
		return invalid("loss_threshold must be positive")
	case !in01(s.Alpha):
		return invalid("alpha must be in (0, 1)")
	case !in01(s.MinEffect):
		return invalid("min_effect must be in (0, 1)")
	case !(s.PriorLiftSD >= 0) || math.IsInf(s.PriorLiftSD, 0):
		return invalid("prior_lift_sd must be 0 (none) or positive")
	case !(s.WeightFloor >= 0) || s.WeightFloor*float64(arms) > 1:
		return invalid("weight_floor must be in [0, 1/number of variants]")
	case !(s.ControlShare >= 0) || s.ControlShare >= 1:
		return invalid("control_share must be in [0, 1)")
	case s.ControlShare+s.WeightFloor*float64(arms-1) > 1:
		return invalid("control_share plus the weight floors of the other variants exceeds 1")
	case !(s.GuardrailControlShare >= 0) || s.GuardrailControlShare >= 1:
		return invalid("guardrail_control_share must be in [0, 1)")
	case s.GuardrailControlShare+s.WeightFloor*float64(arms-1) > 1:
		return invalid("guardrail_control_share plus the weight floors of the other variants exceeds 1")
	case !(s.Tau2 > 0) || math.IsInf(s.Tau2, 0):
		return invalid("tau2 must be positive")
	case !(s.EpsilonC > 0) || math.IsInf(s.EpsilonC, 0):
		return invalid("epsilon_c must be positive")
	case !(s.Gamma > 0 && s.Gamma <= 1):
		return invalid("gamma must be in (0, 1]")
	case s.DecayUnit <= 0:
		return invalid("decay_unit must be positive")
	case !in01(s.TopTwoBeta):
		return invalid("top_two_beta must be in (0, 1)")
	case !(s.PriorAlpha >= 1) || !(s.PriorBeta >= 1) || math.IsInf(s.PriorAlpha+s.PriorBeta, 0):
		// A prior parameter below 1 puts an infinite density at 0 or 1, which the
		// integration grid cannot resolve and no decision needs.
		return invalid("prior_alpha and prior_beta must be finite and at least 1")
	}
	return nil
}

// Input is what every strategy call receives.
type Input struct {
	// Metric is binary or continuous.
	Metric Metric
	// Arms are the variants' cumulative statistics, in a fixed order.
	Arms []Arm
	// Settings are filled with WithDefaults before use.
	Settings Settings
	// State is what the strategy saved last time (the zero State at the start).
	State State
	// Now is the caller's current time; only discounting and state updates use it.
	Now time.Time
	// TestArms, when set, are the arms the anytime-valid tests use instead
	// of Arms (same variants, same order): with a conversion window, Arms
	// are the matured view (MatureArm) and TestArms the raw counts, every
	// unit and the outcomes that have arrived. The matured view scales an
	// arm's inverse-propensity sum by the arm's own matured share, but under
	// adaptive allocation the young units of a starved arm carry its largest
	// inverse propensities: the scaled sum overstates what its outcomes can
	// have reached, and the leader wins (Thompson sampling on two identical
	// arms, outcomes delayed by a median of 1,000 units in a 5,000-unit
	// window: 13.7% of runs declared a winner, docs/decisions.md). On the
	// raw counts every unit's outcome is equally likely to have arrived
	// whatever its arm, so under "no difference" the tests keep their level;
	// a real difference shows attenuated by the share of outcomes in, which
	// only delays a decision.
	TestArms []Arm
}

// testArms returns the arms the anytime-valid tests use (see TestArms).
func (in Input) testArms() []Arm {
	if in.TestArms != nil {
		return in.TestArms
	}
	return in.Arms
}

// validate checks the input and returns it with defaults filled in.
func (in Input) validate() (Input, error) {
	if in.Metric != Binary && in.Metric != Continuous {
		return in, invalid("metric must be %q or %q, not %q", Binary, Continuous, in.Metric)
	}
	if len(in.Arms) < 2 {
		return in, invalid("at least two variants are needed, got %d", len(in.Arms))
	}
	controls := 0
	for i, a := range in.Arms {
		// A quadratic scan: cheaper than a map for the handful of arms an experiment
		// has, and Plan runs it on every call.
		for _, b := range in.Arms[:i] {
			if b.Key == a.Key {
				return in, invalid("duplicate variant key %q", a.Key)
			}
		}
		if a.Control {
			controls++
		}
		if a.Stopped && (a.Control || (i == 0 && !anyControl(in.Arms))) {
			return in, invalid("variant %q is the control, which a guardrail cannot stop", a.Key)
		}
		if a.Units < 0 {
			return in, invalid("variant %q: units must not be negative", a.Key)
		}
		if in.Metric == Binary && (a.Conversions < 0 || a.Conversions > a.Units) {
			return in, invalid("variant %q: conversions must be between 0 and units", a.Key)
		}
		if in.Metric == Continuous {
			if math.IsNaN(a.Sum) || math.IsInf(a.Sum, 0) || math.IsNaN(a.SumSquares) || math.IsInf(a.SumSquares, 0) || a.SumSquares < 0 {
				return in, invalid("variant %q: sum and sum of squares must be finite, the latter not negative", a.Key)
			}
			if a.Units == 0 && (a.Sum != 0 || a.SumSquares != 0) {
				return in, invalid("variant %q: values without units", a.Key)
			}
		}
	}
	if in.State.Version > StateVersion {
		return in, invalid("state version %d is newer than this engine's %d", in.State.Version, StateVersion)
	}
	if controls > 1 {
		return in, invalid("at most one variant may be the control, got %d", controls)
	}
	if in.TestArms != nil {
		if len(in.TestArms) != len(in.Arms) {
			return in, invalid("test arms: %d, want one per variant (%d)", len(in.TestArms), len(in.Arms))
		}
		for i, a := range in.TestArms {
			if a.Key != in.Arms[i].Key || a.Units < 0 || a.Conversions < 0 {
				return in, invalid("test arm %d (%q) does not match variant %q or has negative counts", i, a.Key, in.Arms[i].Key)
			}
		}
	}
	in.Settings = in.Settings.WithDefaults()
	if err := in.Settings.Validate(len(in.Arms)); err != nil {
		return in, err
	}
	return in, nil
}

func anyControl(arms []Arm) bool {
	for _, a := range arms {
		if a.Control {
			return true
		}
	}
	return false
}

// controlIndex returns the index of the control arm: the marked one, else 0.
func controlIndex(arms []Arm) int {
	for i, a := range arms {
		if a.Control {
			return i
		}
	}
	return 0
}
