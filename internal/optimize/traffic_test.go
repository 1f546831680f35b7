package optimize

import (
	"fmt"
	"math"
	"testing"
)

func TestTrafficShareIsDeterministicAndProportional(t *testing.T) {
	const n = 100000
	for _, share := range []float64{0.1, 0.5, 0.9} {
		in := 0
		for i := range n {
			u := fmt.Sprintf("user-%d", i)
			a := inTraffic("exp_a", u, share)
			if a != inTraffic("exp_a", u, share) {
				t.Fatal("the same unit got two answers")
			}
			if a {
				in++
				if !inTraffic("exp_a", u, math.Min(1, share+0.1)) {
					t.Fatalf("unit %s dropped out when traffic grew", u)
				}
			}
		}
		// Binomial s.d. at n=1e5 is at most 0.0016; 5 s.d. keeps this test
		// from failing by chance while catching a biased hash.
		if got := float64(in) / n; math.Abs(got-share) > 0.008 {
			t.Errorf("share %.2f: %.4f of units included", share, got)
		}
	}
}

func TestTrafficIsIndependentBetweenExperiments(t *testing.T) {
	const n = 100000
	both := 0
	for i := range n {
		u := fmt.Sprintf("user-%d", i)
		if inTraffic("exp_a", u, 0.5) && inTraffic("exp_b", u, 0.5) {
			both++
		}
	}
	// Independent halves overlap on a quarter of units (s.d. 0.0014).
	if got := float64(both) / n; math.Abs(got-0.25) > 0.007 {
		t.Fatalf("%.4f of units in both experiments, want 0.25", got)
	}
}
