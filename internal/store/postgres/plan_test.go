package postgres_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/dbtest"
	"github.com/samplit/samplit/internal/store/postgres"
	"github.com/samplit/samplit/internal/store/sqlstore"
)

// TestUnitLookupsProbeBeforeStatistics checks that the serving path's
// statements that join a list of units with a table keyed by (parent,
// unit) probe the primary key once per listed unit even when PostgreSQL has
// no statistics of the table yet: a fresh experiment whose units were
// assigned faster than autovacuum analyses them. With the parent written as
// a constant ($1) the planner estimated a handful of rows for the
// experiment and read all of its assignments once per statement: 1.6 s for
// 60 events over 30,000 units, the events of a new experiment all but
// stalled (probeJoin in sqlstore).
//
// The count is of tuples, not time: the rows the statements read from
// assignments (pg_stat_user_tables: index fetches plus sequential reads),
// flushed to the statistics when the store's connections close.
func TestUnitLookupsProbeBeforeStatistics(t *testing.T) {
	db, schema, u, app, s := newPlanStore(t)
	t0 := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	const units = 30_000
	ws, e := planExperiment(t, s, t0, store.MetricBinary, units)
	closePlanStore(t, db, s, app)
	analyzed := analyzedAt(t, db, schema, "assignments")
	if analyzed.Valid {
		// autovacuum got there first: the case this test is about is gone.
		t.Skipf("assignments was analyzed at %v, before the lookups", analyzed.Time)
	}

	checkProbes(t, db, schema, u, app, ws, e, t0.Add(time.Hour), 60, units)
}

// TestEventsProbeWithStatistics is the other side of probeJoin: with
// statistics of a table of 30,000 units, PostgreSQL's planner costs an
// UPDATE … FROM (VALUES …) of 500 units as cheaper by hashing every row of
// assignments than by 500 probes of its primary key (its costs make a
// random read four sequential ones), and under load its choice flipped
// from one batch to the next: events fell from 153,000 to 42,000/s. The
// serving path's transactions turn hash and merge joins off
// (Dialect.ProbeJoins), so the UPDATE reads the 500 rows it updates, and
// so do the reads of 500 units' assignments (Store.Assignments).
func TestEventsProbeWithStatistics(t *testing.T) {
	db, schema, u, app, s := newPlanStore(t)
	t0 := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	const units, n = 30_000, 500
	ws, e := planExperiment(t, s, t0, store.MetricContinuous, units)
	closePlanStore(t, db, s, app)
	if _, err := db.ExecContext(t.Context(), `ANALYZE `+schema+`.assignments`); err != nil {
		t.Fatal(err)
	}

	checkProbes(t, db, schema, u, app, ws, e, t0.Add(time.Hour), n, units)
}

// checkProbes runs, for n of the units of e (assigned by planExperiment,
// spread over all of them), the serving path's joins of a VALUES list with
// assignments: events at at (RecordEvents' UPDATE … FROM VALUES), then a
// read of their assignments (JOIN VALUES). Each runs
// on a store opened anew, so that the tuples it reads from assignments are
// in the statistics once its connections are closed. One probe per unit
// reads its row (the UPDATE's RETURNING adds nothing); 4 per unit leaves
// room for a retried statement, and a scan or a hash of the experiment's
// rows reads all units of it.
func checkProbes(t *testing.T, db *sql.DB, schema, u, app string, ws store.Workspace, e store.Experiment, at time.Time, n, units int64) {
	t.Helper()
	var listed []string
	for i := range n {
		listed = append(listed, fmt.Sprintf("u%05d", i*(units/n)+7))
	}
	for _, step := range []struct {
		name string
		run  func(s *sqlstore.Store) error
	}{
		{"events (UPDATE … FROM VALUES)", func(s *sqlstore.Store) error {
			var evs []store.Event
			for _, u := range listed {
				evs = append(evs, store.Event{UnitID: u, Value: 1, At: at})
			}
			res, err := s.RecordEvents(t.Context(), []store.EventBatch{{WorkspaceID: ws.ID, ExperimentID: e.ID, Metric: e.Metric, Events: evs}})
			for i := 0; err == nil && i < len(res[0]); i++ {
				if r := res[0][i]; r.Outcome != store.OutcomeAccepted {
					err = fmt.Errorf("event %d: %+v", i, r)
				}
			}
			return err
		}},
		{"assignments read (JOIN VALUES)", func(s *sqlstore.Store) error {
			got, err := s.Assignments(t.Context(), ws.ID, e.ID, listed)
			if err == nil && int64(len(got)) != n {
				err = fmt.Errorf("read %d assignments of %d", len(got), n)
			}
			return err
		}},
	} {
		before := tuplesRead(t, db, schema, "assignments")
		s := openPlanStore(t, u)
		if err := step.run(s); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		closePlanStore(t, db, s, app)
		read := tuplesSince(t, db, schema, "assignments", before, n)
		t.Logf("%s: %d tuples of assignments read for %d units", step.name, read, n)
		if read > 4*n {
			t.Errorf("%s read %d tuples of assignments for %d units of %d: it read the experiment's rows instead of probing each unit", step.name, read, n, units)
		}
	}
}

// planExperiment creates a workspace and a running experiment of two
// variants in s, with units assigned (u00000, u00001, …) at t0.
func planExperiment(t testing.TB, s store.Store, t0 time.Time, metric store.Metric, units int) (store.Workspace, store.Experiment) {
	t.Helper()
	ws := store.Workspace{ID: id.New(id.Workspace), Name: "plan", CreatedAt: t0}
	if err := s.CreateWorkspace(t.Context(), ws); err != nil {
		t.Fatal(err)
	}
	e := store.Experiment{
		ID: id.New(id.Experiment), WorkspaceID: ws.ID, Key: "plan", Name: "plan",
		Kind: store.KindStandard, Metric: metric, Strategy: "thompson", Status: store.StatusRunning,
		Settings:  store.Settings{MinSamples: 100, DecisionThreshold: 0.95, LossThreshold: 0.01, Alpha: 0.05, Traffic: 1},
		CreatedAt: t0, UpdatedAt: t0, StartedAt: &t0,
		Variants: []store.Variant{
			{ID: id.New(id.Variant), Key: "a", Name: "a", Control: true, Position: 0},
			{ID: id.New(id.Variant), Key: "b", Name: "b", Position: 1},
		},
	}
	if err := s.CreateExperiment(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	weights := map[string]float64{e.Variants[0].ID: 0.5, e.Variants[1].ID: 0.5}
	for from := 0; from < units; from += 1000 {
		b := store.AssignBatch{WorkspaceID: ws.ID, ExperimentID: e.ID, Weights: weights}
		for u := from; u < min(from+1000, units); u++ {
			b.Items = append(b.Items, store.Assignment{UnitID: fmt.Sprintf("u%05d", u), VariantID: e.Variants[u%2].ID,
				Propensity: 0.5, Epoch: 1, AssignedAt: t0})
		}
		if _, err := s.Assign(t.Context(), []store.AssignBatch{b}); err != nil {
			t.Fatal(err)
		}
	}
	return ws, e
}

// newPlanStore creates a schema and opens a migrated store on it whose
// connections carry the schema's name as application_name (which backends
// are the test's); it returns the admin connection, the schema, the store's
// URL and application name, and the store.
func newPlanStore(t *testing.T) (db *sql.DB, schema, u, app string, s *sqlstore.Store) {
	t.Helper()
	db = admin(t)
	schema, u = newSchema(t)
	app = schema
	u = dbtest.WithParam(t, u, "application_name", app)
	s = openPlanStore(t, u)
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return db, schema, u, app, s
}

func openPlanStore(t *testing.T, u string) *sqlstore.Store {
	t.Helper()
	s, err := postgres.Open(u, postgres.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// closePlanStore closes the store and waits until its backends have exited:
// a backend flushes its table statistics when it exits (else up to a
// second or more after its transactions).
func closePlanStore(t *testing.T, db *sql.DB, s *sqlstore.Store, app string) {
	t.Helper()
	s.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var live int
		if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&live); err != nil {
			t.Fatal(err)
		}
		if live == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backends of the closed store still running after 30 s", live)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tuplesSince returns the tuples read from the schema's table since
// before, once at least least of them are in the statistics (every listed
// unit's row is read at least once) and two reads 100 ms apart agree: an
// exiting backend leaves pg_stat_activity before it flushes them.
func tuplesSince(t *testing.T, db *sql.DB, schema, table string, before, least int64) int64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last := int64(-1)
	for {
		n := tuplesRead(t, db, schema, table) - before
		if n >= least && n == last {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tuples of %s in the statistics 30 s after the lookups, want at least %d", n, table, least)
		}
		last = n
		time.Sleep(100 * time.Millisecond)
	}
}

// analyzedAt returns when the schema's table was last analyzed, by ANALYZE
// or autovacuum (null: never).
func analyzedAt(t *testing.T, db *sql.DB, schema, table string) sql.NullTime {
	t.Helper()
	var at sql.NullTime
	if err := db.QueryRowContext(t.Context(), `SELECT COALESCE(last_analyze, last_autoanalyze) FROM pg_stat_user_tables
		 WHERE schemaname = $1 AND relname = $2`, schema, table).Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}

// tuplesRead returns the tuples read from the schema's table so far: fetched through indexes plus read by sequential scans.
func tuplesRead(t *testing.T, db *sql.DB, schema, table string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRowContext(t.Context(), `SELECT COALESCE(idx_tup_fetch, 0) + seq_tup_read FROM pg_stat_user_tables
		 WHERE schemaname = $1 AND relname = $2`, schema, table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCampaignLookupsProbe is TestUnitLookupsProbeBeforeStatistics and
// TestEventsProbeWithStatistics for a campaign's sends: the events of 500
// of 30,000 recipients (a read of their sends, then an UPDATE … FROM
// VALUES of them) and a read of their sends (CampaignRecipients) each read
// their rows (the events twice), before the table has statistics and after
// ANALYZE, instead of all 30,000.
func TestCampaignLookupsProbe(t *testing.T) {
	db, schema, u, app, s := newPlanStore(t)
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	const recipients, n = 30_000, 500
	ws := store.Workspace{ID: id.New(id.Workspace), Name: "plan", CreatedAt: t0}
	if err := s.CreateWorkspace(t.Context(), ws); err != nil {
		t.Fatal(err)
	}
	c := store.Campaign{
		ID: id.New(id.Campaign), WorkspaceID: ws.ID, Key: "plan", Name: "plan", Channel: "email", Objective: "click",
		Mode: "waves", AudienceSize: recipients, Status: store.StatusRunning,
		Settings:  store.CampaignSettings{TestShare: 0.2, AttributionWindow: time.Hour, MinSamples: 100, DecisionThreshold: 0.95, LossThreshold: 0.001},
		CreatedAt: t0, UpdatedAt: t0, StartedAt: &t0,
		Variants: []store.Variant{{ID: id.New(id.Variant), Key: "a", Name: "a", Position: 0}, {ID: id.New(id.Variant), Key: "b", Name: "b", Position: 1}},
	}
	if err := s.CreateCampaign(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	rcpt := func(i int) string { return fmt.Sprintf("r%05d@example.com", i) }
	for from := 0; from < recipients; from += 1000 {
		b := store.SendBatch{WorkspaceID: ws.ID, CampaignID: c.ID, ExpectSent: -1, At: t0}
		for i := from; i < from+1000; i++ {
			b.Items = append(b.Items, store.Send{Recipient: rcpt(i), VariantID: c.Variants[i%2].ID})
		}
		if _, err := s.RecordSends(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	closePlanStore(t, db, s, app)

	var listed []string
	for i := range n {
		listed = append(listed, rcpt(i*(recipients/n)+7))
	}
	check := func(when string, at time.Time) {
		for _, step := range []struct {
			name   string
			probes int64 // tuples read per recipient
			run    func(s *sqlstore.Store) error
		}{
			{"events (read, UPDATE … FROM VALUES)", 2, func(s *sqlstore.Store) error {
				b := store.CampaignEventBatch{WorkspaceID: ws.ID, CampaignID: c.ID, Window: time.Hour}
				for _, r := range listed {
					b.Items = append(b.Items, store.CampaignEvent{Recipient: r, Type: store.CampaignOpen, At: at})
				}
				res, err := s.RecordCampaignEvents(t.Context(), []store.CampaignEventBatch{b})
				for i := 0; err == nil && i < len(res[0]); i++ {
					if r := res[0][i]; r.Outcome != store.OutcomeAccepted {
						err = fmt.Errorf("event %d: %+v", i, r)
					}
				}
				return err
			}},
			{"CampaignRecipients (JOIN VALUES)", 1, func(s *sqlstore.Store) error {
				got, err := s.CampaignRecipients(t.Context(), ws.ID, c.ID, listed)
				if err == nil && len(got) != n {
					err = fmt.Errorf("read %d sends of %d", len(got), n)
				}
				return err
			}},
		} {
			before := tuplesRead(t, db, schema, "campaign_sends")
			s := openPlanStore(t, u)
			if err := step.run(s); err != nil {
				t.Fatalf("%s, %s: %v", step.name, when, err)
			}
			closePlanStore(t, db, s, app)
			read := tuplesSince(t, db, schema, "campaign_sends", before, n)
			t.Logf("%s, %s: %d tuples of campaign_sends read for %d recipients", step.name, when, read, n)
			if read > 2*step.probes*n { // room for a retried statement
				t.Errorf("%s, %s: read %d tuples of campaign_sends for %d recipients of %d: it read the campaign's sends instead of probing each recipient",
					step.name, when, read, n, recipients)
			}
		}
	}
	analyzed := analyzedAt(t, db, schema, "campaign_sends")
	if analyzed.Valid {
		t.Logf("campaign_sends was analyzed at %v: no lookup before statistics", analyzed.Time)
	} else {
		check("before statistics", t0.Add(time.Minute))
	}
	if _, err := db.ExecContext(t.Context(), `ANALYZE `+schema+`.campaign_sends`); err != nil {
		t.Fatal(err)
	}
	check("after ANALYZE", t0.Add(2*time.Minute))
}
