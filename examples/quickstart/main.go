// Quickstart shows the Go client end to end against a running Samplit
// server: it creates an experiment (or reuses it), assigns a few hundred
// simulated users, converts some of them (the green button a little more
// often), and prints the results table.
//
//	samplit serve &   # prints "admin key: sk_..." on first start
//	SAMPLIT_KEY=sk_... go run ./examples/quickstart
//
// Flags override the environment: -url (SAMPLIT_URL, default
// http://localhost:8080), -key (SAMPLIT_KEY), -experiment, -users, -seed.
// Running it again reuses the experiment: the same users get the same
// variants back and their conversions count once, thanks to idempotency
// keys; use -users or -seed for new ones.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"text/tabwriter"

	"github.com/samplit/samplit/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "quickstart:", err)
		}
		os.Exit(1)
	}
}

// trueRates are the simulated users' conversion rates by variant: what the
// experiment is meant to find out.
var trueRates = map[string]float64{"control": 0.10, "green": 0.16}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.SetOutput(stdout)
	baseURL := fs.String("url", or(getenv("SAMPLIT_URL"), "http://localhost:8080"), "the Samplit server (env SAMPLIT_URL)")
	apiKey := fs.String("key", getenv("SAMPLIT_KEY"), "an API key with the write or admin scope (env SAMPLIT_KEY)")
	expKey := fs.String("experiment", "quickstart-checkout-button", "the key of the experiment to create or reuse")
	users := fs.Int("users", 300, "how many users to assign")
	seed := fs.Uint64("seed", 1, "the seed of the simulated users: the same seed, the same users and conversions")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *apiKey == "" {
		return errors.New("an API key is needed: pass -key or set SAMPLIT_KEY (samplit serve prints one on first start)")
	}
	if *users < 1 {
		return errors.New("-users must be at least 1")
	}
	c := client.New(*baseURL, *apiKey, client.WithUserAgent("samplit-quickstart"))

	e, err := ensureExperiment(ctx, c, *expKey, stdout)
	if err != nil {
		return err
	}

	// Assign the users, a batch at a time, and convert some of them. The
	// idempotency key of a conversion is its user's, so that a user
	// converts once however often this program runs.
	rng := rand.New(rand.NewPCG(*seed, 0))
	var assigned, fresh int
	var sent int
	var total client.EventsResult
	for start := 0; start < *users; start += client.MaxBatch {
		ids := make([]string, 0, min(client.MaxBatch, *users-start))
		for i := start; i < start+cap(ids); i++ {
			ids = append(ids, fmt.Sprintf("quickstart-%d-user-%d", *seed, i))
		}
		as, err := c.AssignMany(ctx, e.Key, ids)
		if err != nil {
			return fmt.Errorf("assign: %w", err)
		}
		var events []client.Event
		for _, a := range as {
			if a.Variant == "" {
				continue // outside the experiment's traffic share
			}
			assigned++
			if a.New {
				fresh++
			}
			if rng.Float64() < trueRates[a.Variant] {
				events = append(events, client.Event{UnitID: a.UnitID, IdempotencyKey: "quickstart-" + a.UnitID})
			}
		}
		if len(events) == 0 {
			continue
		}
		sent += len(events)
		res, err := c.TrackMany(ctx, e.Key, events)
		if err != nil {
			return fmt.Errorf("track: %w", err)
		}
		total.Accepted += res.Accepted
		total.Duplicates += res.Duplicates
		total.Rejected = append(total.Rejected, res.Rejected...)
	}
	fmt.Fprintf(stdout, "assigned %d users (%d new), sent %d conversions: %d accepted, %d duplicates, %d rejected\n",
		assigned, fresh, sent, total.Accepted, total.Duplicates, len(total.Rejected))

	r, err := c.Results(ctx, e.Key)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	printResults(stdout, r)
	return nil
}

// ensureExperiment creates the experiment, or finds it and makes it run.
func ensureExperiment(ctx context.Context, c *client.Client, key string, stdout io.Writer) (*client.Experiment, error) {
	e, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{
		Key:    key,
		Name:   "Quickstart: checkout button colour",
		Metric: client.MetricBinary,
		Variants: []client.VariantSpec{
			{Key: "control", Control: true, Payload: map[string]string{"color": "grey"}},
			{Key: "green", Payload: map[string]string{"color": "green"}},
		},
		Start: true,
	})
	if err == nil {
		fmt.Fprintf(stdout, "created experiment %s (%s)\n", e.Key, e.ID)
		return e, nil
	}
	if !client.IsConflict(err) {
		return nil, fmt.Errorf("create experiment %s: %w", key, err)
	}
	if e, err = c.GetExperiment(ctx, key); err != nil {
		return nil, fmt.Errorf("get experiment %s: %w", key, err)
	}
	switch e.Status {
	case client.StatusRunning:
	case client.StatusDraft:
		e, err = c.StartExperiment(ctx, key)
	case client.StatusPaused:
		e, err = c.ResumeExperiment(ctx, key)
	default:
		return nil, fmt.Errorf("experiment %s is %s; pass -experiment with another key", key, e.Status)
	}
	if err != nil {
		return nil, fmt.Errorf("run experiment %s: %w", key, err)
	}
	fmt.Fprintf(stdout, "reusing experiment %s (%s)\n", e.Key, e.ID)
	return e, nil
}

// printResults writes the results as a table for people.
func printResults(w io.Writer, r *client.Results) {
	fmt.Fprintf(w, "\nresults of %s (%s, %s), %d units\n", r.ExperimentID, r.Strategy, r.Status, r.TotalUnits)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "variant\tunits\tconversions\trate\t95% interval\tP(best)\tweight\tlift\t")
	for _, v := range r.Variants {
		lift := "-"
		if v.Lift != nil {
			lift = fmt.Sprintf("%+.1f%%", 100**v.Lift)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f%%\t%.1f%%–%.1f%%\t%.2f\t%.2f\t%s\t\n",
			v.Key, v.Units, v.Conversions, 100*v.Mean, 100*v.CILow, 100*v.CIHigh, v.PBest, v.Weight, lift)
	}
	tw.Flush()
	winner := "none yet"
	if r.Winner != nil {
		winner = *r.Winner
	}
	fmt.Fprintf(w, "\ndecision: %s: %s\nwinner: %s\n", r.Decision.State, r.Decision.Reason, winner)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
