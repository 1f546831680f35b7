package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/api"
	"github.com/samplit/samplit/internal/apikey"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/seal"
	"github.com/samplit/samplit/internal/store/backend"
	"github.com/samplit/samplit/internal/store/dbtest"
)

// startServer runs the real API over a fresh SQLite database and returns
// its URL and the bootstrap admin key.
func startServer(t *testing.T) (url, key string) {
	t.Helper()
	ctx := context.Background()
	st, err := backend.Open(ctx, dbtest.SQLite(t), backend.Options{AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	admin, _, err := apikey.Bootstrap(ctx, st, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var material [seal.KeySize]byte
	rand.Read(material[:])
	k, err := seal.NewKey(material[:])
	if err != nil {
		t.Fatal(err)
	}
	ring, err := seal.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	opt := optimize.NewExperiments(st, ring, time.Now, nil, optimize.Options{})
	hs := httptest.NewServer(api.NewServer(api.Deps{Store: st, Optimizers: &optimize.Services{Experiments: opt}}, api.Options{}))
	t.Cleanup(opt.Close)
	t.Cleanup(hs.Close)
	return hs.URL, admin
}

func TestQuickstart(t *testing.T) {
	url, key := startServer(t)
	env := map[string]string{"SAMPLIT_URL": url, "SAMPLIT_KEY": key}
	getenv := func(k string) string { return env[k] }

	var out bytes.Buffer
	if err := run(t.Context(), []string{"quickstart"}, getenv, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, &out)
	}
	t.Logf("first run:\n%s", &out)
	text := out.String()
	if !strings.Contains(text, "created experiment quickstart-checkout-button (exp_") {
		t.Errorf("no creation line")
	}
	m := regexp.MustCompile(`assigned (\d+) users \((\d+) new\), sent (\d+) conversions: (\d+) accepted, (\d+) duplicates, (\d+) rejected`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("no summary line")
	}
	if m[1] != "300" || m[2] != "300" || m[3] != m[4] || m[5] != "0" || m[6] != "0" {
		t.Errorf("summary %q: want 300 new users and every conversion accepted", m[0])
	}
	sent, _ := strconv.Atoi(m[3])
	if sent < 15 || sent > 70 {
		t.Errorf("%d conversions of 300 users at 10-16%%", sent)
	}
	units, conversions := table(t, text)
	if units != 300 || conversions != sent {
		t.Errorf("table: %d units and %d conversions, want 300 and %d", units, conversions, sent)
	}
	if !strings.Contains(text, "decision: collecting") && !strings.Contains(text, "decision: winner_found") {
		t.Errorf("no decision line")
	}

	// Again: the same experiment, the same users, nothing counted twice.
	out.Reset()
	if err := run(t.Context(), []string{"quickstart", "-url", url}, getenv, &out); err != nil {
		t.Fatalf("second run: %v\n%s", err, &out)
	}
	t.Logf("second run:\n%s", &out)
	text = out.String()
	if !strings.Contains(text, "reusing experiment quickstart-checkout-button") ||
		!strings.Contains(text, "assigned 300 users (0 new), sent "+m[3]+" conversions: 0 accepted, "+m[3]+" duplicates, 0 rejected") {
		t.Errorf("second run did not reuse the experiment and its users")
	}
	if units, conversions := table(t, text); units != 300 || conversions != sent {
		t.Errorf("table after the second run: %d units, %d conversions", units, conversions)
	}

	// More users with another seed, flags over the environment.
	out.Reset()
	if err := run(t.Context(), []string{"quickstart", "-users", "50", "-seed", "2"}, getenv, &out); err != nil {
		t.Fatalf("third run: %v\n%s", err, &out)
	}
	if units, _ := table(t, out.String()); units != 350 || !strings.Contains(out.String(), "assigned 50 users (50 new)") {
		t.Errorf("third run:\n%s", &out)
	}
}

func TestQuickstartErrors(t *testing.T) {
	url, key := startServer(t)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no key", []string{"quickstart"}, map[string]string{"SAMPLIT_URL": url}, "API key is needed"},
		{"bad key", []string{"quickstart", "-key", "sk_wrong"}, map[string]string{"SAMPLIT_URL": url}, "401"},
		{"bad flag", []string{"quickstart", "-nope"}, nil, "flag provided but not defined"},
		{"no users", []string{"quickstart", "-key", key, "-url", url, "-users", "0"}, nil, "-users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(t.Context(), tt.args, func(k string) string { return tt.env[k] }, &out)
			if err == nil || !strings.Contains(err.Error()+out.String(), tt.want) {
				t.Errorf("err = %v, output %q; want %q", err, out.String(), tt.want)
			}
		})
	}
}

// table returns the sums of the units and conversions columns.
func table(t *testing.T, text string) (units, conversions int) {
	t.Helper()
	rows := 0
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || (f[0] != "control" && f[0] != "green") {
			continue
		}
		u, err1 := strconv.Atoi(f[1])
		c, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			t.Fatalf("table row %q", line)
		}
		units += u
		conversions += c
		rows++
	}
	if rows != 2 {
		t.Fatalf("%d table rows, want 2:\n%s", rows, text)
	}
	return units, conversions
}
