// Package webhook delivers Samplit's events to the endpoints users register:
// signed per Standard Webhooks, at least once, retried with backoff for about
// three days, from any number of replicas.
//
// Events are not sent by the code that causes them. The store writes each
// event to an outbox table in the transaction of the change, and fans it out
// there into one delivery row per subscribed endpoint (store.Webhooks); a
// Worker in every replica then leases due deliveries, sends them and records
// every attempt. A crash therefore loses nothing (the rows are committed
// with the change) and announces nothing that did not happen (no commit, no
// rows), and a delivery whose worker died is taken over when its lease
// expires. Every attempt of a delivery carries the event's id as webhook-id,
// so receivers can drop the duplicates at-least-once delivery implies.
//
// Safety: Service.CheckURL refuses URLs whose hosts resolve to loopback,
// private, link-local or metadata addresses at registration, and the
// delivery client (NewHTTPClient) refuses them again on the address actually
// dialled, so DNS that changes later gains nothing.
package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samplit/samplit/internal/seal"
	"github.com/samplit/samplit/internal/store"
)

// DefaultSchedule is the delay before each retry after a failed attempt:
// 12 attempts over about 2 days 23 hours. Each delay is jittered by ±20%.
// docs/webhooks.md publishes it.
var DefaultSchedule = []time.Duration{
	5 * time.Second,
	30 * time.Second,
	2 * time.Minute,
	10 * time.Minute,
	30 * time.Minute,
	1 * time.Hour,
	3 * time.Hour,
	6 * time.Hour,
	12 * time.Hour,
	24 * time.Hour,
	24 * time.Hour,
}

// Options tune a Worker. The zero value of each field means its default.
type Options struct {
	// Owner names this worker in leases; default host-pid-random.
	Owner string
	// Concurrency bounds the deliveries in flight (default 16), and
	// PerEndpoint those to one endpoint (default 2), so that endpoints
	// that hang occupy at most PerEndpoint slots each and the others keep
	// flowing.
	Concurrency int
	PerEndpoint int
	// PollInterval is how often the outbox is checked when idle (1 s).
	PollInterval time.Duration
	// Lease is how long a claimed delivery is reserved for this worker
	// (60 s); it must exceed Timeout by a margin, since a worker that
	// outlives its lease may see its delivery sent again by another.
	Lease time.Duration
	// Timeout bounds one attempt, connection to last byte (10 s).
	Timeout time.Duration
	// Schedule is the delay before each retry (DefaultSchedule); Jitter the
	// fraction by which each is randomised either way (0.2; negative: none).
	Schedule []time.Duration
	Jitter   float64
	// AllowPrivate lets deliveries reach private addresses and plain http.
	AllowPrivate bool
	// Client sends the requests; default NewHTTPClient(Timeout, AllowPrivate).
	Client *http.Client
	// Now is the clock (time.Now) and Rand a uniform draw in [0, 1) for the
	// jitter (math/rand/v2).
	Now    func() time.Time
	Rand   func() float64
	Logger *slog.Logger
	// Registerer, if set, receives the worker's metrics (metrics.go):
	// attempts by result, endpoints disabled, and the backlog.
	Registerer prometheus.Registerer
}

func (o Options) withDefaults() Options {
	if o.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		o.Owner = host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.PerEndpoint <= 0 {
		o.PerEndpoint = 2
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Lease <= 0 {
		o.Lease = max(60*time.Second, 3*o.Timeout)
	}
	if o.Schedule == nil {
		o.Schedule = DefaultSchedule
	}
	if o.Jitter == 0 {
		o.Jitter = 0.2
	}
	if o.Client == nil {
		o.Client = NewHTTPClient(o.Timeout, o.AllowPrivate)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = mrand.Float64
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Worker sends due deliveries. Run it in every replica: leases keep two
// replicas from attempting one delivery at the same time.
type Worker struct {
	st   store.Webhooks
	ring *seal.Keyring
	opts Options
	kick chan struct{}

	m *workerMetrics

	mu       sync.Mutex
	inFlight map[string]int // by webhook id
	total    int
	wg       sync.WaitGroup
}

// NewWorker returns a worker over the store; ring opens the sealed secrets.
func NewWorker(st store.Webhooks, ring *seal.Keyring, opts Options) *Worker {
	w := &Worker{st: st, ring: ring, opts: opts.withDefaults(), kick: make(chan struct{}, 1), inFlight: map[string]int{}}
	w.m = newWorkerMetrics(w.opts.Registerer, st, w.opts.Now)
	return w
}

// Owner returns the name this worker leases deliveries under.
func (w *Worker) Owner() string { return w.opts.Owner }

// Kick makes the worker look for due deliveries now rather than at the
// next poll.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run delivers until ctx is done, then waits for the attempts in flight
// (which ctx cancels; their leases are given back) and returns.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			w.wg.Wait()
			return
		case <-t.C:
		case <-w.kick:
		}
		if err := w.Poll(ctx); err != nil && ctx.Err() == nil {
			w.opts.Logger.Warn("webhook poll failed", "err", err)
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(w.opts.PollInterval)
	}
}

// Poll claims what is due and free slots allow, and starts sending it. It
// does not wait for the sends (Wait does).
func (w *Worker) Poll(ctx context.Context) error {
	w.mu.Lock()
	free := w.opts.Concurrency - w.total
	var skip []string
	for hook, n := range w.inFlight {
		if n >= w.opts.PerEndpoint {
			skip = append(skip, hook)
		}
	}
	w.mu.Unlock()
	if free <= 0 {
		return nil
	}
	now := w.opts.Now()
	// A read first, so that idle replicas poll without taking SQLite's
	// single write lock.
	due, err := w.st.DeliveriesDue(ctx, now)
	if err != nil || !due {
		return err
	}
	claimed, err := w.st.ClaimDeliveries(ctx, w.opts.Owner, now, now.Add(w.opts.Lease), free, skip)
	if err != nil {
		return err
	}
	for _, c := range claimed {
		w.mu.Lock()
		busy := w.inFlight[c.WebhookID] >= w.opts.PerEndpoint
		if !busy {
			w.inFlight[c.WebhookID]++
			w.total++
		}
		w.mu.Unlock()
		if busy {
			// The batch held more for this endpoint than it may have in
			// flight: give them back for later (or for another replica).
			if err := w.st.ReleaseDelivery(ctx, w.opts.Owner, c.ID); err != nil {
				return err
			}
			continue
		}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.deliver(ctx, c)
			w.mu.Lock()
			if w.inFlight[c.WebhookID]--; w.inFlight[c.WebhookID] == 0 {
				delete(w.inFlight, c.WebhookID)
			}
			w.total--
			w.mu.Unlock()
			w.Kick() // a slot is free: the backlog need not wait for the poll
		}()
	}
	return nil
}

// Wait waits for the deliveries in flight.
func (w *Worker) Wait() { w.wg.Wait() }

// deliver makes one attempt of c and records it.
func (w *Worker) deliver(ctx context.Context, c store.ClaimedDelivery) {
	start := w.opts.Now()
	code, sendErr := w.send(ctx, c, start)
	if ctx.Err() != nil {
		// Shutting down: this was not a fair attempt. Give the lease back
		// so that another replica (or the restart) sends it at once.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = w.st.ReleaseDelivery(rctx, w.opts.Owner, c.ID)
		return
	}
	end := w.opts.Now()
	out := store.AttemptOutcome{
		Attempt:   store.DeliveryAttempt{At: start, StatusCode: code, Latency: end.Sub(start)},
		Succeeded: sendErr == nil,
	}
	if sendErr != nil {
		out.Attempt.Error = sendErr.Error()
		if n := c.Attempts + 1; n <= len(w.opts.Schedule) {
			next := end.Add(w.jitter(w.opts.Schedule[n-1]))
			out.NextAttemptAt = &next
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	disabled, err := w.st.RecordAttempt(rctx, w.opts.Owner, c.ID, out)
	if err != nil {
		// The lease expires and the delivery is attempted again: at least
		// once, never lost.
		w.opts.Logger.Error("record webhook attempt", "delivery", c.ID, "err", err)
		return
	}
	log := w.opts.Logger.With("delivery", c.ID, "webhook", c.WebhookID, "event", c.EventID, "type", string(c.EventType),
		"attempt", c.Attempts+1, "status_code", code, "latency_ms", out.Attempt.Latency.Milliseconds())
	w.m.attempted(sendErr == nil, out.NextAttemptAt != nil, disabled, out.Attempt.Latency)
	switch {
	case sendErr == nil:
		log.Debug("webhook delivered")
	case out.NextAttemptAt != nil:
		log.Info("webhook attempt failed", "err", sendErr, "next_attempt_at", out.NextAttemptAt)
	default:
		log.Warn("webhook delivery failed for good", "err", sendErr)
	}
	if disabled {
		log.Warn("webhook endpoint disabled: it failed for the whole retry schedule", "url", c.Webhook.URL)
	}
}

// jitter spreads d by ±Jitter so that endpoints recovering from an outage
// are not hit by every replica's retries at once.
func (w *Worker) jitter(d time.Duration) time.Duration {
	if w.opts.Jitter <= 0 {
		return d
	}
	f := 1 + w.opts.Jitter*(2*w.opts.Rand()-1)
	return time.Duration(float64(d) * f)
}

// maxResponse bounds how much of a receiver's answer is read: the body is
// not used, but reading a little lets the connection be reused.
const maxResponse = 64 << 10

// send posts the event to the endpoint, signed, and returns the status code
// (0 without a response) and nil for a 2xx answer.
func (w *Worker) send(ctx context.Context, c store.ClaimedDelivery, now time.Time) (int, error) {
	if !strings.HasPrefix(c.Webhook.URL, "https://") && !w.opts.AllowPrivate {
		return 0, errors.New("refused: the url is not https")
	}
	sigs, err := w.signatures(c, now)
	if err != nil {
		return 0, err
	}
	body := Body(c.Event)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Webhook.URL, strings.NewReader(string(body)))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Samplit-Webhooks/1")
	req.Header.Set("webhook-id", c.EventID)
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", sigs(ts, body))
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		return 0, describe(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return resp.StatusCode, nil
}

// signatures opens the endpoint's secrets and returns a function that signs
// with the current one and, during a rotation's overlap, the previous one.
func (w *Worker) signatures(c store.ClaimedDelivery, now time.Time) (func(ts string, body []byte) string, error) {
	var secrets []string
	cur, err := w.ring.Open(c.Webhook.ID, c.Webhook.SecretKeyID, c.Webhook.Secret)
	if err != nil {
		return nil, fmt.Errorf("open the endpoint's secret: %w", err)
	}
	secrets = append(secrets, string(cur))
	if c.Webhook.PrevUntil != nil && now.Before(*c.Webhook.PrevUntil) && len(c.Webhook.PrevSecret) > 0 {
		prev, err := w.ring.Open(c.Webhook.ID, c.Webhook.PrevKeyID, c.Webhook.PrevSecret)
		if err != nil {
			return nil, fmt.Errorf("open the endpoint's previous secret: %w", err)
		}
		secrets = append(secrets, string(prev))
	}
	return func(ts string, body []byte) string {
		n, _ := strconv.ParseInt(ts, 10, 64)
		var out []string
		for _, s := range secrets {
			if sig, err := Sign(s, c.EventID, n, body); err == nil {
				out = append(out, sig)
			}
		}
		return strings.Join(out, " ")
	}, nil
}

// describe shortens a transport error for the attempt log, keeping what
// tells the user what to fix.
func describe(err error) error {
	switch {
	case errors.Is(err, ErrForbiddenAddress):
		var msg string
		for e := err; e != nil; e = errors.Unwrap(e) {
			msg = e.Error()
			if strings.HasPrefix(msg, ErrForbiddenAddress.Error()) {
				break
			}
		}
		return fmt.Errorf("refused: %s", msg)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return errors.New("timed out")
	}
	return err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
