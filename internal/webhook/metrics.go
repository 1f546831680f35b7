package webhook

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samplit/samplit/internal/store"
)

// workerMetrics are the delivery metrics an operator alerts on: attempts by
// result, endpoints disabled, and the backlog read from the database at
// each scrape (so that every replica reports the same, shared outbox).
type workerMetrics struct {
	attempts *prometheus.CounterVec
	latency  prometheus.Histogram
	disabled prometheus.Counter
}

func newWorkerMetrics(reg prometheus.Registerer, st store.Webhooks, now func() time.Time) *workerMetrics {
	m := &workerMetrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samplit_webhook_attempts_total",
			Help: "Webhook delivery attempts this replica made, by result (succeeded, retrying: failed and scheduled again, failed: the last scheduled attempt failed).",
		}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "samplit_webhook_attempt_duration_seconds",
			Help:    "Time of one webhook delivery attempt, connection to answer.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12), // 5 ms to 10 s
		}),
		disabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "samplit_webhook_endpoints_disabled_total",
			Help: "Webhook endpoints this replica disabled because they failed for the whole retry schedule.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.latency, m.disabled, &backlogCollector{st: st, now: now})
	}
	return m
}

func (m *workerMetrics) attempted(ok, retrying, disabled bool, latency time.Duration) {
	result := "failed"
	switch {
	case ok:
		result = "succeeded"
	case retrying:
		result = "retrying"
	}
	m.attempts.WithLabelValues(result).Inc()
	m.latency.Observe(latency.Seconds())
	if disabled {
		m.disabled.Inc()
	}
}

var (
	backlogDesc = prometheus.NewDesc("samplit_webhook_backlog",
		"Webhook deliveries waiting to be sent to enabled endpoints (all replicas: read from the database).", nil, nil)
	oldestDueDesc = prometheus.NewDesc("samplit_webhook_oldest_due_seconds",
		"How long the most overdue pending webhook delivery has been due (0 when none is).", nil, nil)
)

// backlogCollector reads the backlog at scrape time, bounded by a timeout:
// a scrape never hangs on a slow database, and the backlog series are
// absent (absent() in an alert rule) when the query fails.
type backlogCollector struct {
	st  store.Webhooks
	now func() time.Time
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- oldestDueDesc
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b, err := c.st.DeliveryBacklog(ctx, c.now())
	if err != nil {
		// Not an invalid metric: that would fail the whole scrape, and
		// with it every other series, when the database is what is slow.
		return
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(b.Pending))
	ch <- prometheus.MustNewConstMetric(oldestDueDesc, prometheus.GaugeValue, b.OldestDue.Seconds())
}
