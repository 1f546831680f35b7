// Package human formats numbers and lists for people: decimal notation with a given
// number of significant digits, never scientific notation (2.6e-05 reads as
// noise to most people), with "<0.000001" where the digits would run away.
// The dashboard and the CLI's text output share it; JSON keeps full floats.
package human

import (
	"math"
	"strconv"
	"strings"
)

// Floor is the smallest magnitude written out; anything smaller (and not
// zero) is "<0.000001" (or ">−0.000001").
const Floor = 0.000001

// Sig formats x with digits significant digits in decimal notation:
// Sig(0.000026, 2) = "0.000026", Sig(2e-9, 2) = "<0.000001",
// Sig(0.0012345, 2) = "0.0012", Sig(12345.6, 3) = "12346" (integers are
// not rounded away), Sig(0, 2) = "0".
func Sig(x float64, digits int) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "–"
	case x == 0:
		return "0"
	case x > 0 && x < Floor:
		return "<" + strconv.FormatFloat(Floor, 'f', -1, 64)
	case x < 0 && x > -Floor:
		return ">−" + strconv.FormatFloat(Floor, 'f', -1, 64)
	}
	e := int(math.Floor(math.Log10(math.Abs(x))))
	dec := max(0, digits-1-e)
	s := strconv.FormatFloat(x, 'f', dec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// Signed is Sig with a leading + for positive values.
func Signed(x float64, digits int) string {
	s := Sig(x, digits)
	if x > 0 && !strings.HasPrefix(s, "<") {
		return "+" + s
	}
	return s
}

// JoinOr joins list as "a, b or c", for messages that name the choices.
func JoinOr(list []string) string {
	switch len(list) {
	case 0:
		return ""
	case 1:
		return list[0]
	}
	return strings.Join(list[:len(list)-1], ", ") + " or " + list[len(list)-1]
}
