package engine

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/samplit/samplit/internal/engine/stats"
)

// liftHistory draws n finished comparisons whose true log lifts are
// N(0, tau²), each estimated with standard error s.
func liftHistory(seed uint64, n int, tau, s float64) []LiftObservation {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]LiftObservation, n)
	for i := range out {
		out[i] = LiftObservation{LogLift: tau*r.NormFloat64() + s*r.NormFloat64(), SE: s}
	}
	return out
}

// TestLiftPriorBeatsIntegral checks LiftPrior.Beats against the model
// integrated independently: τ on a grid of 2,000 points uniform in √τ (the
// code's is geometric, 200 points), ε on 101 points (the code's 51), the
// history's likelihood per cell, and the new comparison's true lift θ
// integrated numerically on 2,001 points of each component's own scale
// (the code uses the normal posterior's closed form).
func TestLiftPriorBeatsIntegral(t *testing.T) {
	tight := make([]LiftObservation, MinLiftHistory)
	for i := range tight {
		tight[i] = LiftObservation{0, 0.0067}
	}
	for _, c := range []struct {
		name    string
		history []LiftObservation
		lr, se  float64
	}{
		{"3% lifts, borderline", liftHistory(1, 60, 0.03, 0.042), 0.12, 0.04},
		{"3% lifts, clear", liftHistory(1, 60, 0.03, 0.042), 0.2, 0.04},
		{"3% lifts, behind", liftHistory(1, 60, 0.03, 0.042), -0.05, 0.03},
		{"10% lifts", liftHistory(2, 40, 0.1, 0.05), 0.1, 0.05},
		{"tight history, large lift", tight, 1.0, 0.3},
		{"tight history, small lift", tight, 0.02, 0.008},
	} {
		p := LearnLiftPrior(c.history)
		got := p.Beats(c.lr, c.se)
		want := beatsIntegral(c.history, c.lr, c.se)
		t.Logf("%s: Beats %.5f, integral %.5f (τ median %.4f)", c.name, got, want, p.SD())
		if math.Abs(got-want) > 1e-3 {
			t.Errorf("%s: Beats %.5f, integral %.5f", c.name, got, want)
		}
	}
}

func beatsIntegral(history []LiftObservation, lr, se float64) float64 {
	const nt, ne, nz = 2000, 101, 2001
	// P(θ > 0, lr | scale v) and P(lr | v) for a N(0, v²) component, θ = v·z.
	comp := func(v float64) (pos, all float64) {
		h := 20.0 / (nz - 1)
		for k := range nz {
			z := -10 + float64(k)*h
			w := h
			if k == 0 || k == nz-1 {
				w /= 2
			}
			d := w * stats.NormalPDF(z) * stats.NormalPDF((lr-v*z)/se) / se
			all += d
			if z > 0 {
				pos += d
			} else if z == 0 {
				pos += d / 2
			}
		}
		return pos, all
	}
	wpos, wall := comp(wideLiftSD)
	wide := make([]float64, len(history))
	for k, o := range history {
		wide[k] = math.Exp(logNormal(o.LogLift, 1+o.SE*o.SE))
	}
	type cell struct{ logl, w, npos, nall, eps float64 }
	cells := make([]cell, 0, nt*ne)
	narrow := make([]float64, len(history))
	for i := range nt {
		// τ = u², u uniform on [0.01, 1]: fine steps where τ is small; the
		// flat prior's weight of a step is dτ = 2u·du.
		u := 0.01 + 0.99*float64(i)/(nt-1)
		tau, dtau := u*u, 2*u*0.99/(nt-1)
		if i == 0 || i == nt-1 {
			dtau /= 2
		}
		npos, nall := comp(tau)
		for k, o := range history {
			narrow[k] = math.Exp(logNormal(o.LogLift, tau*tau+o.SE*o.SE))
		}
		for j := range ne {
			eps := 0.5 * float64(j) / (ne - 1)
			deps := 0.5 / (ne - 1)
			if j == 0 || j == ne-1 {
				deps /= 2
			}
			l := 0.0
			for k := range history {
				l += math.Log((1-eps)*narrow[k] + eps*wide[k])
			}
			cells = append(cells, cell{l, dtau * deps, npos, nall, eps})
		}
	}
	m := math.Inf(-1)
	for _, c := range cells {
		m = math.Max(m, c.logl)
	}
	var num, den float64
	for _, c := range cells {
		w := c.w * math.Exp(c.logl-m)
		num += w * ((1-c.eps)*c.npos + c.eps*wpos)
		den += w * ((1-c.eps)*c.nall + c.eps*wall)
	}
	return num / den
}

// TestLearnLiftPriorRecovers: from simulated histories the learned spread
// lands near the true one, and the prior holds back a borderline estimate
// that the flat rule would call certain while it passes a clear one.
func TestLearnLiftPriorRecovers(t *testing.T) {
	for _, c := range []struct {
		tau, s float64
		n      int
		lo, hi float64
	}{
		{0.03, 0.042, 1000, 0.025, 0.035},
		{0.03, 0.02, 300, 0.025, 0.035},
		{0.1, 0.05, 300, 0.09, 0.11},
		{0, 0.042, 1000, 0, 0.01},
	} {
		for seed := uint64(1); seed <= 5; seed++ {
			sd := LearnLiftPrior(liftHistory(seed, c.n, c.tau, c.s)).SD()
			t.Logf("τ %.2f, s %.3f, %d comparisons, seed %d: learned %.4f", c.tau, c.s, c.n, seed, sd)
			if sd < c.lo || sd > c.hi {
				t.Errorf("τ %.2f, s %.3f, %d comparisons, seed %d: learned %.4f, want [%g, %g]", c.tau, c.s, c.n, seed, sd, c.lo, c.hi)
			}
		}
	}
	if p := LearnLiftPrior(liftHistory(1, MinLiftHistory-1, 0.03, 0.04)); p != nil {
		t.Errorf("%d comparisons learned a prior", MinLiftHistory-1)
	}
	p := LearnLiftPrior(liftHistory(1, 1000, 0.03, 0.042))
	// z = 2.5 on a 10% lift: the flat posterior says 99.4%.
	if q := p.Beats(0.1, 0.04); q > 0.95 {
		t.Errorf("borderline 10%% ± 4%% beats with %.4f under 3%% lifts, want below 0.95", q)
	}
	if q := p.Beats(0.3, 0.04); q < 0.999 {
		t.Errorf("30%% ± 4%% beats with %.4f, want above 0.999", q)
	}
}

// TestLearnedPriorDecision: the decision names the learned prior when it
// holds a winner back, and a setting of prior_lift_sd takes precedence.
func TestLearnedPriorDecision(t *testing.T) {
	// 8,000 units each, uniform, 10% against 12%: the always-valid test
	// passes, a prior learned from lifts of about 1% does not.
	in := Input{Metric: Binary, Arms: []Arm{{Key: "control", Control: true}, {Key: "green"}}}
	s, _ := Lookup("uniform")
	for i, conv := range []int{800, 960} {
		for u := range 8000 {
			in.Arms[i].AddUnit(0.5)
			for j := range in.Arms {
				in.Arms[j].AddExpected(0.5)
			}
			if u < conv {
				in.Arms[i].AddOutcome(0.5, 0, 1, true)
			}
		}
	}
	in.Settings = Settings{}.WithDefaults()
	_, flat, err := Decide(s, in)
	if err != nil {
		t.Fatal(err)
	}
	in.Settings.LearnedPrior = LearnLiftPrior(liftHistory(1, 1000, 0.01, 0.02))
	w, d, err := Decide(s, in)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("flat: %s; learned: %s", flat.Reason, d.Reason)
	if flat.State != StateWinnerFound || w != nil || d.State != StateCollecting || !strings.Contains(d.Reason, "learned from 1000 finished comparisons") {
		t.Errorf("flat %+v; learned %v %+v", flat, w, d)
	}
	in.Settings.PriorLiftSD = 0.5
	if w, d, _ := Decide(s, in); w == nil || d.State != StateWinnerFound {
		t.Errorf("prior_lift_sd 0.5 set: %v %+v, want the winner (the setting comes first)", w, d)
	}
}

// BenchmarkLearnLiftPrior: learning from 1,000 comparisons (the server
// learns from at most 500 experiments, once a minute per workspace), and
// one decision's use of the result.
func BenchmarkLearnLiftPrior(b *testing.B) {
	h := liftHistory(1, 1000, 0.03, 0.042)
	b.Run("learn", func(b *testing.B) {
		for b.Loop() {
			LearnLiftPrior(h)
		}
	})
	p := LearnLiftPrior(h)
	b.Run("beats", func(b *testing.B) {
		for b.Loop() {
			p.Beats(0.1, 0.04)
		}
	})
}
