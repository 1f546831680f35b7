package offline

// Simulations of the campaign guardrail's stopping rule (engine.Guardrail.Test):
// one variant's sends, Bernoulli guardrail events at a true rate, the rule checked
// every `look` sends up to `horizon`. TestGuardrail* run by default (a few seconds);
// TestReportGuardrail gives the numbers of docs/campaigns.md:
//
//	SAMPLIT_REPORT=1 go test ./internal/offline -run TestReportGuardrail -timeout 1h -v

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/engine/stats"
)

// guardrailOutcome is what guardrailSim measured.
type guardrailOutcome struct {
	runs, stopped int
	// sends are the sends until the stop, one per stopped run.
	sends []float64
}

func (o guardrailOutcome) rate() (p, se float64) {
	p = float64(o.stopped) / float64(o.runs)
	return p, math.Sqrt(p * (1 - p) / float64(o.runs))
}

// guardrailSim runs `runs` runs (run i uses the PCG stream (seed, i)) of a variant
// whose guardrail events occur at `rate` per send, and stops it at the first look
// (every `look` sends, up to `horizon`) where trips says so.
func guardrailSim(rate float64, look, horizon, runs int, seed uint64, trips func(events, trials int64) bool) guardrailOutcome {
	at := make([]int64, runs) // sends at the stop, 0 if never
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := rand.New(rand.NewPCG(seed, uint64(i)))
				var events, n int64
				for n < int64(horizon) {
					for range look {
						n++
						if r.Float64() < rate {
							events++
						}
					}
					if trips(events, n) {
						at[i] = n
						break
					}
				}
			}
		}()
	}
	for i := range runs {
		next <- i
	}
	close(next)
	wg.Wait()
	out := guardrailOutcome{runs: runs}
	for _, n := range at {
		if n > 0 {
			out.stopped++
			out.sends = append(out.sends, float64(n))
		}
	}
	return out
}

// guardrail is the campaigns' default: unsubscribes at most 0.5%, confidence 0.95.
var guardrail = engine.Guardrail{MaxRate: 0.005, Confidence: engine.DefaultGuardrailConfidence}

func engineRule(g engine.Guardrail) func(int64, int64) bool {
	return func(events, trials int64) bool {
		_, trips := g.Test(events, trials)
		return trips
	}
}

// TestGuardrailAnytimeValidAtTheLimit: a variant exactly at the limit, checked every
// 100 sends to 50,000, is stopped in at most 5% of runs whatever the number of looks.
// The bound is near the measured rate (2.2% with these seeds, s.e. 0.46%; 2.4% ± 0.15%
// over 10,000 runs in the report), so that a rule without the monitoring correction
// fails it: the old posterior rule P(rate > limit) ≥ 0.95 stops 27% of these runs,
// the one-sided exact binomial test at 5% repeated at every look 30%.
func TestGuardrailAnytimeValidAtTheLimit(t *testing.T) {
	o := guardrailSim(guardrail.MaxRate, 100, 50_000, 1000, 1, engineRule(guardrail))
	p, se := o.rate()
	t.Logf("rate at the limit: stopped in %.4f ± %.4f of %d runs", p, se, o.runs)
	if p > 0.035 {
		t.Errorf("a variant at the limit is stopped in %.4f ± %.4f of runs; want ≤ 0.035 (measured 0.022; the guarantee is 0.05)", p, se)
	}
}

// TestGuardrailStopsThreeTimesTheLimit: at 3× the limit every run is stopped, after
// about 700 sends (mean 671 ± 29 with these seeds).
func TestGuardrailStopsThreeTimesTheLimit(t *testing.T) {
	o := guardrailSim(3*guardrail.MaxRate, 100, 50_000, 300, 2, engineRule(guardrail))
	p, se := o.rate()
	m, mse := meanSE(o.sends)
	t.Logf("3× the limit: stopped in %.4f ± %.4f of %d runs, after %.0f ± %.0f sends", p, se, o.runs, m, mse)
	if p < 0.99 || m > 750 {
		t.Errorf("3× the limit: stopped in %.4f of runs after %.0f sends on average; want ≥ 0.99 and ≤ 750", p, m)
	}
}

// posteriorRule is the rule the guardrail had before: stop when the posterior
// P(rate > limit) under Beta(2m, 2(1−m)) reaches the confidence, at every look.
func posteriorRule(g engine.Guardrail) func(int64, int64) bool {
	return func(events, trials int64) bool {
		return engine.GuardrailProbability(events, trials, g.MaxRate) >= g.Confidence
	}
}

// binomialRule is the fixed-sample one-sided exact binomial test at level
// 1 − confidence, repeated at every look: P(X ≥ events | trials, limit) ≤ α.
func binomialRule(g engine.Guardrail) func(int64, int64) bool {
	return func(events, trials int64) bool {
		if events == 0 {
			return false
		}
		// P(X ≥ k) for X ~ Binomial(n, m) is the regularized incomplete beta I_m(k, n−k+1).
		return stats.BetaCDF(g.MaxRate, float64(events), float64(trials-events+1)) <= 1-g.Confidence
	}
}

// TestReportGuardrail: stop rates and sends to a stop at 0.5×, 1×, 1.5×, 2×, 3× and
// 5× the limit for the anytime-valid test, one look at the end, the old posterior
// rule and the per-look binomial test.
func TestReportGuardrail(t *testing.T) {
	reportOnly(t)
	var b strings.Builder
	fmt.Fprintf(&b, "Guardrail unsubscribe ≤ 0.5%%, confidence 0.95, a look every 100 sends up to 50,000.\n\n")
	fmt.Fprintf(&b, "| true rate | rule | runs | stopped ± s.e. | sends to the stop (mean ± s.e.) |\n|---|---|---|---|---|\n")
	rules := []struct {
		name string
		f    func(int64, int64) bool
		look int
	}{
		{"anytime-valid (e-value ≥ 20), every 100 sends", engineRule(guardrail), 100},
		{"anytime-valid, one look at 50,000", engineRule(guardrail), 50_000},
		{"old: posterior P(rate > limit) ≥ 0.95, every 100 sends", posteriorRule(guardrail), 100},
		{"per-look one-sided binomial test p ≤ 0.05, every 100 sends", binomialRule(guardrail), 100},
	}
	for _, mult := range []float64{0.5, 1, 1.5, 2, 3, 5} {
		for k, rule := range rules {
			runs := 2000
			if mult == 1 {
				runs = 10_000
			}
			if k > 0 && mult != 1 && mult != 3 {
				continue
			}
			o := guardrailSim(mult*guardrail.MaxRate, rule.look, 50_000, runs, 11, rule.f)
			p, se := o.rate()
			sends := "–"
			if len(o.sends) > 0 {
				m, mse := meanSE(o.sends)
				sends = fmt.Sprintf("%.0f ± %.0f", m, mse)
			}
			fmt.Fprintf(&b, "| %g× (%.4f) | %s | %d | %.4f ± %.4f | %s |\n", mult, mult*guardrail.MaxRate, rule.name, runs, p, se, sends)
		}
	}
	t.Log("\n" + b.String())
}
