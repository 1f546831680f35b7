package retention

import (
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/backend"
	"github.com/samplit/samplit/internal/store/dbtest"
	"github.com/samplit/samplit/internal/store/sqlstore"
)

func open(t *testing.T, dsn string) store.Store {
	t.Helper()
	st, err := backend.Open(t.Context(), dsn, backend.Options{AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// clock is a settable clock shared by the replicas of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// fixture is a workspace with a key, an experiment with one assigned unit,
// a campaign with one send, and a webhook endpoint.
type fixture struct {
	ws   store.Workspace
	key  store.APIKey
	exp  store.Experiment
	camp store.Campaign
	hook store.Webhook
}

func newFixture(t *testing.T, st store.Store, at time.Time) fixture {
	t.Helper()
	ctx := t.Context()
	var f fixture
	f.ws = store.Workspace{ID: id.New(id.Workspace), Name: "acme", CreatedAt: at}
	f.key = store.APIKey{ID: id.New(id.Key), WorkspaceID: f.ws.ID, Name: "admin", Scope: store.ScopeAdmin, Lookup: "lk_" + rand.Text(), Hash: []byte{1}, CreatedAt: at}
	must(t, st.CreateWorkspaceWithKey(ctx, f.ws, f.key), "workspace")
	f.exp = store.Experiment{ID: id.New(id.Experiment), WorkspaceID: f.ws.ID, Key: "e", Name: "e", Kind: store.KindStandard,
		Metric: store.MetricBinary, Strategy: "adaptive", Status: store.StatusRunning,
		Settings:  store.Settings{MinSamples: 100, DecisionThreshold: 0.95, Traffic: 1},
		CreatedAt: at, UpdatedAt: at, StartedAt: &at,
		Variants: []store.Variant{
			{ID: id.New(id.Variant), Key: "a", Name: "a", Control: true, Payload: json.RawMessage("null"), Position: 0},
			{ID: id.New(id.Variant), Key: "b", Name: "b", Payload: json.RawMessage("null"), Position: 1},
		}}
	must(t, st.CreateExperiment(ctx, f.exp), "experiment")
	f.camp = store.Campaign{ID: id.New(id.Campaign), WorkspaceID: f.ws.ID, Key: "c", Name: "c", Channel: "email",
		Objective: "open", Mode: "waves", AudienceSize: 1 << 40, Status: store.StatusRunning,
		Settings:  store.CampaignSettings{AttributionWindow: 24 * time.Hour, MinSamples: 100, DecisionThreshold: 0.95},
		CreatedAt: at, UpdatedAt: at, StartedAt: &at,
		Variants: []store.Variant{{ID: id.New(id.Variant), Key: "a", Name: "a", Payload: json.RawMessage("{}")},
			{ID: id.New(id.Variant), Key: "b", Name: "b", Payload: json.RawMessage("{}"), Position: 1}}}
	must(t, st.CreateCampaign(ctx, f.camp), "campaign")
	f.hook = store.Webhook{ID: id.New(id.Webhook), WorkspaceID: f.ws.ID, URL: "https://example.com/h", Events: []store.EventType{store.EventPing},
		Enabled: true, SecretKeyID: "k", Secret: []byte("s"), CreatedAt: at, UpdatedAt: at}
	must(t, st.CreateWebhook(ctx, f.hook), "webhook")
	return f
}

// traffic writes, at at, what one slice of steady traffic leaves behind:
// assignments of the units, one keyed event per unit, Idempotency-Key
// records, campaign sends with keyed events, webhook events delivered with
// one attempt each, and dashboard sign-ins.
type traffic struct {
	units    []string // assigned (again: sticky) and converted
	idem     int
	sends    int
	webhooks int
	signins  int
}

func (f fixture) write(t *testing.T, st store.Store, at time.Time, tr traffic, seq *int) {
	t.Helper()
	ctx := t.Context()
	const batch = 400
	for start := 0; start < len(tr.units); start += batch {
		units := tr.units[start:min(start+batch, len(tr.units))]
		b := store.AssignBatch{WorkspaceID: f.ws.ID, ExperimentID: f.exp.ID, Weights: map[string]float64{f.exp.Variants[0].ID: .5, f.exp.Variants[1].ID: .5}}
		var evs []store.Event
		for i, u := range units {
			b.Items = append(b.Items, store.Assignment{UnitID: u, VariantID: f.exp.Variants[i%2].ID, Propensity: .5, Epoch: 1, AssignedAt: at})
			*seq++
			evs = append(evs, store.Event{UnitID: u, Value: 1, IdempotencyKey: fmt.Sprintf("ev-%012d", *seq), At: at})
		}
		_, err := st.Assign(ctx, []store.AssignBatch{b})
		must(t, err, "assign")
		_, err = st.RecordEvents(ctx, []store.EventBatch{{WorkspaceID: f.ws.ID, ExperimentID: f.exp.ID, Metric: f.exp.Metric, Events: evs}})
		must(t, err, "events")
	}
	for range tr.idem {
		*seq++
		k := fmt.Sprintf("idem-%012d", *seq)
		_, err := st.ClaimIdempotency(ctx, store.IdempotencyRecord{WorkspaceID: f.ws.ID, Key: k, Fingerprint: "POST /v1/experiments sha256:00", CreatedAt: at}, at.Add(-24*time.Hour))
		must(t, err, "claim")
		must(t, st.FinishIdempotency(ctx, f.ws.ID, k, 201, []byte(`{"id":"exp_0123456789abcdef","key":"checkout"}`)), "finish")
	}
	if tr.sends > 0 {
		b := store.SendBatch{WorkspaceID: f.ws.ID, CampaignID: f.camp.ID, ExpectSent: -1, At: at}
		var evs []store.CampaignEvent
		for i := range tr.sends {
			*seq++
			r := fmt.Sprintf("user-%012d@example.com", *seq)
			b.Items = append(b.Items, store.Send{Recipient: r, VariantID: f.camp.Variants[i%2].ID})
			evs = append(evs, store.CampaignEvent{Recipient: r, Type: "open", At: at, IdempotencyKey: "open-" + r})
		}
		_, err := st.RecordSends(ctx, b)
		must(t, err, "sends")
		_, err = st.RecordCampaignEvents(ctx, []store.CampaignEventBatch{{WorkspaceID: f.ws.ID, CampaignID: f.camp.ID, Window: 24 * time.Hour,
			Objective: "open", ReceivedAt: at, Items: evs}})
		must(t, err, "campaign events")
	}
	if tr.webhooks > 0 {
		var evs []store.OutboxEvent
		for range tr.webhooks {
			evs = append(evs, store.OutboxEvent{ID: id.New(id.Event), WorkspaceID: f.ws.ID, Type: store.EventPing, Data: json.RawMessage(`{"experiment":"exp_0123456789abcdef","winner":"b"}`), CreatedAt: at})
		}
		must(t, st.EmitEvents(ctx, evs...), "emit")
		for {
			claimed, err := st.ClaimDeliveries(ctx, "worker", at.Add(time.Second), at.Add(time.Minute), 100, nil)
			must(t, err, "claim deliveries")
			if len(claimed) == 0 {
				break
			}
			for _, c := range claimed {
				_, err := st.RecordAttempt(ctx, "worker", c.ID, store.AttemptOutcome{Succeeded: true,
					Attempt: store.DeliveryAttempt{At: at, StatusCode: 200, Latency: 20 * time.Millisecond}})
				must(t, err, "attempt")
			}
		}
	}
	for range tr.signins {
		tok := rand.Text()
		h := sha256.Sum256([]byte(tok))
		_, err := st.CreateSession(ctx, store.Session{TokenHash: h[:], KeyID: f.key.ID, WorkspaceID: f.ws.ID,
			SealedKey: make([]byte, 80), CreatedAt: at, ExpiresAt: at.Add(8 * time.Hour)}, 10)
		must(t, err, "session")
	}
}

// TestOnceAmongReplicas: two replicas' retention loops over one database
// delete what is due once per period between them, and what is not due
// stays; the deletions reach the Prometheus counter.
func TestOnceAmongReplicas(t *testing.T) {
	dbtest.EachBackend(t, "retention_", func(t *testing.T, dsn string) {
		ctx := t.Context()
		st := open(t, dsn)
		clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		f := newFixture(t, st, clk.Now())
		seq := 0
		units := []string{"u1", "u2", "u3"}
		f.write(t, st, clk.Now(), traffic{units: units, idem: 2, sends: 2, webhooks: 2, signins: 2}, &seq)

		regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
		var rs []*Retention
		for i, reg := range regs {
			rs = append(rs, New(st, Options{Owner: fmt.Sprintf("replica-%d", i), Now: clk.Now, Registerer: reg, Batch: 2}))
		}
		round := func() (int, map[string]int64) {
			t.Helper()
			ran, total := 0, map[string]int64{}
			for _, r := range rs {
				ok, del, err := r.Round(ctx)
				must(t, err, "round")
				if ok {
					ran++
				}
				for k, v := range del {
					total[k] += v
				}
			}
			return ran, total
		}

		// Day 0: nothing is old yet; one replica runs, finds nothing.
		if ran, del := round(); ran != 1 || len(del) != 0 {
			t.Fatalf("first round: %d replicas ran, deleted %v; want 1 and nothing", ran, del)
		}
		// Within the period nobody runs again.
		clk.Add(30 * time.Minute)
		if ran, _ := round(); ran != 0 {
			t.Fatalf("%d replicas ran within the period", ran)
		}
		// After 2 days: Idempotency-Key records (24 h) and sessions (8 h)
		// are due, event keys and webhook history (30 days) are not.
		clk.Add(2 * 24 * time.Hour)
		f.write(t, st, clk.Now(), traffic{idem: 1, signins: 1}, &seq) // recent: stays
		ran, del := round()
		if ran != 1 {
			t.Fatalf("%d replicas ran after the period, want 1", ran)
		}
		if d := cmp.Diff(map[string]int64{"idempotency": 2, "dashboard_sessions": 2}, del); d != "" {
			t.Errorf("deleted after 2 days (-want +got):\n%s", d)
		}
		// After 31 days: the old event keys and webhook history go; the
		// day-2 idempotency record and session go as well.
		clk.Add(29 * 24 * time.Hour)
		ran, del = round()
		if ran != 1 {
			t.Fatalf("%d replicas ran after 31 days, want 1", ran)
		}
		want := map[string]int64{"event_keys": 3, "campaign_event_keys": 2, "deliveries": 2, "delivery_attempts": 2, "outbox": 2,
			"idempotency": 1, "dashboard_sessions": 1}
		if d := cmp.Diff(want, del); d != "" {
			t.Errorf("deleted after 31 days (-want +got):\n%s", d)
		}
		// The counters of both replicas add up to what was deleted.
		var sum float64
		for _, r := range rs {
			sum += testutil.ToFloat64(r.deleted.WithLabelValues("event_keys"))
		}
		if sum != 3 {
			t.Errorf("samplit_retention_deleted_total{table=event_keys} sums to %v over the replicas, want 3", sum)
		}
		n, err := testutil.GatherAndCount(regs[0], "samplit_retention_deleted_total")
		must(t, err, "gather")
		m, err := testutil.GatherAndCount(regs[1], "samplit_retention_deleted_total")
		must(t, err, "gather")
		if n+m == 0 {
			t.Errorf("no samplit_retention_deleted_total series registered")
		}
		// A retried event whose key was deleted is no longer recognised
		// by its key (the documented trade-off; this binary unit converted
		// already, so it is still not counted twice).
		res, err := st.RecordEvents(ctx, []store.EventBatch{{WorkspaceID: f.ws.ID, ExperimentID: f.exp.ID, Metric: f.exp.Metric,
			Events: []store.Event{{UnitID: "u1", Value: 1, IdempotencyKey: "ev-000000000001", At: clk.Now()}}}})
		must(t, err, "retry")
		if res[0][0].Reason == sqlstore.ReasonDuplicateKey {
			t.Errorf("a retry after the retention period was still a duplicate by its key: %+v", res[0][0])
		}
	})
}

// dbSize returns the database's size in bytes as an operator would see it:
// the SQLite file after a checkpoint (so the WAL holds nothing), or on
// PostgreSQL the tables with their indexes and TOAST after a VACUUM of the
// tables (what autovacuum does in production: it makes deleted rows' space
// reusable without giving it back to the file system).
func dbSize(t *testing.T, st store.Store, dsn string) int64 {
	t.Helper()
	ctx := t.Context()
	db := st.(interface{ WriteDB() *sql.DB }).WriteDB()
	if !store.IsPostgresDSN(dsn) {
		if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(dsn)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// The tables this load writes (VACUUM of all of them every simulated
	// day would cost most of the test's time).
	tables := []string{"assignments", "counters", "buckets", "experiments", "event_keys", "idempotency", "outbox", "deliveries",
		"delivery_attempts", "webhooks", "dashboard_sessions", "api_keys", "decide_leases"}
	for _, tb := range tables {
		if _, err := db.ExecContext(ctx, `VACUUM `+tb); err != nil {
			t.Fatal(err)
		}
	}
	var n int64
	must(t, db.QueryRowContext(ctx, `SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'`).Scan(&n), "size")
	return n
}

// TestStorageLevelsOff runs a steady load over simulated days with a fixed
// experiment and a fixed population of units, retention running daily with
// the default periods, and checks that the database stops growing once the
// retention periods have passed. It logs the sizes and the derived numbers
// that docs/operations.md quotes (run with -v).
//
// Per simulated day: 2,000 keyed events from a population of 4,000 units
// (assigned on day 0), spread over four times of day; 5 writes with an
// Idempotency-Key; 5 webhook events each delivered with one attempt; 5
// dashboard sign-ins. PostgreSQL takes about ten days longer than the
// periods to level off (its b-tree pages freed by deletes are reused only
// after a second VACUUM), hence the check from day 45.
func TestStorageLevelsOff(t *testing.T) {
	const (
		population = 4000
		perDay     = 2000
		days       = 70
		slices     = 4
	)
	if raceEnabled {
		t.Skip("a measurement of sizes, single-threaded; too slow under -race")
	}
	dbtest.EachBackend(t, "retention_", func(t *testing.T, dsn string) {
		st := open(t, dsn)
		clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		f := newFixture(t, st, clk.Now())
		r := New(st, Options{Now: clk.Now})
		seq := 0
		units := make([]string, population)
		for i := range units {
			units[i] = fmt.Sprintf("user-%08d", i)
		}

		empty := dbSize(t, st, dsn)
		// Day 0: every unit of the population is assigned (no events).
		b := store.AssignBatch{WorkspaceID: f.ws.ID, ExperimentID: f.exp.ID, Weights: map[string]float64{f.exp.Variants[0].ID: .5, f.exp.Variants[1].ID: .5}}
		for start := 0; start < population; start += 400 {
			b.Items = b.Items[:0]
			for i, u := range units[start : start+400] {
				b.Items = append(b.Items, store.Assignment{UnitID: u, VariantID: f.exp.Variants[i%2].ID, Propensity: .5, Epoch: 1, AssignedAt: clk.Now()})
			}
			_, err := st.Assign(t.Context(), []store.AssignBatch{b})
			must(t, err, "assign")
		}
		assigned := dbSize(t, st, dsn)

		sizes := []int64{assigned}
		next := 0
		for day := 1; day <= days; day++ {
			for s := range slices {
				at := clk.Now().Add(time.Duration(s) * 24 * time.Hour / slices)
				var us []string
				for range perDay / slices {
					us = append(us, units[next%population])
					next++
				}
				tr := traffic{units: us}
				if s == 0 {
					tr.idem, tr.webhooks, tr.signins = 5, 5, 5
				}
				f.write(t, st, at, tr, &seq)
			}
			clk.Add(24 * time.Hour)
			_, err := r.Prune(t.Context())
			must(t, err, "retention")
			sizes = append(sizes, dbSize(t, st, dsn))
		}
		var b2 strings.Builder
		for day := 0; day <= days; day += 5 {
			fmt.Fprintf(&b2, " day %d: %d KiB;", day, sizes[day]>>10)
		}
		t.Logf("size by day:%s", b2.String())
		perAssignment := float64(assigned-empty) / population
		growth := float64(sizes[30]-sizes[1]) / 29 // bytes per day while nothing expires yet
		perEvent := growth / perDay
		// PostgreSQL reuses the b-tree pages freed by deletes only after a
		// second vacuum, so it levels off some 20 days after the 30-day
		// periods (measured: flat from day 52; SQLite from day 35).
		const settled = 55
		steady := float64(sizes[days]-sizes[settled]) / float64(days-settled)
		t.Logf("%s: empty %d KiB; %.0f bytes per assignment; %.0f bytes per day (%.0f per event, all the day's rows included) until day 30; "+
			"after day %d %.0f bytes per day (%.1f%% of that); size at day %d %d KiB, max over days %d-%d %d KiB",
			backendName(dsn), empty>>10, perAssignment, growth, perEvent, settled, steady, 100*steady/growth,
			days, sizes[days]>>10, settled, days, slicesMax(sizes[settled:])>>10)
		if growth <= 0 {
			t.Fatalf("the database did not grow while nothing expired: %v", sizes)
		}
		// Levelled off: from day settled on (past the 30-day periods), the
		// database grows by at most 5% of what it grew per day before,
		// and its size stays within 5% of that day's.
		if steady > 0.05*growth || float64(slicesMax(sizes[settled:])) > 1.05*float64(sizes[settled]) {
			t.Errorf("the database keeps growing under steady load: %.0f bytes/day after day %d against %.0f before; sizes %v", steady, settled, growth, sizes)
		}
	})
}

func backendName(dsn string) string {
	if store.IsPostgresDSN(dsn) {
		return "postgres"
	}
	return "sqlite"
}

func slicesMax(s []int64) int64 {
	m := s[0]
	for _, v := range s {
		m = max(m, v)
	}
	return m
}
