package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/store/dbtest"
)

// adminKey is the bootstrap admin key every test server is started with.
const adminKey = "sk_e2etestkeyaa_ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// stateKey seals optimizer state; PostgreSQL requires one, and every replica
// (and every restart) of a deployment must use the same.
var stateKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary builds cmd/samplit once per test run and returns its path. It is
// built without -race even when the tests run with it: the server is the
// system under test, and under the race detector it would be too slow for
// the load these tests put on it.
func binary(t testing.TB) string {
	t.Helper()
	bin, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// build builds the binary once; binary is its form for tests.
// SAMPLIT_E2E_BINARY names a prebuilt binary to test instead (CI may test
// the very binary it ships).
func build() (string, error) {
	if bin := os.Getenv("SAMPLIT_E2E_BINARY"); bin != "" {
		return bin, nil
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "samplit-e2e-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "samplit")
		out, err := exec.Command("go", "build", "-o", buildBin, "github.com/samplit/samplit/cmd/samplit").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/samplit: %v\n%s", err, out)
		}
	})
	return buildBin, buildErr
}

// server is one running `samplit serve` process.
type server struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	base string // http://host:port

	done chan struct{} // closed once the process has exited and its log is read

	mu      sync.Mutex
	tail    []string // the last lines of its log, for failure reports
	winners int      // "winner found" log lines
}

// startServer starts samplit serve over dsn on a free loopback port and
// waits until it listens. The process is killed when the test ends.
func startServer(t testing.TB, name, dsn string) *server {
	t.Helper()
	s, err := launch(t, name, dsn)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// launch is startServer for any goroutine: it reports failure as an error.
// The process is killed when the test ends, whatever happens.
func launch(t testing.TB, name, dsn string) (*server, error) {
	bin, err := build()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", dsn,
		"--log-format", "json", "--log-level", "info", "--state-key", stateKey)
	cmd.Env = append(os.Environ(), "SAMPLIT_BOOTSTRAP_KEY="+adminKey)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", name, err)
	}
	s := &server{t: t, name: name, cmd: cmd, done: make(chan struct{})}
	t.Cleanup(s.kill)
	addrc := make(chan string, 1)
	go s.readLog(stderr, addrc)
	select {
	case addr := <-addrc:
		s.base = "http://" + addr
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("%s exited before listening:\n%s", name, s.logTail())
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("%s did not listen within 30s:\n%s", name, s.logTail())
	}
}

// readLog reads the server's JSON log: it reports the listening address,
// counts decisions, keeps a tail, and reaps the process at EOF.
func (s *server) readLog(r io.Reader, addrc chan<- string) {
	defer close(s.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		_ = json.Unmarshal([]byte(line), &rec)
		s.mu.Lock()
		switch rec.Msg {
		case "samplit listening":
			addrc <- rec.Addr
		case "winner found":
			s.winners++
		}
		if rec.Msg != "request" { // the access log would drown the rest
			s.tail = append(s.tail, line)
			if len(s.tail) > 40 {
				s.tail = s.tail[1:]
			}
		}
		s.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
	_ = s.cmd.Wait()
}

func (s *server) logTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, "\n")
}

func (s *server) winnerLines() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.winners
}

// kill sends SIGKILL (the process gets no chance to flush or clean up) and
// waits until it is gone. It is a no-op on a process that has exited.
func (s *server) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.t.Errorf("%s: still running 10s after SIGKILL", s.name)
	}
}

// client is the HTTP client of the tests: enough idle connections for the
// concurrent clients, and a timeout so a hung server fails the test.
var client = &http.Client{
	Timeout:   20 * time.Second,
	Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 64, DisableCompression: true},
}

// call sends a JSON request with the admin key and decodes the response
// into out when it is 2xx. It returns the status; err is a transport error
// (the server died, or the response was cut).
func (s *server) call(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode %s: %w", method, path, raw, err)
		}
	}
	return resp.StatusCode, nil
}

// must is call for set-up and checks: any failure ends the test.
func (s *server) must(t testing.TB, method, path string, body, out any) {
	t.Helper()
	if _, err := s.call(t.Context(), method, path, body, out); err != nil {
		t.Fatalf("%s: %v", s.name, err)
	}
}

// Response shapes of the contract, as far as the tests read them.
type (
	assignment struct {
		UnitID  string  `json:"unit_id"`
		Variant *string `json:"variant"`
		New     bool    `json:"new"`
	}
	assignments struct {
		Assignments []assignment `json:"assignments"`
	}
	event struct {
		UnitID         string `json:"unit_id"`
		IdempotencyKey string `json:"idempotency_key,omitempty"`
	}
	eventsOutcome struct {
		Accepted   int `json:"accepted"`
		Duplicates int `json:"duplicates"`
		Rejected   []struct {
			Index int    `json:"index"`
			Error string `json:"error"`
		} `json:"rejected"`
	}
	results struct {
		TotalUnits int64 `json:"total_units"`
		Variants   []struct {
			Key         string `json:"key"`
			Units       int64  `json:"units"`
			Conversions int64  `json:"conversions"`
		} `json:"variants"`
		Winner   *string `json:"winner"`
		Decision struct {
			State  string `json:"state"`
			Reason string `json:"reason"`
		} `json:"decision"`
	}
	experiment struct {
		ID     string  `json:"id"`
		Status string  `json:"status"`
		Winner *string `json:"winner"`
	}
)

func (r results) conversions() int64 {
	var n int64
	for _, v := range r.Variants {
		n += v.Conversions
	}
	return n
}

// dsnFor returns a fresh database of the backend.
func dsnFor(t testing.TB, backend string) string {
	t.Helper()
	if backend == "postgres" {
		return dbtest.PostgresSchema(t, "e2e_")
	}
	return filepath.Join(t.TempDir(), "samplit.db")
}
