// Command samplit is the Samplit adaptive experimentation server and its
// companion commands (migrations, keys, state key rotation, the offline
// calculator and simulator).
//
// main only calls run, which takes its arguments, environment and streams as
// parameters, so that tests drive the real program in-process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	var ec exitCode
	switch {
	case err == nil:
	case errors.As(err, &ec):
		os.Exit(int(ec))
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "samplit:", err)
		os.Exit(1)
	}
}

// exitCode is an error that only carries an exit status: the command has
// already told the user what went wrong.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

const usage = `Usage: samplit <command> [flags]

Commands:
  serve              run the HTTP server (default: 127.0.0.1:8080 over ./samplit.db)
  migrate up|status  apply or show the database migrations
  keys create|list|revoke
                     manage API keys
  state rotate-key   re-seal every optimizer state and webhook secret under the primary state key
  analyze            offline calculator: results for counts from anywhere
  simulate           replay a strategy against known rates
  healthcheck        exit 0 when the server on this machine is ready (a container's HEALTHCHECK)
  version            print the version

Run 'samplit <command> --help' for a command's flags.
`

// run is the whole program: it dispatches to the command named in args.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitCode(2)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return group(ctx, "migrate", migrateCommands, rest, getenv, stdout, stderr)
	case "keys":
		return group(ctx, "keys", keysCommands, rest, getenv, stdout, stderr)
	case "state":
		return group(ctx, "state", stateCommands, rest, getenv, stdout, stderr)
	case "analyze":
		return offlineCommand(analyzeFunc, rest, stdout, stderr)
	case "simulate":
		return offlineCommand(simulateFunc, rest, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, rest, getenv, stdout, stderr)
	case "version", "--version":
		return versionCommand(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "samplit: unknown command %q\n\n%s", cmd, usage)
		return exitCode(2)
	}
}

// offlineCommand runs a command that reports its own errors and returns an
// exit status.
func offlineCommand(f func([]string, io.Writer, io.Writer) int, args []string, stdout, stderr io.Writer) error {
	if code := f(args, stdout, stderr); code != 0 {
		return exitCode(code)
	}
	return nil
}
