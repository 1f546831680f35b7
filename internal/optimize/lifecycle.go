package optimize

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/human"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/webhook"
)

// Action is a lifecycle action: what a person asks of an experiment,
// funnel or campaign (start, pause, resume, complete, archive).
type Action string

// The lifecycle actions.
const (
	ActionStart    Action = "start"
	ActionPause    Action = "pause"
	ActionResume   Action = "resume"
	ActionComplete Action = "complete"
	ActionArchive  Action = "archive"
)

// transition is one lifecycle action: the statuses it starts from and the
// one it leads to.
type transition struct {
	from []store.Status
	to   store.Status
}

// The lifecycle: draft → running ⇄ paused → completed, and archived from any
// status that is not running (pause or complete a running one first, so
// that archiving never silently stops traffic). Funnels and campaigns have
// no archive.
var transitions = map[Action]transition{
	ActionStart:    {[]store.Status{store.StatusDraft}, store.StatusRunning},
	ActionPause:    {[]store.Status{store.StatusRunning}, store.StatusPaused},
	ActionResume:   {[]store.Status{store.StatusPaused}, store.StatusRunning},
	ActionComplete: {[]store.Status{store.StatusRunning, store.StatusPaused}, store.StatusCompleted},
	ActionArchive:  {[]store.Status{store.StatusDraft, store.StatusPaused, store.StatusCompleted}, store.StatusArchived},
}

// Actions returns the lifecycle actions of a kind, in the order a person
// meets them.
func Actions(k Kind) []Action {
	if k == KindExperiment {
		return []Action{ActionStart, ActionPause, ActionResume, ActionComplete, ActionArchive}
	}
	return []Action{ActionStart, ActionPause, ActionResume, ActionComplete}
}

// transitionOf returns the rule of action a for kind k.
func transitionOf(k Kind, a Action) (transition, error) {
	t, ok := transitions[a]
	if !ok || !slices.Contains(Actions(k), a) {
		return transition{}, apperr.New(apperr.NotFound, "there is no action %q for a %s", a, k.noun())
	}
	return t, nil
}

// experimentEvents maps an experiment lifecycle action to the webhook event
// its transition writes (in the transition's transaction). Archiving
// announces nothing; funnel and campaign transitions announce nothing.
var experimentEvents = map[Action]store.EventType{
	ActionStart:    store.EventExperimentStarted,
	ActionPause:    store.EventExperimentPaused,
	ActionResume:   store.EventExperimentResumed,
	ActionComplete: store.EventExperimentCompleted,
}

// experimentTransitionEvents returns the events of moving e by a (nil when
// a announces nothing), describing e as it will be after the change.
func experimentTransitionEvents(a Action, e store.Experiment, tr store.Transition) []store.OutboxEvent {
	typ, ok := experimentEvents[a]
	if !ok {
		return nil
	}
	e.Status = tr.To
	if tr.Winner != nil {
		e.Winner, e.WinnerFixed = *tr.Winner, tr.Fixed
	}
	return []store.OutboxEvent{webhook.ExperimentEvent(typ, e, tr.At)}
}

// CreateEvents returns the events that creating e writes with it: an
// experiment created running has started.
func CreateEvents(e store.Experiment, at time.Time) []store.OutboxEvent {
	if e.Status != store.StatusRunning {
		return nil
	}
	return []store.OutboxEvent{webhook.ExperimentEvent(store.EventExperimentStarted, e, at)}
}

// wrongStatus is the Conflict of an action refused in status cur.
func wrongStatus(k Kind, a Action, t transition, cur store.Status) error {
	if k != KindExperiment {
		return apperr.New(apperr.Conflict, "cannot %s a %s that is %s", a, k.noun(), cur)
	}
	from := make([]string, len(t.from))
	for i, st := range t.from {
		from[i] = string(st)
	}
	return apperr.New(apperr.Conflict, "cannot %s an experiment that is %s (current status: %s); %s needs status %s",
		a, cur, cur, a, human.JoinOr(from))
}

// lifecycle applies action a to one object of kind k whose status is cur:
// it checks the status machine, builds the store transition (with the
// events of the kind, from events), applies it, and on a lost race reports
// the status the other writer left (read by reload).
func lifecycle(ctx context.Context, k Kind, a Action, id string, cur store.Status, now time.Time,
	build func(*store.Transition), apply func(context.Context, store.Transition) error,
	reload func(context.Context) (store.Status, error)) error {
	t, err := transitionOf(k, a)
	if err != nil {
		return err
	}
	if !slices.Contains(t.from, cur) {
		return wrongStatus(k, a, t, cur)
	}
	tr := store.Transition{From: t.from, To: t.to, At: now}
	if build != nil {
		build(&tr)
	}
	err = apply(ctx, tr)
	if apperr.Is(err, apperr.Conflict) {
		// Another request changed the status between our read and
		// write; report the status it left.
		if st, gerr := reload(ctx); gerr == nil {
			return wrongStatus(k, a, t, st)
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("%s %s %s: %w", a, k.noun(), id, err)
	}
	return nil
}

// TransitionExperiment applies action a to *e and updates *e to the stored
// result. Completing may fix a winner (a variant key), served from then on.
func (x *Experiments) TransitionExperiment(ctx context.Context, e *store.Experiment, a Action, winner *string) error {
	if winner != nil {
		if _, ok := e.VariantByKey(*winner); !ok {
			return apperr.Fields([]apperr.FieldError{{Field: "winner", Reason: "must be the key of one of the experiment's variants"}})
		}
	}
	err := lifecycle(ctx, KindExperiment, a, e.ID, e.Status, x.now().UTC(),
		func(tr *store.Transition) {
			if winner != nil {
				tr.Winner, tr.Fixed = winner, true
			}
			// The webhook event commits with the transition or not at all.
			tr.Events = experimentTransitionEvents(a, *e, *tr)
		},
		func(ctx context.Context, tr store.Transition) error {
			updated, err := x.st.TransitionExperiment(ctx, e.WorkspaceID, e.ID, tr)
			if err == nil {
				*e = updated
			}
			return err
		},
		func(ctx context.Context) (store.Status, error) {
			cur, err := x.st.GetExperiment(ctx, e.WorkspaceID, e.ID)
			return cur.Status, err
		})
	if err == nil {
		if e.Status == store.StatusCompleted {
			// One more finished experiment for the workspace's prior.
			x.priors.forget(e.WorkspaceID)
		}
		x.changed(e.ID)
	}
	return err
}

// TransitionFunnel applies action a to *f and updates *f to the stored
// result.
func (x *Funnels) TransitionFunnel(ctx context.Context, f *store.Funnel, a Action) error {
	return lifecycle(ctx, KindFunnel, a, f.ID, f.Status, x.now().UTC(), nil,
		func(ctx context.Context, tr store.Transition) error {
			updated, err := x.st.TransitionFunnel(ctx, f.WorkspaceID, f.ID, tr)
			if err == nil {
				*f = updated
			}
			return err
		},
		func(ctx context.Context) (store.Status, error) {
			cur, err := x.st.GetFunnel(ctx, f.WorkspaceID, f.ID)
			return cur.Status, err
		})
}

// TransitionCampaign applies action a to *c and updates *c to the stored
// result.
func (x *Campaigns) TransitionCampaign(ctx context.Context, c *store.Campaign, a Action) error {
	return lifecycle(ctx, KindOfCampaign(c), a, c.ID, c.Status, x.now().UTC(), nil,
		func(ctx context.Context, tr store.Transition) error {
			updated, err := x.st.TransitionCampaign(ctx, c.WorkspaceID, c.ID, tr)
			if err == nil {
				*c = updated
				if c.Status == store.StatusCompleted {
					// One more finished campaign for the workspace's prior.
					x.priors.forget(c.WorkspaceID)
				}
			}
			return err
		},
		func(ctx context.Context) (store.Status, error) {
			cur, err := x.st.GetCampaign(ctx, c.WorkspaceID, c.ID)
			return cur.Status, err
		})
}
