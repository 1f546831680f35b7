package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/dbtest"
	"github.com/samplit/samplit/internal/store/postgres"
	"github.com/samplit/samplit/internal/store/sqlstore"
)

// TestAssignRoundTrips counts the round trips (the dialect's Pipeline
// calls) of assignment group commits: one for a group of new units; a group
// with a returning unit is tried as new, rolled back (two: the try and its
// ROLLBACK) and stored by the general path (three: the insert, the read of
// the returning units, the counters with the COMMIT). Once an experiment's
// groups have had returning units, its groups take the general path at once
// (three with returning units, two without) until enough groups of new
// units have come (each of those, and each stored in one round trip, weighs
// in); then one round trip again. The counters count every new unit once.
func TestAssignRoundTrips(t *testing.T) {
	dbtest.PostgresURL(t)
	st := openSchema(t, postgres.Options{})
	d := st.Dialect()
	pipeline := d.Pipeline
	calls := 0
	d.Pipeline = func(ctx context.Context, raw any, stmts []sqlstore.PipeStmt) error {
		calls++
		return pipeline(ctx, raw, stmts)
	}
	s := sqlstore.New(st.WriteDB(), st.WriteDB(), d)
	ctx := t.Context()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ws, e := planExperiment(t, s, t0, store.MetricBinary, 0)
	weights := map[string]float64{e.Variants[0].ID: 0.5, e.Variants[1].ID: 0.5}
	group := func(units ...string) []store.Assigned {
		t.Helper()
		items := make([]store.Assignment, len(units))
		for i, u := range units {
			items[i] = store.Assignment{UnitID: u, VariantID: e.Variants[i%2].ID, Propensity: 0.5, Epoch: 1, AssignedAt: t0}
		}
		res, err := s.Assign(ctx, []store.AssignBatch{{WorkspaceID: ws.ID, ExperimentID: e.ID, Weights: weights, Items: items}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	trips := func(want int, wantNew, why string, units ...string) {
		t.Helper()
		calls = 0
		got := ""
		for _, r := range group(units...) {
			got += map[bool]string{true: "1", false: "0"}[r.New]
		}
		if calls != want || got != wantNew {
			t.Errorf("%s: %d round trips, new %s; want %d, %s", why, calls, got, want, wantNew)
		}
	}
	trips(1, "111", "new units", "n1", "n2", "n3")
	trips(5, "10", "a returning unit: tried, rolled back, stored by the general path", "n4", "n2")
	trips(3, "0000", "returning units after a returning one: the general path at once", "n2", "n3", "n1", "n4")
	// Groups of new units: the general path (two round trips) until the
	// returning units are forgotten, then one.
	newUnits, general := 4, 0
	for ; general < 60; general++ {
		calls = 0
		units := []string{fmt.Sprintf("m%d-a", general), fmt.Sprintf("m%d-b", general), fmt.Sprintf("m%d-c", general), fmt.Sprintf("m%d-d", general)}
		for _, r := range group(units...) {
			if !r.New {
				t.Fatalf("unit %s not new", r.UnitID)
			}
		}
		newUnits += 4
		if calls == 1 {
			break
		}
		if calls != 2 {
			t.Fatalf("group %d of new units: %d round trips, want 2 (the general path) or 1", general, calls)
		}
	}
	// Measured: 20 groups (the share of returning units, 1/32 then 1/11
	// after the two groups above, falls by 1/16 a group until a group of
	// four is 90% likely to be new). Not at once, and not never.
	t.Logf("%d groups of new units took the general path", general)
	if general < 10 || general >= 60 {
		t.Errorf("%d groups of new units took the general path before one round trip was tried again; want 10 to 59", general)
	}
	trips(1, "11", "new units once the returning ones are forgotten", "z1", "z2")
	newUnits += 2
	// Groups stored in one round trip count too: after 40 more groups of
	// new units, a group of 20 is likely enough to be new to be tried.
	for i := range 40 {
		trips(1, "1111", "more new units", fmt.Sprintf("k%d-a", i), fmt.Sprintf("k%d-b", i), fmt.Sprintf("k%d-c", i), fmt.Sprintf("k%d-d", i))
	}
	var twenty []string
	for i := range 20 {
		twenty = append(twenty, fmt.Sprintf("big-%d", i))
	}
	trips(1, strings.Repeat("1", 20), "a group of 20 new units after 40 more groups of new units", twenty...)
	newUnits += 40*4 + 20
	cs, err := s.Counters(ctx, ws.ID, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	var units int64
	for _, c := range cs {
		units += c.Units
	}
	if units != int64(newUnits) {
		t.Errorf("counters hold %d units, want %d (every new unit once): %+v", units, newUnits, cs)
	}
	// A group whose experiment is in another workspace is refused, and its
	// try as new units stored nothing.
	other := store.Workspace{ID: id.New(id.Workspace), Name: "other", CreatedAt: t0}
	if err := s.CreateWorkspace(ctx, other); err != nil {
		t.Fatal(err)
	}
	_, err = s.Assign(ctx, []store.AssignBatch{{WorkspaceID: other.ID, ExperimentID: e.ID, Weights: weights,
		Items: []store.Assignment{{UnitID: "x1", VariantID: e.Variants[0].ID, Propensity: 0.5, Epoch: 1, AssignedAt: t0}}}})
	if err == nil {
		t.Fatal("Assign from another workspace succeeded")
	}
	m, err := s.Assignments(ctx, ws.ID, e.ID, []string{"x1"})
	if err != nil || len(m) != 0 {
		t.Errorf("after a refused group: %v, %v", m, err)
	}
}
