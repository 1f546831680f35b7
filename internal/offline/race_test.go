//go:build race

package offline

// raceEnabled: the simulations of the statistical tests run 5–10 times slower
// under the race detector and test arithmetic, not concurrency; they skip
// there and scripts/test runs this package once more without -race.
const raceEnabled = true
