//go:build race

package retention

func init() { raceEnabled = true }
