package sqlstore_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/sqlite"
	"github.com/samplit/samplit/internal/store/sqlstore"
)

// TestReadStatementsPrepared: on SQLite the read a funnel progress call
// makes (UnitSteps: the funnel's check and the unit's steps, one statement)
// is prepared once on the read pool and reused, one statement per text, and
// answers as before: not found for a funnel of no workspace, the steps of
// a unit of one.
func TestReadStatementsPrepared(t *testing.T) {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "s.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ws := store.Workspace{ID: id.New(id.Workspace), Name: "w", CreatedAt: t0}
	if err := s.CreateWorkspace(ctx, ws); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.UnitSteps(ctx, ws.ID, id.New(id.Funnel), []string{"u1"}); apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("UnitSteps of an unknown funnel: %v, want not found", err)
		}
	}
	if n := sqlstore.ReadStmts(s); n != 1 {
		t.Errorf("%d statements prepared after three reads of an unknown funnel, want 1", n)
	}
	f := store.Funnel{ID: id.New(id.Funnel), WorkspaceID: ws.ID, Key: "f", Name: "f", Strategy: "multi_step",
		Status: store.StatusRunning, Settings: store.FunnelSettings{MinSamples: 100, DecisionThreshold: 0.95,
			AttributionWindow: time.Hour, BucketWidth: time.Minute}, CreatedAt: t0, UpdatedAt: t0,
		Steps: []store.FunnelStep{{ID: id.New("stp"), Key: "a", Name: "a", Position: 0}, {ID: id.New("stp"), Key: "b", Name: "b", Position: 1}}}
	if err := s.CreateFunnel(ctx, f); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordProgress(ctx, []store.ProgressBatch{{WorkspaceID: ws.ID, FunnelID: f.ID, Goal: 1, Window: time.Hour,
		BucketWidth: time.Minute, Items: []store.Progress{{UnitID: "u1", Step: 0, Propensity: 1, At: t0}}}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		got, err := s.UnitSteps(ctx, ws.ID, f.ID, []string{"u1"})
		if err != nil || len(got["u1"]) != 1 {
			t.Fatalf("UnitSteps = %v, %v; want u1 at step 0", got, err)
		}
	}
	if n := sqlstore.ReadStmts(s); n != 1 {
		t.Errorf("%d statements prepared after three reads of one unit's steps, want the same 1", n)
	}
	// Another workspace does not see the funnel, even with a unit in it.
	other := store.Workspace{ID: id.New(id.Workspace), Name: "o", CreatedAt: t0}
	if err := s.CreateWorkspace(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UnitSteps(ctx, other.ID, f.ID, []string{"u1"}); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("UnitSteps from another workspace: %v, want not found", err)
	}
	if _, err := s.UnitSteps(ctx, other.ID, f.ID, nil); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("UnitSteps of no units from another workspace: %v, want not found", err)
	}
}
