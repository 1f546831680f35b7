package main

import (
	"bytes"
	"errors"
	"flag"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestHelpOfEveryCommand runs --help (and -h) for every command and
// subcommand: each exits 0, writes to stdout only, starts with its own
// usage line, and lists exactly its own flags (in one format:
// "  --name VALUE" then the description indented by eight spaces).
func TestHelpOfEveryCommand(t *testing.T) {
	db := []string{"config", "db", "pg-simple-protocol"}
	cases := []struct {
		args  []string
		usage string
		flags []string // nil: a group, which lists subcommands instead
		subs  []string
	}{
		{args: []string{"migrate"}, usage: "samplit migrate up|status", subs: []string{"up", "status"}},
		{args: []string{"migrate", "up"}, usage: "samplit migrate up", flags: db},
		{args: []string{"migrate", "status"}, usage: "samplit migrate status", flags: db},
		{args: []string{"keys"}, usage: "samplit keys create|list|revoke", subs: []string{"create", "list", "revoke"}},
		{args: []string{"keys", "create"}, usage: "samplit keys create", flags: append(slices.Clone(db), "workspace", "scope", "name")},
		{args: []string{"keys", "list"}, usage: "samplit keys list", flags: append(slices.Clone(db), "workspace")},
		{args: []string{"keys", "revoke"}, usage: "samplit keys revoke", flags: append(slices.Clone(db), "workspace")},
		{args: []string{"state"}, usage: "samplit state rotate-key", subs: []string{"rotate-key"}},
		{args: []string{"state", "rotate-key"}, usage: "samplit state rotate-key", flags: append(slices.Clone(db), "state-key", "state-key-file", "state-old-keys")},
		{args: []string{"analyze"}, usage: "samplit analyze", flags: []string{"metric", "variant", "control", "json", "min-samples", "decision-threshold", "loss-threshold"}},
		// simulate has three modes, all in one help: rates, --funnel, --campaign.
		{args: []string{"simulate"}, usage: "samplit simulate", flags: []string{
			"rates", "strategy", "horizon", "runs", "seed", "batch", "look", "min-samples", "weight-floor", "alpha", "tau2", "min-effect", "prior-lift-sd", "lift-sd", "learn-prior", "history-lift-sd", "json",
			"delay-median", "delay-sigma", "funnel", "units", "delay", "delay-model", "hours", "window", "campaign"}},
		{args: []string{"healthcheck"}, usage: "samplit healthcheck", flags: []string{"addr", "timeout"}},
		{args: []string{"version"}, usage: "samplit version", flags: []string{}},
		{args: []string{"serve"}, usage: "samplit serve", flags: nil},
	}
	flagLine := regexp.MustCompile(`(?m)^  --([a-z0-9-]+)( [A-Z_]+)?$`)
	for _, c := range cases {
		for _, h := range []string{"--help", "-h"} {
			name := strings.Join(c.args, " ") + " " + h
			t.Run(name, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				err := run(t.Context(), append(slices.Clone(c.args), h), envOf(nil), nil, &stdout, &stderr)
				if err != nil && !errors.Is(err, flag.ErrHelp) { // main exits 0 on both
					t.Fatalf("exit: %v (a help must exit 0)\n%s", err, stderr.String())
				}
				if stderr.Len() > 0 {
					t.Errorf("help wrote to stderr: %s", stderr.String())
				}
				out := stdout.String()
				if !strings.HasPrefix(out, "Usage: "+c.usage) {
					t.Fatalf("help does not start with %q:\n%s", "Usage: "+c.usage, out)
				}
				if c.subs != nil {
					for _, s := range c.subs {
						if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(s) + `\s`).MatchString(out) {
							t.Errorf("group help lacks subcommand %s:\n%s", s, out)
						}
					}
					return
				}
				var got []string
				for _, m := range flagLine.FindAllStringSubmatch(out, -1) {
					if !slices.Contains(got, m[1]) {
						got = append(got, m[1])
					}
				}
				if c.flags == nil { // serve: its settings, from internal/config
					for _, f := range []string{"addr", "metrics-addr", "db", "decide-every"} {
						if !slices.Contains(got, f) {
							t.Errorf("serve help lacks --%s", f)
						}
					}
					for _, f := range []string{"scope", "workspace", "rates"} {
						if slices.Contains(got, f) {
							t.Errorf("serve help lists another command's --%s", f)
						}
					}
					return
				}
				slices.Sort(got)
				want := slices.Clone(c.flags)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("flags listed %v, want exactly %v\n%s", got, want, out)
				}
			})
		}
	}
}

// TestStrategiesExplainedInHelp: simulate's help explains every strategy
// name it accepts, which is the list the API accepts.
func TestStrategiesExplainedInHelp(t *testing.T) {
	var stdout bytes.Buffer
	_ = run(t.Context(), []string{"simulate", "--help"}, envOf(nil), nil, &stdout, &bytes.Buffer{})
	for _, s := range []string{"adaptive", "fast_learning", "explore", "sequential", "ucb1", "uniform"} {
		if !regexp.MustCompile(`(?m)^  ` + s + ` +\S`).MatchString(stdout.String()) {
			t.Errorf("simulate --help does not explain %s", s)
		}
	}
}

// TestBadFlagsExitTwoWithHint: a wrong flag is an error on stderr that
// names the command and its --help, with status 2, for every kind of
// command.
func TestBadFlagsExitTwoWithHint(t *testing.T) {
	for _, args := range [][]string{{"keys", "list", "--scope", "x"}, {"migrate", "up", "--nope"}, {"healthcheck", "--nope"}, {"version", "--nope"}, {"migrate"}, {"keys", "frobnicate"}} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), args, envOf(nil), nil, &stdout, &stderr)
		var ec exitCode
		if !errors.As(err, &ec) || ec != 2 {
			t.Errorf("%v: %v, want exit status 2", args, err)
		}
		if !strings.Contains(stderr.String(), "--help") && !strings.Contains(stderr.String(), "Usage:") {
			t.Errorf("%v: stderr %q does not point to the help", args, stderr.String())
		}
	}
}
