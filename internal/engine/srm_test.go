package engine

import (
	"math"
	"math/rand/v2"
	"testing"
)

// srmArms returns two arms after n units at fixed weights w and 1 − w, of which
// units0 went to arm 0.
func srmArms(n int, w float64, units0 int64) []Arm {
	a := []Arm{{Key: "a", Units: units0}, {Key: "b", Units: int64(n) - units0}}
	for range n {
		a[0].AddExpected(w)
		a[1].AddExpected(1 - w)
	}
	return a
}

func TestSequentialSRMNoPropensities(t *testing.T) {
	r := SequentialSRM([]Arm{{Key: "a", Units: 900}, {Key: "b", Units: 100}}, SRMAlertP)
	if r.PValue != nil || r.Alert {
		t.Errorf("no logged propensities: %+v, want no p-value and no alert", r)
	}
	if r := SequentialSRM(nil, SRMAlertP); r.PValue != nil || r.Alert {
		t.Errorf("no arms: %+v", r)
	}
}

func TestSequentialSRMCases(t *testing.T) {
	for _, tt := range []struct {
		name      string
		arms      []Arm
		alert     bool
		low, high float64
	}{
		{"exactly as expected", srmArms(10_000, 0.5, 5000), false, 1, 1},
		{"a usual deviation (z = 2)", srmArms(10_000, 0.5, 5100), false, 0.3, 1},
		{"z = 3 is not enough under monitoring", srmArms(10_000, 0.5, 5150), false, 0.01, 1},
		{"z = 5", srmArms(10_000, 0.5, 5250), true, 0, 0.001},
		{"an arm that gets nothing, 100 units", srmArms(100, 0.5, 0), true, 0, 1e-9},
		{"near-deterministic weights, as expected", srmArms(20_000, 0.01, 200), false, 1, 1},
		{"near-deterministic weights, the rare arm twice as often", srmArms(20_000, 0.01, 400), true, 0, 1e-6},
	} {
		r := SequentialSRM(tt.arms, SRMAlertP)
		if r.PValue == nil {
			t.Errorf("%s: no p-value", tt.name)
			continue
		}
		if p := *r.PValue; p < tt.low || p > tt.high || math.IsNaN(p) || r.Alert != tt.alert {
			t.Errorf("%s: %+v (p = %v), want p in [%v, %v] and alert %v", tt.name, r, p, tt.low, tt.high, tt.alert)
		}
	}
}

func TestSequentialSRMLargeCountsAreFinite(t *testing.T) {
	for _, units0 := range []int64{500_000_000, 500_010_000, 500_100_000, 400_000_000, 0} {
		a := []Arm{{Key: "a", Units: units0, Expected: 5e8, ExpectedSquares: 2.5e8},
			{Key: "b", Units: 1e9 - units0, Expected: 5e8, ExpectedSquares: 2.5e8}}
		r := SequentialSRM(a, SRMAlertP)
		if r.PValue == nil || math.IsNaN(*r.PValue) || *r.PValue < 0 || *r.PValue > 1 {
			t.Fatalf("units %d of 1e9: %+v", units0, r)
		}
		// z = (units0 − 5e8)/√(2.5e8): 0, 0.63, 6.3, −6325, −31623.
		if want := math.Abs(float64(units0)-5e8)/math.Sqrt(2.5e8) > 6; r.Alert != want {
			t.Errorf("units %d of 1e9: %+v, want alert %v", units0, r, want)
		}
	}
}

// TestSequentialSRMBonferroni: with three arms each arm's e-value is compared with
// 3/α; with two, whose statistics mirror each other, one test at α.
func TestSequentialSRMBonferroni(t *testing.T) {
	two := srmArms(10_000, 0.5, 5200)
	p2 := *SequentialSRM(two, 1).PValue
	three := []Arm{{Key: "a", Units: 5200}, {Key: "b", Units: 4800}, {Key: "c"}}
	for range 10_000 {
		three[0].AddExpected(0.5)
		three[1].AddExpected(0.5)
		three[2].AddExpected(0)
	}
	p3 := *SequentialSRM(three, 1).PValue
	if math.Abs(p3-3*p2) > 1e-9*p3 {
		t.Errorf("three arms p = %v, want 3 × %v", p3, p2)
	}
}

// srmMonitored simulates runs of n units with weights chosen by policy from the
// past (a predictable sequence), checks the test every `every` units at level
// alpha, and returns the share of runs with an alarm: by the sequential test and
// by the fixed-sample χ² (SRMPValue) repeated at every check.
func srmMonitored(runs, n, every int, alpha float64, policy func(t int, m float64) float64) (seq, naive float64) {
	for i := range runs {
		r := rand.New(rand.NewPCG(99, uint64(i)))
		arms := []Arm{{Key: "a"}, {Key: "b"}}
		var s, c bool
		for t := 1; t <= n; t++ {
			w := policy(t, float64(arms[0].Units)-arms[0].Expected)
			if r.Float64() < w {
				arms[0].Units++
			} else {
				arms[1].Units++
			}
			arms[0].AddExpected(w)
			arms[1].AddExpected(1 - w)
			if t%every == 0 {
				s = s || SequentialSRM(arms, alpha).Alert
				c = c || SRMPValue([]int64{arms[0].Units, arms[1].Units}, []float64{arms[0].Expected, arms[1].Expected}) < alpha
			}
		}
		if s {
			seq++
		}
		if c {
			naive++
		}
	}
	return seq / float64(runs), naive / float64(runs)
}

// TestSequentialSRMValidUnderMonitoring: at level 0.05 (so that false alarms are
// frequent enough to count), checked every 20 units up to 2,000, the sequential
// test alarms in at most 5% of runs, for fixed 50/50 weights and for weights that
// jump between 0.01 and 0.99 (the near-deterministic propensities of a converged
// bandit), following the data or a schedule. Measured with these seeds: 0.25%, 0%
// and 0% of 400 runs; the χ² test repeated at every check alarms in 36.5%, 3.5%
// and 9.75%. The bound, 1%, is near the measured rates, so that a test without
// the monitoring correction fails it.
func TestSequentialSRMValidUnderMonitoring(t *testing.T) {
	const runs = 400
	for _, tt := range []struct {
		name   string
		policy func(t int, m float64) float64
	}{
		{"50/50", func(int, float64) float64 { return 0.5 }},
		{"0.01 or 0.99 by the sign of the statistic", func(_ int, m float64) float64 {
			if m > 0 {
				return 0.01
			}
			return 0.99
		}},
		{"0.01 or 0.99, switching every 100 units", func(t int, _ float64) float64 {
			if t/100%2 == 0 {
				return 0.01
			}
			return 0.99
		}},
	} {
		seq, naive := srmMonitored(runs, 2000, 20, 0.05, tt.policy)
		t.Logf("%s: sequential %.4f, χ² at every check %.4f (%d runs)", tt.name, seq, naive, runs)
		if seq > 0.01 {
			t.Errorf("%s: sequential test alarmed in %.4f of runs; want ≤ 0.01 (level 0.05)", tt.name, seq)
		}
	}
}
