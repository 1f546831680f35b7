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
// experiments (or campaigns) its prior on lifts is learned from: enough for τ's posterior
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

// get returns the workspace's prior, learned from the comparisons load
// returns when the cached one is missing or older than liftPriorTTL.
func (c *liftPriors) get(workspaceID string, now time.Time, load func() ([]engine.LiftObservation, error)) (*engine.LiftPrior, error) {
	c.mu.Lock()
	got, ok := c.by[workspaceID]
	c.mu.Unlock()
	if ok && now.Sub(got.at) < liftPriorTTL {
		return got.p, nil
	}
	obs, err := load()
	if err != nil {
		return nil, err
	}
	p := engine.LearnLiftPrior(obs)
	c.mu.Lock()
	if c.by == nil {
		c.by = map[string]cachedPrior{}
	}
	c.by[workspaceID] = cachedPrior{p: p, at: now}
	c.mu.Unlock()
	return p, nil
}

// learnedPrior is the prior on lifts the experiment's winner must also
// convince when it sets none itself: learned from the workspace's completed
// experiments (engine.LearnLiftPrior), unless its settings turn learning
// off. nil without enough history.
func (x *Experiments) learnedPrior(ctx context.Context, e *store.Experiment, now time.Time) (*engine.LiftPrior, error) {
	if e.Settings.PriorLiftSD > 0 || !e.Settings.LearnsPrior() {
		return nil, nil
	}
	return x.priors.get(e.WorkspaceID, now, func() ([]engine.LiftObservation, error) {
		done, err := x.st.FinishedCounters(ctx, e.WorkspaceID, liftHistoryLimit)
		if err != nil {
			return nil, fmt.Errorf("learn the prior on lifts of workspace %s: %w", e.WorkspaceID, err)
		}
		return liftHistory(done), nil
	})
}

// learnedPrior is a campaign's: learned from the workspace's completed
// campaigns, each variant's objective rate compared with its first
// variant's (campaigns have no control; true lifts are symmetric about 0
// in the model, so the reference does not matter). Campaigns whose
// objective is a value are left out of the history.
func (x *Campaigns) learnedPrior(ctx context.Context, c *store.Campaign, now time.Time) (*engine.LiftPrior, error) {
	if c.Settings.PriorLiftSD > 0 || !c.Settings.Decision().LearnsPrior() {
		return nil, nil
	}
	return x.priors.get(c.WorkspaceID, now, func() ([]engine.LiftObservation, error) {
		done, err := x.st.FinishedCampaignCounters(ctx, c.WorkspaceID, liftHistoryLimit)
		if err != nil {
			return nil, fmt.Errorf("learn the prior on lifts of workspace %s's campaigns: %w", c.WorkspaceID, err)
		}
		var obs []engine.LiftObservation
		for _, f := range done {
			if CampaignMetric(f.Objective) != engine.Binary || len(f.Variants) < 2 {
				continue
			}
			arm := func(v store.CampaignCounters) engine.Arm {
				return engine.Arm{Units: trials(v), Conversions: success(f.Objective, v)}
			}
			for _, v := range f.Variants[1:] {
				if o, ok := engine.LiftObservationOf(engine.Binary, arm(v), arm(f.Variants[0])); ok {
					obs = append(obs, o)
				}
			}
		}
		return obs, nil
	})
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
