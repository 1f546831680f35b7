package optimize

import (
	"context"
	"fmt"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/targeting"
)

// Kind is what an optimizer optimizes. It selects the Optimizer that
// Services.For builds.
type Kind string

// The kinds: experiments, funnels, and campaigns by channel (email and push
// share the campaign engine; their defaults and delays differ).
const (
	KindExperiment Kind = "experiment"
	KindFunnel     Kind = "funnel"
	KindEmail      Kind = "email_campaign"
	KindPush       Kind = "push_campaign"
)

// noun names the kind in messages.
func (k Kind) noun() string {
	switch k {
	case KindEmail, KindPush:
		return "campaign"
	}
	return string(k)
}

// KindOfCampaign returns the kind of a campaign, from its channel.
func KindOfCampaign(c *store.Campaign) Kind {
	if c.Channel == "push" {
		return KindPush
	}
	return KindEmail
}

// Unit is one allocation request: a unit (experiment), a unit reaching a
// step (funnel: Step, and Value at the goal), or a recipient (campaign).
type Unit struct {
	ID    string
	Step  string  // funnels only: the key of the step reached
	Value float64 // funnels only: revenue added at the goal step
	// Attributes are what the client says about the unit (experiments
	// only): matched against the targeting, stored with a new assignment.
	Attributes targeting.Attributes
}

// Allocation is the answer to Allocate: one assignment per unit, in order.
type Allocation struct {
	Assignments []Assignment
	// Wave numbers a campaign call's new sends; 0 when every recipient had
	// been sent before, and for the other kinds.
	Wave int64
}

// Outcome is what a unit did: an experiment's conversion or value (Type:
// the metric's key, "" for the primary metric), a campaign event (Type:
// open, click, …), or, for funnels, reaching the step Type.
type Outcome struct {
	Unit           string
	Type           string
	Value          float64
	At             time.Time
	IdempotencyKey string
}

// Analysis is what Analyze returns: *Results (experiments),
// *FunnelResults or *CampaignResults, each the JSON body of its results
// endpoint.
type Analysis interface{ analysis() }

func (*Results) analysis()         {}
func (*FunnelResults) analysis()   {}
func (*CampaignResults) analysis() {}

// Optimizer is one experiment, funnel or campaign with the service of its
// kind: everything the API, the dashboard and the decision loop do with it.
// Services.For builds it; it changes the object it was built on in place
// (a transition updates it, a campaign's sends may reload it).
type Optimizer interface {
	// Kind is the kind of the object.
	Kind() Kind
	// Allocate returns, in order, each unit's variant, making the
	// allocation when the unit has none (sticky).
	Allocate(ctx context.Context, units []Unit) (Allocation, error)
	// Record stores outcomes; when it returns without error every accepted
	// one is durable.
	Record(ctx context.Context, outcomes []Outcome) ([]store.EventResult, error)
	// Analyze computes the results and records what the decision rules
	// declare (so reading results never contradicts what was decided).
	Analyze(ctx context.Context) (Analysis, error)
	// Decide evaluates the decision rules and records what they declare,
	// each once among all replicas, with its webhook event.
	Decide(ctx context.Context) error
	// Transition applies a lifecycle action (the status machine of
	// lifecycle.go) with the webhook events it writes. winner, for an
	// experiment's complete only, fixes the variant served from then on.
	Transition(ctx context.Context, a Action, winner *string) error
}

// Services are the optimizers of every kind, sharing one store.
type Services struct {
	Experiments *Experiments
	Funnels     *Funnels
	Campaigns   *Campaigns
}

// NewServices returns the services of every kind over st. Close them to
// commit what is queued before the store closes.
func NewServices(st store.Store, deps Deps, opts Options) *Services {
	return &Services{
		Experiments: NewExperiments(st, deps.Keyring, deps.Now, deps.Logger, opts),
		Funnels:     NewFunnels(st, deps.Now, deps.Logger, opts),
		Campaigns:   NewCampaigns(st, deps.Now, deps.Logger, opts, deps.CampaignHooks),
	}
}

// Close commits what every service has queued and stops their writers.
func (s *Services) Close() {
	s.Experiments.Close()
	s.Funnels.Close()
	s.Campaigns.Close()
}

// For is the one factory: it returns the Optimizer of the object, which
// must be a *store.Experiment, *store.Funnel or *store.Campaign; the kind
// comes from the object (a campaign's from its channel).
func (s *Services) For(object any) (Optimizer, error) {
	if s == nil {
		s = &Services{}
	}
	switch o := object.(type) {
	case *store.Experiment:
		if s.Experiments == nil || (o.Kind != "" && o.Kind != store.KindStandard) {
			return nil, apperr.New(apperr.Invalid, "experiments of kind %q cannot be served here", o.Kind)
		}
		return experimentOptimizer{s.Experiments, o}, nil
	case *store.Funnel:
		if s.Funnels == nil {
			return nil, apperr.New(apperr.Unavailable, "funnels are not served by this server")
		}
		return funnelOptimizer{s.Funnels, o}, nil
	case *store.Campaign:
		if s.Campaigns == nil {
			return nil, apperr.New(apperr.Unavailable, "campaigns are not served by this server")
		}
		return campaignOptimizer{s.Campaigns, o}, nil
	}
	return nil, fmt.Errorf("optimize: no optimizer for %T", object)
}

// unitIDs returns the ids of units.
func unitIDs(units []Unit) []string {
	ids := make([]string, len(units))
	for i, u := range units {
		ids[i] = u.ID
	}
	return ids
}

type experimentOptimizer struct {
	x *Experiments
	e *store.Experiment
}

var _ Optimizer = experimentOptimizer{}

func (o experimentOptimizer) Kind() Kind { return KindExperiment }

func (o experimentOptimizer) Allocate(ctx context.Context, units []Unit) (Allocation, error) {
	a, err := o.x.AssignUnits(ctx, o.e, units)
	return Allocation{Assignments: a}, err
}

func (o experimentOptimizer) Record(ctx context.Context, outcomes []Outcome) ([]store.EventResult, error) {
	events := make([]store.Event, len(outcomes))
	for i, oc := range outcomes {
		// An experiment's outcome Type names its metric ("" the primary).
		events[i] = store.Event{UnitID: oc.Unit, Value: oc.Value, IdempotencyKey: oc.IdempotencyKey, At: oc.At, Metric: oc.Type}
	}
	return o.x.RecordEvents(ctx, o.e, events)
}

func (o experimentOptimizer) Analyze(ctx context.Context) (Analysis, error) {
	r, err := o.x.Results(ctx, o.e)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (o experimentOptimizer) Decide(ctx context.Context) error {
	_, err := o.x.Results(ctx, o.e)
	return err
}

func (o experimentOptimizer) Transition(ctx context.Context, a Action, winner *string) error {
	return o.x.TransitionExperiment(ctx, o.e, a, winner)
}

type funnelOptimizer struct {
	x *Funnels
	f *store.Funnel
}

var _ Optimizer = funnelOptimizer{}

func (o funnelOptimizer) Kind() Kind { return KindFunnel }

// Allocate records each unit reaching its step and returns its variant
// there.
func (o funnelOptimizer) Allocate(ctx context.Context, units []Unit) (Allocation, error) {
	out := Allocation{Assignments: make([]Assignment, len(units))}
	for i, u := range units {
		r, err := o.x.Progress(ctx, o.f, u.ID, u.Step, u.Value)
		if err != nil {
			return Allocation{}, err
		}
		out.Assignments[i] = Assignment{UnitID: r.UnitID, Step: r.Step.Key, Variant: r.Variant, New: r.New}
	}
	return out, nil
}

// Record records each unit reaching the step named by the outcome's Type:
// a funnel's outcomes are its steps, the last one the conversion.
func (o funnelOptimizer) Record(ctx context.Context, outcomes []Outcome) ([]store.EventResult, error) {
	res := make([]store.EventResult, len(outcomes))
	for i, oc := range outcomes {
		r, err := o.x.Progress(ctx, o.f, oc.Unit, oc.Type, oc.Value)
		switch {
		case err == nil && r.New:
			res[i] = store.EventResult{Outcome: store.OutcomeAccepted}
		case err == nil:
			res[i] = store.EventResult{Outcome: store.OutcomeDuplicate}
		case apperr.Is(err, apperr.Invalid):
			res[i] = store.EventResult{Outcome: store.OutcomeRejected, Reason: err.Error()}
		default:
			return nil, err
		}
	}
	return res, nil
}

func (o funnelOptimizer) Analyze(ctx context.Context) (Analysis, error) {
	r, err := o.x.Results(ctx, o.f)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (o funnelOptimizer) Decide(ctx context.Context) error {
	_, err := o.x.Results(ctx, o.f)
	return err
}

func (o funnelOptimizer) Transition(ctx context.Context, a Action, winner *string) error {
	if winner != nil {
		return apperr.Fields([]apperr.FieldError{{Field: "winner", Reason: "is only for experiments"}})
	}
	return o.x.TransitionFunnel(ctx, o.f, a)
}

type campaignOptimizer struct {
	x *Campaigns
	c *store.Campaign
}

var _ Optimizer = campaignOptimizer{}

func (o campaignOptimizer) Kind() Kind { return KindOfCampaign(o.c) }

// Allocate sends to the recipients (units): sticky, new ones as one wave.
func (o campaignOptimizer) Allocate(ctx context.Context, units []Unit) (Allocation, error) {
	got, err := o.x.Send(ctx, o.c, unitIDs(units))
	if err != nil {
		return Allocation{}, err
	}
	out := Allocation{Wave: got.Wave, Assignments: make([]Assignment, len(got.Sends))}
	for i, sd := range got.Sends {
		v := sd.Variant
		out.Assignments[i] = Assignment{UnitID: sd.Recipient, Variant: &v}
	}
	return out, nil
}

func (o campaignOptimizer) Record(ctx context.Context, outcomes []Outcome) ([]store.EventResult, error) {
	events := make([]store.CampaignEvent, len(outcomes))
	for i, oc := range outcomes {
		events[i] = store.CampaignEvent{Recipient: oc.Unit, Type: oc.Type, Value: oc.Value, At: oc.At, IdempotencyKey: oc.IdempotencyKey}
	}
	return o.x.RecordEvents(ctx, o.c, events)
}

func (o campaignOptimizer) Analyze(ctx context.Context) (Analysis, error) {
	r, err := o.x.Results(ctx, o.c)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (o campaignOptimizer) Decide(ctx context.Context) error {
	_, err := o.x.Results(ctx, o.c)
	return err
}

func (o campaignOptimizer) Transition(ctx context.Context, a Action, winner *string) error {
	if winner != nil {
		return apperr.Fields([]apperr.FieldError{{Field: "winner", Reason: "is only for experiments"}})
	}
	return o.x.TransitionCampaign(ctx, o.c, a)
}
