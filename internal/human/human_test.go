package human

import (
	"strings"
	"testing"
)

func TestSigNeverScientific(t *testing.T) {
	for _, c := range []struct {
		x    float64
		d    int
		want string
	}{
		{0, 2, "0"}, {0.0012345, 2, "0.0012"}, {0.000026, 2, "0.000026"}, {2e-9, 2, "<0.000001"}, {-2e-9, 2, ">−0.000001"},
		{0.00013, 2, "0.00013"}, {12.345, 3, "12.3"}, {12345.6, 3, "12346"}, {0.5, 3, "0.5"},
		{1, 3, "1"}, {-0.0456, 3, "-0.0456"}, {1e21, 3, "1000000000000000000000"},
	} {
		got := Sig(c.x, c.d)
		if got != c.want {
			t.Errorf("Sig(%v, %d) = %q, want %q", c.x, c.d, got, c.want)
		}
		if strings.ContainsAny(got, "eE") {
			t.Errorf("Sig(%v) = %q: scientific notation", c.x, got)
		}
	}
	if got := Signed(0.0123, 2); got != "+0.012" {
		t.Errorf("Signed = %q", got)
	}
}

func TestJoinOr(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{{nil, ""}, {[]string{"a"}, "a"}, {[]string{"a", "b"}, "a or b"}, {[]string{"a", "b", "c"}, "a, b or c"}} {
		if got := JoinOr(c.in); got != c.want {
			t.Errorf("JoinOr(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
