package stats

import (
	"math"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat/distuv"
)

// NormalCDF returns P(X ≤ x) for X ~ Normal(0, 1), computed from math.Erfc so that the
// lower tail keeps full relative precision.
func NormalCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// NormalPDF returns the standard normal density at x.
func NormalPDF(x float64) float64 { return math.Exp(-0.5*x*x) / math.Sqrt(2*math.Pi) }

// NormalQuantile returns the z with NormalCDF(z) = p, by gonum's implementation of
// Wichura's algorithm AS 241 (about 16 significant digits). It returns -Inf for p = 0,
// +Inf for p = 1 and NaN outside [0, 1].
func NormalQuantile(p float64) float64 {
	switch {
	case math.IsNaN(p) || p < 0 || p > 1:
		return math.NaN()
	case p == 0:
		return math.Inf(-1)
	case p == 1:
		return math.Inf(1)
	}
	return mathext.NormalQuantile(p)
}

// ChiSquareSurvival returns P(X > x) for X ~ χ²(df), the p-value of a χ² statistic x.
func ChiSquareSurvival(x, df float64) float64 {
	if math.IsNaN(x) || !(df > 0) {
		return math.NaN()
	}
	if x <= 0 {
		return 1
	}
	return distuv.ChiSquared{K: df}.Survival(x)
}
