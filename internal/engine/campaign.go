package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/samplit/samplit/internal/engine/stats"
)

// The campaign modes (design.md, "Email and notification optimizers").
//
// A campaign is sent, not served: the sender asks for the variants of a list
// of recipients, sends, and reports what happened. Both modes judge a
// variant by the objective rate among its sends (sent minus bounced), with
// rewards that arrive late; they differ in how the sends are allocated:
//
//   - CampaignSplit (split_then_winner) is the classic test: the first
//     TestSends are split evenly over the variants, then every send gets the
//     leader (the variant most likely to be best), or the declared winner.
//   - CampaignWaves sends the audience in waves, each allocated by the
//     current posterior: batched Thompson sampling whose shares follow the
//     allocation weights (P(best) with the weight floor). More of the
//     campaign goes to the better variant while it is still being learnt.
const (
	CampaignWaves = "waves"
	CampaignSplit = "split_then_winner"
)

// CampaignModes returns the campaign modes.
func CampaignModes() []string { return []string{CampaignWaves, CampaignSplit} }

// CampaignArm is one variant of a campaign.
type CampaignArm struct {
	Key string `json:"key"`
	// Trials are the sends that could earn the objective (sent minus
	// bounced), Successes the sends that earned it within the attribution
	// window (binary objectives); Sum and SumSquares add up the per-send
	// values of a value objective. All are cumulative.
	Trials     int64   `json:"trials"`
	Successes  int64   `json:"successes"`
	Sum        float64 `json:"sum"`
	SumSquares float64 `json:"sum_squares"`
	// Learn, when not nil, is what the allocation learns from instead of
	// the cumulative counts: the matured counts (MatureSlots), discounted by
	// the age of their sends when the campaign discounts, so that a variant
	// that wears off loses traffic.
	Learn *LearnCounts `json:"learn,omitempty"`
	// Matured, when not nil, is the counts with each send weighed by the
	// probability that its outcome has arrived (MatureSlots, undiscounted):
	// the reported rate, its interval and the decision's sample sizes use
	// them, so that a send too young to have clicked is not a failure.
	Matured *LearnCounts `json:"matured,omitempty"`
	// GuardEvents among GuardTrials are the guardrail's counts (say
	// unsubscribes among sends that were not bounced).
	GuardEvents int64 `json:"guard_events"`
	GuardTrials int64 `json:"guard_trials"`
	// Stopped is true when the guardrail tripped earlier: it stays tripped
	// (a decision recorded once), whatever later data says.
	Stopped bool `json:"stopped"`

	// Test is what the anytime-valid test of a winner judges the variant by
	// (avtest.go): the sums of Arm (Units, Sum, SumSquares, InvP … Y2InvP2,
	// Expected, ExpectedSquares, InvExpected; AddUnit, AddExpected and
	// AddOutcome) over its tested sends, those drawn at random among two or
	// more variants that each had a positive probability (a wave, a split's
	// test), each with the probability p it had of getting this variant
	// (Allocation), and y the objective's outcome (1 or 0 for a binary
	// one). Its Expected sums run over every tested send of the campaign. A
	// split's second phase (every send to one variant) is not tested: it
	// compares nothing.
	Test Arm `json:"-"`
}

// testArm is the arm the anytime-valid tests judge the variant by.
func (a CampaignArm) testArm(metric Metric) Arm {
	t := a.Test
	t.Key = a.Key
	if metric == Binary {
		t.Conversions = int64(math.Round(t.Sum))
	}
	return t
}

// LearnCounts are possibly discounted counts, hence floats.
type LearnCounts struct {
	Trials, Successes, Sum, SumSquares float64
}

// Guardrail stops a variant whose guardrail rate is above MaxRate, by an
// anytime-valid one-sided test of H0: rate ≤ MaxRate at level 1 − Confidence
// (GuardrailEValue): checked after every send or every minute, a variant whose
// true rate is at most MaxRate is stopped with probability at most
// 1 − Confidence over the whole campaign.
type Guardrail struct {
	MaxRate    float64 `json:"max_rate"`
	Confidence float64 `json:"confidence"`
}

// DefaultGuardrailConfidence is 1 − α of the guardrail's test: a variant whose
// rate is at the limit is stopped in at most 5% of campaigns.
const DefaultGuardrailConfidence = 0.95

// CampaignInput is what the campaign calls receive.
type CampaignInput struct {
	// Metric is Binary for open and click objectives, Continuous for value.
	Metric Metric
	// Mode is CampaignWaves or CampaignSplit.
	Mode string
	Arms []CampaignArm
	// Settings are the decision settings and the weight floor (applied
	// among the variants still eligible).
	Settings Settings
	// Guardrail is nil when the campaign has none.
	Guardrail *Guardrail
	// TestSends is the size of a split campaign's test; Sent is the number
	// of sends so far, all variants together.
	TestSends int64
	Sent      int64
	// Winner is the declared winner's key, "" while none is.
	Winner string
	// Pick is the variant a split campaign's second phase sends to, chosen
	// once, on the matured counts, by the first call after the test
	// (CampaignAnalysis.Target) and recorded by the caller, so that it never
	// flips while late outcomes arrive; "" until then.
	Pick string
}

// GuardrailProbability returns P(rate > maxRate | events among trials), the
// posterior that the results show next to the test (p_above). It describes
// what we believe; it does not stop anything (GuardrailEValue does).
//
// The prior is Beta(2m, 2(1−m)) with m = maxRate: centred on the limit and
// worth two sends, so that no data is no evidence either way (the uniform
// prior of the objective would put 99.5% of its mass above a 0.5% limit).
func GuardrailProbability(events, trials int64, maxRate float64) float64 {
	a := 2*maxRate + float64(events)
	b := 2*(1-maxRate) + float64(trials-events)
	return 1 - stats.BetaCDF(maxRate, a, b)
}

// guardrailPrior returns the mixing distribution of GuardrailEValue over the
// rates above the limit m: Beta(a, b) truncated to (m, 1), with a = 4 and the
// mean of the untruncated Beta at μ = 1 − (1−m)³ (3m for a small m; always in
// (m, 1)). For m = 0.005 its mode is at 2.25m, its standard deviation 1.5m,
// and 90% of its mass lies between 1.1m and 5.3m.
//
// Why there: the guardrail exists to catch a variant that is a few times
// over the limit (a clickbait subject with 3× the unsubscribes) within a few
// thousand sends, and a mixture pays, at the rate it is tuned for, only the
// log of the prior mass near that rate. A prior spread over all of (m, 1)
// (uniform) wastes most of its mass on rates of 10% or 50% that no real
// variant has and stops a 3×-limit variant later; one concentrated just
// above m would need tens of thousands of sends to tell 1.2m from m and so
// be slow for everything. The choice was checked by simulation (the
// guardrail tests in campaign_guardrail_test.go and internal/offline).
func guardrailPrior(m float64) (a, b float64) {
	const shape = 4
	mu := 1 - (1-m)*(1-m)*(1-m)
	return shape, shape * (1 - mu) / mu
}

// GuardrailLogE returns the logarithm of the guardrail's e-value: the
// likelihood ratio of the sends' guardrail outcomes (events among trials)
// against the rate maxRate, mixed over guardrailPrior's rates above it,
//
//	E = ∫_{p>m} (p/m)^S ((1−p)/(1−m))^F π(p) dp,   S = events, F = trials − events,
//	  = [f(m; a, b) / f(m; a+S, b+F)] · [SF(m; a+S, b+F) / SF(m; a, b)],
//
// with f the Beta density and SF its survival function (the regularized
// incomplete beta), all in log space with the engine's stable Beta density
// and CDF, so that it is accurate for trials up to 1e9. With no data E = 1.
//
// Validity. For every p > m, the likelihood ratio against m is a nonnegative
// martingale when the rate is m, and a supermartingale when it is any q ≤ m
// (one send multiplies it by q·p/m + (1−q)(1−p)/(1−m) ≤ 1: monotone
// likelihood ratio, the worst case of the composite null is q = m); so is
// its mixture E. By Ville's inequality P(E ever ≥ 1/α) ≤ α whatever the rate
// at or below the limit, however often E is looked at: stopping the first
// time E ≥ 1/α is a level-α test under continuous monitoring.
//
// Late outcomes keep it valid: a send whose unsubscribe has not arrived yet
// counts as a trial without an event, and a send that will bounce still
// counts as a trial; E grows with events and shrinks with trials without
// one, so the E computed from the counts so far is at most the E of the
// same sends with their final outcomes, which Ville's bound covers.
func GuardrailLogE(events, trials int64, maxRate float64) float64 {
	if trials <= 0 {
		return 0
	}
	m := maxRate
	a, b := guardrailPrior(m)
	A, B := a+float64(events), b+float64(trials-events)
	logSF := func(a, b float64) float64 { return math.Log(stats.BetaCDF(1-m, b, a)) }
	l := stats.BetaLogPDF(m, a, b) - logSF(a, b) - stats.BetaLogPDF(m, A, B) + logSF(A, B)
	if math.IsNaN(l) {
		// Only when the survival function underflows (the rate is far below
		// the limit): E is then 0 to double precision.
		return math.Inf(-1)
	}
	return l
}

// Test returns the log e-value of a variant's guardrail counts
// (GuardrailLogE) and whether it stops the variant now: E ≥ 1/α, with
// α = 1 − Confidence. Stopping at the first look where trips is true is the
// anytime-valid test; AnalyzeCampaign and the simulations call this one
// function.
func (g Guardrail) Test(events, trials int64) (logE float64, trips bool) {
	logE = GuardrailLogE(events, trials, g.MaxRate)
	return logE, logE >= -math.Log1p(-g.Confidence)
}

// maxLogE caps the reported e-value below the largest float64.
const maxLogE = 690

// GuardrailState is a variant's guardrail line in the results.
type GuardrailState struct {
	// Rate is the observed guardrail rate.
	Rate float64 `json:"rate"`
	// PAbove is the posterior probability that the rate is above the limit
	// (GuardrailProbability): a description, not the stopping rule.
	PAbove float64 `json:"p_above"`
	// EValue is the evidence that the rate is above the limit
	// (GuardrailLogE): 1 with no data, below 1 when the data favour a rate
	// at or below the limit; the variant is stopped when it reaches
	// 1/(1 − confidence), 20 at the default confidence. Capped at e^690
	// (about 1e299), so that it is always a JSON number.
	EValue float64 `json:"e_value"`
	// PValue = min(1, 1/EValue) is the anytime-valid p-value of "the rate is
	// at most the limit": the chance that it ever falls to α or below,
	// however often it is looked at, is at most α when the rate is at most
	// the limit. The variant is stopped when it reaches 1 − confidence.
	PValue float64 `json:"p_value"`
	// Tripped is true when the variant receives no more sends because of it.
	Tripped bool `json:"tripped"`
}

// CampaignVariantResult is one variant's line of a CampaignAnalysis.
type CampaignVariantResult struct {
	Key       string  `json:"key"`
	Trials    int64   `json:"trials"`
	Successes int64   `json:"successes"`
	Sum       float64 `json:"sum"`
	// MaturedTrials are the trials weighed by the probability that their
	// outcome has arrived (CampaignArm.Matured; Trials without it).
	MaturedTrials float64 `json:"matured_trials"`
	// Rate is the objective rate (or mean value) among the matured trials,
	// CILow and CIHigh its 95% credible interval; RawRate counts every
	// trial, those whose outcome cannot have arrived yet included.
	Rate    float64 `json:"rate"`
	RawRate float64 `json:"raw_rate"`
	CILow   float64 `json:"ci_low"`
	CIHigh  float64 `json:"ci_high"`
	// PBest and ExpectedLoss are computed among the eligible variants; a
	// stopped variant has PBest 0 and no expected loss (it cannot be chosen).
	PBest        float64  `json:"p_best"`
	ExpectedLoss *float64 `json:"expected_loss"`
	// Weight is the share of the next sends (waves) or of the next sends
	// after the test (split), 0 for a stopped variant.
	Weight    float64         `json:"weight"`
	Guardrail *GuardrailState `json:"guardrail"`
}

// CampaignAnalysis is the analysis of a campaign and the allocation of its
// next sends.
type CampaignAnalysis struct {
	Variants []CampaignVariantResult `json:"variants"`
	// Leader is the eligible variant most likely to be best, "" when none is
	// eligible.
	Leader string `json:"leader"`
	// Winner is the winner by the decision rule (or the declared one), nil
	// while there is none.
	Winner   *string  `json:"winner"`
	Decision Decision `json:"decision"`
	// Tripped lists the keys of the variants whose guardrail trips with
	// this analysis and were not Stopped before: the caller records them.
	Tripped []string `json:"-"`

	in       CampaignInput
	eligible []int // indices of the arms that may still be sent
	plan     *Plan // over the eligible arms; nil with fewer than two
}

func (in CampaignInput) validate() error {
	if in.Metric != Binary && in.Metric != Continuous {
		return invalid("metric must be %q or %q, not %q", Binary, Continuous, in.Metric)
	}
	if in.Mode != CampaignWaves && in.Mode != CampaignSplit {
		return invalid("campaign mode must be %q or %q, not %q", CampaignWaves, CampaignSplit, in.Mode)
	}
	if len(in.Arms) < 2 {
		return invalid("at least two variants are needed, got %d", len(in.Arms))
	}
	for _, a := range in.Arms {
		if a.Trials < 0 || a.Successes < 0 || (in.Metric == Binary && a.Successes > a.Trials) ||
			a.GuardEvents < 0 || a.GuardEvents > a.GuardTrials {
			return invalid("variant %q: counts out of range", a.Key)
		}
	}
	if g := in.Guardrail; g != nil && !(g.MaxRate > 0 && g.MaxRate < 1 && g.Confidence > 0 && g.Confidence < 1) {
		return invalid("guardrail max_rate and confidence must be in (0, 1)")
	}
	return nil
}

// learnCounts returns what arm a is judged on.
func (a CampaignArm) learnCounts() counts {
	if a.Learn != nil {
		return counts{n: a.Learn.Trials, c: a.Learn.Successes, sum: a.Learn.Sum, sumSq: a.Learn.SumSquares}
	}
	return counts{n: float64(a.Trials), c: float64(a.Successes), sum: a.Sum, sumSq: a.SumSquares}
}

func (a CampaignArm) cumulative() counts {
	return counts{n: float64(a.Trials), c: float64(a.Successes), sum: a.Sum, sumSq: a.SumSquares}
}

// reported returns what arm a's rate and interval are computed from: the
// matured counts when known, else the cumulative ones.
func (a CampaignArm) reported() counts {
	if m := a.Matured; m != nil {
		return counts{n: m.Trials, c: m.Successes, sum: m.Sum, sumSq: m.SumSquares}
	}
	return a.cumulative()
}

// AnalyzeCampaign checks the guardrails, computes P(best), expected loss and
// the allocation weights among the variants still eligible, and applies the
// decision rule (the experiments' Bayesian rule, on the eligible variants).
func AnalyzeCampaign(in CampaignInput) (*CampaignAnalysis, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	in.Settings = in.Settings.WithDefaults()
	out := &CampaignAnalysis{in: in, Variants: make([]CampaignVariantResult, len(in.Arms))}
	rep := make([]counts, len(in.Arms))
	for i, a := range in.Arms {
		rep[i] = a.reported()
	}
	post := posteriors(in.Metric, rep, in.Settings)
	for i, a := range in.Arms {
		v := CampaignVariantResult{Key: a.Key, Trials: a.Trials, Successes: a.Successes, Sum: a.Sum,
			MaturedTrials: rep[i].n, CILow: post[i].quantile(0.025), CIHigh: post[i].quantile(0.975)}
		if in.Metric == Binary {
			v.Sum = float64(a.Successes)
		}
		if a.Trials > 0 {
			v.RawRate = v.Sum / float64(a.Trials)
		}
		if rep[i].n > 0 {
			v.Rate = rep[i].sum / rep[i].n
			if in.Metric == Binary {
				v.Rate = rep[i].c / rep[i].n
			}
		}
		stopped := a.Stopped
		if g := in.Guardrail; g != nil {
			logE, trips := g.Test(a.GuardEvents, a.GuardTrials)
			gs := &GuardrailState{PAbove: GuardrailProbability(a.GuardEvents, a.GuardTrials, g.MaxRate),
				EValue: math.Exp(min(logE, maxLogE)), PValue: math.Exp(min(0, -logE))}
			if a.GuardTrials > 0 {
				gs.Rate = float64(a.GuardEvents) / float64(a.GuardTrials)
			}
			if !stopped && trips {
				stopped = true
				out.Tripped = append(out.Tripped, a.Key)
			}
			gs.Tripped = stopped
			v.Guardrail = gs
		}
		if !stopped {
			out.eligible = append(out.eligible, i)
		}
		out.Variants[i] = v
	}
	if err := out.allocate(); err != nil {
		return nil, err
	}
	return out, nil
}

// allocate computes P(best), the loss and the weights among the eligible
// arms, the leader and the decision.
func (c *CampaignAnalysis) allocate() error {
	in := c.in
	switch len(c.eligible) {
	case 0:
		c.Decision = Decision{StateCollecting, "every variant tripped the guardrail: nothing can be sent"}
		return nil
	case 1:
		i := c.eligible[0]
		v := &c.Variants[i]
		v.PBest, v.Weight, v.ExpectedLoss = 1, 1, new(float64)
		c.Leader = v.Key
		key := v.Key
		c.Winner = &key
		c.Decision = Decision{StateWinnerFound, fmt.Sprintf("%s is the only variant the guardrail has not stopped", key)}
		return nil
	}
	arms := make([]Arm, len(c.eligible))
	learn := make([]counts, len(c.eligible))
	decide := make([]Arm, len(c.eligible))
	for j, i := range c.eligible {
		a := in.Arms[i]
		arms[j] = Arm{Key: a.Key, Units: a.Trials, Conversions: a.Successes, Sum: a.Sum, SumSquares: a.SumSquares}
		learn[j] = a.learnCounts()
		// The decision's minimum sample counts matured trials only.
		decide[j] = arms[j]
		decide[j].Units = int64(a.reported().n)
	}
	ein := Input{Metric: in.Metric, Arms: arms, Settings: in.Settings}
	if err := in.Settings.Validate(len(arms)); err != nil {
		return err
	}
	// Allocation, P(best) and the decision shrink toward the pooled rate
	// (pooledPrior); the reported intervals keep the settings' prior.
	pooled := in.Settings
	pooled.PooledPriorCV = CampaignPriorCV
	ps := posteriors(in.Metric, learn, pooled)
	pbest, loss := bestProbabilities(ps)
	c.plan = newPlan(ein, func(cs []int) sampler { return &thompsonSampler{ps: subset(ps, cs)} })
	c.plan.prime(pbest)
	weights := c.plan.Weights()
	for j, i := range c.eligible {
		v := &c.Variants[i]
		l := loss[j]
		v.PBest, v.ExpectedLoss, v.Weight = pbest[j], &l, weights[j]
	}
	c.Leader = arms[argmax(pbest)].Key
	// A winner as an experiment's: the posterior must favour it and the
	// anytime-valid tests on the tested sends' propensities must show it
	// beats every other eligible variant. On the posterior alone, two
	// identical subjects at 20% opens, looked at after every one of 100
	// waves, gave a winner in 65% of campaigns (docs/campaigns.md).
	tests := make([]Arm, len(c.eligible))
	for j, i := range c.eligible {
		tests[j] = in.Arms[i].testArm(in.Metric)
	}
	din := Input{Metric: in.Metric, Arms: decide, Settings: in.Settings, TestArms: tests}
	av := newAVTests(din, "adaptive")
	if !av.OK && slices.IndexFunc(tests, func(a Arm) bool { return a.Units > 0 }) < 0 {
		av.Why = "no send was drawn at random among the variants yet (a split's test needs calls of at least as many sends as variants)"
	}
	c.Winner, c.Decision = experimentDecision(din, observedMeans(in.Metric, decide), argmax(pbest),
		av, func() ([]float64, []float64) { return pbest, loss })
	if in.Mode == CampaignSplit {
		// After the test every send goes to one variant: the weights say so.
		if in.Sent >= in.TestSends {
			for j, i := range c.eligible {
				c.Variants[i].Weight = 0
				if arms[j].Key == c.target() {
					c.Variants[i].Weight = 1
				}
			}
		} else {
			for _, i := range c.eligible {
				c.Variants[i].Weight = 1 / float64(len(c.eligible))
			}
		}
	}
	return nil
}

// target is the variant every send of a split campaign's second phase gets:
// the recorded pick while it is eligible, else the declared winner while it
// is eligible, else the leader.
func (c *CampaignAnalysis) target() string {
	for _, k := range []string{c.in.Pick, c.in.Winner} {
		if k != "" && c.eligibleKey(k) {
			return k
		}
	}
	return c.Leader
}

func (c *CampaignAnalysis) eligibleKey(k string) bool {
	for _, i := range c.eligible {
		if c.in.Arms[i].Key == k {
			return true
		}
	}
	return false
}

// NeedsPick reports whether n more sends of a split campaign reach past its
// test while no eligible pick is recorded: the caller then records Target
// once (the first recorder wins among replicas) and passes it to SetPick.
func (c *CampaignAnalysis) NeedsPick(n int) bool {
	in := c.in
	return in.Mode == CampaignSplit && len(c.eligible) > 0 && in.Sent+int64(n) > in.TestSends &&
		!(in.Pick != "" && c.eligibleKey(in.Pick))
}

// Target returns the variant a split campaign's second phase sends to now
// (the one to record as the pick when NeedsPick).
func (c *CampaignAnalysis) Target() string { return c.target() }

// SetPick sets the recorded pick, and the weights that follow from it.
func (c *CampaignAnalysis) SetPick(k string) {
	c.in.Pick = k
	if c.in.Mode == CampaignSplit && c.in.Sent >= c.in.TestSends && len(c.eligible) > 1 {
		t := c.target()
		for _, i := range c.eligible {
			c.Variants[i].Weight = 0
			if c.in.Arms[i].Key == t {
				c.Variants[i].Weight = 1
			}
		}
	}
}

// Sendable reports whether any variant may still be sent.
func (c *CampaignAnalysis) Sendable() bool { return len(c.eligible) > 0 }

// Allocate returns the arm index (into CampaignInput.Arms) of each of n new
// sends, in the order of the sends. It panics unless Sendable.
//
// Split: the sends still inside the test go round-robin over the eligible
// variants from where the previous call stopped (an exactly even split
// across calls), in shuffled order; the rest go to the target (the declared
// winner, else the leader). Waves: a wave's shares follow the weights
// exactly up to rounding (Apportion), so that one wave of a large call is
// not at the mercy of per-send coin flips, while a call of one send is one
// Thompson draw.
func (c *CampaignAnalysis) Allocate(r *rand.Rand, n int) []int { return c.AllocateTested(r, n).Arms }

// Allocation is the variants of a call's sends and what the anytime-valid
// tests need of them.
type Allocation struct {
	// Arms is the arm index (into CampaignInput.Arms) of each send.
	Arms []int
	// The first Tested sends were drawn at random: each had probability
	// Probs[i] of getting arm i (0 for the arms not eligible), and every
	// eligible arm a positive one. The rest (a split's second phase, or a
	// call with one eligible variant) compare nothing and are not tested.
	Tested int
	Probs  []float64
}

// AllocateTested is Allocate with the probabilities the tested sends had.
// A wave's sends each get arm i with probability w_i exactly (systematic
// sampling from one uniform offset, then shuffled); a split's test sends
// with the share of the call's test sends that arm i gets (shuffled).
func (c *CampaignAnalysis) AllocateTested(r *rand.Rand, n int) Allocation {
	if len(c.eligible) == 0 {
		panic("engine: Allocate with no eligible variant")
	}
	out := Allocation{Arms: make([]int, 0, n), Probs: make([]float64, len(c.in.Arms))}
	if len(c.eligible) == 1 {
		for range n {
			out.Arms = append(out.Arms, c.eligible[0])
		}
		return out
	}
	in := c.in
	if in.Mode == CampaignSplit {
		test := int(min(int64(n), max(0, in.TestSends-in.Sent)))
		k := int64(len(c.eligible))
		for j := range test {
			i := c.eligible[(in.Sent+int64(j))%k]
			out.Arms = append(out.Arms, i)
			out.Probs[i] += 1 / float64(test)
		}
		r.Shuffle(len(out.Arms), func(a, b int) { out.Arms[a], out.Arms[b] = out.Arms[b], out.Arms[a] })
		if test >= len(c.eligible) { // each eligible variant has a chance
			out.Tested = test
		}
		target := c.target()
		ti := c.eligible[0]
		for _, i := range c.eligible {
			if in.Arms[i].Key == target {
				ti = i
			}
		}
		for len(out.Arms) < n {
			out.Arms = append(out.Arms, ti)
		}
		return out
	}
	w := c.plan.Weights()
	for _, j := range Apportion(r, w, n) {
		out.Arms = append(out.Arms, c.eligible[j])
	}
	out.Tested = n
	for j, i := range c.eligible {
		out.Probs[i] = w[j]
		if !(w[j] > 0) {
			out.Tested = 0 // an arm that cannot be drawn: no test of it holds
		}
	}
	return out
}

// Apportion returns n indices into weights, each index i appearing
// floor(n·w_i) or ceil(n·w_i) times and on average exactly n·w_i times
// (systematic sampling: n evenly spaced points with one random offset over
// the cumulative weights), in random order. Weights must sum to 1.
func Apportion(r *rand.Rand, weights []float64, n int) []int {
	out := make([]int, 0, n)
	if n <= 0 {
		return out
	}
	u := r.Float64()
	cum, i := weights[0]*float64(n), 0
	for k := range n {
		x := u + float64(k)
		for x >= cum && i < len(weights)-1 {
			i++
			cum += weights[i] * float64(n)
		}
		out = append(out, i)
	}
	r.Shuffle(len(out), func(a, b int) { out[a], out[b] = out[b], out[a] })
	return out
}

// CampaignSlot is the counts of the sends of one variant made in one time
// slot, with the rewards those sends earned.
type CampaignSlot struct {
	Start                              time.Time
	Trials, Successes, Sum, SumSquares float64
	// Mean is the mean time of the slot's sends and Last the latest (zero:
	// Start, for both); Delays is the histogram of the delays (DelayEdges)
	// from the sends to the receipt of the objective's events.
	Mean, Last time.Time
	Delays     [DelayBuckets]int64
}

// DiscountGamma returns the per-hour discount factor of a half-life:
// γ = 0.5^(1h/halfLife); 1 (no discount) for a half-life ≤ 0.
func DiscountGamma(halfLife time.Duration) float64 {
	if halfLife <= 0 {
		return 1
	}
	return math.Pow(0.5, float64(time.Hour)/float64(halfLife))
}

// DiscountSlots returns the slots' counts discounted by the age of their
// sends at now: a slot weighs γ^(age in hours), γ = DiscountGamma(halfLife),
// so counts halve every half-life. This is discounted Thompson sampling
// with the discount keyed to when a send was made, not to when its reward
// arrived, so that a late open of an old send counts as old; and since it is
// a function of the stored slots alone, every replica computes the same
// counts without a shared state to keep in step.
//
// It counts every send as a trial; MatureSlots also weighs each by the
// probability that its outcome has arrived.
func DiscountSlots(slots []CampaignSlot, now time.Time, halfLife time.Duration) LearnCounts {
	return MatureSlots(slots, now, halfLife, DelayModel{})
}
