package api

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/samplit/samplit/internal/store"
)

// The serving hot path (assign, events) would otherwise read the database
// twice per request before doing any work: once to verify the API key and
// once to load the experiment. Profiled under load on SQLite those two reads
// were about half of the server's CPU. Both change rarely, so each replica
// keeps what it read for a short time.
//
// Staleness, by design and bounded by the TTLs below:
//   - A revoked key keeps working for at most keyCacheTTL on a replica that
//     verified it just before (revocation is a database write, made by
//     `samplit keys revoke` from another process or by DELETE /v1/keys/{id}
//     on another replica; no replica learns of it but by reading). The
//     replica that serves the DELETE forgets the key at once. Unknown, malformed and failed keys are never cached:
//     every one of them is checked against the database.
//   - An experiment's status, settings and winner as seen by the assign and
//     events routes may lag a change made through ANOTHER replica by at most
//     experimentCacheTTL (a pause seen 1 s late serves up to 1 s more of
//     assignments there). A change made through THIS replica (start, pause,
//     resume, complete, archive) drops the entry at once. Every other route
//     (results, transitions, reads) always reads the database.
//   - A funnel as seen by its progress route, likewise (funnelCache): a
//     transition made through this replica's API drops it at once. Without
//     it the read of the funnel was 31% of the CPU of progress calls on
//     SQLite (docs/load.md, "Twelfth pass").

const (
	keyCacheTTL        = time.Second
	experimentCacheTTL = time.Second
	// cacheMaxEntries bounds each cache; when full it is emptied, which
	// costs one database read per live entry and nothing else.
	cacheMaxEntries = 10_000
)

// ttlCache is a small map with per-entry expiry, safe for concurrent use.
// Its zero value is ready to use. Expiry uses the monotonic wall clock, not
// the server's injectable clock: it bounds real staleness.
//
// Entries are read through load, which keeps a busy entry from ever
// expiring under its callers. Without that, every request that found it
// missing or expired read the database at once: 32 connections starting
// together made 32 key and 32 experiment reads, queued for PostgreSQL's
// pool while it opened its connections, and the first answers took 64–307
// ms (docs/load.md, "Fifth pass"); the same happened on a smaller scale at
// every expiry.
type ttlCache[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]ttlEntry[V]
	// flights are the reads in progress for missing or expired entries;
	// gen counts deletions, so that a read begun before one is not stored
	// after it.
	flights map[K]*flight[V]
	gen     uint64
	// now is time.Now unless a test sets it.
	now func() time.Time
}

func (c *ttlCache[K, V]) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
	// refreshAt is when the next caller starts reading the entry anew
	// while the others are still served it: the last quarter of its life.
	refreshAt  time.Time
	refreshing bool
}

type flight[V any] struct {
	done chan struct{}
	v    V
	err  error
}

// load returns the value of k, read by fetch when it is missing or expired.
//
//   - Concurrent callers that find it missing wait for one fetch and share
//     its value. A failed fetch is not shared: each of them then fetches
//     for itself, with its own context and checks (an unknown key, a
//     cancelled request, a refused address are each caller's own).
//   - From the last quarter of an entry's life, the first caller fetches it
//     anew while the others are served the cached value, which is never
//     served past its expiry. A failed refresh drops the entry, so that a
//     revoked key or a deleted experiment is seen at once.
func (c *ttlCache[K, V]) load(ctx context.Context, k K, ttl time.Duration, fetch func(context.Context) (V, error)) (V, error) {
	c.mu.Lock()
	now := c.clock()
	e, ok := c.m[k]
	if ok && now.Before(e.expires) {
		if e.refreshing || now.Before(e.refreshAt) {
			c.mu.Unlock()
			return e.v, nil
		}
		e.refreshing = true
		c.m[k] = e
		gen := c.gen
		c.mu.Unlock()
		v, err := fetch(ctx)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.gen == gen {
			if err != nil {
				delete(c.m, k)
			} else {
				c.store(k, v, ttl)
			}
		}
		return v, err
	}
	if f, ok := c.flights[k]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			if f.err == nil {
				return f.v, nil
			}
			return fetch(ctx)
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
	}
	f := &flight[V]{done: make(chan struct{})}
	if c.flights == nil {
		c.flights = make(map[K]*flight[V])
	}
	c.flights[k] = f
	gen := c.gen
	c.mu.Unlock()

	f.v, f.err = fetch(ctx)
	c.mu.Lock()
	delete(c.flights, k)
	if f.err == nil && c.gen == gen {
		c.store(k, f.v, ttl)
	}
	c.mu.Unlock()
	close(f.done)
	return f.v, f.err
}

// store puts v under k for ttl; the caller holds mu.
func (c *ttlCache[K, V]) store(k K, v V, ttl time.Duration) {
	if c.m == nil || len(c.m) >= cacheMaxEntries {
		c.m = make(map[K]ttlEntry[V])
	}
	now := c.clock()
	c.m[k] = ttlEntry[V]{v: v, expires: now.Add(ttl), refreshAt: now.Add(ttl - ttl/4)}
}

// deleteFunc drops every entry for which drop returns true; reads in
// progress when it is called store nothing.
func (c *ttlCache[K, V]) deleteFunc(drop func(K, V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.m {
		if drop(k, e.v) {
			delete(c.m, k)
		}
	}
}

// keyCache remembers verified API keys by the SHA-256 of the whole bearer
// token (never the token itself), so a hit proves the caller sent exactly
// the secret that was verified.
type keyCache struct {
	ttlCache[[sha256.Size]byte, store.APIKey]
}

// experimentRef names an experiment (or a funnel) as a request does: its
// workspace and the id or key in the path.
type experimentRef struct{ workspaceID, ref string }

// experimentCache remembers experiments for the serving routes.
type experimentCache struct {
	ttlCache[experimentRef, store.Experiment]
}

// forget drops the experiment, under whatever ref it was cached.
func (c *experimentCache) forget(experimentID string) {
	c.deleteFunc(func(_ experimentRef, e store.Experiment) bool { return e.ID == experimentID })
}

// funnelCache remembers funnels for the progress route, as experimentCache
// does experiments for theirs, with the same bound on staleness.
type funnelCache struct {
	ttlCache[experimentRef, store.Funnel]
}

// forget drops the funnel, under whatever ref it was cached.
func (c *funnelCache) forget(funnelID string) {
	c.deleteFunc(func(_ experimentRef, f store.Funnel) bool { return f.ID == funnelID })
}

// cachedRoutes are the routes whose experiment lookups may be served from
// the cache: the hot path, where a second of staleness is harmless.
var cachedRoutes = map[string]bool{
	"POST /v1/experiments/{ref}/assign": true,
	"POST /v1/experiments/{ref}/events": true,
}
