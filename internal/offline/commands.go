// Package offline holds the logic of the two offline commands of the samplit binary:
// `samplit analyze`, a calculator for numbers from anywhere, and `samplit simulate`,
// which replays a strategy against known rates. Both are plain functions of their
// arguments and output streams so that cmd/samplit only wires them and tests call
// them directly.
package offline

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/samplit/samplit/internal/cli"
	"github.com/samplit/samplit/internal/human"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/samplit/samplit/internal/engine"
)

// Exit codes of the commands.
const (
	ExitOK       = 0
	ExitBadInput = 2
)

// variantList collects repeated --variant flags.
type variantList []string

func (v *variantList) String() string     { return strings.Join(*v, ",") }
func (v *variantList) Set(s string) error { *v = append(*v, s); return nil }

func fail(stderr io.Writer, cmd string, err error) int {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintf(stderr, "samplit %s: %s\n", cmd, msg)
	return ExitBadInput
}

// parseFlags parses args, printing the command's help to stdout on -h (the
// one help format of every samplit command, internal/cli) and returning a
// one-line error otherwise.
func parseFlags(c *cli.Command, args []string, stdout io.Writer) (help bool, err error) {
	fs := c.FS
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.Help(stdout)
			return true, nil
		}
		return false, err
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return false, nil
}

// Analyze is `samplit analyze`: it analyses per-variant numbers given on the command
// line, as a table or (--json) as one JSON object with the results fields of the
// HTTP contract. It returns the exit code: 0, or 2 with a one-line error on stderr
// for bad input.
//
//	samplit analyze --metric binary --variant control:1000:100 --variant green:1000:125 [--control control] [--json]
//
// Binary variants are name:units:conversions; continuous ones
// name:units:sum:sum_of_squares. Without --control the first variant is the control.
func Analyze(args []string, stdout, stderr io.Writer) int {
	c := cli.New("samplit analyze", "samplit analyze --variant NAME:UNITS:CONVERSIONS --variant ... [flags]",
		"Analyse per-variant numbers from anywhere with the server's statistics: P(best), expected loss,\n"+
			"credible intervals, lift, the always-valid p-values and the decision.")
	c.After = "Example:\n  samplit analyze --metric binary --variant control:1000:100 --variant green:1000:125"
	fs := c.FS
	metric := fs.String("metric", "binary", "binary or continuous")
	var variants variantList
	fs.Var(&variants, "variant", "name:units:conversions (binary) or name:units:sum:sum_of_squares (continuous); repeat per variant")
	control := fs.String("control", "", "the control variant's name (default: the first)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	minSamples := fs.Int64("min-samples", engine.DefaultMinSamples, "units every variant needs before a decision")
	threshold := fs.Float64("decision-threshold", engine.DefaultDecisionThreshold, "P(best) a winner needs")
	loss := fs.Float64("loss-threshold", engine.DefaultLossThreshold, "expected loss a winner may not exceed")
	help, err := parseFlags(c, args, stdout)
	if help {
		return ExitOK
	}
	if err != nil {
		return fail(stderr, "analyze", err)
	}
	m := engine.Metric(*metric)
	if m != engine.Binary && m != engine.Continuous {
		return fail(stderr, "analyze", fmt.Errorf("--metric must be binary or continuous, not %q", *metric))
	}
	if len(variants) < 2 {
		return fail(stderr, "analyze", fmt.Errorf("at least two --variant flags are needed, got %d", len(variants)))
	}
	arms := make([]engine.Arm, len(variants))
	for i, v := range variants {
		a, err := parseVariant(m, v)
		if err != nil {
			return fail(stderr, "analyze", err)
		}
		arms[i] = a
	}
	ci := 0
	if *control != "" {
		ci = -1
		for i, a := range arms {
			if a.Key == *control {
				ci = i
			}
		}
		if ci < 0 {
			return fail(stderr, "analyze", fmt.Errorf("--control %q names no variant", *control))
		}
	}
	arms[ci].Control = true
	// The counts come from outside: judge them as a fixed split, each
	// variant's weight its observed share of the units.
	var total int64
	for _, a := range arms {
		total += a.Units
	}
	if total > 0 {
		for i := range arms {
			if arms[i].Units > 0 {
				arms[i].AssumeFixedSplit(m, float64(arms[i].Units)/float64(total), total)
			}
		}
	}
	s, _ := engine.Lookup("uniform")
	set := engine.DefaultSettings()
	set.MinSamples, set.DecisionThreshold, set.LossThreshold = *minSamples, *threshold, *loss
	res, err := engine.Analyze(s, engine.Input{Metric: m, Arms: arms, Settings: set})
	if err != nil {
		return fail(stderr, "analyze", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fail(stderr, "analyze", err)
		}
		return ExitOK
	}
	printTable(stdout, res, arms[ci].Key)
	return ExitOK
}

// parseVariant parses name:units:conversions or name:units:sum:sum_of_squares.
func parseVariant(m engine.Metric, s string) (engine.Arm, error) {
	parts := strings.Split(s, ":")
	want := 3
	form := "name:units:conversions"
	if m == engine.Continuous {
		want, form = 4, "name:units:sum:sum_of_squares"
	}
	if len(parts) != want || parts[0] == "" {
		return engine.Arm{}, fmt.Errorf("--variant %q: want %s", s, form)
	}
	a := engine.Arm{Key: parts[0]}
	units, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return a, fmt.Errorf("--variant %q: units %q is not a whole number", s, parts[1])
	}
	if units < 0 {
		return a, fmt.Errorf("--variant %q: units must not be negative", s)
	}
	a.Units = units
	if m == engine.Binary {
		c, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil {
			return a, fmt.Errorf("--variant %q: conversions %q is not a whole number", s, parts[2])
		}
		if c < 0 || c > units {
			return a, fmt.Errorf("--variant %q: conversions must be between 0 and units", s)
		}
		a.Conversions, a.Sum = c, float64(c)
		return a, nil
	}
	for i, dst := range []*float64{&a.Sum, &a.SumSquares} {
		v, err := strconv.ParseFloat(parts[2+i], 64)
		if err != nil || v != v || v > 1e300 || v < -1e300 {
			return a, fmt.Errorf("--variant %q: %q is not a finite number", s, parts[2+i])
		}
		*dst = v
	}
	if a.SumSquares < 0 {
		return a, fmt.Errorf("--variant %q: the sum of squares must not be negative", s)
	}
	if a.Units > 0 && a.SumSquares < a.Sum*a.Sum/float64(a.Units)*(1-1e-9) {
		return a, fmt.Errorf("--variant %q: the sum of squares is smaller than sum²/units, which no data can give", s)
	}
	return a, nil
}

func printTable(w io.Writer, res *engine.Result, control string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "variant\tunits\tconversions\tmean\t95% CI\tP(best)\texp. loss\tlift\tlift 95% CI\tdifference (always-valid)\tp (always-valid)\t")
	for _, v := range res.Variants {
		conv := strconv.FormatInt(v.Conversions, 10)
		if res.Metric == engine.Continuous {
			conv = "–"
		}
		lift, liftCI := "–", ""
		if v.Key == control {
			lift = "(control)"
		} else if v.Lift != nil {
			lift = fmt.Sprintf("%+.1f%%", 100**v.Lift)
		}
		if v.LiftCILow != nil && v.LiftCIHigh != nil {
			liftCI = fmt.Sprintf("[%+.1f%%, %+.1f%%]", 100**v.LiftCILow, 100**v.LiftCIHigh)
		}
		diff, p := "", ""
		if v.DiffLow != nil && v.DiffHigh != nil {
			diff = fmt.Sprintf("[%s, %s]", human.Signed(*v.DiffLow, 4), human.Signed(*v.DiffHigh, 4))
		}
		if v.PValue != nil {
			p = human.Sig(*v.PValue, 3)
		}
		// Numbers for people: never scientific notation (--json keeps
		// the full floats).
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t[%s, %s]\t%.1f%%\t%s\t%s\t%s\t%s\t%s\t\n",
			v.Key, v.Units, conv, human.Sig(v.Mean, 4), human.Sig(v.CILow, 4), human.Sig(v.CIHigh, 4), 100*v.PBest, human.Sig(v.ExpectedLoss, 2), lift, liftCI, diff, p)
	}
	tw.Flush()
	fmt.Fprintf(w, "\ndecision: %s: %s\n", res.Decision.State, res.Decision.Reason)
}

// Simulate is `samplit simulate`: it replays a strategy against known conversion
// rates and reports regret, how often the right winner is found and how fast.
//
//	samplit simulate --rates 0.10,0.12,0.11 --strategy adaptive --horizon 20000 --runs 200 --seed 7 [--batch 1] [--json]
//
// Runs go in parallel over the cores; run i draws from the PCG stream (seed, i), so
// the same seed gives the same output whatever the scheduling. A progress bar is
// drawn on stderr when stderr is a terminal and the simulation takes over a second.
func Simulate(args []string, stdout, stderr io.Writer) int {
	if hasFunnelFlag(args) { // --funnel FILE: a funnel scenario (funnel.go)
		return SimulateFunnel(args, stdout, stderr)
	}
	if hasFlag(args, "campaign") { // --campaign FILE: a campaign scenario (campaign.go)
		return SimulateCampaign(args, stdout, stderr)
	}
	c := cli.New("samplit simulate", "samplit simulate --rates R1,R2[,...] [flags]",
		"Replay a strategy against known conversion rates, deciding with the server's rule, and report\n"+
			"regret, how often and how soon a winner is declared, and how often it is the wrong one.\n"+
			"Two other modes take a scenario file: --funnel FILE and --campaign FILE (below).")
	c.After = "Strategies (--strategy; the same list the API accepts):\n" + engine.Help("  ") +
		"\nExample:\n  samplit simulate --rates 0.10,0.12,0.11 --strategy adaptive --horizon 20000 --runs 200 --seed 7"
	fs := c.FS
	ratesFlag := fs.String("rates", "", "comma-separated true conversion `rates`, the first is the control")
	strategy := fs.String("strategy", "adaptive", "`strategy`: "+strings.Join(engine.Names(), ", ")+" (explained below)")
	horizon := fs.Int("horizon", 20000, "units per run")
	runs := fs.Int("runs", 200, "number of runs")
	seed := fs.Uint64("seed", 1, "random seed")
	batch := fs.Int("batch", 100, "units assigned from one plan before it is rebuilt from the counts (the server rebuilds its plan every second)")
	look := fs.Int("look", 100, "units between decision checks")
	minSamples := fs.Int64("min-samples", engine.DefaultMinSamples, "units every variant needs before a decision")
	floor := fs.Float64("weight-floor", -1, "minimum share of traffic of every variant (default: the strategy's, 0.01 for adaptive strategies)")
	alpha := fs.Float64("alpha", engine.DefaultAlpha, "level of the anytime-valid tests")
	tau2 := fs.Float64("tau2", engine.DefaultTau2, "mixing scale of the anytime-valid tests, per unit")
	minEffect := fs.Float64("min-effect", engine.DefaultMinEffect, "relative difference within which arms are declared equal (no_difference)")
	priorLiftSD := fs.Float64("prior-lift-sd", 0, "prior on relative lifts a winner must also convince, e.g. 0.03 (the server's settings.prior_lift_sd; 0: none)")
	learnPrior := fs.Int("learn-prior", 0, "learn the prior on lifts from this many earlier runs, simulated first without one (as the server learns it from a workspace's finished experiments; 0: none)")
	historyLiftSD := fs.Float64("history-lift-sd", 0, "with --learn-prior: the earlier runs' true lifts are N(0, this) around the first rate, instead of drawn as the reported runs'")
	liftSD := fs.Float64("lift-sd", 0, "draw each run's true rates: every arm but the first gets rate·(1 + lift-sd·Z)")
	delayMedian := fs.Float64("delay-median", 0, "delay every conversion by D units of traffic, D log-normal with this median (0: conversions are known at once)")
	delaySigma := fs.Float64("delay-sigma", 1, "σ of the log-normal delay (with --delay-median)")
	window := fs.Int("window", 0, "conversion window in units of traffic (with --delay-median): later conversions are not counted, and plans and decisions use the matured counts, as the server does with conversion_window")
	asJSON := fs.Bool("json", false, "print one JSON object")
	help, err := parseFlags(c, args, stdout)
	if help {
		// One help for the three modes of the command.
		fmt.Fprintln(stdout)
		SimulateFunnel([]string{"-h"}, stdout, stderr)
		fmt.Fprintln(stdout)
		SimulateCampaign([]string{"-h"}, stdout, stderr)
		return ExitOK
	}
	if err != nil {
		return fail(stderr, "simulate", err)
	}
	if *ratesFlag == "" {
		return fail(stderr, "simulate", errors.New("--rates is required, e.g. --rates 0.10,0.12"))
	}
	var rates []float64
	for _, f := range strings.Split(*ratesFlag, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(v >= 0 && v <= 1) {
			return fail(stderr, "simulate", fmt.Errorf("--rates: %q is not a rate in [0, 1]", f))
		}
		rates = append(rates, v)
	}
	if *horizon < 1 || *runs < 1 || *batch < 1 || *look < 1 || *minSamples < 0 || *liftSD < 0 || *learnPrior < 0 || *historyLiftSD < 0 {
		return fail(stderr, "simulate", errors.New("--horizon, --runs, --batch and --look must be positive, --min-samples, --lift-sd, --learn-prior and --history-lift-sd not negative"))
	}
	if !(*delayMedian >= 0) || !(*delaySigma > 0) || *window < 0 || (*window > 0 && *delayMedian == 0) {
		return fail(stderr, "simulate", errors.New("--delay-median and --window must not be negative, --delay-sigma must be positive, and --window needs --delay-median"))
	}
	if _, err := engine.Lookup(*strategy); err != nil {
		return fail(stderr, "simulate", err)
	}
	if *floor < 0 {
		*floor = engine.DefaultWeightFloorFor(*strategy)
	}
	cfg := SimConfig{Rates: rates, Strategy: *strategy, Horizon: *horizon, Runs: *runs, Seed: *seed, Batch: *batch, Look: *look, LiftSD: *liftSD, LearnPrior: *learnPrior, HistoryLiftSD: *historyLiftSD,
		DelayMedian: *delayMedian, DelaySigma: *delaySigma, Window: *window,
		Settings: engine.Settings{MinSamples: *minSamples, WeightFloor: *floor, Alpha: *alpha, Tau2: *tau2, MinEffect: *minEffect, PriorLiftSD: *priorLiftSD}}
	bar := newProgress(stderr, *runs+*learnPrior)
	res, err := RunSimulation(cfg, bar.update)
	bar.finish()
	if err != nil {
		return fail(stderr, "simulate", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
		return ExitOK
	}
	u := "none declared"
	if res.UnitsToDecision != nil {
		u = fmt.Sprintf("%.0f", *res.UnitsToDecision)
	}
	fmt.Fprintf(stdout, "strategy             %s\nhorizon              %d units × %d runs\nregret               %.1f ± %.1f (mean ± s.e.)\n"+
		"declared             %.1f%% of runs\ncorrect winner       %.1f%% of runs (declared the truly best arm)\nwrong winners        %.1f%% of declared winners\n"+
		"no difference        %.1f%% of runs\nright final leader   %.1f%% of runs (declared winner, else final leader)\n"+
		"units to decision    %s (mean over declared runs)\nbest arm share       %.1f%% of traffic\n",
		res.Strategy, res.Horizon, res.Runs, res.Regret, res.RegretSE, 100*res.DeclaredRate, 100*res.CorrectWinnerRate, 100*res.WrongWinnerShare,
		100*res.NoDifferenceRate, 100*res.LeaderCorrectRate, u, 100*res.BestArmShare)
	if res.LearnedFrom > 0 {
		fmt.Fprintf(stdout, "learned prior        lifts of about ±%.1f%% (from %d comparisons)\n", 100*res.LearnedPriorSD, res.LearnedFrom)
	} else if *learnPrior > 0 {
		fmt.Fprintf(stdout, "learned prior        none (fewer than %d comparisons)\n", engine.MinLiftHistory)
	}
	return ExitOK
}

// progress draws a progress bar on a terminal, starting only after a second.
type progress struct {
	w     io.Writer
	total int
	start time.Time
	on    bool
	mu    sync.Mutex
	drawn bool
	last  time.Time
}

// isTerminal reports whether w is a character device (a terminal), without a
// dependency on golang.org/x/term.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newProgress(w io.Writer, total int) *progress {
	// The offline commands run in the CLI, outside the engine, so reading the clock
	// here is fine.
	return &progress{w: w, total: total, start: time.Now(), on: isTerminal(w)}
}

func (p *progress) update(done int) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.start) < time.Second || now.Sub(p.last) < 100*time.Millisecond && done < p.total {
		return
	}
	p.last = now
	const width = 30
	n := width * done / p.total
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d runs", strings.Repeat("#", n), strings.Repeat(" ", width-n), done, p.total)
	p.drawn = true
}

func (p *progress) finish() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
