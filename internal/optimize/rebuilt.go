package optimize

import (
	"sync"
	"time"
)

// rebuilt is a value a replica rebuilds from the database at most every
// RefreshEvery (an experiment's allocation, a funnel's plans), kept in an
// entry whose mutex serialises the requests that draw from it.
//
// The request that finds the value stale rebuilds it without holding the
// entry's mutex: the rebuild reads counters and state (and for an
// experiment writes the next epoch), milliseconds under load, and the
// requests that come meanwhile are served the value being replaced (at
// most one rebuild older than RefreshEvery) instead of all queueing behind
// it once a second. Only without a value (the first, or one dropped by
// forget) does every request wait for the build.
type rebuilt[T any] struct {
	val     T
	ok      bool
	builtAt time.Time
	// refreshing is set while a request rebuilds without holding the
	// mutex; gen counts forget calls, so that a rebuild begun before one
	// is not installed after it.
	refreshing bool
	gen        uint64
}

// get returns the value, built or rebuilt by build when missing or older
// than every. The caller holds mu, and holds it again when get returns;
// get releases it while it rebuilds a value it can serve meanwhile.
func (r *rebuilt[T]) get(mu *sync.Mutex, now time.Time, every time.Duration, build func() (T, error)) (T, error) {
	var zero T
	if r.ok && (now.Sub(r.builtAt) < every || r.refreshing) {
		return r.val, nil
	}
	if !r.ok {
		v, err := build()
		if err != nil {
			return zero, err
		}
		r.val, r.ok, r.builtAt = v, true, now
		return v, nil
	}
	r.refreshing = true
	gen := r.gen
	mu.Unlock()
	v, err := build()
	mu.Lock()
	r.refreshing = false
	if err != nil {
		return zero, err
	}
	if r.gen != gen {
		// forget dropped the value while this one was built from what
		// came before: build again, everyone waiting.
		return r.get(mu, now, every, build)
	}
	// Nothing else installed a value meanwhile: the others were served the
	// old one (refreshing), and only forget's drop leads to a build by
	// another request, which the generation caught above.
	r.val, r.builtAt = v, now
	return v, nil
}

// forget drops the value, under the entry's mutex: the next get builds it
// anew, and a rebuild in flight is not installed.
func (r *rebuilt[T]) forget() {
	var zero T
	r.val, r.ok = zero, false
	r.gen++
}
