// Package retention deletes what the database no longer needs, so that under
// a steady load its size levels off instead of growing with traffic:
//
//   - Idempotency-Key records older than the API's idempotency TTL (they are
//     no longer replayed anyway);
//   - event idempotency keys (experiments' and campaigns') older than
//     Options.EventKeys, default 30 days. The trade-off: an event retried
//     with the same key after that is counted again;
//   - webhook deliveries older than Options.Webhooks (default 30 days) that
//     were delivered or given up, with their attempts, and outbox events
//     older than that with no delivery left. An event with a delivery still
//     pending is never deleted;
//   - expired dashboard sessions.
//
// Every replica runs the loop; the work is done once per period among them
// through a decide.Job (a lease in the database, the same as the decision
// loop's). Deletes go in batches of Options.Batch rows per transaction so
// that no statement holds the database (SQLite's single writer above all)
// for long.
//
// What it does not delete: assignments, counters, chart buckets, funnel
// progress and campaign sends and events, which are the experiments' data
// and live as long as their experiment, funnel or campaign.
package retention

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samplit/samplit/internal/decide"
	"github.com/samplit/samplit/internal/store"
)

// Store is what retention needs of the store.
type Store interface {
	store.Retention
	store.DecideLeases
}

// Options tune retention. The zero value of each field means its default.
type Options struct {
	// Every is how often retention runs among all replicas (1 h).
	Every time.Duration
	// IdempotencyTTL is the API's Idempotency-Key expiry (24 h): records
	// older than that are deleted.
	IdempotencyTTL time.Duration
	// EventKeys is how long event idempotency keys are kept (30 days).
	EventKeys time.Duration
	// Webhooks is how long finished deliveries, their attempts and their
	// outbox events are kept (30 days).
	Webhooks time.Duration
	// Batch is the most rows deleted per table per transaction (1000).
	Batch int
	// Owner names this replica in leases; default host-pid-random.
	Owner string
	// Now is the clock (time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// Registerer, if set, receives samplit_retention_deleted_total{table}
	// and samplit_retention_runs_total{outcome}.
	Registerer prometheus.Registerer
	// Deleted, if set, is called with the rows deleted from each table
	// after each batch (for metrics kept elsewhere, and tests).
	Deleted func(table string, n int64)
}

// The defaults of Options.
const (
	DefaultEvery     = time.Hour
	DefaultEventKeys = 30 * 24 * time.Hour
	DefaultWebhooks  = 30 * 24 * time.Hour
	DefaultBatch     = 1000
)

func (o Options) withDefaults() Options {
	if o.Every <= 0 {
		o.Every = DefaultEvery
	}
	if o.IdempotencyTTL <= 0 {
		o.IdempotencyTTL = 24 * time.Hour
	}
	if o.EventKeys <= 0 {
		o.EventKeys = DefaultEventKeys
	}
	if o.Webhooks <= 0 {
		o.Webhooks = DefaultWebhooks
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Retention is one replica's retention loop.
type Retention struct {
	st   Store
	opts Options
	job  *decide.Job

	deleted *prometheus.CounterVec
	runs    *prometheus.CounterVec
}

// New returns the retention loop over st.
func New(st Store, opts Options) *Retention {
	opts = opts.withDefaults()
	r := &Retention{st: st, opts: opts,
		job: decide.NewJob(st, "retention", decide.JobOptions{Every: opts.Every, Owner: opts.Owner, Now: opts.Now}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samplit_retention_deleted_total",
			Help: "Rows deleted by retention on this replica, by table.",
		}, []string{"table"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samplit_retention_runs_total",
			Help: "Retention runs done by this replica, by outcome (ok, failed).",
		}, []string{"outcome"}),
	}
	if reg := opts.Registerer; reg != nil {
		reg.MustRegister(r.deleted, r.runs)
	}
	return r
}

// Run tries a round at once and then every quarter period (at most every
// minute) until ctx is done: whichever replica's tick comes first after the
// period runs it, so a replica that stops does not stop retention.
func (r *Retention) Run(ctx context.Context) {
	t := time.NewTicker(min(r.opts.Every/4, time.Minute))
	defer t.Stop()
	for {
		if _, _, err := r.Round(ctx); err != nil && ctx.Err() == nil {
			r.opts.Logger.Warn("retention failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Round runs retention if it is this replica's turn (see decide.Job) and
// returns whether it ran and the rows it deleted per table.
func (r *Retention) Round(ctx context.Context) (bool, map[string]int64, error) {
	var deleted map[string]int64
	ran, err := r.job.TryRun(ctx, func(ctx context.Context) error {
		var err error
		deleted, err = r.Prune(ctx)
		return err
	})
	if ran {
		outcome := "ok"
		if err != nil {
			outcome = "failed"
		}
		r.runs.WithLabelValues(outcome).Inc()
		if len(deleted) > 0 {
			args := []any{}
			for _, t := range slices.Sorted(maps.Keys(deleted)) {
				args = append(args, t, deleted[t])
			}
			r.opts.Logger.Info("retention deleted rows", args...)
		}
	}
	return ran, deleted, err
}

// Prune deletes everything that is due now, whoever's turn it is (the
// lease is Round's business), and returns the rows deleted per table.
func (r *Retention) Prune(ctx context.Context) (map[string]int64, error) {
	now := r.opts.Now()
	cutoffs := map[store.PruneKind]time.Time{
		store.PruneIdempotency:    now.Add(-r.opts.IdempotencyTTL),
		store.PruneEventKeys:      now.Add(-r.opts.EventKeys),
		store.PruneWebhookHistory: now.Add(-r.opts.Webhooks),
		store.PruneSessions:       now,
	}
	total := map[string]int64{}
	for _, kind := range store.PruneKinds {
		for ctx.Err() == nil {
			n, err := r.st.Prune(ctx, kind, cutoffs[kind], r.opts.Batch)
			if err != nil {
				return total, err
			}
			full := false
			for table, c := range n {
				if c == 0 {
					continue
				}
				total[table] += c
				r.deleted.WithLabelValues(table).Add(float64(c))
				if r.opts.Deleted != nil {
					r.opts.Deleted(table, c)
				}
				full = full || c >= int64(r.opts.Batch)
			}
			if !full {
				break
			}
		}
	}
	return total, ctx.Err()
}
