package connlimit

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// budget is a listener that emulates a process's descriptor limit: with
// limit connections open, Accept fails as accept(2) does with EMFILE (a
// temporary error; http.Server backs off and retries), and the connection
// it took is dropped.
type budget struct {
	net.Listener
	limit int
	open  atomic.Int64
}

type emfile struct{}

func (emfile) Error() string   { return "accept: too many open files" }
func (emfile) Timeout() bool   { return false }
func (emfile) Temporary() bool { return true }

func (b *budget) Accept() (net.Conn, error) {
	c, err := b.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if b.open.Load() >= int64(b.limit) {
		c.Close()
		return nil, emfile{}
	}
	b.open.Add(1)
	return &countedConn{Conn: c, b: b}, nil
}

type countedConn struct {
	net.Conn
	b    *budget
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.b.open.Add(-1) })
	return c.Conn.Close()
}

// limitConnections is what the server does; a variable so that the
// mutation "no connection limit" is one line.
var limitConnections = true

// TestIdleConnectionsCannotExhaust: 500 clients without a key open
// keep-alive connections, make one request each (401) and go quiet, on a
// server whose process may hold 64 connections. A client with a key must
// still be served at once, and the server never holds more connections than
// its cap.
func TestIdleConnectionsCannotExhaust(t *testing.T) {
	const (
		fds   = 64
		limit = 48
		idle  = 500
	)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &budget{Listener: inner, limit: fds}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer sk_good" {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			fmt.Fprint(w, "ok")
		}),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute, // longer than the test: idle clients stay
	}
	lim := New(limit)
	var ln net.Listener = b
	if limitConnections {
		ln = lim.Install(srv, b)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := inner.Addr().String()

	// The idle clients, one request each on a kept-alive connection.
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range idle {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(500 * time.Millisecond))
		fmt.Fprintf(c, "GET /v1/experiments HTTP/1.1\r\nHost: x\r\n\r\n")
		// Read the 401 (or nothing, if the connection was closed to make
		// room): either way the client keeps its socket open.
		_, _ = http.ReadResponse(bufio.NewReader(c), nil)
	}
	if n := lim.Open(); limitConnections && n > limit {
		t.Errorf("%d connections open, above the cap of %d", n, limit)
	}

	// A real client, on a new connection, is served at once.
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 5 {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/experiments", nil)
		req.Header.Set("Authorization", "Bearer sk_good")
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d with a key after %d idle connections: %v", i, idle, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d", i, res.StatusCode)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("request %d took %v", i, d)
		}
	}
	if open := b.open.Load(); open > limit+1 {
		t.Errorf("the process holds %d client connections, above the cap of %d", open, limit)
	}
	if _, evicted := lim.Stats(); evicted < idle-limit {
		t.Errorf("%d idle connections closed to make room, want at least %d", evicted, idle-limit)
	}
}

// TestBusyConnectionsRefuseNew: when every slot serves a request, a new
// connection is closed at once (the client sees an error, not a hang), and
// it is served again once a slot frees.
func TestBusyConnectionsRefuseNew(t *testing.T) {
	release := make(chan struct{})
	var busy sync.WaitGroup
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			busy.Done()
			<-release
		}
		fmt.Fprint(w, "ok")
	})}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := New(2)
	go srv.Serve(lim.Install(srv, inner))
	t.Cleanup(func() { srv.Close() })
	url := "http://" + inner.Addr().String()
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	busy.Add(2)
	done := make(chan error, 2)
	for range 2 {
		go func() {
			res, err := client.Get(url + "/slow")
			if err == nil {
				res.Body.Close()
			}
			done <- err
		}()
	}
	busy.Wait()
	start := time.Now()
	_, err = client.Get(url + "/fast")
	if err == nil {
		t.Fatalf("a third connection was served while both slots were busy")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing took %v, want at once", d)
	}
	if refused, _ := lim.Stats(); refused < 1 {
		t.Errorf("refused = %d", refused)
	}
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		res, err := client.Get(url + "/fast")
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not served after the slots freed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
