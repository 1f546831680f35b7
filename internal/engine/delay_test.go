package engine

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// lognormalCDF is the true F of the simulations below.
func lognormalCDF(d, median time.Duration, sigma float64) float64 {
	if d <= 0 {
		return 0
	}
	return 0.5 * math.Erfc(-math.Log(float64(d)/float64(median))/(sigma*math.Sqrt2))
}

// delaySlots simulates sends every step from 0 to until (per hour slot),
// each earning the objective with probability p after a log-normal delay,
// observed when it has arrived by now.
func delaySlots(r *rand.Rand, p float64, perStep int, step, until, now, median time.Duration, sigma float64) []CampaignSlot {
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	by := map[time.Duration]*CampaignSlot{}
	var order []time.Duration
	for t := time.Duration(0); t < until; t += step {
		h := t.Truncate(time.Hour)
		s := by[h]
		if s == nil {
			s = &CampaignSlot{Start: t0.Add(h)}
			by[h] = s
			order = append(order, h)
		}
		for range perStep {
			// Mean is kept as a running mean of the send times.
			s.Mean = s.Start.Add(time.Duration((float64(s.Mean.Sub(s.Start))*s.Trials + float64(t-h)) / (s.Trials + 1)))
			s.Trials++
			s.Last = t0.Add(t)
			if r.Float64() >= p {
				continue
			}
			d := time.Duration(float64(median) * math.Exp(sigma*r.NormFloat64()))
			if t+d <= now {
				s.Successes++
				s.Delays[DelayBucket(d)]++
			}
		}
	}
	out := make([]CampaignSlot, 0, len(order))
	for _, h := range order {
		out = append(out, *by[h])
	}
	return out
}

// The estimate of F recovers the truth up to the horizon, from data
// truncated by each send's age, and the matured rate recovers the rate
// (within the horizon) that the raw rate underestimates.
func TestEstimateDelaysRecoversTheTruth(t *testing.T) {
	const p, sigma = 0.05, 1.0
	median := time.Hour
	now := 6 * time.Hour
	r := rand.New(rand.NewPCG(1, 2))
	slots := delaySlots(r, p, 400, 10*time.Minute, now, now, median, sigma)
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	m := EstimateDelays(slots, t0.Add(now), 72*time.Hour)
	if m.Horizon != 4*time.Hour {
		t.Fatalf("horizon %v, want 4h (the oldest slot's last send is 5h10m old)", m.Horizon)
	}
	top := lognormalCDF(m.Horizon, median, sigma)
	for i, pt := range m.Points {
		want := lognormalCDF(pt, median, sigma) / top
		if math.Abs(m.CDF[i]-want) > 0.05 {
			t.Errorf("F(%v) = %.3f, want %.3f", pt, m.CDF[i], want)
		}
	}
	if q := m.Quantile(0.5); q < 45*time.Minute || q > 80*time.Minute {
		t.Errorf("median %v, want about 1h", q)
	}
	learn := MatureSlots(slots, t0.Add(now), 0, m)
	var raw, succ float64
	for _, s := range slots {
		raw += s.Trials
		succ += s.Successes
	}
	rate, rawRate := learn.Successes/learn.Trials, succ/raw
	want := p * top
	se := math.Sqrt(want * (1 - want) / learn.Trials)
	if math.Abs(rate-want) > 3*se {
		t.Errorf("matured rate %.4f, want %.4f ± %.4f (raw %.4f)", rate, want, se, rawRate)
	}
	if rawRate > want-3*se {
		t.Errorf("raw rate %.4f is not clearly below %.4f: the test does not test anything", rawRate, want)
	}
}

// A wave whose clicks all come an hour after it (a sender that reports a
// wave's events after sending the next) is not counted while it is younger
// than that, and the model is empty before any delay is seen.
func TestEstimateDelaysOneWaveLag(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	wave := func(h int, n, clicks float64, delay time.Duration) CampaignSlot {
		s := CampaignSlot{Start: t0.Add(time.Duration(h) * time.Hour), Trials: n, Successes: clicks}
		s.Mean, s.Last = s.Start, s.Start
		if clicks > 0 {
			s.Delays[DelayBucket(delay)] = int64(clicks)
		}
		return s
	}
	if m := EstimateDelays([]CampaignSlot{wave(0, 1000, 0, 0)}, t0.Add(time.Hour), 72*time.Hour); m.Horizon != 0 || m.Matured(time.Minute) != 1 {
		t.Errorf("no delay seen: %+v, F(1m) = %v", m, m.Matured(time.Minute))
	}
	slots := []CampaignSlot{wave(0, 1000, 30, time.Hour), wave(1, 1000, 30, time.Hour), wave(2, 1000, 0, 0)}
	now := t0.Add(3 * time.Hour)
	m := EstimateDelays(slots, now, 72*time.Hour)
	if m.Horizon != 2*time.Hour || m.Events != 60 {
		t.Errorf("model %+v", m)
	}
	if f := m.Matured(time.Hour); f != 0 {
		t.Errorf("F(1h) = %v, want 0", f)
	}
	if f := m.Matured(2 * time.Hour); f != 1 {
		t.Errorf("F(2h) = %v, want 1", f)
	}
	l := MatureSlots(slots, now, 0, m)
	if l.Trials != 2000 || l.Successes != 60 {
		t.Errorf("matured %+v, want the two old waves only", l)
	}
	if d := DiscountSlots(slots, now, 0); d.Trials != 3000 {
		t.Errorf("raw %+v", d)
	}
}

func TestDelayBucket(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int
	}{{0, 0}, {4 * time.Minute, 0}, {5 * time.Minute, 1}, {59 * time.Minute, 3}, {time.Hour, 4}, {95 * time.Hour, 10}, {96 * time.Hour, 11}, {1000 * time.Hour, 11}} {
		if got := DelayBucket(c.d); got != c.want {
			t.Errorf("DelayBucket(%v) = %d, want %d", c.d, got, c.want)
		}
	}
}

// The horizon does not move to the next edge on the one or two delays seen
// there (F(shorter ages)/F(horizon) would rest on them), and a slot older
// than the horizon counts only the outcomes that arrived within it: every
// send then estimates the same rate, whatever its age.
func TestDelayHorizonByPrecisionAndCut(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	slot := func(h time.Duration, n float64, delays map[time.Duration]int64) CampaignSlot {
		s := CampaignSlot{Start: t0.Add(h), Trials: n}
		s.Mean, s.Last = s.Start, s.Start
		for d, k := range delays {
			s.Delays[DelayBucket(d)] += k
			s.Successes += float64(k)
		}
		return s
	}
	now := t0.Add(4*time.Hour + 30*time.Minute)
	// Only the oldest slot (4h30m) shows delays up to 4 h: two, one of
	// them after 2 h. The others show 50 outcomes before 2 h.
	slots := []CampaignSlot{
		slot(0, 1000, map[time.Duration]int64{90 * time.Minute: 1, 3 * time.Hour: 1}),
		slot(time.Hour, 1000, map[time.Duration]int64{45 * time.Minute: 10, 90 * time.Minute: 10}),
		slot(2*time.Hour, 1000, map[time.Duration]int64{45 * time.Minute: 10, 90 * time.Minute: 10}),
		slot(3*time.Hour, 1000, map[time.Duration]int64{45 * time.Minute: 8}),
		slot(4*time.Hour, 1000, map[time.Duration]int64{10 * time.Minute: 2}),
	}
	longest := EstimateDelaysLongest(slots, now, 72*time.Hour)
	if longest.Horizon != 4*time.Hour || longest.Events != 2 {
		t.Fatalf("longest: horizon %v on %d events, want 4h on 2", longest.Horizon, longest.Events)
	}
	m := EstimateDelays(slots, now, 72*time.Hour)
	if m.Horizon != 2*time.Hour {
		t.Fatalf("horizon %v on %d events, want 2h", m.Horizon, m.Events)
	}
	// The oldest slot is older than the horizon: its 3 h outcome is left out.
	if got := MatureSlots(slots[:1], now, 0, m); got.Trials != 1000 || got.Successes != 1 {
		t.Errorf("old slot counts %+v, want 1000 trials and the 1 outcome within 2h", got)
	}
	if got := MatureSlots(slots[:1], now, 0, longest); got.Successes != 2 {
		t.Errorf("within the longest horizon both outcomes count: %+v", got)
	}
}

// TestFunnelBurnInCountsServedUnits: at a funnel step the burn-in
// (burnInSampler) lasts while an arm has been served fewer than MinSamples
// units, whatever share of them has matured; counting matured units, an arm
// served 300 units of which 90 had matured held the step in its burn-in
// (docs/funnels.md). Experiments keep the burn-in on matured units. At
// funnel steps the burn-in serves every arm alike: serving only the short
// arm gave it every unit for a while, and the timed funnels' hourly view saw
// weight 1 and then 0.34 (half the swings of a one-step funnel).
func TestFunnelBurnInCountsServedUnits(t *testing.T) {
	matured := func(f float64) *float64 { return &f }
	step := func(arms ...FunnelArm) FunnelInput {
		return FunnelInput{Strategy: MultiStep, Settings: Settings{MinSamples: 100}.WithDefaults(), Steps: []FunnelStepInput{
			{Key: "landing", Arms: arms}, {Key: "goal", Arms: []FunnelArm{{}}}}}
	}
	a := FunnelArm{Key: "a", Units: 300, Conversions: 50, Matured: matured(90), MaturedConversions: matured(50)}
	b := FunnelArm{Key: "b", Units: 300, Conversions: 100, Matured: matured(110), MaturedConversions: matured(100)}
	plans, err := PlanFunnel(step(a, b))
	if err != nil {
		t.Fatal(err)
	}
	if w := plans[0].Weights(); w[1] < 0.9 {
		t.Errorf("weights %.2f, want Thompson's for b (both arms were served 300 units)", w)
	}
	// An arm served fewer than MinSamples: every arm alike until it has them.
	c := FunnelArm{Key: "c", Units: 80, Conversions: 1, Matured: matured(40), MaturedConversions: matured(1)}
	plans, _ = PlanFunnel(step(b, c))
	if w := plans[0].Weights(); w[0] != 0.5 || w[1] != 0.5 {
		t.Errorf("weights %.2f, want the burn-in's [0.5 0.5] while c has been served 80 units", w)
	}
	// An experiment's arms (MatureArm without Served): matured units, and
	// the short arm alone.
	s, _ := Lookup("adaptive")
	p, _ := s.Plan(Input{Metric: Binary, Settings: Settings{MinSamples: 100}.WithDefaults(),
		Arms: []Arm{MatureArm(Arm{Key: "a", Units: 300, Conversions: 9}, 90), MatureArm(Arm{Key: "b", Units: 300, Conversions: 30}, 110)}})
	if w := p.Weights(); w[0] != 1 {
		t.Errorf("experiment weights %.2f, want the burn-in on matured units, for a alone", w)
	}
}

// TestTrialsVarianceIsTheDeltaMethod: TrialsVariance is Σᵢ (∂T/∂rᵢ)²·var(rᵢ),
// T the matured trials, checked against derivatives taken numerically by
// moving one ratio of F at a time and recomputing F, on simulated slots.
func TestTrialsVarianceIsTheDeltaMethod(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC).Add(30 * time.Hour)
	slots := delaySlots(r, 0.3, 2, time.Minute, 30*time.Hour, 30*time.Hour, 4*time.Hour, 1)
	m := EstimateDelays(slots, now, 72*time.Hour)
	h := len(m.Points) - 1
	if h < 3 {
		t.Fatalf("model with %d points, want a few", h+1)
	}
	trials := func(m DelayModel) float64 {
		var sum float64
		for _, s := range slots {
			sum += s.Trials * m.Matured(now.Sub(s.Mean))
		}
		return sum
	}
	withRatio := func(i int, v float64) DelayModel {
		c := m
		c.ratios = append([]float64(nil), m.ratios...)
		c.ratios[i] = v
		c.CDF = make([]float64, h+1)
		c.CDF[h] = 1
		for j := h; j > 0; j-- {
			c.CDF[j-1] = c.CDF[j] * c.ratios[j]
		}
		return c
	}
	var want float64
	for i := 1; i <= h; i++ {
		const eps = 1e-6
		d := (trials(withRatio(i, m.ratios[i]+eps)) - trials(withRatio(i, m.ratios[i]-eps))) / (2 * eps)
		want += d * d * m.ratioVar[i]
	}
	got := m.TrialsVariance(slots, now)
	if want <= 0 || math.Abs(got-want) > 1e-4*want {
		t.Errorf("TrialsVariance %.6g, numerical delta method %.6g", got, want)
	}

	// A ratio estimated as 0 on a few delays is not exact: F is 0 below it,
	// yet the trials there depend on it.
	z := withRatio(h, 0)
	z.ratioVar = append([]float64(nil), m.ratioVar...)
	z.ratioVar[h] = 0.5 * 3 / 27 // 0 of 3 delays below (estimateDelays)
	if v := z.TrialsVariance(slots, now); !(v > 1) {
		t.Errorf("with a ratio of 0 the matured trials' variance is %.3g, want it large", v)
	}
}

// TestEvidenceShareWidensThePosterior: a funnel arm whose matured trials are
// uncertain (MaturedVariance) learns from fewer of its counts, by the delta
// method, so its P(best) moves less than the same counts taken as exact.
func TestEvidenceShareWidensThePosterior(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	a := FunnelArm{Key: "a", Units: 400, Conversions: 60, Matured: f(200), MaturedConversions: f(60)}
	b := FunnelArm{Key: "b", Units: 400, Conversions: 80, Matured: f(200), MaturedConversions: f(80)}
	if s := a.endToEndArm().EvidenceShare; s != 1 {
		t.Errorf("share without variance %v, want 1", s)
	}
	a.MaturedVariance, b.MaturedVariance = 400, 400 // a standard error of 20 matured units
	arm := a.endToEndArm()
	r := 61.0 / 202
	if want := 1 / (1 + r*400/((1-r)*200)); math.Abs(arm.EvidenceShare-want) > 1e-12 {
		t.Errorf("share %v, want %v", arm.EvidenceShare, want)
	}
	pBest := func(a, b FunnelArm) float64 {
		res, err := AnalyzeFunnel(FunnelInput{Strategy: MultiStep, Settings: Settings{}.WithDefaults(), Steps: []FunnelStepInput{
			{Key: "s", Arms: []FunnelArm{a, b}}, {Key: "goal", Arms: []FunnelArm{{}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Steps[0].Variants[1].PBest
	}
	sure := pBest(FunnelArm{Key: "a", Units: 400, Conversions: 60, Matured: f(200), MaturedConversions: f(60)},
		FunnelArm{Key: "b", Units: 400, Conversions: 80, Matured: f(200), MaturedConversions: f(80)})
	if unsure := pBest(a, b); !(unsure < sure-0.01 && unsure > 0.5) {
		t.Errorf("P(b best) %.4f with the delay model's error, %.4f without: want it nearer ½", unsure, sure)
	}
}

// TestFunnelMinConversions: a funnel step whose outcomes mature with a delay
// (Served set) serves its variants alike until they have FunnelMinConversions
// matured conversions per variant together — a variant with few of its own
// does not hold the step (the worst one held it for a day in
// TestConversionsOverHoursFunnel); without a delay model the burn-in is on
// units only.
func TestFunnelMinConversions(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	// step returns the weights served, after checking that the results
	// show the same ones (they once left the burn-in out).
	step := func(arms ...FunnelArm) []float64 {
		t.Helper()
		in := FunnelInput{Strategy: MultiStep, Settings: Settings{}.WithDefaults(), Steps: []FunnelStepInput{
			{Key: "s", Arms: arms}, {Key: "goal", Arms: []FunnelArm{{}}}}}
		plans, err := PlanFunnel(in)
		if err != nil {
			t.Fatal(err)
		}
		res, err := AnalyzeFunnel(in)
		if err != nil {
			t.Fatal(err)
		}
		w := plans[0].Weights()
		for i, v := range res.Steps[0].Variants {
			if math.Abs(v.Weight-w[i]) > 1e-9 {
				t.Errorf("variant %s: the results show weight %.4f, the plan serves %.4f", v.Key, v.Weight, w[i])
			}
		}
		return w
	}
	conv := func(a *FunnelArm, c int64) { a.Conversions, a.MaturedConversions = c, f(float64(c)) }
	a := FunnelArm{Key: "a", Units: 3000, Matured: f(2000)}
	b := FunnelArm{Key: "b", Units: 3000, Matured: f(2000)}
	conv(&a, 5)
	conv(&b, 2*FunnelMinConversions-6)
	if w := step(a, b); w[0] != 0.5 {
		t.Errorf("weights %.3f with %d matured conversions in all, want the burn-in's ½", w, a.Conversions+b.Conversions)
	}
	conv(&b, 2*FunnelMinConversions-5)
	if w := step(a, b); w[1] < 0.99 {
		t.Errorf("weights %.3f once a and b have %d together (a %d), want Thompson sampling's for b", w, 2*FunnelMinConversions, a.Conversions)
	}
	conv(&b, 20)
	a.Matured, a.MaturedConversions, b.Matured, b.MaturedConversions = nil, nil, nil, nil
	if w := step(a, b); w[1] < 0.99 {
		t.Errorf("weights %.3f without a delay model, want Thompson sampling's for b", w)
	}
}

// TestFunnelMaturedWithin: while no unit is old enough to show the
// completions of the whole window, a funnel step's results say within which
// delay its matured rates count them (the server's test read its rates 48
// hours into a 72-hour window, within 24 hours, about 5.5% low: mean z
// −0.80, docs/funnels.md); once units have passed the window, nothing.
func TestFunnelMaturedWithin(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	var slots []FunnelSlot
	for h := range 48 {
		for arm := range 2 {
			s := CampaignSlot{Start: t0.Add(time.Duration(h) * time.Hour), Trials: 100}
			s.Mean, s.Last = s.Start, s.Start
			s.Delays[DelayBucket(3*time.Hour)] = 3
			s.Delays[DelayBucket(20*time.Hour)] = 1
			s.Successes = 4
			slots = append(slots, FunnelSlot{Step: 0, Arm: arm, CampaignSlot: s})
		}
	}
	analyze := func(now time.Time) *string {
		t.Helper()
		arms := []FunnelArm{{Key: "a", Units: 4800, Conversions: 192}, {Key: "b", Units: 4800, Conversions: 192}}
		in := FunnelInput{Strategy: MultiStep, Settings: Settings{}.WithDefaults(), Steps: []FunnelStepInput{
			{Key: "s", Arms: arms}, {Key: "goal", Arms: []FunnelArm{{Units: 384}}}}}
		// Only the completions a slot is old enough to show have arrived.
		var seen []FunnelSlot
		for _, s := range slots {
			for b, n := range s.Delays {
				if b < len(DelayEdges) && s.Start.Add(DelayEdges[b]).After(now) {
					s.Successes -= float64(n)
					s.Delays[b] = 0
				}
			}
			seen = append(seen, s)
		}
		MatureFunnel(&in, seen, now, 72*time.Hour)
		res, err := AnalyzeFunnel(in)
		if err != nil {
			t.Fatal(err)
		}
		return res.Steps[0].MaturedWithin
	}
	if got := analyze(t0.Add(47 * time.Hour)); got == nil || *got != "24h0m0s" {
		t.Errorf("47 hours in: matured within %v, want 24h0m0s", deref(got))
	}
	if got := analyze(t0.Add(130 * time.Hour)); got != nil {
		t.Errorf("after every unit's window: matured within %s, want nil (the whole window)", *got)
	}
}

func deref(s *string) string {
	if s == nil {
		return "nil"
	}
	return *s
}
