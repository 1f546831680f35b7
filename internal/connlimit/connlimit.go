// Package connlimit caps the open connections of an http.Server.
//
// golang.org/x/net/netutil.LimitListener stops calling Accept when the cap is
// reached, which is the wrong answer to idle connections: a few hundred
// clients that open keep-alive connections and go quiet would hold every slot,
// and real clients would wait in the kernel's backlog until their own timeouts.
// Limit instead keeps accepting, and when the cap is reached makes room by
// closing the connection that has been idle (between requests, or connected
// without sending one) the longest; only when every connection is busy with a
// request is the new one closed at once. So idle connections can never starve
// a client that has a request to make, and the server never holds more than
// the cap of descriptors for its clients.
package connlimit

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Limiter tracks a server's connections through its ConnState hook.
type Limiter struct {
	max int
	now func() time.Time

	mu    sync.Mutex
	conns map[net.Conn]*entry
	// Refused and Evicted count connections closed at once because every
	// slot was busy, and idle connections closed to make room.
	refused, evicted int64
}

type entry struct {
	state http.ConnState
	since time.Time // when it entered its state
}

// New returns a Limiter allowing max open connections (at least 1).
func New(limit int) *Limiter {
	return &Limiter{max: max(1, limit), now: time.Now, conns: map[net.Conn]*entry{}}
}

// Install wraps ln and chains srv's ConnState hook, and returns the listener
// to serve on: srv.Serve(l.Install(srv, ln)).
func (l *Limiter) Install(srv *http.Server, ln net.Listener) net.Listener {
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		l.track(c, s)
		if prev != nil {
			prev(c, s)
		}
	}
	return &listener{Listener: ln, l: l}
}

// Open returns how many connections are open.
func (l *Limiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// Stats returns how many connections were refused (every slot busy) and how
// many idle ones were closed to make room.
func (l *Limiter) Stats() (refused, evicted int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refused, l.evicted
}

func (l *Limiter) track(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s {
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
	default:
		// StateNew is recorded by admit already; a conn evicted in the
		// meantime is not brought back.
		if e, ok := l.conns[c]; ok {
			e.state, e.since = s, l.now()
		}
	}
}

// admit records c if there is room, making room by closing the longest-idle
// connection when needed; it reports whether c was admitted.
func (l *Limiter) admit(c net.Conn) bool {
	l.mu.Lock()
	var victim net.Conn
	if len(l.conns) >= l.max {
		var oldest time.Time
		for o, e := range l.conns {
			if e.state != http.StateIdle && e.state != http.StateNew {
				continue
			}
			if victim == nil || e.since.Before(oldest) {
				victim, oldest = o, e.since
			}
		}
		if victim == nil {
			l.refused++
			l.mu.Unlock()
			return false
		}
		delete(l.conns, victim)
		l.evicted++
	}
	l.conns[c] = &entry{state: http.StateNew, since: l.now()}
	l.mu.Unlock()
	if victim != nil {
		// Closing an idle connection makes its server goroutine's read
		// fail; it ends it as it would at the idle timeout.
		_ = victim.Close()
	}
	return true
}

type listener struct {
	net.Listener
	l *Limiter
}

// Accept returns the next connection there is room for; one there is no room
// for is closed at once (the client sees its connection reset, not a hang).
func (ln *listener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ln.l.admit(c) {
			return c, nil
		}
		_ = c.Close()
	}
}
