package store

import (
	"context"
	"time"
)

// Session is a dashboard sign-in, shared by every replica through the
// database so that a load balancer needs no sticky sessions.
//
// The store never sees the session's token nor the API key in the clear:
// TokenHash is the SHA-256 of the token the browser holds, and SealedKey is
// the signed-in API key encrypted under a key derived from that token
// (internal/dashboard does both), so a copy of the database opens neither.
type Session struct {
	TokenHash   []byte
	KeyID       string
	WorkspaceID string
	SealedKey   []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Sessions stores dashboard sessions.
type Sessions interface {
	// CreateSession stores s and, in the same transaction, deletes the
	// oldest sessions of the same API key beyond maxPerKey (s counted), and
	// returns how many it deleted. Only s.KeyID's sessions are ever
	// deleted: sign-ins with one key cannot end another key's sessions.
	// NotFound when the key does not exist.
	CreateSession(ctx context.Context, s Session, maxPerKey int) (evicted int, err error)
	// GetSession returns the session with the token hash if it has not
	// expired at now; NotFound otherwise.
	GetSession(ctx context.Context, tokenHash []byte, now time.Time) (Session, error)
	// DeleteSession ends the session (a sign-out); no error if it is gone.
	DeleteSession(ctx context.Context, tokenHash []byte) error
}

// PruneKind names a kind of row that retention deletes by age.
type PruneKind string

// The kinds of rows retention deletes.
const (
	// PruneIdempotency: Idempotency-Key records created before the cutoff
	// (they have expired: the API no longer replays them).
	PruneIdempotency PruneKind = "idempotency"
	// PruneEventKeys: event idempotency keys (experiments' and campaigns')
	// first used before the cutoff. A retry of such an event counts again.
	PruneEventKeys PruneKind = "event_keys"
	// PruneWebhookHistory: deliveries created before the cutoff that are not
	// pending (delivered or given up), with their attempts, then outbox
	// events created before the cutoff that have no delivery left. An event
	// with a delivery still pending is never deleted.
	PruneWebhookHistory PruneKind = "webhook_history"
	// PruneSessions: dashboard sessions that expired before the cutoff.
	PruneSessions PruneKind = "dashboard_sessions"
)

// PruneKinds lists every PruneKind, in the order retention runs them.
var PruneKinds = []PruneKind{PruneIdempotency, PruneEventKeys, PruneWebhookHistory, PruneSessions}

// Retention deletes old rows.
type Retention interface {
	// Prune deletes at most limit rows per table of the kind that are older
	// than before, in one short transaction, and returns the rows deleted
	// per table (by table name). A caller repeats it until every count is
	// below limit, so that no transaction holds the database for long.
	Prune(ctx context.Context, what PruneKind, before time.Time, limit int) (map[string]int64, error)
}
