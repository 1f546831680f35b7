//go:build race

package api

// raceEnabled: the campaign simulations through the API (campaigns_late_test.go)
// run 10–20 times slower under the race detector and test arithmetic, not
// concurrency; they run one small campaign there and check their claims only
// without -race.
const raceEnabled = true
