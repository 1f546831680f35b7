package offline

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/samplit/samplit/internal/cli"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/samplit/samplit/internal/engine"
)

// CampaignScenario is a campaign with known behaviour, read from the JSON
// file of `samplit simulate --campaign FILE`: the variants' true rates (which
// may drift over the campaign), how late rewards arrive, the send schedule,
// and the strategies to compare on it.
type CampaignScenario struct {
	Name string `json:"name"`
	// Audience recipients are sent in Calls equal calls (waves), Interval
	// apart.
	Audience int      `json:"audience"`
	Calls    int      `json:"calls"`
	Interval Duration `json:"interval"`
	// RewardDelay is the mean of the exponential delay between a send and
	// its reward (open or click) or its guardrail event, when Delay is not
	// set.
	RewardDelay Duration `json:"reward_delay,omitempty"`
	// Delay, when set, is the distribution of the delay from a send to the
	// server's receipt of its reward or guardrail event.
	Delay             *DelayDist          `json:"delay,omitempty"`
	AttributionWindow Duration            `json:"attribution_window"`
	Variants          []CampaignSimArm    `json:"variants"`
	Guardrail         *engine.Guardrail   `json:"guardrail,omitempty"`
	Strategies        []CampaignSimPolicy `json:"strategies"`
	// Track names the variant whose traffic share is followed (the one that
	// wears off in a drift scenario): the report gives, per strategy, how
	// long after it stops being the best its share of a wave first falls
	// below one half.
	Track string `json:"track,omitempty"`
}

// DelayDist is a delay distribution: "exponential" (mean Median·1/ln 2,
// i.e. with that median), "lognormal" (Median, Sigma of the log), "fixed"
// (always Median) or "uniform" (between 0 and Max).
type DelayDist struct {
	Dist   string   `json:"dist"`
	Median Duration `json:"median,omitempty"`
	Sigma  float64  `json:"sigma,omitempty"`
	Max    Duration `json:"max,omitempty"`
}

// draw returns one delay.
func (d DelayDist) draw(r *rand.Rand) time.Duration {
	switch d.Dist {
	case "lognormal":
		return time.Duration(float64(d.Median) * math.Exp(d.Sigma*r.NormFloat64()))
	case "fixed":
		return time.Duration(d.Median)
	case "uniform":
		return time.Duration(r.Float64() * float64(d.Max))
	}
	return time.Duration(r.ExpFloat64() * float64(d.Median) / math.Ln2)
}

func (d DelayDist) String() string {
	switch d.Dist {
	case "lognormal":
		return fmt.Sprintf("log-normal, median %s, sigma %g", time.Duration(d.Median), d.Sigma)
	case "fixed":
		return fmt.Sprintf("always %s", time.Duration(d.Median))
	case "uniform":
		return fmt.Sprintf("uniform over 0–%s", time.Duration(d.Max))
	}
	return fmt.Sprintf("exponential, median %s", time.Duration(d.Median).Round(time.Second))
}

// delay returns the scenario's delay distribution.
func (sc CampaignScenario) delay() DelayDist {
	if sc.Delay != nil {
		return *sc.Delay
	}
	return DelayDist{Dist: "exponential", Median: Duration(float64(sc.RewardDelay) * math.Ln2)}
}

// CampaignSimArm is one variant: its objective rate at the first send and,
// when RateEnd is set, at the last (linear in between), and its guardrail
// event rate.
type CampaignSimArm struct {
	Key       string   `json:"key"`
	Rate      float64  `json:"rate"`
	RateEnd   *float64 `json:"rate_end,omitempty"`
	GuardRate float64  `json:"guard_rate,omitempty"`
}

// CampaignSimPolicy is one way to run the campaign.
type CampaignSimPolicy struct {
	Label            string   `json:"label"`
	Mode             string   `json:"mode"`
	TestShare        float64  `json:"test_share,omitempty"`
	DiscountHalfLife Duration `json:"discount_half_life,omitempty"`
	WeightFloor      *float64 `json:"weight_floor,omitempty"`
	// Alpha and MinEffect are the campaign settings of the same names
	// (default 0.05 each): the winner test's level and the no_difference
	// margin.
	Alpha     *float64 `json:"alpha,omitempty"`
	MinEffect *float64 `json:"min_effect,omitempty"`
	// RawCounts counts every send as a trial from the moment it is made,
	// its outcome on its way or not (the server before the delay model;
	// a split then follows the leader of each call): the baseline.
	RawCounts bool `json:"raw_counts,omitempty"`
	// WavesAfterTest keeps a split's second phase on the call schedule
	// instead of sending the rest of the audience in one call.
	WavesAfterTest bool `json:"waves_after_test,omitempty"`
}

// Duration is a time.Duration read from JSON as "36h" or "7d".
type Duration time.Duration

// UnmarshalJSON reads a Go duration or days.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var f float64
		if _, err := fmt.Sscanf(n, "%g", &f); err != nil {
			return fmt.Errorf("bad duration %q", s)
		}
		*d = Duration(f * float64(24*time.Hour))
		return nil
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// MarshalJSON writes the Go form.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// LoadCampaignScenario reads and checks a scenario file.
func LoadCampaignScenario(path string) (CampaignScenario, error) {
	var sc CampaignScenario
	raw, err := os.ReadFile(path)
	if err != nil {
		return sc, err
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return sc, fmt.Errorf("%s: %w", path, err)
	}
	return sc, sc.validate()
}

func (sc CampaignScenario) validate() error {
	switch {
	case sc.Audience < 1 || sc.Calls < 1 || sc.Calls > sc.Audience:
		return errors.New("audience and calls must be positive, calls at most the audience")
	case len(sc.Variants) < 2:
		return errors.New("a campaign scenario needs at least two variants")
	case len(sc.Strategies) == 0:
		return errors.New("name at least one strategy")
	case sc.AttributionWindow <= 0:
		return errors.New("attribution_window must be positive")
	}
	for _, v := range sc.Variants {
		ok := func(p float64) bool { return p >= 0 && p <= 1 }
		if !ok(v.Rate) || !ok(v.GuardRate) || (v.RateEnd != nil && !ok(*v.RateEnd)) {
			return fmt.Errorf("variant %q: rates must be probabilities", v.Key)
		}
	}
	for _, p := range sc.Strategies {
		if p.Mode != engine.CampaignWaves && p.Mode != engine.CampaignSplit {
			return fmt.Errorf("strategy %q: mode must be waves or split_then_winner", p.Label)
		}
	}
	if d := sc.Delay; d != nil {
		return d.validate()
	}
	return nil
}

// validate checks a delay distribution read from a scenario.
func (d DelayDist) validate() error {
	switch {
	case d.Dist != "exponential" && d.Dist != "lognormal" && d.Dist != "fixed" && d.Dist != "uniform":
		return fmt.Errorf("delay: dist must be exponential, lognormal, fixed or uniform, not %q", d.Dist)
	case d.Dist == "uniform" && d.Max <= 0, d.Dist != "uniform" && d.Median <= 0, d.Sigma < 0:
		return errors.New("delay: median (max for uniform) must be positive, sigma not negative")
	}
	return nil
}

// rate is variant i's objective rate for a send at t.
func (sc CampaignScenario) rate(i int, t time.Duration) float64 {
	v := sc.Variants[i]
	end := time.Duration(sc.Interval) * time.Duration(sc.Calls-1)
	if v.RateEnd == nil || end <= 0 {
		return v.Rate
	}
	return v.Rate + (*v.RateEnd-v.Rate)*float64(t)/float64(end)
}

// best returns the variant with the highest average rate over the sends,
// among those within the guardrail.
func (sc CampaignScenario) best() int {
	b, bv := 0, -1.0
	for i, v := range sc.Variants {
		if sc.Guardrail != nil && v.GuardRate > sc.Guardrail.MaxRate {
			continue
		}
		if avg := sc.meanRate(i); avg > bv {
			b, bv = i, avg
		}
	}
	return b
}

// meanRate is variant i's rate averaged over the calls (their sum, in fact:
// it only ranks the variants).
func (sc CampaignScenario) meanRate(i int) float64 {
	avg := 0.0
	for c := range sc.Calls {
		avg += sc.rate(i, time.Duration(sc.Interval)*time.Duration(c))
	}
	return avg
}

// CampaignSimResult summarises one strategy over the runs.
type CampaignSimResult struct {
	Label string `json:"label"`
	Mode  string `json:"mode"`
	Runs  int    `json:"runs"`
	// Rewards is the mean number of counted rewards (opens or clicks within
	// the window) per run, RewardsSD its standard deviation across runs.
	Rewards   float64 `json:"rewards"`
	RewardsSD float64 `json:"rewards_sd"`
	// PickedBest is the share of runs whose last call went mostly to the
	// truly best variant (by average rate over the campaign).
	PickedBest float64 `json:"picked_best"`
	// Sends is the mean sends per variant.
	Sends map[string]float64 `json:"sends"`
	// Stopped is, per variant, the share of runs in which the guardrail
	// stopped it.
	Stopped map[string]float64 `json:"stopped,omitempty"`
	// RewardsSE is the standard error of Rewards.
	RewardsSE float64 `json:"rewards_se"`
	// BestShare is the truly best variant's mean share of each call's
	// sends; Collapses counts the runs in which its share of a call fell
	// below CollapseFloor after a call gave it more than CollapseLead.
	BestShare []float64 `json:"best_share"`
	Collapses int       `json:"collapses"`
	// SwitchHours is the mean time, in hours, from when the tracked variant
	// stops being the best to the first wave in which its share is below
	// one half; NeverSwitched counts the runs where that never happened.
	SwitchHours   *float64 `json:"switch_hours,omitempty"`
	NeverSwitched int      `json:"never_switched,omitempty"`
	// Declared is the share of runs in which the decision rule, looked at
	// before every call, declared a winner; WrongWinners the share of those
	// winners that are not the truly best variant (all of them when no
	// variant is).
	Declared     float64 `json:"declared"`
	WrongWinners float64 `json:"wrong_winners"`
	// NoDifference is the share of runs in which the rule, before any
	// winner, found every variant within ± min_effect of the leader.
	NoDifference float64 `json:"no_difference"`
}

// pending is a reward or guardrail event on its way.
type pending struct {
	arrival time.Duration
	call    int
	arm     int
	guard   bool
	// p is the probability the send had of getting its arm, when it was
	// tested (engine.Allocation); 0 otherwise.
	p float64
}

// runCampaign plays one run of the policy and returns the counted rewards,
// the arm mostly sent in the last call, the sends per arm, which arms the
// guardrail stopped, and the time of the first call after cross where the
// tracked arm's share was below one half (-1: never).
// campaignRun is what one run of a policy did.
type campaignRun struct {
	rewards, last int
	sends         []int
	stopped       []bool
	switched      time.Duration
	shares        []waveShare
	// winner is the first variant the decision rule declared (-1: none).
	winner int
	// equal is whether the rule found no difference before any winner.
	equal bool
}

func runCampaign(sc CampaignScenario, p CampaignSimPolicy, r *rand.Rand, track int, cross time.Duration, best int) (campaignRun, error) {
	k := len(sc.Variants)
	run := campaignRun{sends: make([]int, k), stopped: make([]bool, k), switched: -1, winner: -1}
	sends, stopped := run.sends, run.stopped
	// Per call and arm: sends, and the arrived rewards and guard events.
	type cell struct {
		n, succ, guard int
		delays         [engine.DelayBuckets]int64
	}
	cells := make([][]cell, sc.Calls)
	// The anytime-valid tests' sums, per arm (engine.CampaignArm.Test).
	tests := make([]engine.Arm, k)
	var queue []pending
	window := time.Duration(sc.AttributionWindow)
	dist := sc.delay()
	pick := ""
	settings := engine.Settings{WeightFloor: 0.01}
	if p.WeightFloor != nil {
		settings.WeightFloor = *p.WeightFloor
	}
	if p.Alpha != nil {
		settings.Alpha = *p.Alpha
	}
	if p.MinEffect != nil {
		settings.MinEffect = *p.MinEffect
	}
	testShare := p.TestShare
	if testShare == 0 {
		testShare = 0.2
	}
	sent := 0
	for c := range sc.Calls {
		now := time.Duration(sc.Interval) * time.Duration(c)
		// Deliver what has arrived by now.
		q := queue[:0]
		for _, ev := range queue {
			if ev.arrival > now {
				q = append(q, ev)
				continue
			}
			x := &cells[ev.call][ev.arm]
			if ev.guard {
				x.guard++
			} else {
				if ev.p > 0 {
					tests[ev.arm].AddOutcome(ev.p, 0, 1, true)
				}
				x.succ++
				x.delays[engine.DelayBucket(ev.arrival-time.Duration(sc.Interval)*time.Duration(ev.call))]++
			}
		}
		queue = q
		in := engine.CampaignInput{Metric: engine.Binary, Mode: p.Mode, Settings: settings, Guardrail: sc.Guardrail,
			TestSends: int64(testShare*float64(sc.Audience) + 0.5), Sent: int64(sent), Pick: pick}
		// What the server reads: per variant, one slot per call (the sends
		// of a call share their time), with the delays of its rewards.
		at := time.Unix(0, 0).Add(now)
		slots := make([][]engine.CampaignSlot, k)
		var all []engine.CampaignSlot
		for i := range sc.Variants {
			for cc := range c {
				x := cells[cc][i]
				start := time.Unix(0, 0).Add(time.Duration(sc.Interval) * time.Duration(cc))
				sl := engine.CampaignSlot{Start: start, Mean: start, Last: start, Trials: float64(x.n),
					Successes: float64(x.succ), Delays: x.delays}
				slots[i] = append(slots[i], sl)
				all = append(all, sl)
			}
		}
		var model engine.DelayModel // F ≡ 1: raw counts
		if !p.RawCounts {
			model = engine.EstimateDelaysLongest(all, at, window)
		}
		for i, v := range sc.Variants {
			a := engine.CampaignArm{Key: v.Key, Stopped: stopped[i], Test: tests[i]}
			for cc := range c {
				x := cells[cc][i]
				a.Trials += int64(x.n)
				a.Successes += int64(x.succ)
				a.GuardEvents += int64(x.guard)
			}
			a.GuardTrials = a.Trials
			m := engine.MatureSlots(slots[i], at, 0, model)
			a.Matured, a.Learn = &m, &m
			if p.DiscountHalfLife > 0 {
				l := engine.MatureSlots(slots[i], at, time.Duration(p.DiscountHalfLife), model)
				a.Learn = &l
			}
			in.Arms = append(in.Arms, a)
		}
		an, err := engine.AnalyzeCampaign(in)
		if err != nil {
			return run, err
		}
		if an.Decision.State == engine.StateNoDifference && run.winner < 0 {
			run.equal = true
		}
		if an.Winner != nil && run.winner < 0 {
			for i, v := range sc.Variants {
				if v.Key == *an.Winner {
					run.winner = i
				}
			}
		}
		for _, key := range an.Tripped {
			for i, v := range sc.Variants {
				if v.Key == key {
					stopped[i] = true
				}
			}
		}
		if !an.Sendable() {
			break
		}
		n := sc.Audience / sc.Calls
		if c < sc.Audience%sc.Calls {
			n++
		}
		if p.Mode == engine.CampaignSplit && int64(sent) >= in.TestSends && !p.WavesAfterTest {
			// The classic split: once the test is out, the rest of the
			// audience goes in one call to the leader of that moment.
			n = sc.Audience - sent
		}
		if !p.RawCounts && an.NeedsPick(n) {
			// As the server: the second phase's variant is picked once.
			pick = an.Target()
			an.SetPick(pick)
		}
		cells[c] = make([]cell, k)
		alloc := an.AllocateTested(r, n)
		for j, arm := range alloc.Arms {
			cells[c][arm].n++
			sends[arm]++
			var p float64
			if j < alloc.Tested {
				p = alloc.Probs[arm]
				tests[arm].AddUnit(p)
				for i, w := range alloc.Probs {
					if w > 0 {
						tests[i].AddExpected(w)
					}
				}
			}
			if r.Float64() < sc.rate(arm, now) {
				d := dist.draw(r)
				if d <= window {
					run.rewards++
					queue = append(queue, pending{arrival: now + d, call: c, arm: arm, p: p})
				}
			}
			if g := sc.Variants[arm].GuardRate; g > 0 && r.Float64() < g {
				queue = append(queue, pending{arrival: now + dist.draw(r), call: c, arm: arm, guard: true})
			}
		}
		sent += n
		top := 0
		for i := range cells[c] {
			if cells[c][i].n > cells[c][top].n {
				top = i
			}
		}
		run.shares = append(run.shares, waveShare{float64(cells[c][best].n) / float64(n), cells[c][best].n >= cells[c][top].n})
		run.last = top
		if track >= 0 && run.switched < 0 && now >= cross && 2*cells[c][track].n < n {
			run.switched = now
		}
		if sent >= sc.Audience {
			break
		}
	}
	return run, nil
}

// waveShare is the truly best variant's share of one call's sends, and
// whether no variant had more of them (it led the wave).
type waveShare struct {
	share float64
	led   bool
}

// CollapseLead and CollapseFloor define a collapse (docs/campaigns.md): a
// call that gives the truly best variant less than CollapseFloor of its
// sends after an earlier call gave it more than CollapseLead — the swing
// that counting immature sends as failures causes (1,914 of 2,000 sends
// in one wave, 41 in the next).
const (
	CollapseLead  = 0.5
	CollapseFloor = 0.1
)

// collapsed reports whether shares has a collapse.
func collapsed(shares []waveShare) bool {
	led := false
	for _, w := range shares {
		if led && w.share < CollapseFloor {
			return true
		}
		led = led || w.share > CollapseLead
	}
	return false
}

// RunCampaignSimulation plays every strategy of the scenario runs times.
// Run i of every strategy draws from the PCG stream (seed, i): the same
// seed gives the same report whatever the scheduling, and strategies are
// compared on the same random streams.
func RunCampaignSimulation(sc CampaignScenario, runs int, seed uint64) ([]CampaignSimResult, error) {
	track, cross := -1, time.Duration(0)
	for i, v := range sc.Variants {
		if v.Key == sc.Track {
			track = i
		}
	}
	if track >= 0 {
		// The first call at which another variant's rate is above the
		// tracked one's.
		cross = -1
		for c := range sc.Calls {
			t := time.Duration(sc.Interval) * time.Duration(c)
			for j := range sc.Variants {
				if j != track && sc.rate(j, t) > sc.rate(track, t) && cross < 0 {
					cross = t
				}
			}
		}
		if cross < 0 {
			return nil, fmt.Errorf("track: %q stays the best throughout", sc.Track)
		}
	}
	best := sc.best()
	// tied: no variant is truly best (an A/A campaign), so every declared
	// winner is a false one.
	tied := false
	for i := range sc.Variants {
		if i != best && sc.meanRate(i) == sc.meanRate(best) {
			tied = true
		}
	}
	var out []CampaignSimResult
	for _, p := range sc.Strategies {
		type one struct {
			campaignRun
			err error
		}
		res := make([]one, runs)
		var wg sync.WaitGroup
		jobs := make(chan int)
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for i := range jobs {
					r := rand.New(rand.NewPCG(seed, uint64(i)))
					var o one
					o.campaignRun, o.err = runCampaign(sc, p, r, track, cross, best)
					res[i] = o
				}
			})
		}
		for i := range runs {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		sr := CampaignSimResult{Label: p.Label, Mode: p.Mode, Runs: runs, Sends: map[string]float64{}}
		var sum, sumSq, switchSum float64
		picked, switchedRuns := 0, 0
		for _, o := range res {
			if o.err != nil {
				return nil, o.err
			}
			x := float64(o.rewards)
			sum, sumSq = sum+x, sumSq+x*x
			for c, w := range o.shares {
				for len(sr.BestShare) <= c {
					sr.BestShare = append(sr.BestShare, 0)
				}
				sr.BestShare[c] += w.share / float64(runs)
			}
			if collapsed(o.shares) {
				sr.Collapses++
			}
			if o.last == best {
				picked++
			}
			if o.equal {
				sr.NoDifference++
			}
			if o.winner >= 0 {
				sr.Declared++
				if o.winner != best || tied {
					sr.WrongWinners++
				}
			}
			for i, v := range sc.Variants {
				sr.Sends[v.Key] += float64(o.sends[i]) / float64(runs)
				if o.stopped[i] {
					if sr.Stopped == nil {
						sr.Stopped = map[string]float64{}
					}
					sr.Stopped[v.Key] += 1 / float64(runs)
				}
			}
			if track >= 0 {
				if o.switched < 0 {
					sr.NeverSwitched++
				} else {
					switchedRuns++
					switchSum += (o.switched - cross).Hours()
				}
			}
		}
		n := float64(runs)
		sr.Rewards = sum / n
		sr.RewardsSD = math.Sqrt(math.Max(0, sumSq/n-sr.Rewards*sr.Rewards))
		sr.RewardsSE = sr.RewardsSD / math.Sqrt(n)
		sr.PickedBest = float64(picked) / n
		if sr.Declared > 0 {
			sr.WrongWinners /= sr.Declared
		}
		sr.NoDifference /= n
		sr.Declared /= n
		if switchedRuns > 0 {
			h := switchSum / float64(switchedRuns)
			sr.SwitchHours = &h
		}
		out = append(out, sr)
	}
	return out, nil
}

// hasFlag reports whether args name the flag (as -name, --name or
// --name=value) before a "--".
func hasFlag(args []string, flagName string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == flagName {
			return true
		}
	}
	return false
}

// SimulateCampaign is `samplit simulate --campaign FILE`: it plays the
// scenario's strategies against its known rates, with delayed rewards, and
// reports per strategy the rewards earned, how often the truly best variant
// got the last wave, the sends per variant, the guardrail stops and, for a
// tracked variant that wears off, how soon traffic moved away from it.
//
//	samplit simulate --campaign examples/campaigns/email-subjects.json [--runs 100] [--seed 1] [--json]
func SimulateCampaign(args []string, stdout, stderr io.Writer) int {
	c := cli.New("samplit simulate --campaign", "samplit simulate --campaign FILE [flags]",
		"Simulate an email or push campaign scenario (see examples/campaigns/email-subjects.json):\n"+
			"waves against split_then_winner, with the guardrail and the attribution window.")
	fs := c.FS
	file := fs.String("campaign", "", "JSON `file` of the campaign scenario")
	runs := fs.Int("runs", 100, "number of runs per strategy")
	seed := fs.Uint64("seed", 1, "random seed")
	asJSON := fs.Bool("json", false, "print one JSON array")
	help, err := parseFlags(c, args, stdout)
	if help {
		return ExitOK
	}
	if err != nil {
		return fail(stderr, "simulate", err)
	}
	if *runs < 1 {
		return fail(stderr, "simulate", errors.New("--runs must be positive"))
	}
	sc, err := LoadCampaignScenario(*file)
	if err != nil {
		return fail(stderr, "simulate", err)
	}
	results, err := RunCampaignSimulation(sc, *runs, *seed)
	if err != nil {
		return fail(stderr, "simulate", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return fail(stderr, "simulate", err)
		}
		return ExitOK
	}
	fmt.Fprintf(stdout, "scenario %s: %d recipients in %d calls every %s, reward delay %s, window %s; %d runs, seed %d\n\n",
		sc.Name, sc.Audience, sc.Calls, time.Duration(sc.Interval), sc.delay(), time.Duration(sc.AttributionWindow), *runs, *seed)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "strategy\tmode\trewards (mean ± sd)\ts.e.\tpicked best\tcollapses\tsends per variant\tstopped\tswitch after\t")
	for _, r := range results {
		var sends, stopped []string
		for _, v := range sc.Variants {
			sends = append(sends, fmt.Sprintf("%s %.0f", v.Key, r.Sends[v.Key]))
			if s := r.Stopped[v.Key]; s > 0 {
				stopped = append(stopped, fmt.Sprintf("%s %.0f%%", v.Key, 100*s))
			}
		}
		sw := "-"
		if r.SwitchHours != nil {
			sw = fmt.Sprintf("%.1fh (never: %d)", *r.SwitchHours, r.NeverSwitched)
		} else if sc.Track != "" {
			sw = fmt.Sprintf("never (%d runs)", r.NeverSwitched)
		}
		st := strings.Join(stopped, ", ")
		if st == "" {
			st = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f ± %.1f\t%.1f\t%.0f%%\t%d\t%s\t%s\t%s\t\n", r.Label, r.Mode, r.Rewards, r.RewardsSD,
			r.RewardsSE, 100*r.PickedBest, r.Collapses, strings.Join(sends, ", "), st, sw)
	}
	if err := tw.Flush(); err != nil {
		return fail(stderr, "simulate", err)
	}
	fmt.Fprintln(stdout, "\nwinner declared, or no difference found (the server's rule, looked at before every call):")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%.1f%% of runs\t%.1f%% of them not the truly best\tno difference found first: %.1f%% of runs\t\n", r.Label, 100*r.Declared, 100*r.WrongWinners, 100*r.NoDifference)
	}
	if err := tw.Flush(); err != nil {
		return fail(stderr, "simulate", err)
	}
	fmt.Fprintln(stdout, "\nmean share of the truly best variant per call:")
	for _, r := range results {
		if len(r.BestShare) > 24 {
			continue
		}
		var sh []string
		for _, x := range r.BestShare {
			sh = append(sh, fmt.Sprintf("%.2f", x))
		}
		fmt.Fprintf(tw, "%s\t%s\t\n", r.Label, strings.Join(sh, " "))
	}
	if err := tw.Flush(); err != nil {
		return fail(stderr, "simulate", err)
	}
	return ExitOK
}
