package store

import (
	"context"
	"time"
)

// DecideKind names the kind of object the decision loop evaluates.
type DecideKind string

// The kinds the decision loop evaluates.
const (
	DecideExperiment DecideKind = "experiment"
	DecideFunnel     DecideKind = "funnel"
	DecideCampaign   DecideKind = "campaign"
)

// DecideObject is an object the decision loop may evaluate: a running or
// paused experiment, funnel or campaign.
type DecideObject struct {
	Kind        DecideKind
	ID          string
	WorkspaceID string
	// Version is the object's data version when it was found due: a count
	// of the writes of its data (assignments, events, funnel progress,
	// campaign sends and events), bumped in the transaction of each write.
	Version int64
}

// DecideLeases lets the decision loops of all replicas share the work of
// evaluating objects without doing it twice. An object is due when its data
// version differs from the one of its last evaluation (or it was never
// evaluated, or last evaluated before a staleness bound: decisions that
// depend on the passing of time alone); a loop leases due objects, evaluates
// them, and records the version it evaluated. A lease that is not renewed
// expires, so a replica that dies holding one delays the object's
// evaluation by at most the lease time.
type DecideLeases interface {
	// DueForDecision returns up to limit running or paused objects whose
	// data changed since their last evaluation or that were last evaluated
	// before staleBefore, and that nobody holds a lease on at now; the
	// longest-waiting first. It only reads (idle loops take no write lock).
	DueForDecision(ctx context.Context, now, staleBefore time.Time, limit int) ([]DecideObject, error)
	// ClaimForDecision leases to owner until leaseUntil those of objs that
	// nobody holds a lease on at now, and returns them: while the lease
	// holds, no other owner claims them.
	ClaimForDecision(ctx context.Context, owner string, objs []DecideObject, now, leaseUntil time.Time) ([]DecideObject, error)
	// RenewDecisionLeases extends owner's leases on the objects (ids) to
	// until; leases owner no longer holds are left alone. It returns how
	// many were extended.
	RenewDecisionLeases(ctx context.Context, owner string, ids []string, until time.Time) (int, error)
	// FinishDecision records that owner evaluated o (at its Version) at at
	// and releases owner's lease. The recorded version never goes back.
	FinishDecision(ctx context.Context, owner string, o DecideObject, at time.Time) error
	// ReleaseDecision gives back owner's lease on the object without
	// recording an evaluation (a replica shutting down), so that another
	// replica evaluates it at its next round instead of after the lease.
	ReleaseDecision(ctx context.Context, owner, id string) error
}
