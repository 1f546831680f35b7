package offline

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/samplit/samplit/internal/engine"
)

// SimConfig describes a simulation: a strategy replayed against known Bernoulli rates.
type SimConfig struct {
	// Rates are the true conversion rates; arm 0 is the control.
	Rates []float64
	// Strategy is a registry name (engine.Lookup).
	Strategy string
	// Horizon is the number of units per run.
	Horizon int
	// Runs is the number of independent runs.
	Runs int
	// Seed makes the whole simulation reproducible: run i uses the PCG stream
	// (Seed, i), whatever the scheduling of runs over goroutines.
	Seed uint64
	// Batch is the number of units assigned from one plan before the counts are
	// updated (1 = fully sequential).
	Batch int
	// Look is the number of units between decision checks (0 = never decide).
	Look int
	// Settings are the engine settings (WithDefaults is applied).
	Settings engine.Settings
	// Checkpoints are unit counts at which the cumulative regret is recorded.
	Checkpoints []int
	// Workers bounds the parallelism; 0 means GOMAXPROCS.
	Workers int
	// StopAtDecision ends each run when a winner is declared (regret and traffic
	// shares then cover only the units played).
	StopAtDecision bool
	// LiftSD, when positive, draws each run's true rates: every arm but the
	// control gets rate·(1 + LiftSD·Z), Z standard normal (a prior of true
	// effects as growth teams meet them: most small, either sign).
	LiftSD float64
	// DelayMedian, when positive, delays every conversion: it is known only
	// D units of traffic after its unit's assignment, D log-normal with this
	// median and σ = DelaySigma (1 when zero). Plans and decisions see what
	// has arrived, as the server does with outcomes that come hours after
	// the send.
	DelayMedian float64
	DelaySigma  float64
	// Window, when positive, is the experiment's conversion window in units
	// of traffic: a conversion later than it is never counted, and plans and
	// decisions see each arm's matured view (engine.MatureArm) with the
	// trials Σ G(age) over its units, G the delay's distribution within the
	// window. The simulator knows G; the server estimates it from the
	// delays it has seen.
	Window int
	// LearnPrior, when positive, is the number of earlier experiments a
	// prior on lifts is learned from (engine.LearnLiftPrior), as the server
	// learns it from a workspace's finished experiments: that many runs are
	// simulated first without a prior, from the same distribution of true
	// rates, and each one's final counts (at the horizon, or at its winner
	// with StopAtDecision) are its comparisons. The Runs reported follow,
	// with the learned prior (unless Settings.PriorLiftSD is set).
	LearnPrior int
	// HistoryLiftSD, when positive, draws the LearnPrior runs' true rates
	// apart from the reported ones: every arm at the control's rate times
	// (1 + HistoryLiftSD·Z), as a team whose past lifts were of that size
	// would have seen (to measure the prior's cost on a larger lift).
	HistoryLiftSD float64
	// MaturedTests runs the anytime-valid tests on the matured view as
	// well, instead of the raw counts the server gives them: the old rule,
	// kept to measure it (docs/decisions.md).
	MaturedTests bool
}

// SimResult summarises the runs. The JSON keys are those of `samplit simulate --json`.
type SimResult struct {
	Strategy string  `json:"strategy"`
	Horizon  int     `json:"horizon"`
	Runs     int     `json:"runs"`
	Regret   float64 `json:"regret_mean"`
	RegretSE float64 `json:"regret_se"`
	// CorrectWinnerRate is the share of runs that declared the truly best arm.
	CorrectWinnerRate float64 `json:"correct_winner_rate"`
	// DeclaredRate is the share of runs in which a winner was declared.
	DeclaredRate float64 `json:"declared_rate"`
	// WrongWinnerShare is the share of declared winners that are not the truly
	// best arm (0 when none was declared); with equal arms every declared
	// winner counts as wrong.
	WrongWinnerShare float64 `json:"wrong_winner_share"`
	// NoDifferenceRate is the share of runs that ended in no_difference.
	NoDifferenceRate float64 `json:"no_difference_rate"`
	// LeaderCorrectRate is the share of runs whose declared winner, or final
	// leader when none was declared, is the truly best arm.
	LeaderCorrectRate float64 `json:"leader_correct_rate"`
	// UnitsToDecision is the mean number of units until the declaration, over the
	// runs that declared one; nil when none did.
	UnitsToDecision *float64 `json:"units_to_decision_mean"`
	// UnitsToDecisionSE is the standard error of UnitsToDecision, and
	// UnitsToDecisionMedian its median (not part of the command's output).
	UnitsToDecisionSE     float64 `json:"-"`
	UnitsToDecisionMedian float64 `json:"-"`
	// BestArmShare is the mean share of traffic the best arm received.
	BestArmShare float64 `json:"best_arm_share"`
	// LearnedPriorSD is the learned prior's spread of lifts (τ's posterior
	// median) and LearnedFrom the comparisons it was learned from; 0 when
	// no prior was learned.
	LearnedPriorSD float64 `json:"learned_prior_sd,omitempty"`
	LearnedFrom    int     `json:"learned_from,omitempty"`
	// CheckpointRegret holds, per checkpoint, the mean and standard error of the
	// cumulative regret (not part of the command's output).
	CheckpointRegret [][2]float64 `json:"-"`
}

type runResult struct {
	regret      float64
	checkpoints []float64
	declared    bool
	units       int
	correct     bool // declared the truly best arm
	leader      bool // declared, or ended leading with, the truly best arm
	noDiff      bool // ended in no_difference
	bestShare   float64
	arms        []engine.Arm // the final counts
}

// RunSimulation runs the simulation in parallel. progress, if not nil, is called with the
// number of finished runs (from any goroutine).
func RunSimulation(cfg SimConfig, progress func(done int)) (SimResult, error) {
	s, err := engine.Lookup(cfg.Strategy)
	if err != nil {
		return SimResult{}, err
	}
	if len(cfg.Rates) < 2 {
		return SimResult{}, fmt.Errorf("at least two rates are needed")
	}
	for _, r := range cfg.Rates {
		if !(r >= 0 && r <= 1) {
			return SimResult{}, fmt.Errorf("rate %v is not in [0, 1]", r)
		}
	}
	if cfg.Horizon < 1 || cfg.Runs < 1 || cfg.Batch < 1 || cfg.Look < 0 {
		return SimResult{}, fmt.Errorf("horizon, runs and batch must be positive")
	}
	cfg.Settings = cfg.Settings.WithDefaults()
	if err := cfg.Settings.Validate(len(cfg.Rates)); err != nil {
		return SimResult{}, err
	}
	var learned *engine.LiftPrior
	if cfg.LearnPrior > 0 {
		hcfg := cfg
		if cfg.HistoryLiftSD > 0 {
			hcfg.LiftSD = cfg.HistoryLiftSD
			hcfg.Rates = make([]float64, len(cfg.Rates))
			for i := range hcfg.Rates {
				hcfg.Rates[i] = cfg.Rates[0]
			}
		}
		history, err := runAll(s, hcfg, 0, cfg.LearnPrior, nil)
		if err != nil {
			return SimResult{}, err
		}
		var obs []engine.LiftObservation
		for _, h := range history {
			for _, a := range h.arms[1:] {
				if o, ok := engine.LiftObservationOf(engine.Binary, a, h.arms[0]); ok {
					obs = append(obs, o)
				}
			}
		}
		learned = engine.LearnLiftPrior(obs)
		cfg.Settings.LearnedPrior = learned
	}
	results, err := runAll(s, cfg, cfg.LearnPrior, cfg.Runs, progress)
	if err != nil {
		return SimResult{}, err
	}
	out := summarise(cfg, results)
	if learned != nil {
		out.LearnedPriorSD, out.LearnedFrom = learned.SD(), learned.Comparisons
	}
	return out, nil
}

// runAll plays runs first, first+1, … first+n-1 in parallel.
func runAll(s engine.Strategy, cfg SimConfig, first, n int, progress func(done int)) ([]runResult, error) {
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	results := make([]runResult, n)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				res, err := simulateRun(s, cfg, first+i)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				results[i] = res
				d := done.Add(1)
				if progress != nil {
					progress(int(d))
				}
			}
		}()
	}
	wg.Wait()
	return results, firstErr
}

func meanSE(xs []float64) (mean, se float64) {
	n := float64(len(xs))
	for _, x := range xs {
		mean += x
	}
	mean /= n
	if len(xs) < 2 {
		return mean, 0
	}
	v := 0.0
	for _, x := range xs {
		v += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(v / (n - 1) / n)
}

func summarise(cfg SimConfig, rs []runResult) SimResult {
	out := SimResult{Strategy: cfg.Strategy, Horizon: cfg.Horizon, Runs: cfg.Runs}
	regrets := make([]float64, len(rs))
	var units []float64
	declared, correct, leader, noDiff, share := 0, 0, 0, 0, 0.0
	for i, r := range rs {
		regrets[i] = r.regret
		if r.declared {
			declared++
			units = append(units, float64(r.units))
		}
		if r.correct {
			correct++
		}
		if r.leader {
			leader++
		}
		if r.noDiff {
			noDiff++
		}
		share += r.bestShare
	}
	out.Regret, out.RegretSE = meanSE(regrets)
	n := float64(len(rs))
	out.CorrectWinnerRate = float64(correct) / n
	out.DeclaredRate = float64(declared) / n
	out.LeaderCorrectRate = float64(leader) / n
	out.NoDifferenceRate = float64(noDiff) / n
	if declared > 0 {
		out.WrongWinnerShare = float64(declared-correct) / float64(declared)
	}
	out.BestArmShare = share / n
	if declared > 0 {
		u, se := meanSE(units)
		out.UnitsToDecision, out.UnitsToDecisionSE = &u, se
		slices.Sort(units)
		out.UnitsToDecisionMedian = units[len(units)/2]
	}
	for c := range cfg.Checkpoints {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = r.checkpoints[c]
		}
		m, se := meanSE(xs)
		out.CheckpointRegret = append(out.CheckpointRegret, [2]float64{m, se})
	}
	return out
}

// simulateRun plays one run with its own random stream.
func simulateRun(s engine.Strategy, cfg SimConfig, run int) (runResult, error) {
	r := rand.New(rand.NewPCG(cfg.Seed, uint64(run)))
	k := len(cfg.Rates)
	rates := cfg.Rates
	if cfg.LiftSD > 0 {
		// Every arm but the control gets its own true relative lift.
		rates = slices.Clone(cfg.Rates)
		for i := 1; i < k; i++ {
			rates[i] = math.Min(1, math.Max(0, rates[i]*(1+cfg.LiftSD*r.NormFloat64())))
		}
	}
	best, ties := 0, 0
	for i, p := range rates {
		if p > rates[best] {
			best = i
		}
	}
	for _, p := range rates {
		if p == rates[best] {
			ties++
		}
	}

	late := newLateOutcomes(cfg, k)

	in := engine.Input{Metric: engine.Binary, Arms: make([]engine.Arm, k), Settings: cfg.Settings}
	for i := range in.Arms {
		in.Arms[i] = engine.Arm{Key: fmt.Sprintf("arm%d", i), Control: i == 0}
	}
	// isBest: with several arms at the top rate no declared winner is right.
	isBest := func(key string) bool { return ties == 1 && key == in.Arms[best].Key }
	res := runResult{checkpoints: make([]float64, len(cfg.Checkpoints))}
	nextCP := 0
	var winner *string
	nextLook := cfg.Look
	for t := 0; t < cfg.Horizon; {
		late.arrive(in.Arms, t)
		plan, err := s.Plan(late.view(in, t))
		if err != nil {
			return res, err
		}
		// Decisions need the logged propensities (the anytime-valid tests
		// weight by them), which cost the plan's weights; a regret-only run
		// draws without them.
		var w []float64
		if cfg.Look > 0 {
			w = plan.Weights()
		}
		for b := 0; b < cfg.Batch && t < cfg.Horizon; b++ {
			i := plan.Draw(r)
			a := &in.Arms[i]
			if w != nil {
				a.AddUnit(w[i])
				for j := range in.Arms {
					in.Arms[j].AddExpected(w[j])
				}
			} else {
				a.Units++
			}
			late.assigned(i, t)
			if r.Float64() < rates[i] {
				var p float64
				if w != nil {
					p = w[i]
				}
				if !late.convert(r, i, p, t) {
					addConversion(a, p)
				}
			}
			res.regret += rates[best] - rates[i]
			t++
			for nextCP < len(cfg.Checkpoints) && t == cfg.Checkpoints[nextCP] {
				res.checkpoints[nextCP] = res.regret
				nextCP++
			}
		}
		if cfg.Look > 0 && winner == nil && !res.noDiff && t >= nextLook {
			nextLook += cfg.Look
			late.arrive(in.Arms, t)
			din := late.view(in, t)
			st, err := s.Update(din)
			if err != nil {
				return res, err
			}
			in.State, din.State = st, st
			w, d, err := engine.Decide(s, din)
			if err != nil {
				return res, err
			}
			res.noDiff = d.State == engine.StateNoDifference
			if w != nil {
				winner, res.declared, res.units = w, true, t
				if cfg.StopAtDecision {
					res.bestShare = float64(in.Arms[best].Units) / float64(t)
					res.correct = isBest(*w)
					res.leader = res.correct
					res.arms = in.Arms
					return res, nil
				}
			}
		}
	}
	for ; nextCP < len(cfg.Checkpoints); nextCP++ {
		res.checkpoints[nextCP] = res.regret
	}
	if winner != nil {
		res.correct = isBest(*winner)
		res.leader = res.correct
	} else {
		// The final leader: the highest posterior mean under the Beta(1, 1) prior.
		lead, leadM := 0, -1.0
		for i, a := range in.Arms {
			m := float64(a.Conversions+1) / float64(a.Units+2)
			if m > leadM {
				lead, leadM = i, m
			}
		}
		res.leader = isBest(in.Arms[lead].Key)
	}
	res.bestShare = float64(in.Arms[best].Units) / float64(cfg.Horizon)
	res.arms = in.Arms
	return res, nil
}
