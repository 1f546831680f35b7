package retention

// raceEnabled is set by race_test.go under -race.
var raceEnabled = false
