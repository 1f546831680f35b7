package offline

import (
	"math/rand/v2"
	"time"

	"github.com/samplit/samplit/internal/engine"
)

// A timed funnel run (a scenario with a delay): units enter spread over the
// scenario's hours and move from step to step after delays, and the plans
// are made from the counts the server would hold at that moment: a unit
// counts at a step from when it reaches it, its completion only once it has
// arrived (within the window of reaching the step), and, with the delay
// model, the units still inside their window count by the probability that
// their completion would have arrived (engine.MatureFunnel, the server's
// code). Without the delay model they count as not converted so far, which
// is what the server did before it.

// Defaults of a timed scenario.
const (
	defaultFunnelHours  = 48
	defaultFunnelWindow = 7 * 24 * time.Hour
)

// reach is a unit reaching a step at a time.
type reach struct {
	at   time.Duration // since the start
	unit int
	step int
}

// reachFirst orders reaches by time, then unit (deterministic).
func reachFirst(a, b reach) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.unit < b.unit
}

// timedSlot is one reach-time bucket of one arm of a step.
type timedSlot struct {
	step, arm int
	start     time.Duration
	units     int64
	succ      int64
	offsets   time.Duration // Σ (reach − start)
	last      time.Duration
	delays    [engine.DelayBuckets]int64
}

func simulateTimedFunnelRun(cfg FunnelSimConfig, rng *rand.Rand) (funnelRun, error) {
	sc := cfg.Scenario
	m := len(sc.Steps)
	hours := sc.Hours
	if hours == 0 {
		hours = defaultFunnelHours
	}
	window := time.Duration(sc.Window)
	if window == 0 {
		window = defaultFunnelWindow
	}
	width := min(max(window/168, time.Second), time.Hour) // the server's bucket width
	spread := time.Duration(hours * float64(time.Hour))
	dist := *sc.Delay
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	in := engine.FunnelInput{Strategy: cfg.Strategy, Settings: cfg.Settings, Steps: make([]engine.FunnelStepInput, m)}
	for k, st := range sc.Steps {
		si := engine.FunnelStepInput{Key: st.Key}
		if len(st.Variants) == 0 {
			si.Arms = []engine.FunnelArm{{}}
		}
		for _, v := range st.Variants {
			si.Arms = append(si.Arms, engine.FunnelArm{Key: v})
		}
		in.Steps[k] = si
	}
	best, _ := sc.bestPath()

	// Per unit: its arm at each step (-1: not reached) and when it reached it.
	seen := make([][]int, cfg.Units)
	reached := make([][]time.Duration, cfg.Units)
	props := make([][]float64, cfg.Units) // the propensity of the variant seen at each step
	weights := make([][]float64, m)       // the plans' weights, by step
	slots := map[[3]int64]*timedSlot{}
	slotOf := func(k, arm int, at time.Duration) *timedSlot {
		start := at - at%width
		key := [3]int64{int64(k), int64(arm), int64(start)}
		s := slots[key]
		if s == nil {
			s = &timedSlot{step: k, arm: arm, start: start}
			slots[key] = s
		}
		return s
	}

	out := newFunnelRun(m)
	var plans []*engine.Plan
	// The best variant's weight per step, looked at once an hour (as a
	// dashboard would): reached 0.9, and fell below ½ after that.
	top, low := make([]bool, m), make([]bool, m)
	// And the campaigns' collapse: above CollapseLead, later below
	// CollapseFloor.
	led, fell := make([]bool, m), make([]bool, m)
	looked := time.Duration(-1)
	replan := func(now time.Duration) error {
		for k := range in.Steps {
			for j := range in.Steps[k].Arms {
				in.Steps[k].Arms[j].Matured = nil
			}
		}
		if !cfg.NoDelayModel {
			var fs []engine.FunnelSlot
			for _, s := range slots {
				if s.start+width+window <= now {
					continue // mature: its units count whole
				}
				cs := engine.CampaignSlot{Start: epoch.Add(s.start), Trials: float64(s.units), Successes: float64(s.succ),
					Last: epoch.Add(s.last), Delays: s.delays}
				if s.units > 0 {
					cs.Mean = epoch.Add(s.start + s.offsets/time.Duration(s.units))
				}
				fs = append(fs, engine.FunnelSlot{Step: s.step, Arm: s.arm, CampaignSlot: cs})
			}
			engine.MatureFunnel(&in, fs, epoch.Add(now), window)
		}
		var err error
		if plans, err = engine.PlanFunnel(in); err != nil {
			return err
		}
		for k, p := range plans {
			weights[k] = nil
			if p != nil {
				weights[k] = p.Weights()
			}
		}
		if now/time.Hour == looked/time.Hour {
			return nil
		}
		looked = now
		for k, p := range plans {
			if p == nil || best[k] < 0 {
				continue
			}
			w := p.Weights()[best[k]]
			if top[k] && w < 0.5 {
				low[k] = true
			}
			top[k] = top[k] || w >= 0.9
			if led[k] && w < CollapseFloor {
				fell[k] = true
			}
			led[k] = led[k] || w > CollapseLead
		}
		return nil
	}

	q := newMinQueue(reachFirst)
	next, served := 0, 0
	var now time.Duration
	for next < cfg.Units || q.Len() > 0 {
		var r reach
		entry := time.Duration(float64(spread) * float64(next) / float64(cfg.Units))
		if next < cfg.Units && (q.Len() == 0 || entry <= q.peek().at) {
			r = reach{at: entry, unit: next, step: 0}
			seen[next], reached[next], props[next] = make([]int, m), make([]time.Duration, m), make([]float64, m)
			for k := range seen[next] {
				seen[next][k] = -1
			}
			next++
		} else {
			r = q.pop()
		}
		now = r.at
		if cfg.Look > 0 && served > 0 && served%cfg.Look == 0 {
			if err := recordStepDecisions(in, &out); err != nil {
				return out, err
			}
		}
		if served%cfg.Batch == 0 {
			if err := replan(now); err != nil {
				return out, err
			}
		}
		served++
		u, k := r.unit, r.step
		arm := 0
		var p float64 // a step without variants logs no propensity
		if plans[k] != nil {
			arm = plans[k].Draw(rng)
			p = weights[k][arm]
			for j, w := range weights[k] {
				in.Steps[k].Arms[j].AddExpected(w)
			}
		}
		seen[u][k], reached[u][k], props[u][k] = arm, now, p
		a := &in.Steps[k].Arms[arm]
		a.AddUnit(p)
		s := slotOf(k, arm, now)
		s.units++
		s.offsets += now - s.start
		s.last = max(s.last, now)
		if k > 0 {
			if prev := seen[u][k-1]; prev >= 0 && now-reached[u][k-1] <= window {
				in.Steps[k-1].Arms[prev].AddAdvance(props[u][k-1])
			}
		}
		if k == m-1 {
			// The conversion, credited to every step the unit reached
			// within the window of reaching it, as the server does.
			out.conversions++
			for j := 0; j < m; j++ {
				if seen[u][j] < 0 || now-reached[u][j] > window {
					continue
				}
				in.Steps[j].Arms[seen[u][j]].AddConversion(props[u][j])
				sj := slotOf(j, seen[u][j], reached[u][j])
				sj.succ++
				sj.delays[engine.DelayBucket(now-reached[u][j])]++
			}
			continue
		}
		if rng.Float64() < sc.advance(k, seen[u]) {
			q.push(reach{at: now + dist.draw(rng), unit: u, step: k + 1})
		}
	}
	if err := replan(now); err != nil {
		return out, err
	}
	for k := range low {
		out.swung = out.swung || low[k]
		out.collapsed = out.collapsed || fell[k]
	}
	var err error
	out.chosen, err = chosenVariants(in)
	return out, err
}
