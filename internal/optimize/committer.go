package optimize

import (
	"context"
	"sync"
	"time"

	"github.com/samplit/samplit/internal/osthread"
)

// committer is a group commit: requests that arrive while a write is in
// progress wait together and go to the database in the next single
// transaction. On SQLite, which has one writer, this turns N concurrent
// fsyncs into one, which is what lets single-unit assignments and events be
// both durable before they are acknowledged and fast; on PostgreSQL several
// workers commit in parallel and batching still saves round trips.
//
// Each request carries a key (the experiment, funnel or campaign id) and
// every request of one key goes to the same worker. The writes of one
// experiment all touch its counter rows, so two workers committing them at
// once would only queue on those row locks, each with half a group; one
// worker per key makes the groups as large as the concurrency allows, while
// other experiments commit in parallel on the other workers.
//
// A request's result is delivered only after its transaction committed, so
// an acknowledged write is durable; a failed transaction fails every request
// in it (each caller sees the error and none is acknowledged).
type committer[Req, Resp any] struct {
	queues []chan *job[Req, Resp] // one per worker
	flush  func(ctx context.Context, reqs []Req) ([]Resp, error)
	// pin runs each worker on an OS thread of its own (osthread.Pin).
	pin bool
	// observe, if set, is told each group's size, the time its transaction
	// took and its error (the group commit metrics).
	observe func(n int, d time.Duration, err error)
	wg      sync.WaitGroup
	stop    chan struct{}
	once    sync.Once
}

type job[Req, Resp any] struct {
	req  Req
	resp Resp
	err  error
	done chan struct{}
}

// maxGroup bounds how many requests one group commit takes.
const maxGroup = 256

// commitTimeout bounds one group's transaction.
const commitTimeout = 30 * time.Second

// newCommitter starts opts.Writers goroutines that call flush with up to
// maxGroup requests at a time, pinned to their threads if opts.PinWriters
// says so; observe (may be nil) is told the size, duration and error of
// each flush.
func newCommitter[Req, Resp any](opts Options, flush func(context.Context, []Req) ([]Resp, error), observe func(int, time.Duration, error)) *committer[Req, Resp] {
	c := &committer[Req, Resp]{
		flush:   flush,
		pin:     opts.PinWriters,
		observe: observe,
		stop:    make(chan struct{}),
	}
	for range opts.withDefaults().Writers {
		q := make(chan *job[Req, Resp], maxGroup*2)
		c.queues = append(c.queues, q)
		c.wg.Add(1)
		go c.loop(q)
	}
	return c
}

// do submits req and waits for its committed result. If ctx ends first the
// caller stops waiting, but the request may still be committed: callers make
// writes idempotent (sticky assignment, idempotency keys) for that reason.
func (c *committer[Req, Resp]) do(ctx context.Context, key string, req Req) (Resp, error) {
	j := &job[Req, Resp]{req: req, done: make(chan struct{})}
	var zero Resp
	select {
	case c.queues[fnv32a(key)%uint32(len(c.queues))] <- j:
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-c.stop:
		return zero, errClosed
	}
	select {
	case <-j.done:
		return j.resp, j.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// fnv32a is FNV-1a of s (hash/fnv's New32a over its bytes, without the
// hash object and the copy of s that cost two allocations per request).
func fnv32a(s string) uint32 {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= prime
	}
	return h
}

func (c *committer[Req, Resp]) loop(jobs chan *job[Req, Resp]) {
	defer c.wg.Done()
	if c.pin {
		// Never unlocked: the thread ends with the worker (osthread.Pin).
		// A refused slice leaves the lock, about half of the gain.
		_ = osthread.Pin()
	}
	batch := make([]*job[Req, Resp], 0, maxGroup)
	reqs := make([]Req, 0, maxGroup)
	for {
		var first *job[Req, Resp]
		select {
		case first = <-jobs:
		case <-c.stop:
			// Drain what was queued before the stop so no accepted job hangs.
			for {
				select {
				case j := <-jobs:
					c.run([]*job[Req, Resp]{j}, []Req{j.req})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxGroup {
			select {
			case j := <-jobs:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		reqs = reqs[:0]
		for _, j := range batch {
			reqs = append(reqs, j.req)
		}
		c.run(batch, reqs)
	}
}

func (c *committer[Req, Resp]) run(batch []*job[Req, Resp], reqs []Req) {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	start := time.Now()
	resps, err := c.flush(ctx, reqs)
	cancel()
	if c.observe != nil {
		c.observe(len(reqs), time.Since(start), err)
	}
	for i, j := range batch {
		if err != nil {
			j.err = err
		} else {
			j.resp = resps[i]
		}
		close(j.done)
	}
}

// close stops the workers after the jobs already queued are committed.
func (c *committer[Req, Resp]) close() {
	c.once.Do(func() { close(c.stop) })
	c.wg.Wait()
}
