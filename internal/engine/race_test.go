//go:build race

package engine

// raceEnabled: simulation tests of the statistics skip under the race
// detector (5–10 times slower; they test arithmetic, not concurrency) and
// scripts/test runs this package once more without it.
const raceEnabled = true
