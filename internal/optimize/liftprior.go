package optimize

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/store"
)

// liftHistoryLimit is how many of a workspace's latest completed
// experiments its prior on lifts is learned from: enough for τ's posterior
// to be narrow (a few hundred comparisons), recent enough to be the team's
// current product.
const liftHistoryLimit = 500

// liftPriorTTL is how long a replica keeps a workspace's learned prior: the
// history changes only when an experiment completes, and one completion
// among hundreds moves τ little. An experiment completed through this
// replica drops it at once.
const liftPriorTTL = time.Minute

// liftPriors caches each workspace's learned prior (nil: not enough
// history).
type liftPriors struct {
	mu sync.Mutex
	by map[string]cachedPrior
}

type cachedPrior struct {
	p  *engine.LiftPrior
	at time.Time
}

func (c *liftPriors) forget(workspaceID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.by, workspaceID)
}

// learnedPrior is the prior on lifts the experiment's winner must also
// convince when it sets none itself: learned from the workspace's completed
// experiments (engine.LearnLiftPrior), unless its settings turn learning
// off. nil without enough history.
func (x *Experiments) learnedPrior(ctx context.Context, e *store.Experiment, now time.Time) (*engine.LiftPrior, error) {
	if e.Settings.PriorLiftSD > 0 || !e.Settings.LearnsPrior() {
		return nil, nil
	}
	x.priors.mu.Lock()
	c, ok := x.priors.by[e.WorkspaceID]
	x.priors.mu.Unlock()
	if ok && now.Sub(c.at) < liftPriorTTL {
		return c.p, nil
	}
	done, err := x.st.FinishedCounters(ctx, e.WorkspaceID, liftHistoryLimit)
	if err != nil {
		return nil, fmt.Errorf("learn the prior on lifts of workspace %s: %w", e.WorkspaceID, err)
	}
	p := engine.LearnLiftPrior(liftHistory(done))
	x.priors.mu.Lock()
	if x.priors.by == nil {
		x.priors.by = map[string]cachedPrior{}
	}
	x.priors.by[e.WorkspaceID] = cachedPrior{p: p, at: now}
	x.priors.mu.Unlock()
	return p, nil
}

// liftHistory is every finished comparison of a variant with its
// experiment's control, as the engine's prior test makes it.
func liftHistory(done []store.FinishedExperiment) []engine.LiftObservation {
	var obs []engine.LiftObservation
	for _, f := range done {
		ci := -1
		for i, v := range f.Variants {
			if v.Control {
				ci = i
				break
			}
		}
		if ci < 0 {
			continue
		}
		ctrl := armOf(store.Variant{Control: true}, f.Variants[ci].Counters)
		for i, v := range f.Variants {
			if i == ci {
				continue
			}
			if o, ok := engine.LiftObservationOf(engine.Metric(f.Metric), armOf(store.Variant{}, v.Counters), ctrl); ok {
				obs = append(obs, o)
			}
		}
	}
	return obs
}
