package seal

import (
	"context"
	"fmt"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/store"
)

// rotatePageSize is how many states Rotate lists at a time: small enough to
// keep each query and the memory it holds modest, large enough that the
// number of round trips stays low.
const rotatePageSize = 100

// rotateAttempts bounds how often Rotate retries one state whose saves keep
// losing to a concurrent writer. A running server saves a given experiment's
// state at most a few times a second, so a handful of attempts suffices; a
// state that still conflicts is counted as failed and picked up by the next
// run.
const rotateAttempts = 8

// RotateReport counts what Rotate did. Scanned equals Resealed + Current +
// Gone + Failed.
type RotateReport struct {
	Scanned  int // states listed
	Resealed int // states re-sealed under the primary key by this run
	Current  int // states already under the primary key (including those a concurrent writer re-sealed first)
	Gone     int // states deleted between listing and re-sealing
	Failed   int // states that could not be opened or kept conflicting; see Failures
	// Failures names each failed state and why.
	Failures []RotateFailure
}

// RotateFailure is one state Rotate could not re-seal.
type RotateFailure struct {
	ExperimentID string
	KeyID        string
	Err          error
}

// String summarises the report for the CLI.
func (r RotateReport) String() string {
	return fmt.Sprintf("scanned %d, resealed %d, already current %d, deleted meanwhile %d, failed %d",
		r.Scanned, r.Resealed, r.Current, r.Gone, r.Failed)
}

// Rotate re-seals under the ring's primary key every stored state sealed
// under another key, so that the old keys can then be dropped.
//
// It is safe to run while servers are saving state: each re-seal is saved
// with the optimistic version check of store.States, and when a server saved
// first (Conflict), Rotate reloads the row and starts over with its newer
// content, so no server write is ever lost. It is idempotent: a second run
// finds every state current and writes nothing.
//
// A state that cannot be opened (its key is not in the ring, or it is
// damaged) is counted as failed and left untouched; Rotate goes on with the
// others. Any other store error stops the run and is returned with the report
// so far.
//
// The procedure, for `samplit state rotate-key`:
//
//  1. With several replicas, first give every server the new key for reading
//     only (SAMPLIT_STATE_OLD_KEYS=new) and restart them, so that none is
//     left unable to read what the others seal next.
//  2. Make the new key the primary and keep the old one for reading
//     (SAMPLIT_STATE_KEY=new, SAMPLIT_STATE_OLD_KEYS=old) and restart the
//     servers. From now on they seal under the new key; otherwise they would
//     keep writing rows under the old key behind Rotate.
//  3. Run Rotate with a keyring built from that same configuration. A report
//     with Failed = 0 means no row needs the old key any more.
//  4. Remove the old key from the configuration.
func Rotate(ctx context.Context, states store.States, ring *Keyring, now time.Time) (RotateReport, error) {
	var rep RotateReport
	if ring == nil {
		return rep, fmt.Errorf("rotate state keys: no keyring")
	}
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("rotate state keys: %w", err)
		}
		page, err := states.ListStates(ctx, after, rotatePageSize)
		if err != nil {
			return rep, fmt.Errorf("rotate state keys: list states after %q: %w", after, err)
		}
		if len(page) == 0 {
			return rep, nil
		}
		for _, s := range page {
			if s.ExperimentID <= after {
				// A store that does not honour the order would loop forever.
				return rep, fmt.Errorf("rotate state keys: list states after %q returned %q out of order", after, s.ExperimentID)
			}
			after = s.ExperimentID
			rep.Scanned++
			if err := rotateOne(ctx, states, ring, now, s, &rep); err != nil {
				return rep, err
			}
		}
	}
}

// rotateOne re-seals one state, retrying on Conflict, and counts the outcome
// in rep. It returns an error only for failures that should stop the run.
func rotateOne(ctx context.Context, states store.States, ring *Keyring, now time.Time, s store.SealedState, rep *RotateReport) error {
	primary := ring.PrimaryID()
	for attempt := 1; ; attempt++ {
		if s.KeyID == primary {
			rep.Current++
			return nil
		}
		plaintext, err := ring.Open(s.ExperimentID, s.KeyID, s.Blob)
		if err != nil {
			rep.fail(s, err)
			return nil
		}
		keyID, blob, err := ring.Seal(s.ExperimentID, plaintext)
		if err != nil {
			return fmt.Errorf("rotate state keys: experiment %s: %w", s.ExperimentID, err)
		}
		err = states.SaveState(ctx, store.SealedState{
			ExperimentID: s.ExperimentID,
			KeyID:        keyID,
			Blob:         blob,
			Version:      s.Version + 1,
			UpdatedAt:    now,
		})
		switch {
		case err == nil:
			rep.Resealed++
			return nil
		case apperr.Is(err, apperr.NotFound): // the experiment was deleted meanwhile
			rep.Gone++
			return nil
		case !apperr.Is(err, apperr.Conflict):
			return fmt.Errorf("rotate state keys: save experiment %s: %w", s.ExperimentID, err)
		case attempt == rotateAttempts:
			rep.fail(s, fmt.Errorf("still conflicting with concurrent saves after %d attempts: %w", attempt, err))
			return nil
		}
		// Someone saved since we read: start over from what is stored now.
		fresh, err := states.LoadState(ctx, s.ExperimentID)
		switch {
		case apperr.Is(err, apperr.NotFound):
			rep.Gone++
			return nil
		case err != nil:
			return fmt.Errorf("rotate state keys: reload experiment %s: %w", s.ExperimentID, err)
		}
		s = fresh
	}
}

func (r *RotateReport) fail(s store.SealedState, err error) {
	r.Failed++
	r.Failures = append(r.Failures, RotateFailure{ExperimentID: s.ExperimentID, KeyID: s.KeyID, Err: err})
}
