package api

import (
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
type ttlCache[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func (c *ttlCache[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || time.Now().After(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[K, V]) put(k K, v V, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= cacheMaxEntries {
		c.m = make(map[K]ttlEntry[V])
	}
	c.m[k] = ttlEntry[V]{v: v, expires: time.Now().Add(ttl)}
}

// deleteFunc drops every entry for which drop returns true.
func (c *ttlCache[K, V]) deleteFunc(drop func(K, V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
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

// experimentRef names an experiment as a request does: its workspace and
// the id or key in the path.
type experimentRef struct{ workspaceID, ref string }

// experimentCache remembers experiments for the serving routes.
type experimentCache struct {
	ttlCache[experimentRef, store.Experiment]
}

// forget drops the experiment, under whatever ref it was cached.
func (c *experimentCache) forget(experimentID string) {
	c.deleteFunc(func(_ experimentRef, e store.Experiment) bool { return e.ID == experimentID })
}

// cachedRoutes are the routes whose experiment lookups may be served from
// the cache: the hot path, where a second of staleness is harmless.
var cachedRoutes = map[string]bool{
	"POST /v1/experiments/{ref}/assign": true,
	"POST /v1/experiments/{ref}/events": true,
}
