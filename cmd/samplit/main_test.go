package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine to write while
// the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// startServer runs `samplit serve` in-process through run, waits for its
// listening line and returns the base URL, its stderr and a stop function
// that cancels it (as SIGTERM would) and returns run's error.
func startServer(t *testing.T, args []string, env map[string]string) (string, *syncBuffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), envOf(env), nil, io.Discard, stderr)
	}()
	addrRe := regexp.MustCompile(`"msg":"samplit listening","addr":"([^"]+)"`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := addrRe.FindStringSubmatch(stderr.String()); m != nil {
			base := "http://" + m[1]
			var once sync.Once
			var stopErr error
			stop := func() error {
				once.Do(func() { cancel(); stopErr = <-done })
				return stopErr
			}
			t.Cleanup(func() { _ = stop() })
			return base, stderr, stop
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("serve ended before listening: %v\n%s", err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not start:\n%s", stderr.String())
		}
	}
}

func request(t *testing.T, method, url, key, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestServeBootstrapsPrintsKeyOnceAndShutsDown(t *testing.T) {
	db := filepath.Join(t.TempDir(), "samplit.db")
	base, stderr, stop := startServer(t, []string{"--db", db}, nil)

	m := regexp.MustCompile(`(?m)^admin key: (sk_\S+)$`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no admin key line on stderr:\n%s", stderr.String())
	}
	key := m[1]
	if code, _ := request(t, "GET", base+"/healthz", "", ""); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, _ := request(t, "GET", base+"/readyz", "", ""); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	code, exp := request(t, "POST", base+"/v1/experiments", key,
		`{"key":"checkout-button","metric":"binary","variants":[{"key":"control","control":true},{"key":"green"}],"start":true}`)
	if code != 201 || exp["status"] != "running" {
		t.Fatalf("create: %d %v", code, exp)
	}
	code, a := request(t, "POST", base+"/v1/experiments/checkout-button/assign", key, `{"unit_id":"user-123"}`)
	if code != 200 || a["new"] != true {
		t.Fatalf("assign: %d %v", code, a)
	}
	if code, ev := request(t, "POST", base+"/v1/experiments/checkout-button/events", key, `{"unit_id":"user-123","idempotency_key":"order-789"}`); code != 202 || ev["accepted"] != 1.0 {
		t.Fatalf("event: %d %v", code, ev)
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful shutdown returned %v", err)
	}
	if !strings.Contains(stderr.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop in the log:\n%s", stderr.String())
	}

	// A restart over the same database prints no new key, keeps the old
	// one valid and the assignment sticky, and the state key file it
	// generated beside the database is reused.
	base, stderr, _ = startServer(t, []string{"--db", db}, nil)
	if strings.Contains(stderr.String(), "admin key:") {
		t.Fatalf("restart printed a key again:\n%s", stderr.String())
	}
	code, a2 := request(t, "POST", base+"/v1/experiments/checkout-button/assign", key, `{"unit_id":"user-123"}`)
	if code != 200 || a2["new"] != false || a2["variant"] != a["variant"] {
		t.Fatalf("after restart: %d %v, first answer %v", code, a2, a)
	}
	code, res := request(t, "GET", base+"/v1/experiments/checkout-button/results", key, "")
	if code != 200 || res["total_units"] != 1.0 {
		t.Fatalf("results after restart: %d %v", code, res)
	}
}

func TestServeWithBootstrapKeyFromEnvironment(t *testing.T) {
	const key = "sk_devlocalkeys_ABCDEFGHIJKLMNOPQRSTUVWXYZ" // the README's
	env := map[string]string{"SAMPLIT_BOOTSTRAP_KEY": key, "SAMPLIT_DATABASE_URL": filepath.Join(t.TempDir(), "s.db")}
	base, stderr, _ := startServer(t, nil, env)
	if strings.Contains(stderr.String(), key) {
		t.Fatal("a key given by the operator was printed")
	}
	if code, _ := request(t, "GET", base+"/v1/experiments", key, ""); code != 200 {
		t.Fatalf("the bootstrap key does not work: %d", code)
	}
	if code, _ := request(t, "GET", base+"/v1/experiments", "sk_devlocalkeys_ABCDEFGHIJKLMNOPQRSTUVWXYA", ""); code != 401 {
		t.Fatalf("a wrong key: %d, want 401", code)
	}
}

func TestConfigurationErrorsAreClearAndExitNonZero(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad port", []string{"serve", "--addr", "127.0.0.1:70000"}, "port"},
		{"postgres without key", []string{"serve", "--db", "postgres://postgres@127.0.0.1:1/none?sslmode=disable"}, "a state key is required with PostgreSQL"},
		{"unknown scheme", []string{"serve", "--db", "mysql://x"}, "unsupported database URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(t.Context(), tt.args, envOf(nil), nil, io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error()+stderr.String(), tt.want) {
				t.Fatalf("err %v, stderr %s; want %q", err, stderr.String(), tt.want)
			}
		})
	}
}

func TestServeHelpDocumentsSettings(t *testing.T) {
	var stderr bytes.Buffer // the help is on stdout, like every command's
	if err := run(t.Context(), []string{"serve", "--help"}, envOf(nil), nil, &stderr, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"--addr", "SAMPLIT_ADDR", "--db", "SAMPLIT_DATABASE_URL", "--state-key", "--pg-simple-protocol"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("serve --help does not mention %s", want)
		}
	}
}

func TestMigrateAndKeysCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "s.db")
	env := envOf(map[string]string{"SAMPLIT_DATABASE_URL": db})
	var out, errb bytes.Buffer
	if err := run(t.Context(), []string{"migrate", "status"}, env, nil, &out, &errb); err != nil {
		t.Fatalf("migrate status: %v %s", err, errb.String())
	}
	if !strings.Contains(out.String(), "pending") {
		t.Fatalf("a new database shows no pending migration:\n%s", out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"migrate", "up"}, env, nil, &out, &errb); err != nil {
		t.Fatalf("migrate up: %v %s", err, errb.String())
	}
	if strings.Contains(out.String(), "pending") {
		t.Fatalf("migrations still pending after up:\n%s", out.String())
	}

	// keys need a workspace: the server bootstraps "default".
	_, _, stop := startServer(t, []string{"--db", db}, nil)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if err := run(t.Context(), []string{"keys", "create", "--scope", "assign", "--name", "mobile app"}, env, nil, &out, &errb); err != nil {
		t.Fatalf("keys create: %v %s", err, errb.String())
	}
	plain := strings.TrimSpace(out.String())
	if !strings.HasPrefix(plain, "sk_") {
		t.Fatalf("keys create printed %q", plain)
	}
	keyID := regexp.MustCompile(`created key (\S+)`).FindStringSubmatch(errb.String())
	if keyID == nil {
		t.Fatalf("keys create did not name the key id: %s", errb.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"keys", "list"}, env, nil, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "mobile app") || strings.Contains(out.String(), plain) {
		t.Fatalf("keys list must show the key's name and never its secret:\n%s", out.String())
	}
	if err := run(t.Context(), []string{"keys", "revoke", keyID[1]}, env, nil, &out, &errb); err != nil {
		t.Fatalf("keys revoke: %v", err)
	}
	out.Reset()
	_ = run(t.Context(), []string{"keys", "list"}, env, nil, &out, &errb)
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	revoked := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), keyID[1]) && !strings.HasSuffix(strings.TrimSpace(sc.Text()), "-") {
			revoked = true
		}
	}
	if !revoked {
		t.Fatalf("revoked key not shown as revoked:\n%s", out.String())
	}
	if err := run(t.Context(), []string{"keys", "create", "--scope", "root"}, env, nil, &out, &errb); err == nil {
		t.Fatal("an unknown scope was accepted")
	}
}

func TestUnknownCommandExitsTwo(t *testing.T) {
	err := run(t.Context(), []string{"frobnicate"}, envOf(nil), nil, io.Discard, io.Discard)
	if ec, ok := err.(exitCode); !ok || ec != 2 {
		t.Fatalf("err %v, want exit code 2", err)
	}
}

func TestStateRotateKey(t *testing.T) {
	db := filepath.Join(t.TempDir(), "s.db")
	const key = "sk_rotatekeysab_ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	env := map[string]string{"SAMPLIT_BOOTSTRAP_KEY": key}
	base, _, stop := startServer(t, []string{"--db", db, "--webhook-allow-private"}, env)
	request(t, "POST", base+"/v1/experiments", key, `{"key":"e","variants":[{"key":"a"},{"key":"b"}],"start":true}`)
	if code, w := request(t, "POST", base+"/v1/webhooks", key, `{"url":"http://127.0.0.1:9/hook","events":["ping"]}`); code != 201 {
		t.Fatalf("create webhook: %d %v", code, w)
	}
	if code, _ := request(t, "POST", base+"/v1/experiments/e/assign", key, `{"unit_ids":["u1","u2","u3"]}`); code != 200 {
		t.Fatalf("assign: %d", code)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// The first server sealed its state under the key it generated beside
	// the database; rotate to a new primary, reading with the old one.
	oldKey, err := os.ReadFile(db + ".state.key")
	if err != nil {
		t.Fatalf("no generated state key beside the database: %v", err)
	}
	newKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	var out, errb bytes.Buffer
	args := []string{"state", "rotate-key", "--db", db, "--state-key", newKey, "--state-old-keys", strings.TrimSpace(string(oldKey))}
	if err := run(t.Context(), args, envOf(nil), nil, &out, &errb); err != nil {
		t.Fatalf("rotate-key: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "scanned 1, resealed 1") || !strings.Contains(out.String(), "webhook secrets: scanned 1, resealed 1, failed 0") {
		t.Fatalf("rotate-key report: %s", out.String())
	}
	out.Reset()
	if err := run(t.Context(), args, envOf(nil), nil, &out, &errb); err != nil || strings.Count(out.String(), "resealed 0") != 2 {
		t.Fatalf("a second rotation must find nothing to do: %v %s", err, out.String())
	}
	// Without the new key the rotated state cannot be read: the keys
	// really changed.
	if err := run(t.Context(), []string{"state", "rotate-key", "--db", db, "--state-key", strings.TrimSpace(string(oldKey))}, envOf(nil), nil, &out, &errb); err == nil {
		t.Fatal("rotating back without the new key must fail: the rows are sealed under it now")
	}

	// A server on the new key serves the experiment and its results.
	base, _, _ = startServer(t, []string{"--db", db, "--state-key", newKey}, env)
	if code, res := request(t, "GET", base+"/v1/experiments/e/results", key, ""); code != 200 || res["total_units"] != 3.0 {
		t.Fatalf("results on the new key: %d %v", code, res)
	}
}

// TestVersion: `samplit version` names the binary, its version (stamped, or
// the module's from the build info) and the Go toolchain; the VCS revision
// is there when the build stamped it (go build -buildvcs=true).
func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"version"}, envOf(nil), nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(out.String())
	if !strings.HasPrefix(line, "samplit ") || !strings.Contains(line, runtime.Version()) || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("version line %q", line)
	}
	old := version
	version = "v9.9.9"
	defer func() { version = old }()
	out.Reset()
	run(t.Context(), []string{"--version"}, envOf(nil), nil, &out, io.Discard)
	if !strings.HasPrefix(out.String(), "samplit v9.9.9 ") {
		t.Errorf("a stamped version is not shown first: %q", out.String())
	}
}

// TestServeCapsConnections: with --max-connections 16, 200 clients without
// a key that keep their connections open after one request cannot keep a
// client with a key out; and retention has run once at start (its metric is
// served).
func TestServeCapsConnections(t *testing.T) {
	const key = "sk_devlocalkeys_ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	env := map[string]string{"SAMPLIT_BOOTSTRAP_KEY": key, "SAMPLIT_DATABASE_URL": filepath.Join(t.TempDir(), "s.db")}
	base, stderr, _ := startServer(t, []string{"--max-connections", "16"}, env)
	if !strings.Contains(stderr.String(), `"max_connections":16`) {
		t.Errorf("the listening line does not give the connection cap:\n%s", stderr.String())
	}
	addr := strings.TrimPrefix(base, "http://")
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range 200 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(500 * time.Millisecond))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		_, _ = http.ReadResponse(bufio.NewReader(c), nil)
	}
	start := time.Now()
	if code, _ := request(t, "GET", base+"/v1/experiments", key, ""); code != 200 {
		t.Fatalf("with 200 idle connections open, a client with a key got %d", code)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the client with a key waited %v", d)
	}
	// The server closed the idle connections beyond its cap.
	closed := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			closed++
		}
	}
	if closed < 200-16 {
		t.Errorf("%d of 200 idle connections closed by the server, want at least %d", closed, 200-16)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(b), `samplit_retention_runs_total{outcome="ok"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks the first retention run:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
