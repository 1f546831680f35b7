//go:build race

package optimize_test

// raceEnabled: the statistical simulations skip under the race detector
// (they test arithmetic, not concurrency); scripts/test runs them without it.
const raceEnabled = true
