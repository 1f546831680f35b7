// Package decide is the decision loop: the server, not the reader of
// results, decides. Every replica runs a Loop that, every few seconds,
// evaluates each running or paused experiment, funnel and campaign that has
// new data, through the same optimizer code the results endpoints call, so
// that winners, no_difference, SRM alerts, auto_complete, guardrail trips,
// campaign winners and funnel step winners are recorded (with their webhook
// events, in the same transaction) whether or not anyone looks.
//
// Replicas share the work through leases in the database
// (store.DecideLeases): a replica claims a few due objects, evaluates them
// while renewing its leases, and records the data version it evaluated. An
// object is due when its data version (bumped by every write of its data)
// differs from the one last evaluated, so idle objects cost one indexed
// read per tick; objects are also re-evaluated when their last evaluation
// is older than Options.Stale, for decisions that the passing of time alone
// can change (attribution windows, discounting). A replica that dies
// holding a lease delays those objects by at most the lease time. Two
// replicas evaluating one object at once (a lease that expired during a
// slow evaluation) would still record each decision once: the store's
// conditional updates see to that.
package decide

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

// Evaluator evaluates one object and records what its rules decide.
type Evaluator interface {
	Experiment(ctx context.Context, e *store.Experiment) error
	Funnel(ctx context.Context, f *store.Funnel) error
	Campaign(ctx context.Context, c *store.Campaign) error
}

// Optimizers is the Evaluator of the server: each object's Optimizer
// (optimize.Services.For) decides, through the same analysis as the results
// endpoints, so that reading results never contradicts what the loop
// recorded.
type Optimizers struct {
	Services *optimize.Services
}

var _ Evaluator = Optimizers{}

// Experiment implements Evaluator.
func (o Optimizers) Experiment(ctx context.Context, e *store.Experiment) error {
	return o.decide(ctx, e)
}

// Funnel implements Evaluator.
func (o Optimizers) Funnel(ctx context.Context, f *store.Funnel) error {
	return o.decide(ctx, f)
}

// Campaign implements Evaluator.
func (o Optimizers) Campaign(ctx context.Context, c *store.Campaign) error {
	return o.decide(ctx, c)
}

// decide runs the decision rules of the object's Optimizer.
func (o Optimizers) decide(ctx context.Context, object any) error {
	opt, err := o.Services.For(object)
	if err != nil {
		return err
	}
	return opt.Decide(ctx)
}

// Store is what the loop needs of the store.
type Store interface {
	store.DecideLeases
	GetExperiment(ctx context.Context, workspaceID, ref string) (store.Experiment, error)
	GetFunnel(ctx context.Context, workspaceID, ref string) (store.Funnel, error)
	GetCampaign(ctx context.Context, workspaceID, ref string) (store.Campaign, error)
}

// Options tune a Loop. The zero value of each field means its default.
type Options struct {
	// Every is the time between two rounds (10 s).
	Every time.Duration
	// Lease is how long a claimed object is reserved for this replica
	// without renewal (3 × Every): the longest a replica that dies holding
	// it delays the object's evaluation.
	Lease time.Duration
	// Stale is how old an evaluation may get before the object is
	// evaluated again without new data (the larger of 5 min and 10 ×
	// Every).
	Stale time.Duration
	// Batch is how many objects are claimed at a time (4): small, so that
	// replicas polling together share a long list.
	Batch int
	// Owner names this replica in leases; default host-pid-random.
	Owner string
	// Now is the clock (time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// Evaluated, if set, is called after a round that evaluated anything,
	// e.g. to wake the webhook worker so that what was recorded goes out
	// at once.
	Evaluated func()
	// Registerer, if set, receives the loop's metrics:
	// samplit_decide_evaluations_total{kind, outcome},
	// samplit_decide_round_duration_seconds, samplit_decide_rounds_total{result}
	// and samplit_decide_last_round_timestamp_seconds.
	Registerer prometheus.Registerer
}

// DefaultEvery is the default time between rounds.
const DefaultEvery = 10 * time.Second

func (o Options) withDefaults() Options {
	if o.Every <= 0 {
		o.Every = DefaultEvery
	}
	if o.Lease <= 0 {
		o.Lease = 3 * o.Every
	}
	if o.Stale <= 0 {
		o.Stale = max(5*time.Minute, 10*o.Every)
	}
	if o.Batch <= 0 {
		o.Batch = 4
	}
	if o.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		o.Owner = host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// maxDue bounds the objects one round lists; more wait for the next round
// (oldest evaluation first).
const maxDue = 256

// evalTimeout bounds one object's evaluation.
const evalTimeout = 2 * time.Minute

// Loop is one replica's decision loop.
type Loop struct {
	st   Store
	ev   Evaluator
	opts Options

	evaluations *prometheus.CounterVec
	rounds      prometheus.Histogram
	// runs counts every round, idle ones included, and last is when the
	// latest one ended: a loop that stopped turning (stuck on a database
	// call, or off) shows as runs not increasing.
	runs *prometheus.CounterVec
	last prometheus.Gauge
}

// New returns a decision loop over st that evaluates through ev.
func New(st Store, ev Evaluator, opts Options) *Loop {
	l := &Loop{st: st, ev: ev, opts: opts.withDefaults(),
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samplit_decide_evaluations_total",
			Help: "Objects this replica's decision loop evaluated, by kind and outcome (ok, failed, released).",
		}, []string{"kind", "outcome"}),
		rounds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "samplit_decide_round_duration_seconds",
			Help:    "Duration of the decision loop's rounds that found objects due.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samplit_decide_rounds_total",
			Help: "Rounds of this replica's decision loop, by result (idle: nothing due, evaluated, failed).",
		}, []string{"result"}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "samplit_decide_last_round_timestamp_seconds",
			Help: "Unix time at which this replica's latest decision round ended.",
		}),
	}
	if r := l.opts.Registerer; r != nil {
		r.MustRegister(l.evaluations, l.rounds, l.runs, l.last)
	}
	return l
}

// Owner returns the name of this loop in leases.
func (l *Loop) Owner() string { return l.opts.Owner }

// Run runs a round at once and then every Options.Every until ctx is done.
func (l *Loop) Run(ctx context.Context) {
	t := time.NewTicker(l.opts.Every)
	defer t.Stop()
	for {
		if _, err := l.Round(ctx); err != nil && ctx.Err() == nil {
			l.opts.Logger.Warn("decision round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Round evaluates the objects that are due and that this replica can
// claim, and returns how many it evaluated.
func (l *Loop) Round(ctx context.Context) (n int, err error) {
	defer func() {
		result := "evaluated"
		switch {
		case err != nil:
			result = "failed"
		case n == 0:
			result = "idle"
		}
		l.runs.WithLabelValues(result).Inc()
		l.last.Set(float64(time.Now().UnixNano()) / 1e9)
	}()
	now := l.opts.Now()
	due, err := l.st.DueForDecision(ctx, now, now.Add(-l.opts.Stale), maxDue)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	defer func(start time.Time) { l.rounds.Observe(time.Since(start).Seconds()) }(time.Now())
	// Replicas list the same objects in the same order: each starts with
	// its own shuffle, so that they claim different ones first.
	mrand.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
	defer func() {
		if n > 0 && l.opts.Evaluated != nil {
			l.opts.Evaluated()
		}
	}()
	for len(due) > 0 && ctx.Err() == nil {
		chunk := due[:min(l.opts.Batch, len(due))]
		due = due[len(chunk):]
		now := l.opts.Now()
		claimed, err := l.st.ClaimForDecision(ctx, l.opts.Owner, chunk, now, now.Add(l.opts.Lease))
		if err != nil {
			return n, err
		}
		n += l.evaluateAll(ctx, claimed)
	}
	return n, nil
}

// evaluateAll evaluates the claimed objects one by one, renewing their
// leases meanwhile, and returns how many it evaluated.
func (l *Loop) evaluateAll(ctx context.Context, claimed []store.DecideObject) int {
	if len(claimed) == 0 {
		return 0
	}
	ids := make([]string, len(claimed))
	for i, o := range claimed {
		ids[i] = o.ID
	}
	// Leases already released by FinishDecision are not this owner's any
	// more and stay released.
	defer renewLeases(ctx, l.st, l.opts.Owner, ids, l.opts.Lease, l.opts.Now, func(err error) {
		l.opts.Logger.Warn("renew decision leases", "err", err)
	})()

	n := 0
	var cut []store.DecideObject // not evaluated: the loop is stopping
	for _, o := range claimed {
		if ctx.Err() != nil {
			cut = append(cut, o)
			continue
		}
		start := l.opts.Now()
		if err := l.evaluate(ctx, o); err != nil {
			if ctx.Err() != nil {
				cut = append(cut, o)
				continue
			}
			// The lease is kept: the object is tried again once it
			// expires, not at every round.
			l.opts.Logger.Warn("decision evaluation failed", "kind", o.Kind, "id", o.ID, "err", err)
			l.evaluations.WithLabelValues(string(o.Kind), "failed").Inc()
			continue
		}
		n++
		l.evaluations.WithLabelValues(string(o.Kind), "ok").Inc()
		if err := l.st.FinishDecision(ctx, l.opts.Owner, o, start); err != nil {
			if ctx.Err() != nil {
				cut = append(cut, o)
				continue
			}
			l.opts.Logger.Warn("record decision evaluation", "kind", o.Kind, "id", o.ID, "err", err)
		}
		l.opts.Logger.Debug("evaluated", "kind", o.Kind, "id", o.ID, "version", o.Version, "took", l.opts.Now().Sub(start).String())
	}
	if len(cut) > 0 {
		l.release(cut)
	}
	return n
}

// release gives back the leases of objects this replica will not evaluate
// (it is shutting down), so that another replica takes them at its next
// round rather than after the lease. It runs on a context of its own: the
// loop's is done.
func (l *Loop) release(objs []store.DecideObject) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, o := range objs {
		l.evaluations.WithLabelValues(string(o.Kind), "released").Inc()
		if err := l.st.ReleaseDecision(ctx, l.opts.Owner, o.ID); err != nil {
			l.opts.Logger.Warn("release decision lease", "kind", o.Kind, "id", o.ID, "err", err)
		}
	}
}

// active reports whether the loop evaluates an object in status s.
func active(s store.Status) bool { return s == store.StatusRunning || s == store.StatusPaused }

// evaluate loads the object as it is now and evaluates it when it is still
// active. An object that is gone or no longer active is done.
func (l *Loop) evaluate(ctx context.Context, o store.DecideObject) error {
	ctx, cancel := context.WithTimeout(ctx, evalTimeout)
	defer cancel()
	var err error
	switch o.Kind {
	case store.DecideExperiment:
		var e store.Experiment
		if e, err = l.st.GetExperiment(ctx, o.WorkspaceID, o.ID); err == nil && active(e.Status) {
			err = l.ev.Experiment(ctx, &e)
		}
	case store.DecideFunnel:
		var f store.Funnel
		if f, err = l.st.GetFunnel(ctx, o.WorkspaceID, o.ID); err == nil && active(f.Status) {
			err = l.ev.Funnel(ctx, &f)
		}
	case store.DecideCampaign:
		var c store.Campaign
		if c, err = l.st.GetCampaign(ctx, o.WorkspaceID, o.ID); err == nil && active(c.Status) {
			err = l.ev.Campaign(ctx, &c)
		}
	default:
		return fmt.Errorf("unknown kind %q of %s", o.Kind, o.ID)
	}
	if apperr.Is(err, apperr.NotFound) {
		return nil
	}
	if apperr.Is(err, apperr.Invalid) {
		// Its optimizer cannot analyse it (e.g. a kind this server does
		// not serve): recorded as evaluated, so that it is tried again
		// only with new data, not at every lease expiry.
		l.opts.Logger.Warn("cannot evaluate", "kind", o.Kind, "id", o.ID, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("evaluate %s %s: %w", o.Kind, o.ID, err)
	}
	return nil
}

// renewLeases renews owner's leases on ids every third of lease until the
// returned stop is called, which waits for the renewals to end. A failed
// renewal (not caused by stopping) goes to failed, when set.
func renewLeases(ctx context.Context, st store.DecideLeases, owner string, ids []string, lease time.Duration,
	now func() time.Time, failed func(error)) (stop func()) {
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				if _, err := st.RenewDecisionLeases(rctx, owner, ids, now().Add(lease)); err != nil && rctx.Err() == nil && failed != nil {
					failed(err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}
