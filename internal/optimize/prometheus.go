package optimize

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samplit/samplit/internal/store"
)

// metrics are what the optimizers count for an operator to alert on (the
// catalogue, with example alert rules, is in docs/operations.md). They are
// counted here, not in the HTTP layer, so that the API, the dashboard and
// the decision loop all count alike.
type metrics struct {
	assignments *prometheus.CounterVec   // kind, outcome
	events      *prometheus.CounterVec   // kind, outcome
	decisions   *prometheus.CounterVec   // kind, state
	commitSize  *prometheus.HistogramVec // queue
	commitTime  *prometheus.HistogramVec // queue
	commitFail  *prometheus.CounterVec   // queue
}

// The outcomes of an assignment (samplit_assignments_total's outcome label).
const (
	assignNew      = "new"      // this call made the assignment
	assignExisting = "existing" // the unit had one (sticky)
	assignExcluded = "excluded" // outside the traffic share, or a step without variants
	assignFixed    = "fixed"    // a completed experiment serving its fixed winner
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		assignments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samplit_assignments_total",
			Help: "Units assigned, by kind (experiment, funnel, campaign) and outcome (new, existing, excluded, fixed).",
		}, []string{"kind", "outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samplit_events_total",
			Help: "Events received, by kind (experiment, campaign) and outcome (accepted, duplicate, rejected).",
		}, []string{"kind", "outcome"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samplit_decisions_total",
			Help: "Decisions this replica recorded (each is recorded once among all replicas), by kind and state (winner_found, no_difference, srm_detected, guardrail_tripped, auto_completed).",
		}, []string{"kind", "state"}),
		commitSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "samplit_group_commit_size",
			Help:    "Requests per group commit (one database transaction), by queue.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}, []string{"queue"}),
		commitTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "samplit_group_commit_duration_seconds",
			Help:    "Time of one group commit's transaction, by queue.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms to 4 s
		}, []string{"queue"}),
		commitFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samplit_group_commit_failures_total",
			Help: "Group commits whose transaction failed (every request in it got the error), by queue.",
		}, []string{"queue"}),
	}
	if reg != nil {
		m.assignments = register(reg, m.assignments)
		m.events = register(reg, m.events)
		m.decisions = register(reg, m.decisions)
		m.commitSize = register(reg, m.commitSize)
		m.commitTime = register(reg, m.commitTime)
		m.commitFail = register(reg, m.commitFail)
	}
	return m
}

// register registers c, or returns the collector already registered under
// its name, so that several sets of services (tests, replicas in one
// process) can share a registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("optimize: register metrics: %v", err))
	}
	return c
}

// observer returns the committer's hook for one queue.
func (m *metrics) observer(queue string) func(n int, d time.Duration, err error) {
	size, took, failed := m.commitSize.WithLabelValues(queue), m.commitTime.WithLabelValues(queue), m.commitFail.WithLabelValues(queue)
	return func(n int, d time.Duration, err error) {
		size.Observe(float64(n))
		took.Observe(d.Seconds())
		if err != nil {
			failed.Inc()
		}
	}
}

// countEvents counts the outcomes of one call's events.
func (m *metrics) countEvents(kind Kind, res []store.EventResult) {
	for _, r := range res {
		m.events.WithLabelValues(string(kind), string(r.Outcome)).Inc()
	}
}

// decided counts a decision this replica recorded.
func (m *metrics) decided(kind Kind, state string) {
	m.decisions.WithLabelValues(string(kind), state).Inc()
}

// countAssignments counts the outcome of each unit of one call.
func countAssignments(m *metrics, kind Kind, out []Assignment) {
	var n, existing, excluded int
	for _, a := range out {
		switch {
		case a.Variant == nil:
			excluded++
		case a.New:
			n++
		default:
			existing++
		}
	}
	for outcome, c := range map[string]int{assignNew: n, assignExisting: existing, assignExcluded: excluded} {
		if c > 0 {
			m.assignments.WithLabelValues(string(kind), outcome).Add(float64(c))
		}
	}
}
