package client_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/samplit/samplit/client"
)

func TestExperimentCreateAndGet(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()

	e, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{
		Key:      "checkout-button",
		Name:     "Checkout button colour",
		Metric:   client.MetricBinary,
		Strategy: client.StrategySequential,
		Variants: []client.VariantSpec{
			{Key: "control", Control: true, Payload: map[string]string{"color": "grey"}},
			{Key: "green", Name: "Green", Payload: json.RawMessage(`{"color":"green"}`)},
		},
		Settings: &client.SettingsSpec{DecisionThreshold: new(0.99), Seed: new(int64(42)), Traffic: new(0.5)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.Key != "checkout-button" || e.Name != "Checkout button colour" || e.Status != client.StatusDraft ||
		e.Strategy != client.StrategySequential || e.Metric != client.MetricBinary || e.Kind != "standard" {
		t.Errorf("created %+v", e)
	}
	if len(e.ID) < 5 || e.ID[:4] != "exp_" || e.CreatedAt.IsZero() || e.StartedAt != nil || e.Winner != nil {
		t.Errorf("id %q, created_at %v, started_at %v, winner %v", e.ID, e.CreatedAt, e.StartedAt, e.Winner)
	}
	if len(e.Variants) != 2 || !e.Variants[0].Control || e.Variants[1].Control ||
		e.Variants[1].Name != "Green" || string(e.Variants[1].Payload) != `{"color":"green"}` || e.Variants[0].ID == "" {
		t.Errorf("variants %+v", e.Variants)
	}
	s := e.Settings
	if s.DecisionThreshold != 0.99 || s.Seed == nil || *s.Seed != 42 || s.Traffic != 0.5 || s.MinSamples == 0 || s.Alpha == 0 {
		t.Errorf("settings %+v: want the given values and defaults for the rest", s)
	}

	for _, ref := range []string{e.ID, e.Key} {
		got, err := c.GetExperiment(ctx, ref)
		if err != nil {
			t.Fatalf("get %s: %v", ref, err)
		}
		if got.ID != e.ID || !got.CreatedAt.Equal(e.CreatedAt) || len(got.Variants) != 2 {
			t.Errorf("get %s = %+v, want %+v", ref, got, e)
		}
	}

	// Started on creation.
	r, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{
		Key: "running", Variants: []client.VariantSpec{{Key: "a"}, {Key: "b"}}, Start: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != client.StatusRunning || r.StartedAt == nil || r.Strategy != client.StrategyAdaptive || r.Metric != client.MetricBinary {
		t.Errorf("created with start: %+v", r)
	}
}

func TestExperimentErrors(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()
	createBinary(t, c, "taken")

	t.Run("409 key taken", func(t *testing.T) {
		_, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{Key: "taken", Variants: []client.VariantSpec{{Key: "a"}, {Key: "b"}}})
		if !client.IsConflict(err) || client.IsNotFound(err) {
			t.Fatalf("err = %v, want a 409", err)
		}
		e := apiError(t, err)
		if e.Code() != "conflict" || e.Type != client.ProblemTypeBase+"conflict" || e.Title == "" || e.Detail == "" || e.RequestID == "" || e.Instance != "/v1/experiments" {
			t.Errorf("problem %+v", e)
		}
		if f, ok := e.Field("key"); !ok || f.Reason != "is taken" {
			t.Errorf("fields %+v: want key is taken", e.Fields)
		}
	})

	t.Run("422 with fields", func(t *testing.T) {
		_, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{
			Key:      "Bad Key",
			Strategy: "greedy",
			Variants: []client.VariantSpec{{Key: "only"}},
			Settings: &client.SettingsSpec{DecisionThreshold: new(1.5)},
		})
		if !client.IsInvalid(err) {
			t.Fatalf("err = %v, want a 422", err)
		}
		e := apiError(t, err)
		var fields []string
		for _, f := range e.Fields {
			fields = append(fields, f.Field)
			if f.Reason == "" {
				t.Errorf("field %s has no reason", f.Field)
			}
		}
		for _, want := range []string{"key", "strategy", "variants", "settings.decision_threshold"} {
			if !slices.Contains(fields, want) {
				t.Errorf("fields %v lack %s", fields, want)
			}
		}
		if e.Status != http.StatusUnprocessableEntity || e.Code() != "invalid" {
			t.Errorf("problem %+v", e)
		}
		for _, want := range []string{"422", "settings.decision_threshold", e.RequestID} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q lacks %q", err.Error(), want)
			}
		}
	})

	t.Run("404", func(t *testing.T) {
		for _, ref := range []string{"nope", "exp_00000000000000000000000000", "Not A Slug/../x"} {
			_, err := c.GetExperiment(ctx, ref)
			if !client.IsNotFound(err) {
				t.Errorf("get %q: err = %v, want a 404", ref, err)
			}
		}
		_, err := c.StartExperiment(ctx, "nope")
		if !client.IsNotFound(err) {
			t.Errorf("start: err = %v, want a 404", err)
		}
	})

	t.Run("401 and 403", func(t *testing.T) {
		_, err := client.New(srv.URL, "sk_wrong").GetExperiment(ctx, "taken")
		if !client.IsUnauthorized(err) {
			t.Errorf("bad key: err = %v, want a 401", err)
		}
		assign := client.New(srv.URL, srv.key(t, "assign"))
		_, err = assign.GetExperiment(ctx, "taken")
		if !client.IsForbidden(err) {
			t.Errorf("assign key: err = %v, want a 403", err)
		}
		if _, err := assign.Assign(ctx, "taken", "u1"); err != nil {
			t.Errorf("assign key cannot assign: %v", err)
		}
	})
}

func TestExperimentLifecycle(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()
	e, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{Key: "life", Variants: []client.VariantSpec{{Key: "a"}, {Key: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func() (*client.Experiment, error)
		want client.Status
	}{
		{"start", func() (*client.Experiment, error) { return c.StartExperiment(ctx, e.Key) }, client.StatusRunning},
		{"pause", func() (*client.Experiment, error) { return c.PauseExperiment(ctx, e.ID) }, client.StatusPaused},
		{"resume", func() (*client.Experiment, error) { return c.ResumeExperiment(ctx, e.Key) }, client.StatusRunning},
		{"complete", func() (*client.Experiment, error) { return c.CompleteExperiment(ctx, e.Key, "b") }, client.StatusCompleted},
		{"archive", func() (*client.Experiment, error) { return c.ArchiveExperiment(ctx, e.Key) }, client.StatusArchived},
	}
	for _, s := range steps {
		got, err := s.do()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got.Status != s.want {
			t.Fatalf("%s: status %s, want %s", s.name, got.Status, s.want)
		}
		if s.name == "complete" && (got.Winner == nil || *got.Winner != "b" || !got.WinnerFixed || got.CompletedAt == nil) {
			t.Errorf("complete with winner: winner %v fixed %v completed_at %v", got.Winner, got.WinnerFixed, got.CompletedAt)
		}
	}

	// Transitions the status does not allow: 409.
	if _, err := c.StartExperiment(ctx, e.Key); !client.IsConflict(err) {
		t.Errorf("start archived: err = %v, want a 409", err)
	}
	r := createBinary(t, c, "running")
	if _, err := c.ArchiveExperiment(ctx, r.Key); !client.IsConflict(err) {
		t.Errorf("archive running: err = %v, want a 409", err)
	}
	if _, err := c.ResumeExperiment(ctx, r.Key); !client.IsConflict(err) {
		t.Errorf("resume running: err = %v, want a 409", err)
	}
	// A winner that is no variant: 422 naming the field.
	_, err = c.CompleteExperiment(ctx, r.Key, "purple")
	if e := apiError(t, err); e.Status != 422 || len(e.Fields) != 1 || e.Fields[0].Field != "winner" {
		t.Errorf("complete with an unknown winner: %v", err)
	}
	// Complete without a winner.
	done, err := c.CompleteExperiment(ctx, r.Key, "")
	if err != nil || done.Status != client.StatusCompleted || done.WinnerFixed {
		t.Errorf("complete without winner: %+v, %v", done, err)
	}
}

func TestListExperiments(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()
	var keys []string
	for i := range 5 {
		key := fmt.Sprintf("exp-%d", i)
		keys = append(keys, key)
		_, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{Key: key, Variants: []client.VariantSpec{{Key: "a"}, {Key: "b"}}, Start: i%2 == 0})
		if err != nil {
			t.Fatal(err)
		}
	}

	page, err := c.ListExperiments(ctx, client.ListParams{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.Items[0].Key != "exp-0" || page.NextCursor == nil {
		t.Fatalf("first page: %d items, next %v", len(page.Items), page.NextCursor)
	}
	page2, err := c.ListExperiments(ctx, client.ListParams{Limit: 2, Cursor: *page.NextCursor})
	if err != nil || len(page2.Items) != 2 || page2.Items[0].Key != "exp-2" {
		t.Fatalf("second page: %+v, %v", page2, err)
	}

	var got []string
	for e, err := range c.Experiments(ctx, client.ListParams{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Key)
	}
	if !slices.Equal(got, keys) {
		t.Errorf("iterated %v, want %v", got, keys)
	}

	got = nil
	for e, err := range c.Experiments(ctx, client.ListParams{Status: client.StatusRunning}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Key)
	}
	if want := []string{"exp-0", "exp-2", "exp-4"}; !slices.Equal(got, want) {
		t.Errorf("running: %v, want %v", got, want)
	}

	// Stopping early stops fetching.
	n := 0
	for range c.Experiments(ctx, client.ListParams{Limit: 1}) {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Errorf("broke after %d", n)
	}

	// A bad parameter ends the iteration with the server's 422.
	var errs []error
	for _, err := range c.Experiments(ctx, client.ListParams{Cursor: "not-a-cursor"}) {
		errs = append(errs, err)
	}
	if len(errs) != 1 || !client.IsInvalid(errs[0]) {
		t.Errorf("bad cursor: %v, want one 422", errs)
	}
	if _, err := c.ListExperiments(ctx, client.ListParams{Limit: 1000}); !client.IsInvalid(err) {
		t.Errorf("limit 1000: err = %v, want a 422", err)
	}
}

// TestExperimentLearnPrior: learn_prior goes both ways through the client
// (on by default, off when asked), and results carry the prior in effect.
func TestExperimentLearnPrior(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()
	variants := []client.VariantSpec{{Key: "control", Control: true}, {Key: "green"}}
	on, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{Key: "on", Variants: variants, Start: true})
	if err != nil {
		t.Fatal(err)
	}
	off, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{Key: "off", Variants: variants,
		Settings: &client.SettingsSpec{LearnPrior: new(false)}})
	if err != nil {
		t.Fatal(err)
	}
	if !on.Settings.LearnPrior || off.Settings.LearnPrior {
		t.Errorf("learn_prior: %v by default, %v when turned off", on.Settings.LearnPrior, off.Settings.LearnPrior)
	}
	set, err := c.CreateExperiment(ctx, client.CreateExperimentRequest{Key: "set", Variants: variants, Start: true,
		Settings: &client.SettingsSpec{PriorLiftSD: new(0.03)}})
	if err != nil {
		t.Fatal(err)
	}
	// No completed experiment: nothing learned; a setting is in effect.
	for key, want := range map[string]*client.LiftPrior{on.Key: nil, set.Key: {Source: "prior_lift_sd", LiftSD: 0.03}} {
		r, err := c.Results(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if (r.Prior == nil) != (want == nil) || (want != nil && *r.Prior != *want) {
			t.Errorf("%s: prior %+v, want %+v", key, r.Prior, want)
		}
	}
}
