package optimize

import (
	"crypto/sha256"
	"encoding/binary"
)

// inTraffic reports whether the unit takes part in the experiment when only
// the share traffic of units does. It hashes (experiment, unit), so the
// answer is the same on every replica and across restarts, is independent
// between experiments (a unit excluded from one is not excluded from all),
// and a unit included at traffic t stays included when t is raised.
func inTraffic(experimentID, unitID string, traffic float64) bool {
	if traffic >= 1 {
		return true
	}
	return unitHash(experimentID, unitID) < traffic
}

// unitHash maps (experiment, unit) to a uniform number in [0, 1).
func unitHash(experimentID, unitID string) float64 {
	h := sha256.New()
	h.Write([]byte(experimentID))
	h.Write([]byte{0}) // separator: ("ab","c") and ("a","bc") differ
	h.Write([]byte(unitID))
	var sum [sha256.Size]byte
	x := binary.BigEndian.Uint64(h.Sum(sum[:0]))
	return float64(x>>11) / (1 << 53)
}
