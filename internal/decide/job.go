package decide

import (
	"context"
	"fmt"
	"time"

	"github.com/samplit/samplit/internal/store"
)

// Job is a periodic task that every replica runs and that is done once per
// period among them (retention, for one), through the same leases in the
// database as the decision loop's objects: the job is one row of
// decide_leases, claimed with ClaimForDecision. The replica that claims it
// runs the task while renewing its lease, then keeps the lease until the next
// period is due, so that no other replica runs it meanwhile; a replica that
// dies while running it lets another take over after Lease.
type Job struct {
	st    store.DecideLeases
	obj   store.DecideObject
	opts  JobOptions
	owner string
}

// JobOptions tune a Job. The zero value of each field means its default.
type JobOptions struct {
	// Every is the period: the task runs once per Every among all replicas
	// (1 h).
	Every time.Duration
	// Lease is how long a running task's claim holds without renewal
	// (1 min): the longest a replica that dies mid-task delays the next.
	Lease time.Duration
	// Owner names this replica in leases; default host-pid-random.
	Owner string
	// Now is the clock (time.Now).
	Now func() time.Time
}

// DecideJob is the kind of the lease rows of Jobs.
const DecideJob store.DecideKind = "job"

// NewJob returns the job named name (one lease row, "job_"+name, shared by
// every replica that uses the name).
func NewJob(st store.DecideLeases, name string, opts JobOptions) *Job {
	if opts.Every <= 0 {
		opts.Every = time.Hour
	}
	if opts.Lease <= 0 {
		opts.Lease = time.Minute
	}
	lo := Options{Owner: opts.Owner, Now: opts.Now}.withDefaults()
	opts.Owner, opts.Now = lo.Owner, lo.Now
	return &Job{st: st, obj: store.DecideObject{Kind: DecideJob, ID: "job_" + name}, opts: opts, owner: opts.Owner}
}

// Every returns the job's period.
func (j *Job) Every() time.Duration { return j.opts.Every }

// TryRun runs task if this replica can claim the job now, which it can when
// nobody ran it within the last period and nobody runs it now. It reports
// whether task ran, and task's error.
func (j *Job) TryRun(ctx context.Context, task func(ctx context.Context) error) (bool, error) {
	now := j.opts.Now()
	claimed, err := j.st.ClaimForDecision(ctx, j.owner, []store.DecideObject{j.obj}, now, now.Add(j.opts.Lease))
	if err != nil {
		return false, fmt.Errorf("claim job %s: %w", j.obj.ID, err)
	}
	if len(claimed) == 0 {
		return false, nil
	}
	ids := []string{j.obj.ID}
	stop := renewLeases(ctx, j.st, j.owner, ids, j.opts.Lease, j.opts.Now, nil)
	err = task(ctx)
	stop()
	// Keep the lease until the next period from when this run started
	// (not ended: the period does not drift by the task's duration). A
	// failed run keeps it too: retried next period, not in a tight loop
	// across replicas. The context may be done (shutdown): then the lease
	// is written on a context of its own, so the run still counts.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, rerr := j.st.RenewDecisionLeases(wctx, j.owner, ids, now.Add(j.opts.Every)); rerr != nil && err == nil {
		err = fmt.Errorf("hold job %s until its next period: %w", j.obj.ID, rerr)
	}
	return true, err
}
