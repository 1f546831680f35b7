package optimize_test

import (
	"testing"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

// TestLifecycle walks every action from every status through the one
// Optimizer interface, for each kind: the status machine is the same for
// all (funnels and campaigns have no archive), a refused action is a
// Conflict that says why, and an experiment's changes reach OnChange.
func TestLifecycle(t *testing.T) {
	st := openStore(t)
	x := optimizer(t, st, keyring(t, newKey(t)))
	svc := &optimize.Services{Experiments: x,
		Funnels:   optimize.NewFunnels(st, time.Now, nil, optimize.Options{}),
		Campaigns: optimize.NewCampaigns(st, time.Now, nil, optimize.Options{}, optimize.CampaignHooks{})}
	t.Cleanup(svc.Funnels.Close)
	t.Cleanup(svc.Campaigns.Close)
	var changed []string
	x.OnChange(func(id string) { changed = append(changed, id) })

	allowed := map[optimize.Action][]store.Status{
		optimize.ActionStart:    {store.StatusDraft},
		optimize.ActionPause:    {store.StatusRunning},
		optimize.ActionResume:   {store.StatusPaused},
		optimize.ActionComplete: {store.StatusRunning, store.StatusPaused},
		optimize.ActionArchive:  {store.StatusDraft, store.StatusPaused, store.StatusCompleted},
	}
	to := map[optimize.Action]store.Status{
		optimize.ActionStart: store.StatusRunning, optimize.ActionPause: store.StatusPaused,
		optimize.ActionResume: store.StatusRunning, optimize.ActionComplete: store.StatusCompleted,
		optimize.ActionArchive: store.StatusArchived,
	}
	statuses := []store.Status{store.StatusDraft, store.StatusRunning, store.StatusPaused, store.StatusCompleted, store.StatusArchived}
	ctx := t.Context()

	// newObject stores a fresh object of the kind in status s and returns it.
	newObject := map[optimize.Kind]func(s store.Status) (any, func() store.Status){
		optimize.KindExperiment: func(s store.Status) (any, func() store.Status) {
			e := experiment(t, st, "adaptive")
			if s != store.StatusRunning {
				cur, err := st.TransitionExperiment(ctx, e.WorkspaceID, e.ID, store.Transition{From: []store.Status{store.StatusRunning}, To: s, At: time.Now()})
				if err != nil {
					t.Fatal(err)
				}
				*e = cur
			}
			return e, func() store.Status { return e.Status }
		},
		optimize.KindFunnel: func(s store.Status) (any, func() store.Status) {
			e := experiment(t, st, "adaptive")
			now := time.Now()
			f := store.Funnel{ID: id.New(id.Funnel), WorkspaceID: e.WorkspaceID, Key: "f-" + id.New("k")[2:], Name: "f",
				Strategy: "multi_step", Status: s, CreatedAt: now, UpdatedAt: now,
				Settings: store.FunnelSettings{MinSamples: 10, DecisionThreshold: 0.95, LossThreshold: 0.01,
					AttributionWindow: time.Hour, BucketWidth: time.Minute},
				Steps: []store.FunnelStep{
					{ID: id.New("stp"), Key: "a", Name: "a", Position: 0, Variants: []store.Variant{
						{ID: id.New(id.Variant), Key: "x", Name: "x", Control: true, Position: 0},
						{ID: id.New(id.Variant), Key: "y", Name: "y", Position: 1}}},
					{ID: id.New("stp"), Key: "b", Name: "b", Position: 1},
				}}
			if err := st.CreateFunnel(ctx, f); err != nil {
				t.Fatal(err)
			}
			return &f, func() store.Status { return f.Status }
		},
		optimize.KindEmail: func(s store.Status) (any, func() store.Status) {
			e := experiment(t, st, "adaptive")
			now := time.Now()
			c := store.Campaign{ID: id.New(id.Campaign), WorkspaceID: e.WorkspaceID, Key: "c-" + id.New("k")[2:], Name: "c",
				Channel: "email", Objective: "click", Mode: "waves", Status: s, CreatedAt: now, UpdatedAt: now,
				Settings: store.CampaignSettings{TestShare: 0.2, AttributionWindow: time.Hour, MinSamples: 10,
					DecisionThreshold: 0.95, LossThreshold: 0.01, WeightFloor: 0.01},
				Variants: []store.Variant{
					{ID: id.New(id.Variant), Key: "x", Name: "x", Position: 0},
					{ID: id.New(id.Variant), Key: "y", Name: "y", Position: 1}}}
			if err := st.CreateCampaign(ctx, c); err != nil {
				t.Fatal(err)
			}
			return &c, func() store.Status { return c.Status }
		},
	}
	for kind, mk := range newObject {
		for _, a := range optimize.Actions(kind) {
			for _, from := range statuses {
				if from == store.StatusArchived && kind != optimize.KindExperiment {
					continue // funnels and campaigns cannot be archived
				}
				t.Run(string(kind)+"/"+string(a)+"/from-"+string(from), func(t *testing.T) {
					obj, status := mk(from)
					opt, err := svc.For(obj)
					if err != nil {
						t.Fatal(err)
					}
					if opt.Kind() != kind {
						t.Errorf("kind %s, want %s", opt.Kind(), kind)
					}
					ok := false
					for _, s := range allowed[a] {
						ok = ok || s == from
					}
					err = opt.Transition(ctx, a, nil)
					switch {
					case ok && err != nil:
						t.Fatalf("%s from %s: %v", a, from, err)
					case ok && status() != to[a]:
						t.Errorf("%s from %s left %s, want %s", a, from, status(), to[a])
					case !ok && !apperr.Is(err, apperr.Conflict):
						t.Fatalf("%s from %s: got %v, want a conflict", a, from, err)
					}
				})
			}
		}
	}
	if len(changed) == 0 {
		t.Error("no experiment change reached OnChange")
	}
	if optimize.Actions(optimize.KindFunnel)[len(optimize.Actions(optimize.KindFunnel))-1] == optimize.ActionArchive {
		t.Error("funnels have no archive")
	}
}
