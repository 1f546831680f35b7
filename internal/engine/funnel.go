package engine

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/samplit/samplit/internal/engine/stats"
)

// The funnel strategies.
//
// A funnel has ordered steps; some carry variants. Both strategies run
// Thompson sampling (the adaptive strategy) independently at every step with
// variants; they differ only in what a step's arms are judged on:
//
//   - MultiStep judges (step k, variant v) by the end-to-end conversion: the
//     share of the units that reached k and saw v which then completed the
//     funnel. It optimises what the business cares about, and a step variant
//     that pushes more units to the next step but fewer to the end loses.
//   - PerStep judges (step k, variant v) by the step-to-next rate: the share
//     that went on to any later step. It is the naive baseline most tools
//     offer, kept to show the difference; it falls into exactly that trap.
//
// MultiStep credits a completion to every step's variant independently, as
// if the steps did not interact. When they do (a variant's effect depends on
// an earlier choice), each step still learns its best response to the mix of
// earlier variants it is fed, which converges as the earlier steps converge;
// the per-path results show the interactions directly.
const (
	MultiStep = "multi_step"
	PerStep   = "per_step"
)

// FunnelStrategies returns the names of the funnel strategies.
func FunnelStrategies() []string { return []string{MultiStep, PerStep} }

// FunnelArm is one variant of a funnel step: the units that reached the step
// and saw it, and what those units did next.
type FunnelArm struct {
	Key     string
	Control bool
	// Units reached the step and saw the variant.
	Units int64
	// Conversions completed the funnel within the attribution window.
	Conversions int64
	// Advanced reached a later step within the window.
	Advanced int64
	// Late completed after the window: reported, never counted.
	Late int64
	// Open reached the step less than a window ago and have not completed.
	Open int64
	// Value is the sum of the conversion values of Conversions.
	Value float64
	// Matured, when set, is the units counted as trials by the delay model
	// (MatureArm): the open units weighed by the probability that their
	// completion has arrived. Nil counts every unit (open ones as not
	// converted so far).
	Matured *float64
	// MaturedConversions, set with Matured, are the conversions that count
	// against it: those that arrived within the delay model's horizon of
	// reaching the step (DelayModel.withinHorizon).
	MaturedConversions *float64
	// MaturedVariance is the variance of Matured that the error of the
	// estimated delay distribution gives it (DelayModel.TrialsVariance).
	MaturedVariance float64

	// The inverse-propensity sums of the anytime-valid tests (avtest.go),
	// as Arm has them for an experiment, over the units that reached the
	// step and saw this variant, each with the probability p it had of
	// getting it: Σ1/p and Σ1/p² over them (AddUnit), over those of them
	// that completed within the window (AddConversion: the end-to-end
	// outcome MultiStep decides on) and over those that advanced within it
	// (AddAdvance: PerStep's). Expected, ExpectedSquares and InvExpected are
	// Σw, Σw² and Σ1/w over every unit that reached the step, of the weight
	// w this variant had then (AddExpected). A step's variants are drawn by
	// Thompson sampling on what the funnel has seen, so only these make a
	// claim about them valid however often the results are read.
	InvP, InvP2                            float64
	ConvInvP, ConvInvP2                    float64
	AdvInvP, AdvInvP2                      float64
	Expected, ExpectedSquares, InvExpected float64
}

// AddUnit records a unit that reached the step and got this variant with
// probability p.
func (a *FunnelArm) AddUnit(p float64) {
	a.Units++
	addInverse(&a.InvP, &a.InvP2, p)
}

// AddExpected adds the weight w this variant had when a unit (of any
// variant) reached the step.
func (a *FunnelArm) AddExpected(w float64) {
	var arm Arm
	arm.AddExpected(w)
	a.Expected += arm.Expected
	a.ExpectedSquares += arm.ExpectedSquares
	a.InvExpected += arm.InvExpected
}

// AddConversion records that one of the variant's units, assigned with
// probability p, completed the funnel within the window.
func (a *FunnelArm) AddConversion(p float64) {
	a.Conversions++
	addInverse(&a.ConvInvP, &a.ConvInvP2, p)
}

// AddAdvance records that one of the variant's units, assigned with
// probability p, reached a later step within the window.
func (a *FunnelArm) AddAdvance(p float64) {
	a.Advanced++
	addInverse(&a.AdvInvP, &a.AdvInvP2, p)
}

// testArm is the arm the anytime-valid tests judge the variant by: its raw
// counts (not the matured view: docs/decisions.md, "late outcomes") and its
// inverse-propensity sums, of the end-to-end conversion or, for PerStep,
// of the advance to a later step. The outcome is binary, so Σy²/p² is
// Σy/p².
func (a FunnelArm) testArm(perStep bool) Arm {
	y, yInvP, yInvP2 := a.Conversions, a.ConvInvP, a.ConvInvP2
	if perStep {
		y, yInvP, yInvP2 = a.Advanced, a.AdvInvP, a.AdvInvP2
	}
	return Arm{Key: a.Key, Control: a.Control, Units: a.Units, Conversions: y, Sum: float64(y),
		InvP: a.InvP, InvP2: a.InvP2, YInvP: yInvP, YInvP2: yInvP2, Y2InvP2: yInvP2,
		Expected: a.Expected, ExpectedSquares: a.ExpectedSquares, InvExpected: a.InvExpected}
}

// endToEndArm is the arm of the step variant's end-to-end conversion,
// matured when the delay model has weighed its open units.
func (a FunnelArm) endToEndArm() Arm {
	arm := Arm{Key: a.Key, Control: a.Control, Units: a.Units, Conversions: a.Conversions, Sum: float64(a.Conversions)}
	if a.Matured != nil {
		if a.MaturedConversions != nil {
			arm.Conversions = min(arm.Conversions, int64(math.Round(*a.MaturedConversions)))
		}
		arm = MatureArm(arm, *a.Matured)
		arm.Sum = float64(arm.Conversions)
		// The burn-in counts the units served, not the matured ones: an
		// arm short of matured units only gets there as its units mature,
		// and serving it alone poured every unit into it (at 99 matured
		// units of 171 served against 112, weight 1 for an hour). In the
		// timed funnel of docs/funnels.md swings fell from 15% to 10% of
		// 400 runs (8 to 4 of 60 in TestTimedFunnelSwings) at the same
		// conversions. Experiments keep the burn-in on matured units:
		// there, counting the units served let Thompson sampling start on
		// a few outcomes and 3 of 20 runs of
		// TestConversionsOverHoursExperiment swung (0 of 20 on matured
		// units); serving every arm uniformly while any lacks matured
		// units suited experiments but not this funnel (6 of 60 swings).
		arm.Served = a.Units
		arm.EvidenceShare = a.evidenceShare(arm)
	}
	return arm
}

// evidenceShare returns the share of the matured arm's counts that its
// posterior may learn from, so that its variance is that of the matured rate
// r = c/n with the delay model's error included, by the delta method:
//
//	var(r) ≈ r(1−r)/n + r²·var(n)/n²  =  r(1−r)/(n·share),
//	share = 1 / (1 + r·var(n) / ((1−r)·n)).
//
// In a step's first hours F rests on a few dozen completions, and the
// matured trials of the arm with the youngest units (the one that got the
// recent traffic) can be off by half for an hour; Thompson sampling read those
// counts as exact and gave that arm, or took from it, 90% of the traffic
// (docs/funnels.md: the swings). 1 when the error is negligible.
func (a FunnelArm) evidenceShare(arm Arm) float64 {
	n := float64(arm.Units)
	if a.MaturedVariance <= 0 || n <= 0 {
		return 1
	}
	r := (float64(arm.Conversions) + 1) / (n + 2)
	return 1 / (1 + r*a.MaturedVariance/((1-r)*n))
}

// FunnelStepInput is one step. A step with variants has at least two Arms;
// a step without has exactly one, with an empty Key, holding its totals.
type FunnelStepInput struct {
	Key  string
	Arms []FunnelArm
	// Horizon, set with the arms' Matured (MatureFunnel), is the delay
	// within which the matured conversions count completions: the delay
	// model's horizon when it is short of the window, else 0.
	Horizon time.Duration
}

// HasVariants reports whether the step carries variants.
func (s FunnelStepInput) HasVariants() bool { return len(s.Arms) >= 2 }

func (s FunnelStepInput) total() FunnelArm {
	var t FunnelArm
	for _, a := range s.Arms {
		t.Units += a.Units
		t.Conversions += a.Conversions
		t.Advanced += a.Advanced
		t.Late += a.Late
		t.Open += a.Open
		t.Value += a.Value
	}
	return t
}

// FunnelPath counts the units by the variants they saw: Variants holds, per
// step, the key of the variant seen, "" where the unit saw none (a step
// without variants, or one it did not reach).
type FunnelPath struct {
	Variants    []string
	Units       int64
	Conversions int64
}

// FunnelInput is what the funnel calls receive.
type FunnelInput struct {
	// Strategy is MultiStep or PerStep.
	Strategy string
	// Steps are in funnel order; the last is the goal.
	Steps []FunnelStepInput
	// Paths are the paths seen (optional: Plan does not need them).
	Paths []FunnelPath
	// Settings are the decision settings, applied per step.
	Settings Settings
}

func (in FunnelInput) validate() error {
	if in.Strategy != MultiStep && in.Strategy != PerStep {
		return invalid("funnel strategy must be %q or %q, not %q", MultiStep, PerStep, in.Strategy)
	}
	if len(in.Steps) < 2 {
		return invalid("a funnel needs at least two steps, got %d", len(in.Steps))
	}
	for _, s := range in.Steps {
		if len(s.Arms) == 0 {
			return invalid("step %q: no arms (a step without variants passes one arm of totals)", s.Key)
		}
		for _, a := range s.Arms {
			if a.Conversions < 0 || a.Advanced < 0 || a.Conversions > a.Units || a.Advanced > a.Units {
				return invalid("step %q variant %q: conversions and advances must be between 0 and units", s.Key, a.Key)
			}
		}
	}
	return nil
}

// objective returns the engine input a step's strategy learns from: the arms
// with Conversions set to end-to-end conversions (MultiStep) or to advances
// (PerStep).
func (in FunnelInput) objective(s FunnelStepInput) Input {
	arms := make([]Arm, len(s.Arms))
	for i, a := range s.Arms {
		if in.Strategy == PerStep {
			// The naive baseline: advances, all units counted (the delay
			// model is that of completions).
			arms[i] = Arm{Key: a.Key, Control: a.Control, Units: a.Units, Conversions: a.Advanced, Sum: float64(a.Advanced)}
			continue
		}
		arms[i] = a.endToEndArm()
	}
	return Input{Metric: Binary, Arms: arms, Settings: in.Settings}
}

// endToEnd returns the engine input of a step's end-to-end conversion.
func endToEnd(s FunnelStepInput, set Settings) Input {
	arms := make([]Arm, len(s.Arms))
	for i, a := range s.Arms {
		arms[i] = a.endToEndArm()
	}
	return Input{Metric: Binary, Arms: arms, Settings: set}
}

// withTests gives the step's input the arms its anytime-valid tests judge
// (testArm).
func withTests(in Input, s FunnelStepInput, perStep bool) Input {
	in.TestArms = make([]Arm, len(s.Arms))
	for i, a := range s.Arms {
		in.TestArms[i] = a.testArm(perStep)
	}
	return in
}

// funnelSettings returns the settings with which a funnel's steps are
// planned and analysed: the empirical-Bayes prior (FunnelPriorCV) and the
// conversions burn-in (FunnelMinConversions). One place for both, so that
// the weights the results show are those served: the results once left the
// burn-in out and showed Thompson weights while every variant was served
// alike.
func funnelSettings(s Settings) Settings {
	s.PooledPriorCV = FunnelPriorCV
	s.MinConversions = FunnelMinConversions
	return s
}

// PlanFunnel returns one Plan per step, nil for a step without variants:
// Thompson sampling on the strategy's objective. Draw a unit's variant at
// step k with plans[k].Pick(rng) when it first reaches k.
func PlanFunnel(in FunnelInput) ([]*Plan, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	ts, _ := Lookup("adaptive")
	in.Settings = funnelSettings(in.Settings)
	plans := make([]*Plan, len(in.Steps))
	for k, s := range in.Steps {
		if !s.HasVariants() {
			continue
		}
		p, err := ts.Plan(in.objective(s))
		if err != nil {
			return nil, fmt.Errorf("step %q: %w", s.Key, err)
		}
		plans[k] = p
	}
	return plans, nil
}

// FunnelResult is the analysis of a funnel, with the JSON names of the
// results document of the HTTP API.
type FunnelResult struct {
	Strategy string `json:"strategy"`
	// TotalUnits is the number of units that entered the funnel (the sum
	// over the paths, when paths are given; else the units of the first step).
	TotalUnits  int64              `json:"total_units"`
	Conversions int64              `json:"conversions"`
	Steps       []FunnelStepResult `json:"steps"`
	Paths       []FunnelPathResult `json:"paths"`
	// BestPath maps every step with variants to its winner's key, nil while
	// the step has none.
	BestPath map[string]*string `json:"best_path"`
	// LeadingPath is the complete path seen with the highest posterior mean
	// end-to-end rate, nil when no complete path has been seen.
	LeadingPath *FunnelPathResult `json:"leading_path"`
	// MattersMost is the step whose choice matters most, nil before any
	// step with variants has units in two variants.
	MattersMost *StepSpread `json:"matters_most"`
	Decision    Decision    `json:"decision"`
}

// StepSpread names a step and the spread of the end-to-end rate between its
// best and worst variant (posterior means).
type StepSpread struct {
	Step   string  `json:"step"`
	Spread float64 `json:"spread"`
}

// FunnelStepResult is one step of a FunnelResult.
type FunnelStepResult struct {
	Key   string `json:"key"`
	Units int64  `json:"units"`
	// DropOff is the share of the previous step's units that did not reach
	// this one (0 when more arrive than the previous step had, through
	// skipped steps); nil for the first step.
	DropOff     *float64 `json:"drop_off"`
	Conversions int64    `json:"conversions"`
	Rate        float64  `json:"rate"`
	OpenUnits   int64    `json:"open_units"`
	Late        int64    `json:"late_conversions"`
	// MaturedWithin is the delay within which the variants' matured rates
	// count completions (a Go duration), when it is short of the window:
	// the oldest units have not yet been old enough to show the later ones,
	// so the rate read is that within this delay, lower than the rate
	// within the window by the share of completions that come later (the
	// same for every variant, so their comparison is not biased). Nil when
	// the rates are within the whole window, or without a delay model.
	MaturedWithin *string `json:"matured_within"`
	// Variants is empty for a step without variants.
	Variants []FunnelVariantResult `json:"variants"`
	// Winner is the variant the decision rule picks on the strategy's
	// objective, nil when none (or for a step without variants).
	Winner   *string   `json:"winner"`
	Decision *Decision `json:"decision"`
}

// NoDifference reports whether the step has variants, no winner, and its
// decision is no_difference: decided, though no variant beat the others.
func (sr FunnelStepResult) NoDifference() bool {
	return sr.Winner == nil && sr.Decision != nil && sr.Decision.State == StateNoDifference
}

// FunnelVariantResult is one variant of a step.
type FunnelVariantResult struct {
	Key     string `json:"key"`
	Control bool   `json:"control"`
	Units   int64  `json:"units"`
	// Conversions, Rate and its 95% credible interval are end to end.
	Conversions int64   `json:"conversions"`
	Rate        float64 `json:"rate"`
	CILow       float64 `json:"ci_low"`
	CIHigh      float64 `json:"ci_high"`
	// NextStepUnits reached a later step; NextStepRate is their share.
	NextStepUnits int64   `json:"next_step_units"`
	NextStepRate  float64 `json:"next_step_rate"`
	// PBest and ExpectedLoss are those of the end-to-end rate.
	PBest        float64 `json:"p_best"`
	ExpectedLoss float64 `json:"expected_loss"`
	// Weight is the share of the step's new units the variant gets now,
	// under the funnel's strategy.
	Weight    float64 `json:"weight"`
	OpenUnits int64   `json:"open_units"`
	Value     float64 `json:"value"`
	// MaturedUnits is the units counted as trials by the delay model (the
	// open ones weighed by the probability that their completion has
	// arrived), from which Rate, its interval, PBest and the weights come;
	// nil when the funnel has no delay model yet (no completion observed).
	MaturedUnits *float64 `json:"matured_units"`
	// PValue, DiffLow and DiffHigh compare the variant with the step's
	// control on the strategy's objective, as an experiment's variants do
	// (VariantResult): the always-valid p-value and the anytime-valid
	// interval of the difference of rates that the step's winner rests on;
	// nil for the control and while no test can be made.
	PValue   *float64 `json:"p_value"`
	DiffLow  *float64 `json:"diff_ci_low"`
	DiffHigh *float64 `json:"diff_ci_high"`
}

// FunnelPathResult is one path of variants seen.
type FunnelPathResult struct {
	// Variants maps each step with variants that the units reached to the
	// key of the variant they saw.
	Variants    map[string]string `json:"variants"`
	Complete    bool              `json:"complete"`
	Units       int64             `json:"units"`
	Conversions int64             `json:"conversions"`
	Rate        float64           `json:"rate"`
	CILow       float64           `json:"ci_low"`
	CIHigh      float64           `json:"ci_high"`
	mean        float64
}

func rate(c, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(c) / float64(n)
}

// AnalyzeFunnel computes a funnel's results from its counters: per step the
// engine's own analysis (posteriors, P(best) by integration, the decision
// rule) of the end-to-end rates and, for PerStep, of the next-step rates it
// decides on; then the paths, the step that matters most and the funnel's
// decision. Its cost depends on the numbers of steps, variants and paths,
// never on the number of units.
func AnalyzeFunnel(in FunnelInput) (*FunnelResult, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	in.Settings = in.Settings.WithDefaults()
	if err := in.Settings.Validate(2); err != nil {
		return nil, err
	}
	// As PlanFunnel: the weights shown are those served.
	in.Settings = funnelSettings(in.Settings)
	ts, _ := Lookup("adaptive")
	res := &FunnelResult{Strategy: in.Strategy, Steps: make([]FunnelStepResult, len(in.Steps)), BestPath: map[string]*string{}}
	goal := in.Steps[len(in.Steps)-1].total()
	res.Conversions = goal.Units
	for k, s := range in.Steps {
		t := s.total()
		sr := FunnelStepResult{Key: s.Key, Units: t.Units, Conversions: t.Conversions, Rate: rate(t.Conversions, t.Units),
			OpenUnits: t.Open, Late: t.Late, Variants: []FunnelVariantResult{}}
		if s.Horizon > 0 {
			h := s.Horizon.String()
			sr.MaturedWithin = &h
		}
		if k > 0 {
			prev := in.Steps[k-1].total().Units
			d := 0.0
			if prev > 0 {
				d = math.Max(0, 1-float64(t.Units)/float64(prev))
			}
			sr.DropOff = &d
		}
		if s.HasVariants() {
			// The step's winner is decided as an experiment's: the
			// posterior must favour it and the anytime-valid tests on the
			// logged propensities must show it beats every other variant
			// (testArm). On the posterior alone, two identical variants
			// looked at every 100 units declared a winner in 65% of runs
			// (docs/funnels.md, "Winners").
			perStep := in.Strategy == PerStep
			e2e, err := analyze(ts, withTests(endToEnd(s, in.Settings), s, false), perStep)
			if err != nil {
				return nil, fmt.Errorf("step %q: %w", s.Key, err)
			}
			decided := e2e
			if perStep {
				if decided, err = analyze(ts, withTests(in.objective(s), s, true), false); err != nil {
					return nil, fmt.Errorf("step %q: %w", s.Key, err)
				}
			}
			for i, a := range s.Arms {
				v := e2e.Variants[i]
				sr.Variants = append(sr.Variants, FunnelVariantResult{
					Key: a.Key, Control: a.Control, Units: a.Units, Conversions: a.Conversions, Rate: v.Mean,
					CILow: v.CILow, CIHigh: v.CIHigh, NextStepUnits: a.Advanced, NextStepRate: rate(a.Advanced, a.Units),
					PBest: v.PBest, ExpectedLoss: v.ExpectedLoss, Weight: decided.Variants[i].Weight,
					OpenUnits: a.Open, Value: a.Value, MaturedUnits: a.Matured,
					PValue: decided.Variants[i].PValue, DiffLow: decided.Variants[i].DiffLow, DiffHigh: decided.Variants[i].DiffHigh,
				})
			}
			d := decided.Decision
			if in.Strategy == PerStep {
				d.Reason = "on the next-step rate (per_step): " + d.Reason
			}
			sr.Winner, sr.Decision = decided.Winner, &d
			res.BestPath[s.Key] = decided.Winner
			if spread, ok := spreadOf(s.Arms, in.Settings); ok && (res.MattersMost == nil || spread > res.MattersMost.Spread) {
				res.MattersMost = &StepSpread{Step: s.Key, Spread: spread}
			}
		}
		res.Steps[k] = sr
	}
	res.Paths, res.LeadingPath, res.TotalUnits = analyzePaths(in)
	if len(in.Paths) == 0 {
		res.TotalUnits = in.Steps[0].total().Units
	}
	res.Decision = FunnelDecision(res.Steps)
	return res, nil
}

// FunnelDecision is a funnel's decision from its steps': winner_found once
// every step with variants is decided and at least one has a winner,
// no_difference when every one of them ended in no_difference, collecting
// while some step is neither. A step whose variants provably do not differ
// is decided: any of them serves the funnel as well, so it must not hold
// the funnel in collecting for good.
func FunnelDecision(steps []FunnelStepResult) Decision {
	var won, same, pending []string
	for _, sr := range steps {
		switch {
		case sr.Decision == nil: // a step without variants
		case sr.Winner != nil:
			won = append(won, sr.Key)
		case sr.NoDifference():
			same = append(same, sr.Key)
		default:
			pending = append(pending, sr.Key)
		}
	}
	decided := len(won) + len(same)
	total := decided + len(pending)
	var parts []string
	if len(won) > 0 {
		parts = append(parts, "winners at "+strings.Join(won, ", "))
	}
	if len(same) > 0 {
		parts = append(parts, "no difference at "+strings.Join(same, ", "))
	}
	switch {
	case total > 0 && len(pending) == 0 && len(same) == 0:
		return Decision{StateWinnerFound, fmt.Sprintf("every step with variants has a winner (%d of %d)", len(won), total)}
	case total > 0 && len(pending) == 0 && len(won) == 0:
		return Decision{StateNoDifference, fmt.Sprintf("no step's variants differ by min_effect or more (%s)", strings.Join(same, ", "))}
	case total > 0 && len(pending) == 0:
		return Decision{StateWinnerFound, fmt.Sprintf("every step with variants is decided: %s", strings.Join(parts, "; "))}
	case total == 0:
		return Decision{StateCollecting, "no step has variants: the funnel is only counted"}
	case decided == 0:
		return Decision{StateCollecting, fmt.Sprintf("0 of %d steps with variants decided; waiting for %s", total, strings.Join(pending, ", "))}
	default:
		return Decision{StateCollecting, fmt.Sprintf("%d of %d steps with variants decided (%s); waiting for %s",
			decided, total, strings.Join(parts, "; "), strings.Join(pending, ", "))}
	}
}

// spreadOf is the difference between the highest and lowest posterior mean
// end-to-end rate of the step's variants: how much the choice at the step
// can move the funnel's conversion. Posterior means rather than observed
// rates, so that a variant with a handful of units does not make a step look
// decisive; false until two variants have units.
func spreadOf(arms []FunnelArm, s Settings) (float64, bool) {
	lo, hi, seen := math.Inf(1), math.Inf(-1), 0
	for _, a := range arms {
		if a.Units == 0 {
			continue
		}
		seen++
		m := (s.PriorAlpha + float64(a.Conversions)) / (s.PriorAlpha + s.PriorBeta + float64(a.Units))
		lo, hi = math.Min(lo, m), math.Max(hi, m)
	}
	return hi - lo, seen >= 2
}

// analyzePaths returns the paths with their rates and 95% credible
// intervals, ordered by units (most first), the leading complete path, and
// the total of units over the paths.
func analyzePaths(in FunnelInput) ([]FunnelPathResult, *FunnelPathResult, int64) {
	out := make([]FunnelPathResult, 0, len(in.Paths))
	var total int64
	var lead *FunnelPathResult
	s := in.Settings
	for _, p := range in.Paths {
		total += p.Units
		pr := FunnelPathResult{Variants: map[string]string{}, Complete: true, Units: p.Units, Conversions: p.Conversions, Rate: rate(p.Conversions, p.Units)}
		for k, st := range in.Steps {
			if !st.HasVariants() {
				continue
			}
			if k < len(p.Variants) && p.Variants[k] != "" {
				pr.Variants[st.Key] = p.Variants[k]
			} else {
				pr.Complete = false
			}
		}
		c := min(p.Conversions, p.Units)
		a, b := s.PriorAlpha+float64(c), s.PriorBeta+float64(p.Units-c)
		pr.CILow, pr.CIHigh = stats.BetaQuantile(0.025, a, b), stats.BetaQuantile(0.975, a, b)
		pr.mean = a / (a + b)
		out = append(out, pr)
	}
	slices.SortStableFunc(out, func(x, y FunnelPathResult) int {
		switch {
		case x.Units > y.Units:
			return -1
		case x.Units < y.Units:
			return 1
		}
		return 0
	})
	for i := range out {
		if out[i].Complete && out[i].Units > 0 && (lead == nil || out[i].mean > lead.mean) {
			lead = &out[i]
		}
	}
	if lead != nil {
		cp := *lead
		lead = &cp
	}
	return out, lead, total
}
