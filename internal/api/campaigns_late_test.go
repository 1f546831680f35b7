package api

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// Late outcomes through the HTTP API (issue 12, docs/campaigns.md "Late
// outcomes"): 4 subjects at 2, 2.5, 3 and 4% clicks, 10 waves an hour apart
// on a fake clock, clicks that reach the server late. Counting each send by
// the probability that its click has arrived, waves must earn at least as
// many clicks as split_then_winner, and the best subject's share of a wave
// must not collapse after it has led: no wave gives it less than 10% of its
// sends after a wave gave it more than half (the rule the simulator's report
// checks: offline.CollapseLead, offline.CollapseFloor) — never with a
// one-wave reporting lag, in at most 15% of campaigns with clicks spread
// over a day (TestCampaignLateOutcomesReport says why). Counting the
// sends whose clicks are still on their way as failures, the best subject
// got 1,914 of 2,000 sends in wave 3, 41 in wave 4 and 1,940 in wave 5.

var lateRates = []float64{0.020, 0.025, 0.030, 0.040} // s1 … s4; s4 is the best

// lateSchedule says when a send's click happens and when the sender reports
// it, for a send of wave w (0-based) at hour w.
type lateSchedule struct {
	name string
	// click returns the click's delay after its send; report returns when
	// the server receives it, relative to the first wave.
	click  func(r *rand.Rand) time.Duration
	report func(w int, at time.Duration) time.Duration
}

var (
	// nextWave: clicks within the hour after the send, reported just after
	// the next wave is sent (as an email service that reports in batches).
	nextWave = lateSchedule{name: "reported after the next wave",
		click:  func(r *rand.Rand) time.Duration { return time.Duration(r.Float64() * float64(time.Hour)) },
		report: func(w int, _ time.Duration) time.Duration { return time.Duration(w+1) * time.Hour }}
	// spread: clicks uniform over 24 hours, each reported when it happens
	// (the clock moves in steps of 10 minutes between waves).
	spread = lateSchedule{name: "spread over 24h",
		click: func(r *rand.Rand) time.Duration { return time.Duration(r.Float64() * float64(24*time.Hour)) },
		report: func(_ int, at time.Duration) time.Duration {
			return (at + 10*time.Minute - 1).Truncate(10 * time.Minute)
		}}
)

// lateRun is one campaign's outcome: the clicks its sends earned (all of
// them come within the 3-day window), and the best subject's share of each
// wave.
type lateRun struct {
	clicks int
	shares []float64
}

// collapsedShares is the collapse rule above.
func collapsedShares(shares []float64) bool {
	led := false
	for _, s := range shares {
		if led && s < 0.1 {
			return true
		}
		led = led || s > 0.5
	}
	return false
}

// runLateCampaign runs one campaign of mode with waves of perWave through
// the API, on e's clock c, and reports every click as sched says.
func runLateCampaign(t *testing.T, e *env, c *clock, key, mode string, seed uint64, perWave int, sched lateSchedule) lateRun {
	t.Helper()
	start := c.Now()
	e.must(http.StatusCreated, "POST", "/v1/campaigns", e.admin, fmt.Sprintf(`{"key": %q, "channel": "email", "objective": "click",
	  "mode": %q, "audience_size": %d, "start": true,
	  "variants": [{"key": "s1"}, {"key": "s2"}, {"key": "s3"}, {"key": "s4"}],
	  "settings": {"seed": %d, "attribution_window": "3d"}}`, key, mode, 10*perWave, seed))
	r := rand.New(rand.NewPCG(seed, 12))
	type click struct {
		recipient  string
		at, report time.Duration
	}
	var queue []click
	var out lateRun
	// deliver posts the clicks reported by the clock's time.
	deliver := func() {
		now := c.Now().Sub(start)
		var evs []string
		rest := queue[:0]
		for _, k := range queue {
			if k.report > now {
				rest = append(rest, k)
				continue
			}
			evs = append(evs, fmt.Sprintf(`{"recipient": %q, "type": "click", "at": %q}`, k.recipient,
				start.Add(k.at).Format(time.RFC3339Nano)))
		}
		queue = rest
		if len(evs) > 0 {
			e.must(http.StatusAccepted, "POST", "/v1/campaigns/"+key+"/events", e.admin, `{"events": [`+strings.Join(evs, ",")+`]}`)
		}
	}
	for w := range 10 {
		rs := recipients(key+"-", w*perWave, perWave)
		sends, _ := sendAll(e, key, rs)
		best := 0
		for _, rcp := range rs { // in order: the same clicks on every run
			v := sends[rcp]
			i := int(v[1] - '1')
			if i == 3 {
				best++
			}
			if r.Float64() < lateRates[i] {
				at := time.Duration(w)*time.Hour + sched.click(r)
				queue = append(queue, click{rcp, at, max(sched.report(w, at), time.Duration(w)*time.Hour)})
				out.clicks++
			}
		}
		out.shares = append(out.shares, float64(best)/float64(perWave))
		// Until the next wave: the clicks the sender reports meanwhile.
		for range 6 {
			deliver()
			c.Advance(10 * time.Minute)
		}
	}
	return out
}

// meanSE returns the mean and its standard error.
func meanSE(xs []float64) (float64, float64) {
	var s, s2 float64
	for _, x := range xs {
		s, s2 = s+x, s2+x*x
	}
	n := float64(len(xs))
	m := s / n
	return m, math.Sqrt(max(0, s2/n-m*m) / max(1, n-1))
}

// lateReport runs n campaigns per mode and checks the claims; it returns a
// line for the report.
//
// maxCollapses is the share of waves-mode campaigns allowed to collapse.
func lateReport(t *testing.T, n, perWave int, sched lateSchedule, maxCollapses float64) {
	c := &clock{t: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)}
	e := campaignEnv(t, "sqlite", c)
	e.client = &http.Client{} // the responses are checked against OpenAPI by the other tests
	clicks := map[string][]float64{}
	for _, mode := range []string{"waves", "split_then_winner"} {
		var shares [][]float64
		collapses := 0
		for i := range n {
			key := fmt.Sprintf("%s-%d", strings.ReplaceAll(mode, "_", "-"), i)
			run := runLateCampaign(t, e, c, key, mode, uint64(100+i), perWave, sched)
			clicks[mode] = append(clicks[mode], float64(run.clicks))
			shares = append(shares, run.shares)
			if collapsedShares(run.shares) {
				collapses++
				t.Logf("%s (%s): the best subject's share collapsed after it led: %.2f", key, sched.name, run.shares)
			}
			c.Advance(24 * time.Hour)
		}
		m, se := meanSE(clicks[mode])
		var mean []string
		for w := range 10 {
			x := 0.0
			for _, s := range shares {
				x += s[w] / float64(len(shares))
			}
			mean = append(mean, fmt.Sprintf("%.2f", x))
		}
		if mode == "waves" && float64(collapses) > maxCollapses*float64(n) {
			t.Errorf("%s: %d of %d campaigns collapsed (at most %.0f%% allowed)", sched.name, collapses, n, 100*maxCollapses)
		}
		sort.Float64s(clicks[mode])
		t.Logf("%s, %s: %d campaigns of %d, clicks %.1f ± %.1f (s.e.), collapses %d, best share per wave %s",
			sched.name, mode, n, 10*perWave, m, se, collapses, strings.Join(mean, " "))
	}
	mw, _ := meanSE(clicks["waves"])
	ms, _ := meanSE(clicks["split_then_winner"])
	if mw < ms {
		t.Errorf("%s: waves earned %.1f clicks per campaign, split_then_winner %.1f", sched.name, mw, ms)
	}
}

// TestCampaignLateOutcomes is the reduced run of every `go test`: the
// one-wave reporting lag, 4 campaigns in waves mode of 10,000 recipients.
// Counting immature sends as failures makes the best subject's share
// collapse in most such campaigns.
func TestCampaignLateOutcomes(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)}
	e := campaignEnv(t, "sqlite", c)
	e.client = &http.Client{}
	n, perWave := 4, 1000
	if raceEnabled {
		n, perWave = 1, 400 // the code paths only (race_test.go)
	}
	for i := range n {
		run := runLateCampaign(t, e, c, fmt.Sprint("late-", i), "waves", uint64(100+i), perWave, nextWave)
		if !raceEnabled && collapsedShares(run.shares) {
			t.Errorf("campaign %d: the best subject's share collapsed after it led: %.2f", i, run.shares)
		}
		if i == 0 {
			// The last wave's clicks are not reported yet: its sends are not
			// matured (F(1h) = 0 when every click arrives an hour or more
			// after its send), the nine before are.
			res := e.must(http.StatusOK, "GET", "/v1/campaigns/late-0/results", e.admin, "").JSON(t)
			d := res["outcome_delay"].(map[string]any)
			if d["events"].(float64) < float64(perWave)/40 || d["horizon"] != "8h0m0s" || math.Abs(d["matured"].(float64)-0.9) > 0.01 {
				t.Errorf("outcome_delay %v", d)
			}
			s4 := variantResult(t, res, "s4")
			if s4["matured_trials"].(float64) >= s4["sent"].(float64) || s4["rate"].(float64) <= s4["raw_rate"].(float64) {
				t.Errorf("s4 %v", s4)
			}
		}
		c.Advance(24 * time.Hour)
	}
}

// TestCampaignLateOutcomesReport is the full run: SAMPLIT_REPORT=1 go test
// ./internal/api -run TestCampaignLateOutcomesReport -v -timeout 30m.
// 60 campaigns of 20,000 per mode and schedule (with 20, the split's
// standard error, about 20 clicks, is larger than the difference).
func TestCampaignLateOutcomesReport(t *testing.T) {
	if os.Getenv("SAMPLIT_REPORT") == "" {
		t.Skip("set SAMPLIT_REPORT=1 for the full run")
	}
	// With a one-wave reporting lag no campaign may collapse. With clicks
	// spread over a day, a wave led on the 1–3 clicks of the first hours
	// could be followed by one that was not (Thompson sampling on almost no
	// evidence): 3 or 4 of 60 here before the pooled prior, 1 of 60 with its
	// coefficient of variation at ½; at engine.CampaignPriorCV (¼), 0 of 60
	// in each of three runs (the simulator: 1 of 2,400). Campaign ids are
	// random and seed the allocation, so runs differ: at most 1 of 60.
	t.Run("reported_after_the_next_wave", func(t *testing.T) { lateReport(t, 60, 2000, nextWave, 0) })
	t.Run("spread_over_24h", func(t *testing.T) { lateReport(t, 60, 2000, spread, 1.0/60) })
}
