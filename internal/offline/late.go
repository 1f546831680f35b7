package offline

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/samplit/samplit/internal/engine"
)

// lateOutcomes delays a simulation's conversions (SimConfig.DelayMedian)
// and, with a conversion window, keeps what each arm's matured view needs.
// Time is counted in units of traffic. Without a delay every method is a
// no-op and conversions are counted at once.
type lateOutcomes struct {
	median, sigma float64
	window        int
	pending       *minQueue[arrival] // by arrival time
	// Per arm, with a window: the assignment times of the units younger
	// than the window (oldest first) and the count of older ones.
	young  [][]int
	mature []int64
	// maturedTests runs the anytime-valid tests on the matured view too
	// (as the server did before engine.Input.TestArms): for the report.
	maturedTests bool
	// The matured arms of the last view, at time viewAt, for the counts
	// viewOf: a plan and a look at the same time share one computation.
	viewAt  int
	viewOf  []engine.Arm
	viewArm []engine.Arm
}

func newLateOutcomes(cfg SimConfig, arms int) *lateOutcomes {
	l := &lateOutcomes{median: cfg.DelayMedian, sigma: cfg.DelaySigma, window: cfg.Window, maturedTests: cfg.MaturedTests,
		pending: newMinQueue(func(a, b arrival) bool { return a.at < b.at })}
	if l.sigma <= 0 {
		l.sigma = 1
	}
	if l.median > 0 && l.window > 0 {
		l.young = make([][]int, arms)
		l.mature = make([]int64, arms)
	}
	return l
}

func (l *lateOutcomes) on() bool { return l.median > 0 }

// assigned records that arm took a unit at time t.
func (l *lateOutcomes) assigned(arm, t int) {
	if l.young != nil {
		l.young[arm] = append(l.young[arm], t)
	}
}

// convert schedules the conversion of a unit of arm assigned at t with
// propensity p, and reports whether it did (false: count it now). A
// conversion later than the window is dropped, as the server drops it.
func (l *lateOutcomes) convert(r *rand.Rand, arm int, p float64, t int) bool {
	if !l.on() {
		return false
	}
	d := l.median * math.Exp(l.sigma*r.NormFloat64())
	if l.window > 0 && d > float64(l.window) {
		return true
	}
	l.pending.push(arrival{at: float64(t) + d, arm: arm, p: p})
	return true
}

// arrive counts the conversions known by time t.
func (l *lateOutcomes) arrive(arms []engine.Arm, t int) {
	for l.pending.Len() > 0 && l.pending.peek().at <= float64(t) {
		a := l.pending.pop()
		addConversion(&arms[a.arm], a.p)
	}
}

// view returns the input plans and decisions see at time t: with a window,
// each arm's matured view, with the raw counts for the anytime-valid tests
// (engine.Input.TestArms), as the server builds it; otherwise the input
// itself.
func (l *lateOutcomes) view(in engine.Input, t int) engine.Input {
	if l.young == nil {
		return in
	}
	out := in
	if !l.maturedTests {
		out.TestArms = in.Arms
	}
	if l.viewArm != nil && l.viewAt == t && slices.Equal(l.viewOf, in.Arms) {
		out.Arms = l.viewArm
		return out
	}
	out.Arms = make([]engine.Arm, len(in.Arms))
	w := float64(l.window)
	inWindow := l.cdf(w)
	for i, a := range in.Arms {
		q := l.young[i]
		for len(q) > 0 && t-q[0] >= l.window {
			q = q[1:]
			l.mature[i]++
		}
		l.young[i] = q
		trials := float64(l.mature[i])
		for _, at := range q {
			trials += l.cdf(float64(t-at)) / inWindow
		}
		out.Arms[i] = engine.MatureArm(a, trials)
	}
	l.viewAt, l.viewOf, l.viewArm = t, slices.Clone(in.Arms), out.Arms
	return out
}

// cdf is the delay's distribution function.
func (l *lateOutcomes) cdf(d float64) float64 {
	if d <= 0 {
		return 0
	}
	return 0.5 * math.Erfc(-math.Log(d/l.median)/(l.sigma*math.Sqrt2))
}

// addConversion counts a first conversion of a unit logged with propensity
// p (0: a regret-only run, which keeps no inverse-propensity sums).
func addConversion(a *engine.Arm, p float64) {
	if p > 0 {
		a.AddOutcome(p, 0, 1, true)
	} else {
		a.Conversions++
	}
}

type arrival struct {
	at  float64
	arm int
	p   float64
}
