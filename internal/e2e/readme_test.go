package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlocks returns the shell blocks of README.md marked with
// <!-- walkthrough: NAME --> on the line before their ```sh fence, in
// order, as written.
func readmeBlocks(t *testing.T) (names, blocks []string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	readme, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- walkthrough: ([a-z-]+) -->\n```sh\n(.*?)```")
	for _, m := range re.FindAllSubmatch(readme, -1) {
		names = append(names, string(m[1]))
		blocks = append(blocks, string(m[2]))
	}
	return names, blocks
}

// TestReadmeWalkthrough pastes the README's walkthrough into bash, block
// after block in one shell as a reader would, against a fresh server in an
// empty directory, and checks what each block prints. Two things differ
// from a reader's machine, both outside the README's text: `go run
// ./cmd/samplit` and `go install ./cmd/samplit` run the binary this test
// built (a shell function named go), and the server listens on a free
// port rather than 8080 (SAMPLIT_ADDR, with localhost:8080 in the blocks
// pointed at it), so that the test can run beside others.
func TestReadmeWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is needed")
		}
		t.Skip("curl is not installed")
	}
	bin := binary(t)
	names, blocks := readmeBlocks(t)
	if want := []string{"start", "cli", "funnels", "campaigns"}; strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("README walkthrough blocks %v, want %v", names, want)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	dir := t.TempDir()
	_, file, _, _ := runtime.Caller(0)
	// The campaign block simulates examples/campaigns/email-subjects.json.
	if err := os.Symlink(filepath.Join(filepath.Dir(file), "..", "..", "examples"), filepath.Join(dir, "examples")); err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(binDir, "samplit")); err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString(`go() {
  case "$1 $2" in
    "run ./cmd/samplit") shift 2; exec samplit "$@" ;;
    "install ./cmd/samplit") ;;
    *) echo "unexpected: go $*" >&2; return 1 ;;
  esac
}
`)
	for i, b := range blocks {
		fmt.Fprintf(&script, "echo '@@block %s'\n%s\n", names[i], strings.ReplaceAll(b, "localhost:8080", addr))
	}
	// As the README says, the reader stops the server with kill %1.
	script.WriteString("echo '@@end'\nkill %1\nwait\n")

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + binDir + ":" + os.Getenv("PATH"), "HOME=" + dir, "SAMPLIT_ADDR=" + addr, "SAMPLIT_LOG_FORMAT=text"}
	// Its own process group: the server the walkthrough leaves running in
	// the background is stopped with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second // a server left running holds the pipes open
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	t.Logf("stdout:\n%s", stdout.String())
	if err != nil || t.Failed() {
		t.Logf("stderr:\n%s", stderr.String())
	}
	if err != nil {
		t.Fatalf("bash: %v", err)
	}

	out := map[string]string{}
	parts := strings.Split(stdout.String(), "@@block ")
	for _, p := range parts[1:] {
		name, body, _ := strings.Cut(p, "\n")
		out[name] = body
	}
	if !strings.Contains(out["campaigns"], "@@end") {
		t.Fatalf("the walkthrough did not run to its end")
	}
	checks := map[string][]string{
		"start":     {`"key":"checkout-button"`, `"status":"running"`, `"unit_id":"user-123"`, `"new":true`, `"accepted":1`, `"total_units":1`, `"decision":{"state":"collecting"`},
		"cli":       {"\nID ", "NAME", "SCOPE", "revoked key_"},
		"funnels":   {`"key":"signup-flow"`, `"step":"landing"`, `"funnel_id":`},
		"campaigns": {`"key":"bf"`, `"recipient":"r1"`, `"accepted":1`, `"campaign_id":`, "waves"},
	}
	for name, wants := range checks {
		for _, w := range wants {
			if !strings.Contains(out[name], w) {
				t.Errorf("block %q printed no %q:\n%s", name, w, out[name])
			}
		}
	}
	// The key made by `samplit keys create` is printed alone on its line.
	if !regexp.MustCompile(`(?m)^sk_[a-z2-7]{12}_[A-Z2-7]{26,}$`).MatchString(out["cli"]) {
		t.Errorf("keys create printed no key:\n%s", out["cli"])
	}
	// The server told the reader where the dashboard is.
	if !strings.Contains(stderr.String(), "dashboard: http://"+addr+"/") {
		t.Errorf("no dashboard line on the server's stderr")
	}
	for _, bad := range []string{"command not found", "curl: (", "unexpected: go", "Usage:"} {
		if strings.Contains(stderr.String(), bad) {
			t.Errorf("stderr has %q:\n%s", bad, stderr.String())
		}
	}
}
