package client_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/samplit/samplit/client"
)

// signup is a funnel of three steps: a landing page with two headlines, a
// form without variants, and the goal.
func signup(key string, start bool) client.CreateFunnelRequest {
	return client.CreateFunnelRequest{
		Key:  key,
		Name: "Sign-up",
		Steps: []client.FunnelStepSpec{
			{Key: "landing", Variants: []client.VariantSpec{{Key: "plain"}, {Key: "bold", Payload: map[string]string{"headline": "Start now"}}}},
			{Key: "form"},
			{Key: "done", Name: "Signed up"},
		},
		Settings: &client.FunnelSettingsSpec{AttributionWindowSeconds: new(int64(3600)), Seed: new(int64(7)), Alpha: new(0.01), PriorLiftSD: new(0.03)},
		Start:    start,
	}
}

func TestFunnels(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()

	f, err := c.CreateFunnel(ctx, signup("signup", false))
	if err != nil {
		t.Fatal(err)
	}
	if f.Key != "signup" || f.Status != client.StatusDraft || f.Strategy != client.StrategyMultiStep || len(f.Steps) != 3 {
		t.Fatalf("created %+v", f)
	}
	if !f.Steps[2].Goal || f.Steps[0].Goal || len(f.Steps[0].Variants) != 2 || len(f.Steps[1].Variants) != 0 || f.Steps[2].Name != "Signed up" {
		t.Errorf("steps %+v", f.Steps)
	}
	if f.Settings.AttributionWindow() != time.Hour || f.Settings.Seed == nil || *f.Settings.Seed != 7 || f.Settings.MinSamples == 0 ||
		f.Settings.Alpha != 0.01 || f.Settings.MinEffect != 0.05 || f.Settings.PriorLiftSD == nil || *f.Settings.PriorLiftSD != 0.03 {
		t.Errorf("settings %+v", f.Settings)
	}
	for _, ref := range []string{f.ID, f.Key} {
		got, err := c.GetFunnel(ctx, ref)
		if err != nil || got.ID != f.ID {
			t.Errorf("get %s: %+v, %v", ref, got, err)
		}
	}

	// Errors: 409, 422 with fields under steps[i], 404.
	if _, err := c.CreateFunnel(ctx, signup("signup", false)); !client.IsConflict(err) {
		t.Errorf("key taken: %v", err)
	}
	bad := signup("bad", false)
	bad.Steps[2].Variants = []client.VariantSpec{{Key: "x"}, {Key: "x"}}
	_, err = c.CreateFunnel(ctx, bad)
	e := apiError(t, err)
	var fields []string
	for _, f := range e.Fields {
		fields = append(fields, f.Field)
	}
	if e.Status != 422 || !slices.Contains(fields, "steps[2].variants") {
		t.Errorf("variants on the goal: %v (fields %v)", err, fields)
	}
	if _, err := c.GetFunnel(ctx, "nope"); !client.IsNotFound(err) {
		t.Errorf("unknown funnel: %v", err)
	}
	if _, err := c.Progress(ctx, "signup", client.ProgressRequest{UnitID: "u", Step: "landing"}); !client.IsConflict(err) {
		t.Errorf("progress in a draft: %v, want a 409", err)
	}

	// Lifecycle.
	for _, s := range []struct {
		name string
		do   func(string, ...client.CallOption) (*client.Funnel, error)
		want client.Status
	}{
		{"start", func(r string, o ...client.CallOption) (*client.Funnel, error) { return c.StartFunnel(ctx, r, o...) }, client.StatusRunning},
		{"pause", func(r string, o ...client.CallOption) (*client.Funnel, error) { return c.PauseFunnel(ctx, r, o...) }, client.StatusPaused},
		{"resume", func(r string, o ...client.CallOption) (*client.Funnel, error) { return c.ResumeFunnel(ctx, r, o...) }, client.StatusRunning},
	} {
		got, err := s.do("signup")
		if err != nil || got.Status != s.want {
			t.Fatalf("%s: %+v, %v", s.name, got, err)
		}
	}
	if _, err := c.StartFunnel(ctx, "signup"); !client.IsConflict(err) {
		t.Errorf("start a running funnel: %v", err)
	}

	// Progress: 20 units land, 10 fill the form, 5 sign up.
	seen := map[string]string{}
	for i := range 20 {
		u := fmt.Sprintf("u%d", i)
		a, err := c.Progress(ctx, "signup", client.ProgressRequest{UnitID: u, Step: "landing"})
		if err != nil {
			t.Fatal(err)
		}
		if !a.New || a.Step != "landing" || (a.Variant != "plain" && a.Variant != "bold") {
			t.Fatalf("progress %+v", a)
		}
		var p struct{ Headline string }
		if err := a.DecodePayload(&p); err != nil || (a.Variant == "bold") != (p.Headline == "Start now") {
			t.Errorf("payload of %s: %s (%v)", a.Variant, a.Payload, err)
		}
		seen[u] = a.Variant
		if i < 10 {
			if a, err := c.Progress(ctx, "signup", client.ProgressRequest{UnitID: u, Step: "form"}); err != nil || a.Variant != "" || !a.New {
				t.Fatalf("form: %+v, %v", a, err)
			}
		}
		if i < 5 {
			if _, err := c.Progress(ctx, "signup", client.ProgressRequest{UnitID: u, Step: "done", Value: new(9.5)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	again, err := c.Progress(ctx, "signup", client.ProgressRequest{UnitID: "u3", Step: "landing"})
	if err != nil || again.New || again.Variant != seen["u3"] {
		t.Errorf("repeated progress: %+v, %v; want %s, not new", again, err, seen["u3"])
	}
	_, err = c.Progress(ctx, "signup", client.ProgressRequest{UnitID: "stranger", Step: "done"})
	if e := apiError(t, err); e.Status != 422 || e.Fields[0].Field != "unit_id" {
		t.Errorf("goal without entering: %v", err)
	}
	_, err = c.Progress(ctx, "signup", client.ProgressRequest{UnitID: "u1", Step: "checkout"})
	if e := apiError(t, err); e.Status != 422 || e.Fields[0].Field != "step" {
		t.Errorf("unknown step: %v", err)
	}

	r, err := c.FunnelResults(ctx, "signup")
	if err != nil {
		t.Fatal(err)
	}
	if r.FunnelID != f.ID || r.Status != client.StatusRunning || r.TotalUnits != 20 || r.Conversions != 5 || len(r.Steps) != 3 || r.UpdatedAt.IsZero() {
		t.Fatalf("results %+v", r)
	}
	if got := []int64{r.Steps[0].Units, r.Steps[1].Units, r.Steps[2].Units}; !slices.Equal(got, []int64{20, 10, 5}) {
		t.Errorf("step units %v", got)
	}
	if r.Steps[0].DropOff != nil || r.Steps[1].DropOff == nil || *r.Steps[1].DropOff != 0.5 {
		t.Errorf("drop-off %v %v", r.Steps[0].DropOff, r.Steps[1].DropOff)
	}
	var units int64
	for _, v := range r.Steps[0].Variants {
		units += v.Units
	}
	if units != 20 || len(r.Steps[0].Variants) != 2 || len(r.Paths) == 0 || r.Decision.State == "" {
		t.Errorf("landing variants %+v, paths %+v, decision %+v", r.Steps[0].Variants, r.Paths, r.Decision)
	}
	if _, ok := r.BestPath["landing"]; !ok {
		t.Errorf("best path %v lacks the landing step", r.BestPath)
	}

	// List and iterate.
	for i := range 3 {
		if _, err := c.CreateFunnel(ctx, signup(fmt.Sprintf("more-%d", i), true)); err != nil {
			t.Fatal(err)
		}
	}
	page, err := c.ListFunnels(ctx, client.ListParams{Limit: 3})
	if err != nil || len(page.Items) != 3 || page.NextCursor == nil || page.Items[0].Key != "signup" {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	var keys []string
	for f, err := range c.Funnels(ctx, client.ListParams{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, f.Key)
	}
	if want := []string{"signup", "more-0", "more-1", "more-2"}; !slices.Equal(keys, want) {
		t.Errorf("funnels %v, want %v", keys, want)
	}

	done, err := c.CompleteFunnel(ctx, "signup")
	if err != nil || done.Status != client.StatusCompleted || done.CompletedAt == nil {
		t.Errorf("complete: %+v, %v", done, err)
	}
	// Conversions of units already in still count after completion.
	if _, err := c.Progress(ctx, "signup", client.ProgressRequest{UnitID: "u6", Step: "done"}); err != nil {
		t.Errorf("conversion after completion: %v", err)
	}
}

func TestWorkspaces(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()
	createBinary(t, c, "mine")

	ws, err := c.CreateWorkspace(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if ws.ID == "" || ws.Name != "acme" || ws.AdminKey == "" || ws.CreatedAt.IsZero() {
		t.Fatalf("workspace %+v", ws)
	}
	// The new admin key works, in its own workspace only.
	acme := client.New(srv.URL, ws.AdminKey)
	if _, err := acme.GetExperiment(ctx, "mine"); !client.IsNotFound(err) {
		t.Errorf("another workspace's experiment: %v, want a 404", err)
	}
	createBinary(t, acme, "mine") // the same key in another workspace

	if _, err := c.CreateWorkspace(ctx, "acme"); !client.IsConflict(err) {
		t.Errorf("name taken: %v", err)
	}
	_, err = c.CreateWorkspace(ctx, "")
	if e := apiError(t, err); e.Status != 422 || e.Fields[0].Field != "name" {
		t.Errorf("no name: %v", err)
	}
	write := client.New(srv.URL, srv.key(t, "write"))
	if _, err := write.CreateWorkspace(ctx, "other"); !client.IsForbidden(err) {
		t.Errorf("write key: %v, want a 403", err)
	}
}
