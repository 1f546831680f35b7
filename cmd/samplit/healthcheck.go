package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/samplit/samplit/internal/cli"
)

// healthcheck is `samplit healthcheck`: it asks a server on this machine
// whether it is ready (GET /readyz) and exits 0 when it is, 1 when not. It is
// the container's HEALTHCHECK: a distroless or scratch image has no curl.
// The address defaults to SAMPLIT_ADDR with an unspecified host (0.0.0.0,
// [::]) replaced by loopback, so the probe reaches the server it runs beside.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := cli.New("samplit healthcheck", "samplit healthcheck [flags]",
		"Exit 0 when the server on this machine answers GET /readyz with 200, 1 when not\n(a container's HEALTHCHECK: a distroless image has no curl).")
	fs := c.FS
	def := getenv("SAMPLIT_ADDR")
	if def == "" {
		def = "127.0.0.1:8080"
	}
	addr := fs.String("addr", def, "`address` of the server to probe (host:port; env SAMPLIT_ADDR); 0.0.0.0 and [::] mean this machine")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := parse(c, args, stdout, stderr); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "samplit healthcheck: --addr %q: %v\n", *addr, err)
		return exitCode(2)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "samplit healthcheck: %s: %v\n", url, err)
		return exitCode(1)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "samplit healthcheck: %s answered %s\n", url, resp.Status)
		return exitCode(1)
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}
