package apikey

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// FailLimiter limits failed authentications per client address, so that one
// client cannot make the server look up key after unknown key (a database
// read each) or guess at the sign-in form without end. Each address may fail
// PerMinute times a minute (a token bucket refilled at that rate, as full as
// PerMinute); once it is empty the address is refused until a token comes
// back, without its key being looked at.
//
// Addresses are the connection's peer: behind a proxy every client shares the
// proxy's address, so the limit is then one for all of them. IPv6 clients are
// grouped by /64, the block a single host commonly gets. The buckets live in
// this process (per replica) and at most maxAddrs addresses are tracked; full
// buckets are forgotten first.
type FailLimiter struct {
	perMinute int
	now       func() time.Time

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// maxAddrs bounds the addresses a FailLimiter remembers.
const maxAddrs = 10_000

// NewFailLimiter returns a limiter allowing perMinute failures per address
// per minute; nil (no limit) when perMinute is not positive. Every method
// of a nil *FailLimiter allows everything.
func NewFailLimiter(perMinute int, now func() time.Time) *FailLimiter {
	if perMinute <= 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &FailLimiter{perMinute: perMinute, now: now, m: map[string]*rate.Limiter{}}
}

// ClientAddr returns the address r is counted under: the peer's IP, or its
// /64 for IPv6.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// Blocked reports whether addr has no failure left, and if so how long until
// it has one (at least a second, for a Retry-After header).
func (l *FailLimiter) Blocked(addr string) (time.Duration, bool) {
	if l == nil {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[addr]
	if !ok {
		return 0, false
	}
	tokens := lim.TokensAt(l.now())
	if tokens >= 1 {
		return 0, false
	}
	wait := time.Duration((1 - tokens) / float64(lim.Limit()) * float64(time.Second))
	return max(time.Second, wait), true
}

// Failed records a failed authentication from addr.
func (l *FailLimiter) Failed(addr string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	lim, ok := l.m[addr]
	if !ok {
		if len(l.m) >= maxAddrs {
			l.forget(now)
		}
		lim = rate.NewLimiter(rate.Limit(float64(l.perMinute)/60), l.perMinute)
		l.m[addr] = lim
	}
	lim.AllowN(now, 1)
}

// forget drops the addresses whose bucket is full again (they are as if
// never seen), or, if none is, every address: memory stays bounded whatever
// the number of addresses that fail.
func (l *FailLimiter) forget(now time.Time) {
	for a, lim := range l.m {
		if lim.TokensAt(now) >= float64(l.perMinute) {
			delete(l.m, a)
		}
	}
	if len(l.m) >= maxAddrs {
		clear(l.m)
	}
}

// RetryAfter formats d as the whole seconds of a Retry-After header.
func RetryAfter(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}
