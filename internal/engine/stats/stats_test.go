package stats

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// reference is testdata/reference.json, produced by testdata/gen_reference.py with
// mpmath at 40 significant digits (see the script for the method).
type reference struct {
	BetaCDF []struct {
		A, B, X, CDF float64
	} `json:"beta_cdf"`
	BetaQuantile []struct {
		A, B, P, Q float64
	} `json:"beta_quantile"`
	NormalQuantile []struct {
		P, Q float64
	} `json:"normal_quantile"`
}

func loadReference(t *testing.T) reference {
	t.Helper()
	b, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.BetaCDF) == 0 || len(r.BetaQuantile) == 0 || len(r.NormalQuantile) == 0 {
		t.Fatal("empty reference table")
	}
	return r
}

func TestBetaCDFReference(t *testing.T) {
	// Tolerance: 1e-9 absolute. Decisions use CDF values at the 1e-3 level; 1e-9 leaves
	// six orders of margin and is still far above double rounding (gonum's RegIncBeta
	// is within 1e-13 for moderate shapes, the integrated density within 1e-12).
	for _, c := range loadReference(t).BetaCDF {
		got := BetaCDF(c.X, c.A, c.B)
		if math.Abs(got-c.CDF) > 1e-9 || math.IsNaN(got) {
			t.Errorf("BetaCDF(%g; %g, %g) = %.15g, want %.15g (diff %.2g)", c.X, c.A, c.B, got, c.CDF, got-c.CDF)
		}
	}
}

func TestBetaQuantileReference(t *testing.T) {
	// Tolerance: 1e-9 relative to the distribution's standard deviation, i.e. the
	// interval endpoints are right far beyond any digit a report prints, at any count.
	for _, c := range loadReference(t).BetaQuantile {
		got := BetaQuantile(c.P, c.A, c.B)
		sd := BetaStdDev(c.A, c.B)
		if math.Abs(got-c.Q) > 1e-9*sd || math.IsNaN(got) {
			t.Errorf("BetaQuantile(%g; %g, %g) = %.15g, want %.15g (diff %.2g sd)", c.P, c.A, c.B, got, c.Q, (got-c.Q)/sd)
		}
	}
}

func TestNormalQuantileReference(t *testing.T) {
	// AS 241 is accurate to about 1e-16 relative; allow 1e-14.
	for _, c := range loadReference(t).NormalQuantile {
		got := NormalQuantile(c.P)
		if math.Abs(got-c.Q) > 1e-14*math.Max(1, math.Abs(c.Q)) {
			t.Errorf("NormalQuantile(%g) = %.17g, want %.17g", c.P, got, c.Q)
		}
		if back := NormalCDF(got); math.Abs(back-c.P) > 1e-13*c.P {
			t.Errorf("NormalCDF(NormalQuantile(%g)) = %.17g", c.P, back)
		}
	}
}

func TestBetaLogPDFStable(t *testing.T) {
	// The stable density integrates to 1 and agrees with the lgamma formula where the
	// latter is exact enough (small shapes), to 1e-12 relative.
	for _, c := range [][3]float64{{2, 3, 0.3}, {101, 901, 0.1}, {30, 20, 0.7}} {
		a, b, x := c[0], c[1], c[2]
		la, _ := math.Lgamma(a)
		lb, _ := math.Lgamma(b)
		lab, _ := math.Lgamma(a + b)
		want := (a-1)*math.Log(x) + (b-1)*math.Log1p(-x) - la - lb + lab
		if got := BetaLogPDF(x, a, b); math.Abs(got-want) > 1e-12*math.Max(1, math.Abs(want)) {
			t.Errorf("BetaLogPDF(%g; %g, %g) = %.15g, want %.15g", x, a, b, got, want)
		}
	}
	for _, x := range []float64{0, 1} {
		for _, ab := range [][2]float64{{1, 1}, {1, 1e9}, {1e9, 1}, {5, 7}} {
			if v := BetaPDF(x, ab[0], ab[1]); math.IsNaN(v) {
				t.Errorf("BetaPDF(%g; %v) is NaN", x, ab)
			}
		}
	}
}

func TestExtremeShapesNoNaN(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	shapes := []float64{1e-3, 0.5, 1, 1 + 1e-9, 2, 1e3, 1e9, 1e12}
	for _, a := range shapes {
		for _, b := range shapes {
			for range 20 {
				x := Beta(r, a, b)
				if math.IsNaN(x) || x < 0 || x > 1 {
					t.Fatalf("Beta(%g, %g) drew %v", a, b, x)
				}
			}
			if a < 1 || b < 1 {
				continue
			}
			for _, p := range []float64{1e-12, 0.025, 0.5, 0.975, 1 - 1e-12} {
				q := BetaQuantile(p, a, b)
				c := BetaCDF(q, a, b)
				if math.IsNaN(q) || math.IsNaN(c) || q < 0 || q > 1 || c < 0 || c > 1 {
					t.Fatalf("Beta(%g, %g): quantile(%g) = %v, CDF of it %v", a, b, p, q, c)
				}
			}
		}
	}
	if !math.IsNaN(Beta(r, 0, 1)) || !math.IsNaN(Gamma(r, -1)) || !math.IsNaN(BetaCDF(0.5, -1, 1)) {
		t.Error("invalid shapes should give NaN")
	}
}

// TestSamplerMoments checks the Gamma and Beta samplers' mean and variance over 200,000
// draws (fixed seed). Tolerance: 5 standard errors of the sample mean and of the sample
// variance (estimated from the fourth moment), so a correct sampler fails with
// probability below 1e-6 per check, while a wrong shape or scale is caught.
func TestSamplerMoments(t *testing.T) {
	const n = 200000
	r := rand.New(rand.NewPCG(7, 11))
	check := func(name string, draw func() float64, mean, variance float64) {
		var s1, s2, s4 float64
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = draw()
			s1 += xs[i]
		}
		m := s1 / n
		for _, x := range xs {
			d := x - m
			s2 += d * d
			s4 += d * d * d * d
		}
		v := s2 / (n - 1)
		seMean := math.Sqrt(variance / n)
		seVar := math.Sqrt((s4/n - v*v) / n)
		if math.Abs(m-mean) > 5*seMean {
			t.Errorf("%s: mean %.6g, want %.6g (±%.2g)", name, m, mean, 5*seMean)
		}
		if math.Abs(v-variance) > 5*seVar {
			t.Errorf("%s: variance %.6g, want %.6g (±%.2g)", name, v, variance, 5*seVar)
		}
	}
	for _, k := range []float64{0.05, 0.3, 1, 2.5, 40, 1e6} {
		check(fmt.Sprintf("Gamma(%g)", k), func() float64 { return Gamma(r, k) }, k, k)
	}
	for _, ab := range [][2]float64{{1, 1}, {0.5, 0.5}, {3, 97}, {120, 1082}, {1e6, 9e6}} {
		a, b := ab[0], ab[1]
		mean := a / (a + b)
		sd := BetaStdDev(a, b)
		check(fmt.Sprintf("Beta(%g, %g)", a, b), func() float64 { return Beta(r, a, b) }, mean, sd*sd)
	}
}

func TestChiSquareSurvival(t *testing.T) {
	// Textbook critical values: P(χ²₁ > 3.841459) = 0.05, P(χ²₄ > 9.487729) = 0.05.
	for _, c := range [][3]float64{{3.841458820694124, 1, 0.05}, {9.487729036781154, 4, 0.05}, {0, 3, 1}} {
		if got := ChiSquareSurvival(c[0], c[1]); math.Abs(got-c[2]) > 1e-9 {
			t.Errorf("ChiSquareSurvival(%g, %g) = %g, want %g", c[0], c[1], got, c[2])
		}
	}
}

func ExampleBetaQuantile() {
	// The 95% credible interval of a conversion rate after 120 conversions out of
	// 1,200 units, with a uniform prior: Beta(121, 1081).
	fmt.Printf("[%.4f, %.4f]\n", BetaQuantile(0.025, 121, 1081), BetaQuantile(0.975, 121, 1081))
	// Output: [0.0843, 0.1183]
}

func ExampleNormalQuantile() {
	fmt.Printf("%.6f\n", NormalQuantile(0.975))
	// Output: 1.959964
}

func BenchmarkBeta(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for b.Loop() {
		Beta(r, 121, 1081)
	}
}

func BenchmarkBetaQuantileLarge(b *testing.B) {
	for b.Loop() {
		BetaQuantile(0.025, 1e8+1, 9e8+1)
	}
}
