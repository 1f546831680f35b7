package apikey

import (
	"net/http/httptest"
	"testing"
	"time"
)

func TestFailLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewFailLimiter(3, func() time.Time { return now })
	for range 3 {
		if _, blocked := l.Blocked("192.0.2.1"); blocked {
			t.Fatalf("blocked before the budget is spent")
		}
		l.Failed("192.0.2.1")
	}
	wait, blocked := l.Blocked("192.0.2.1")
	if !blocked || wait != 20*time.Second {
		t.Fatalf("after 3 failures: blocked %v, wait %v; want true, 20s (3 a minute)", blocked, wait)
	}
	if _, blocked := l.Blocked("192.0.2.2"); blocked {
		t.Errorf("another address is blocked")
	}
	now = now.Add(20 * time.Second)
	if _, blocked := l.Blocked("192.0.2.1"); blocked {
		t.Errorf("still blocked after a failure came back")
	}
	var none *FailLimiter = NewFailLimiter(0, nil)
	none.Failed("x")
	if _, blocked := none.Blocked("x"); blocked {
		t.Errorf("a zero limit blocks")
	}
	// Memory stays bounded whatever the number of addresses.
	for i := range 3 * maxAddrs {
		l.Failed(string(rune(i)))
	}
	if len(l.m) > maxAddrs {
		t.Errorf("%d addresses remembered, want at most %d", len(l.m), maxAddrs)
	}
}

func TestClientAddr(t *testing.T) {
	for _, tt := range []struct{ remote, want string }{
		{"192.0.2.7:4711", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:80", "192.0.2.7"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if got := ClientAddr(r); got != tt.want {
			t.Errorf("ClientAddr(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}
