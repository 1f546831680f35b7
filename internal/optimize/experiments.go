package optimize

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/seal"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/targeting"
	"github.com/samplit/samplit/internal/webhook"
)

// Options configure the standard experiment optimizer.
type Options struct {
	// Writers is how many transactions may commit at once: 1 for SQLite,
	// which has one writer anyway, a few for PostgreSQL.
	Writers int
	// PinWriters runs each group commit's worker on an OS thread of its
	// own that asks the kernel for short time slices (osthread.Pin): for
	// SQLite, whose commit blocks the thread in fsync and whose one writer
	// every request of an experiment waits for. PostgreSQL's workers wait
	// on the network, where a pinned thread measured no gain.
	PinWriters bool
	// RefreshEvery is how stale an experiment's allocation may get before
	// it is recomputed from the stored counters (the other replicas' data
	// included). Thompson sampling on counters at most this old is the
	// batched Thompson sampling of the literature, which loses little.
	RefreshEvery time.Duration
	// OnWinner, if set, is called once when the decision rule declares a
	// winner (on the replica that recorded it), e.g. to queue a webhook.
	OnWinner func(ctx context.Context, e store.Experiment, winner string)
	// Registerer, if set, receives the optimizers' metrics (metrics.go):
	// assignments, events, decisions and the group commits.
	Registerer prometheus.Registerer
}

func (o Options) withDefaults() Options {
	if o.Writers < 1 {
		o.Writers = 1
	}
	if o.RefreshEvery <= 0 {
		o.RefreshEvery = time.Second
	}
	return o
}

// Experiments is the optimizer of standard experiments: sticky assignment
// by the experiment's strategy, durable events, and results from the
// engine. It is safe for concurrent use, and any number of Experiments over
// one database (replicas) behave as one: they share assignments, counters,
// the sealed state that numbers the allocation epochs, and the recorded
// decision.
type Experiments struct {
	st   store.Store
	ring *seal.Keyring
	now  func() time.Time
	log  *slog.Logger
	opts Options
	m    *metrics

	assignQ *committer[store.AssignBatch, []store.Assigned]
	eventQ  *committer[store.EventBatch, []store.EventResult]

	// priors are the workspaces' learned priors on lifts.
	priors liftPriors

	mu      sync.Mutex
	entries map[string]*entry // by experiment id
	// watchers are told of every status change made here (OnChange).
	watchers []func(experimentID string)
}

// OnChange registers f, called with an experiment's id after each
// lifecycle change made through x (e.g. to drop a cached copy).
func (x *Experiments) OnChange(f func(experimentID string)) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.watchers = append(x.watchers, f)
}

// changed tells the watchers that experiment id changed.
func (x *Experiments) changed(id string) {
	x.mu.Lock()
	ws := x.watchers
	x.mu.Unlock()
	for _, f := range ws {
		f(id)
	}
}

// NewExperiments returns the standard experiment optimizer. Close it to
// commit what is queued before the store closes.
func NewExperiments(st store.Store, ring *seal.Keyring, now func() time.Time, log *slog.Logger, opts Options) *Experiments {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	x := &Experiments{st: st, ring: ring, now: now, log: log, opts: opts.withDefaults(), entries: map[string]*entry{}, m: newMetrics(opts.Registerer)}
	x.assignQ = newCommitter(x.opts, x.flushAssign, x.m.observer("assign"))
	x.eventQ = newCommitter(x.opts, x.flushEvents, x.m.observer("event"))
	return x
}

// Close commits what is queued and stops the writers.
func (x *Experiments) Close() {
	x.assignQ.close()
	x.eventQ.close()
}

// entry is what a replica keeps in memory for one experiment: the random
// source (kept across refreshes so a seeded experiment draws one stream)
// and the current allocation.
type entry struct {
	mu  sync.Mutex
	rng *rand.Rand

	// pol is the allocation, rebuilt every RefreshEvery (policyFor).
	pol rebuilt[*policy]
}

// policy is one epoch of an experiment's allocation: immutable once built.
type policy struct {
	plan      *engine.Plan
	weights   []float64          // by variant position
	weightsBy map[string]float64 // by variant id, for the store
	epoch     int64
	state     engine.State
	counters  []store.Counters
}

func (x *Experiments) entryOf(e *store.Experiment) *entry {
	x.mu.Lock()
	defer x.mu.Unlock()
	en, ok := x.entries[e.ID]
	if !ok {
		en = &entry{rng: newRand(e)}
		x.entries[e.ID] = en
	}
	return en
}

// newRand returns the experiment's random source: reproducible from its
// seed setting when it has one, else seeded from the operating system.
func newRand(e *store.Experiment) *rand.Rand {
	var s1, s2 uint64
	if e.Settings.Seed != nil {
		h := fnv.New64a()
		h.Write([]byte(e.ID))
		s1, s2 = uint64(*e.Settings.Seed), h.Sum64()
	} else {
		var b [16]byte
		_, _ = crand.Read(b[:])
		s1, s2 = binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])
	}
	return rand.New(rand.NewPCG(s1, s2))
}

// engineSettings maps stored settings onto the engine's.
func engineSettings(s store.Settings) engine.Settings {
	es := engine.Settings{
		MinSamples:        int64(s.MinSamples),
		DecisionThreshold: s.DecisionThreshold,
		LossThreshold:     s.LossThreshold,
		WeightFloor:       s.WeightFloor,
		Alpha:             s.Alpha,
		MinEffect:         s.MinEffect,
		PriorLiftSD:       s.PriorLiftSD,
	}
	if s.ControlShare != nil {
		es.ControlShare = *s.ControlShare
	}
	if s.Tau2 != nil {
		es.Tau2 = *s.Tau2
	}
	if s.Epsilon != nil {
		es.EpsilonC = *s.Epsilon
	}
	if s.Gamma != nil {
		es.Gamma = *s.Gamma
	}
	return es.WithDefaults()
}

// input builds the engine's input from the experiment and its counters, in
// variant order.
func input(e *store.Experiment, counters []store.Counters, st engine.State, now time.Time) engine.Input {
	byID := make(map[string]store.Counters, len(counters))
	for _, c := range counters {
		byID[c.VariantID] = c
	}
	arms := make([]engine.Arm, len(e.Variants))
	for i, v := range e.Variants {
		arms[i] = armOf(v, byID[v.ID])
	}
	set := engineSettings(e.Settings)
	if guardrailCount(e) > 0 {
		// The control keeps a share while a guardrail is undecided, as much
		// of the default as the other variants' floors leave.
		set.GuardrailControlShare = max(0, min(engine.DefaultGuardrailControlShare, 1-set.WeightFloor*float64(len(arms)-1)))
	}
	return engine.Input{Metric: engine.Metric(e.Metric), Arms: arms, Settings: set, State: st, Now: now}
}

// constrainedInput is what the allocation and the analysis are computed
// from.
type constrainedInput struct {
	// in is the engine's input with the guardrails' constraints
	// (metricsEval) on the arms; with a conversion window its primary arms
	// are matured (units still inside their window count by the chance
	// their outcome has arrived).
	in engine.Input
	// raw keeps the counts as stored, and mat the maturity (nil without a
	// window).
	raw engine.Input
	mat map[string]maturity
	// metrics is the evaluation of the other metrics.
	metrics *metricsEval
}

// constrained returns the experiment's input with the guardrails applied.
func (x *Experiments) constrained(ctx context.Context, e *store.Experiment, counters []store.Counters, st engine.State, now time.Time) (constrainedInput, error) {
	c := constrainedInput{raw: input(e, counters, st, now)}
	mat, _, err := x.experimentMaturity(ctx, e, now)
	if err != nil {
		return c, err
	}
	c.mat = mat
	c.in = matureInput(e, c.raw, mat)
	if mat != nil {
		// The posterior and the allocation see the matured view, the
		// anytime-valid tests the raw counts (engine.Input.TestArms).
		c.in.TestArms = c.raw.Arms
	}
	c.metrics, err = x.evalMetrics(ctx, e, c.in.Arms, c.in.TestArms, c.in.Settings)
	if err != nil {
		return c, err
	}
	c.metrics.constrain(c.in.Arms)
	return c, nil
}

// policyFor returns the experiment's current allocation, rebuilt from the
// stored counters and state when older than RefreshEvery (see rebuilt: the
// rebuilding request releases en.mu, the others are served the allocation
// being replaced). The caller holds en.mu, and holds it again on return.
func (x *Experiments) policyFor(ctx context.Context, e *store.Experiment, en *entry) (*policy, error) {
	now := x.now()
	return en.pol.get(&en.mu, now, x.opts.RefreshEvery, func() (*policy, error) { return x.buildPolicy(ctx, e, now) })
}

// buildPolicy reads the counters and the sealed state, folds the new data
// into the strategy's state, makes the plan, and stores the state as the
// next epoch. When another replica stored that epoch first, its state is
// taken instead, so that replicas agree on the epochs and on what the
// strategy remembers.
func (x *Experiments) buildPolicy(ctx context.Context, e *store.Experiment, now time.Time) (*policy, error) {
	strat, err := engine.Lookup(e.Strategy)
	if err != nil {
		return nil, fmt.Errorf("experiment %s: %w", e.ID, err)
	}
	for attempt := 0; ; attempt++ {
		prev, version, err := x.loadState(ctx, e)
		if err != nil {
			return nil, err
		}
		counters, err := x.st.Counters(ctx, e.WorkspaceID, e.ID)
		if err != nil {
			return nil, fmt.Errorf("load counters of %s: %w", e.ID, err)
		}
		c, err := x.constrained(ctx, e, counters, prev.Engine, now)
		if err != nil {
			return nil, err
		}
		in := c.in
		next, err := strat.Update(in)
		if err != nil {
			return nil, apperr.Wrap(apperr.Invalid, err, "experiment %s cannot be optimized", e.Key)
		}
		in.State = next
		plan, err := strat.Plan(in)
		if err != nil {
			return nil, apperr.Wrap(apperr.Invalid, err, "experiment %s cannot be optimized", e.Key)
		}
		p := &policy{plan: plan, weights: plan.Weights(), weightsBy: map[string]float64{}, epoch: version + 1, state: next, counters: counters}
		for i, v := range e.Variants {
			p.weightsBy[v.ID] = p.weights[i]
		}
		err = x.saveState(ctx, e, stateBlob{Format: stateFormat, Strategy: e.Strategy, Epoch: p.epoch, Weights: p.weights, At: now}, next, version+1)
		if err == nil {
			return p, nil
		}
		if !apperr.Is(err, apperr.Conflict) {
			return nil, err
		}
		if attempt >= 3 {
			// Other replicas keep saving epochs between this one's read and
			// write (a busy experiment, many replicas). Serve this plan
			// under the epoch that beat it, without storing this replica's
			// view; the next refresh tries again. Failing instead would
			// turn the caller's assignments into errors (a 409 to a client
			// whose request was fine).
			return p, nil
		}
		// Another replica saved this epoch first: start again from its state.
	}
}

// loadedState is an opened stateBlob with the strategy's state decoded.
type loadedState struct {
	Epoch  int64
	Engine engine.State
}

// loadState opens the experiment's sealed state; none yet is version 0.
func (x *Experiments) loadState(ctx context.Context, e *store.Experiment) (loadedState, int64, error) {
	var out loadedState
	ss, err := x.st.LoadState(ctx, e.ID)
	if apperr.Is(err, apperr.NotFound) {
		return out, 0, nil
	}
	if err != nil {
		return out, 0, fmt.Errorf("load state of %s: %w", e.ID, err)
	}
	plain, err := x.ring.Open(e.ID, ss.KeyID, ss.Blob)
	if err != nil {
		// Never guess: a state that does not open means a wrong key or
		// tampering, and serving from a fresh state would hide it.
		return out, 0, fmt.Errorf("open sealed state of experiment %s (key %s): %w", e.ID, ss.KeyID, err)
	}
	blob, err := decodeState(plain)
	if err != nil {
		return out, 0, fmt.Errorf("experiment %s: %w", e.ID, err)
	}
	out.Epoch = blob.Epoch
	if len(blob.Engine) > 0 {
		if err := json.Unmarshal(blob.Engine, &out.Engine); err != nil {
			return out, 0, fmt.Errorf("experiment %s: decode strategy state: %w", e.ID, err)
		}
	}
	if out.Engine.Strategy != "" && out.Engine.Strategy != e.Strategy {
		out.Engine = engine.State{} // a state of another strategy is no use to this one
	}
	return out, ss.Version, nil
}

func (x *Experiments) saveState(ctx context.Context, e *store.Experiment, blob stateBlob, es engine.State, version int64) error {
	raw, err := json.Marshal(es)
	if err != nil {
		return fmt.Errorf("encode strategy state: %w", err)
	}
	blob.Engine = raw
	plain, err := json.Marshal(blob)
	if err != nil {
		return fmt.Errorf("encode optimizer state: %w", err)
	}
	keyID, sealed, err := x.ring.Seal(e.ID, plain)
	if err != nil {
		return fmt.Errorf("seal state of %s: %w", e.ID, err)
	}
	return x.st.SaveState(ctx, store.SealedState{ExperimentID: e.ID, KeyID: keyID, Blob: sealed, Version: version, UpdatedAt: x.now()})
}

// servable reports whether units may be assigned now, and the variant every
// unit gets when a winner is fixed.
func servable(e *store.Experiment) (fixed *store.Variant, err error) {
	switch {
	case e.Status == store.StatusRunning && !e.WinnerFixed:
		return nil, nil
	case (e.Status == store.StatusRunning || e.Status == store.StatusCompleted) && e.WinnerFixed:
		v, ok := e.VariantByKey(e.Winner)
		if !ok {
			return nil, fmt.Errorf("experiment %s: fixed winner %q is not a variant", e.ID, e.Winner)
		}
		return &v, nil
	default:
		return nil, apperr.New(apperr.Conflict, "experiment %s is %s; only a running experiment assigns units", e.Key, e.Status)
	}
}

// Assign returns, in order, the assignment of each unit, making it if the
// unit has none. The experiment must be running (or completed with a fixed
// winner, which every unit then gets).
func (x *Experiments) Assign(ctx context.Context, e *store.Experiment, unitIDs []string) ([]Assignment, error) {
	units := make([]Unit, len(unitIDs))
	for i, u := range unitIDs {
		units[i].ID = u
	}
	return x.AssignUnits(ctx, e, units)
}

// AssignUnits is Assign for units with attributes. A unit whose attributes
// do not match the experiment's targeting gets no variant (ReasonNotTargeted)
// and nothing is stored for it, whether or not it was assigned before: the
// rules are evaluated on every request. A unit outside the experiment's
// range of its layer gets ReasonLayer, one outside the traffic share
// ReasonTraffic (both by hash, so always the same answer). A new unit's
// attributes are stored with its assignment.
func (x *Experiments) AssignUnits(ctx context.Context, e *store.Experiment, all []Unit) (_ []Assignment, err error) {
	fixed, err := servable(e)
	if err != nil {
		return nil, err
	}
	out := make([]Assignment, len(all))
	var eligible []int // indices of the units that may enter
	for i, u := range all {
		out[i].UnitID = u.ID
		switch {
		case !e.Targeting.Match(u.Attributes):
			out[i].Reason = ReasonNotTargeted
		case fixed == nil && !inLayer(e, u.ID):
			// A completed experiment has left its layer: its fixed winner
			// is served to everyone it targets.
			out[i].Reason = ReasonLayer
		default:
			eligible = append(eligible, i)
		}
	}
	if fixed != nil {
		// A fixed winner is served to everyone, and nothing more is
		// stored: the experiment's data stays as it was at completion.
		for _, i := range eligible {
			out[i].Variant = fixed
		}
		x.m.assignments.WithLabelValues(string(KindExperiment), assignFixed).Add(float64(len(eligible)))
		if n := len(out) - len(eligible); n > 0 {
			x.m.assignments.WithLabelValues(string(KindExperiment), assignExcluded).Add(float64(n))
		}
		return out, nil
	}
	defer func() {
		if err == nil {
			countAssignments(x.m, KindExperiment, out)
		}
	}()
	if len(eligible) == 0 {
		return out, nil
	}
	unitIDs := make([]string, len(eligible))
	attrsOf := make(map[string]targeting.Attributes, len(eligible))
	for j, i := range eligible {
		unitIDs[j] = all[i].ID
		if _, seen := attrsOf[all[i].ID]; !seen {
			attrsOf[all[i].ID] = all[i].Attributes // the first mention's, as the store keeps the first item
		}
	}
	got, err := x.assignEligible(ctx, e, unitIDs, attrsOf)
	if err != nil {
		return nil, err
	}
	for j, i := range eligible {
		out[i] = got[j]
	}
	return out, nil
}

// The reasons a unit gets no variant (Assignment.Reason).
const (
	ReasonNotTargeted = "not_targeted"
	ReasonLayer       = "layer"
	ReasonTraffic     = "traffic"
)

// inLayer reports whether the unit falls in the experiment's range of its
// layer (always, for an experiment in no layer). The slot hashes the unit
// with the layer's id, so every experiment of the layer sees the same slot
// and their disjoint ranges keep each unit in at most one of them; the hash
// differs from the traffic hash (experiment id), so the two are independent.
func inLayer(e *store.Experiment, unitID string) bool {
	if e.LayerID == "" {
		return true
	}
	slot := int64(unitHash(e.LayerID, unitID) * store.LayerSlots)
	return slot >= e.LayerFrom && slot < e.LayerTo
}

// segmentsOf returns what a new unit stores: its attributes as JSON and its
// breakdown values (targeting.Text of each).
func segmentsOf(attrs targeting.Attributes) (json.RawMessage, map[string]string, error) {
	if len(attrs) == 0 {
		return nil, nil, nil
	}
	raw, err := json.Marshal(attrs)
	if err != nil {
		return nil, nil, fmt.Errorf("encode attributes: %w", err)
	}
	segs := make(map[string]string, len(attrs))
	for k, v := range attrs {
		segs[k] = targeting.Text(v)
	}
	return raw, segs, nil
}

// assignEligible assigns units that may enter the running experiment.
func (x *Experiments) assignEligible(ctx context.Context, e *store.Experiment, unitIDs []string, attrsOf map[string]targeting.Attributes) ([]Assignment, error) {
	out := make([]Assignment, len(unitIDs))
	for i, u := range unitIDs {
		out[i].UnitID = u
	}
	byID := make(map[string]*store.Variant, len(e.Variants))
	for i := range e.Variants {
		byID[e.Variants[i].ID] = &e.Variants[i]
	}
	var todo []int // indices of units that need a new assignment
	if len(unitIDs) == 1 && inTraffic(e.ID, unitIDs[0], e.Settings.Traffic) {
		// One unit in the traffic share: no read first. The write path
		// inserts the assignment or, when the unit has one, returns it
		// (New false) without writing; a group commit does that for a whole
		// group of requests with one statement, where a read per request
		// cost more than the write (profiled: 40% of the CPU of new-unit
		// assignments on SQLite). A returning unit costs one draw from the
		// experiment's random stream, which is then discarded.
		todo = []int{0}
	} else {
		existing, err := x.st.Assignments(ctx, e.WorkspaceID, e.ID, unitIDs)
		if err != nil {
			return nil, fmt.Errorf("look up assignments: %w", err)
		}
		for i, u := range unitIDs {
			if a, ok := existing[u]; ok {
				out[i].Variant = byID[a.VariantID]
				continue
			}
			if !inTraffic(e.ID, u, e.Settings.Traffic) {
				out[i].Reason = ReasonTraffic
				continue
			}
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return out, nil
	}

	en := x.entryOf(e)
	en.mu.Lock()
	p, err := x.policyFor(ctx, e, en)
	if err != nil {
		en.mu.Unlock()
		return nil, err
	}
	now := x.now()
	batch := store.AssignBatch{WorkspaceID: e.WorkspaceID, ExperimentID: e.ID, Weights: p.weightsBy, Items: make([]store.Assignment, 0, len(todo)),
		Window: e.Settings.ConversionWindow}
	seen := make(map[string]bool, len(todo))
	for _, i := range todo {
		u := unitIDs[i]
		if seen[u] { // a unit listed twice in one call gets one draw
			continue
		}
		seen[u] = true
		pick := p.plan.Pick(en.rng)
		raw, segs, err := segmentsOf(attrsOf[u])
		if err != nil {
			en.mu.Unlock()
			return nil, err
		}
		batch.Items = append(batch.Items, store.Assignment{UnitID: u, VariantID: e.Variants[pick.Index].ID, Propensity: pick.Propensity, Epoch: p.epoch, AssignedAt: now,
			Attributes: raw, Segments: segs})
	}
	en.mu.Unlock()

	stored, err := x.assignQ.do(ctx, e.ID, batch)
	if err != nil {
		return nil, fmt.Errorf("store assignments: %w", err)
	}
	got := make(map[string]store.Assigned, len(stored))
	for _, a := range stored {
		if prev, ok := got[a.UnitID]; ok && prev.New {
			continue // keep "new" for the first mention of a unit
		}
		got[a.UnitID] = a
	}
	for _, i := range todo {
		a := got[unitIDs[i]]
		out[i].Variant = byID[a.VariantID]
		out[i].New = a.New
	}
	// A unit listed twice is new only at its first position.
	first := map[string]bool{}
	for i := range out {
		if out[i].New {
			if first[out[i].UnitID] {
				out[i].New = false
			}
			first[out[i].UnitID] = true
		}
	}
	return out, nil
}

// RecordEvents stores events for assigned units; when it returns without
// error, every accepted event is durable.
func (x *Experiments) RecordEvents(ctx context.Context, e *store.Experiment, events []store.Event) ([]store.EventResult, error) {
	switch e.Status {
	case store.StatusRunning, store.StatusPaused, store.StatusCompleted:
		// Conversions of units assigned before a pause or the completion
		// still happen, and still count.
	default:
		return nil, apperr.New(apperr.Conflict, "experiment %s is %s; events are accepted once it has run", e.Key, e.Status)
	}
	res, err := x.eventQ.do(ctx, e.ID, store.EventBatch{WorkspaceID: e.WorkspaceID, ExperimentID: e.ID, Metric: e.Metric, Events: events,
		Window: e.Settings.ConversionWindow})
	if err != nil {
		return nil, fmt.Errorf("record events: %w", err)
	}
	x.m.countEvents(KindExperiment, res)
	return res, nil
}

// Results analyses the experiment, recording a winner when the decision
// rule declares one.
func (x *Experiments) Results(ctx context.Context, e *store.Experiment) (*Results, error) {
	strat, err := engine.Lookup(e.Strategy)
	if err != nil {
		return nil, fmt.Errorf("experiment %s: %w", e.ID, err)
	}
	counters, err := x.st.Counters(ctx, e.WorkspaceID, e.ID)
	if err != nil {
		return nil, fmt.Errorf("load counters of %s: %w", e.ID, err)
	}
	prev, _, err := x.loadState(ctx, e)
	if err != nil {
		return nil, err
	}
	now := x.now()
	// The guardrails first: a variant they stop has weight 0 and cannot be
	// the winner of the analysis below.
	c, err := x.constrained(ctx, e, counters, prev.Engine, now)
	if err != nil {
		return nil, err
	}
	in, raw, mat, ev := c.in, c.raw, c.mat, c.metrics
	if in.Settings.LearnedPrior, err = x.learnedPrior(ctx, e, now); err != nil {
		return nil, err
	}
	if ev.recorded {
		x.forgetPolicy(e.ID)
	}
	r, err := engine.Analyze(strat, in)
	if err != nil {
		return nil, apperr.Wrap(apperr.Invalid, err, "experiment %s cannot be analysed", e.Key)
	}
	if r.Winner != nil {
		if _, tripped := ev.trips[*r.Winner]; tripped {
			// Never reached (the engine excludes stopped arms); kept so that
			// no change of the engine can record a tripped winner.
			r.Winner, r.Decision = nil, engine.Decision{State: engine.StateCollecting, Reason: fmt.Sprintf("%s tripped a guardrail and cannot win", *r.Winner)}
		}
	}
	metrics, err := ev.results(e, in.Settings)
	if err != nil {
		return nil, err
	}
	if mat != nil {
		// The posterior, the weights and the decision come from the matured
		// counts; the units reported and the sample ratio test are the raw
		// ones (the test compares assigned units with the policy's intent,
		// whatever their outcomes have done).
		r.SRM = engine.SequentialSRM(raw.Arms, engine.SRMAlertP)
		r.TotalUnits = 0
		for i := range r.Variants {
			v := &r.Variants[i]
			m := mat[e.Variants[i].ID]
			trials, late := min(m.trials, float64(raw.Arms[i].Units)), m.late
			v.Units, v.MaturedUnits, v.LateConversions = raw.Arms[i].Units, &trials, &late
			r.TotalUnits += v.Units
		}
	}
	if r.SRM.Alert && e.SRMAlertedAt == nil && r.SRM.PValue != nil &&
		(e.Status == store.StatusRunning || e.Status == store.StatusPaused) {
		// Recorded once among all replicas, with its webhook event in the
		// same transaction: experiment.srm_detected is sent once.
		set, err := x.st.MarkSRM(ctx, e.WorkspaceID, e.ID, now, webhook.SRMDetected(*e, *r.SRM.PValue, now))
		if err != nil {
			return nil, fmt.Errorf("record SRM of %s: %w", e.ID, err)
		}
		if set {
			x.m.decided(KindExperiment, "srm_detected")
			x.log.Warn("sample ratio mismatch", "experiment", e.ID, "p_value", *r.SRM.PValue)
		}
		at := now
		e.SRMAlertedAt = &at
	}

	res := &Results{
		ExperimentID: e.ID, Status: e.Status, Strategy: e.Strategy, Metric: e.Metric,
		TotalUnits: r.TotalUnits, Variants: r.Variants, SRM: r.SRM, UpdatedAt: now,
		Decision: Decision{State: r.Decision.State, Reason: r.Decision.Reason},
		Metrics:  metrics, GuardrailTrips: ev.tripList(e), Prior: liftPriorOf(in.Settings),
	}
	if e.Winner == "" && r.Winner != nil && (e.Status == store.StatusRunning || e.Status == store.StatusPaused) {
		if err := x.declare(ctx, e, *r.Winner, r.Decision.Reason); err != nil {
			return nil, err
		}
		// declare may have completed the experiment (auto_complete) or
		// found another replica's decision: report the status it has now.
		res.Status = e.Status
	}
	if e.Winner == "" && e.NoDifferenceAt == nil && r.Decision.State == engine.StateNoDifference &&
		(e.Status == store.StatusRunning || e.Status == store.StatusPaused) {
		// Recorded once among all replicas, with experiment.no_difference in
		// the same transaction. The experiment keeps running: whether to
		// stop it is the user's call (both variants are as good as each
		// other within min_effect).
		set, err := x.st.MarkNoDifference(ctx, e.WorkspaceID, e.ID, now, webhook.NoDifference(*e, r.Decision.Reason, now))
		if err != nil {
			return nil, fmt.Errorf("record no difference of %s: %w", e.ID, err)
		}
		if set {
			x.m.decided(KindExperiment, engine.StateNoDifference)
			x.log.Info("no difference", "experiment", e.ID)
		}
		at := now
		e.NoDifferenceAt = &at
	}
	switch {
	case e.Status == store.StatusCompleted || e.Status == store.StatusArchived:
		res.Decision = Decision{State: engine.StateCompleted, Reason: completedReason(e)}
	case e.Winner != "" && (r.Winner == nil || *r.Winner != e.Winner):
		res.Decision = recordedWinner(e.Winner, r.Decision.Reason)
	case e.Winner == "" && e.NoDifferenceAt != nil && r.Decision.State != engine.StateNoDifference:
		res.Decision = recordedNoDifference(*e.NoDifferenceAt, r.Decision.Reason)
	}
	if e.Winner != "" {
		w := e.Winner
		res.Winner = &w
	}
	return res, nil
}

func completedReason(e *store.Experiment) string {
	if e.Winner != "" && e.WinnerFixed {
		return fmt.Sprintf("completed; %s is served to every unit", e.Winner)
	}
	if e.Winner != "" {
		return fmt.Sprintf("completed with %s declared the winner", e.Winner)
	}
	return "completed without a winner"
}

// declare records the winner once (among all replicas) and, with
// auto_complete, completes the experiment so that the winner is served.
// It updates e in place.
func (x *Experiments) declare(ctx context.Context, e *store.Experiment, winner, reason string) error {
	now := x.now()
	// The experiment.winner_found event is written in the transaction that
	// records the winner, by the one call (of all replicas) that does.
	set, err := x.st.DeclareWinner(ctx, e.WorkspaceID, e.ID, winner, now, webhook.WinnerFound(*e, winner, reason, now))
	if err != nil {
		return fmt.Errorf("record winner of %s: %w", e.ID, err)
	}
	if !set {
		// Another replica recorded a decision first; report what it stored.
		fresh, err := x.st.GetExperiment(ctx, e.WorkspaceID, e.ID)
		if err != nil {
			return fmt.Errorf("reload %s: %w", e.ID, err)
		}
		*e = fresh
		return nil
	}
	e.Winner = winner
	x.m.decided(KindExperiment, engine.StateWinnerFound)
	x.log.Info("winner found", "experiment", e.ID, "winner", winner)
	if x.opts.OnWinner != nil {
		x.opts.OnWinner(ctx, *e, winner)
	}
	if e.Settings.AutoComplete {
		w := winner
		after := *e
		after.Status, after.Winner, after.WinnerFixed = store.StatusCompleted, w, true
		done, err := x.st.TransitionExperiment(ctx, e.WorkspaceID, e.ID, store.Transition{
			From: []store.Status{store.StatusRunning, store.StatusPaused}, To: store.StatusCompleted, At: now, Winner: &w, Fixed: true,
			Events: []store.OutboxEvent{webhook.ExperimentEvent(store.EventExperimentCompleted, after, now)},
		})
		if err != nil && !apperr.Is(err, apperr.Conflict) {
			return fmt.Errorf("auto-complete %s: %w", e.ID, err)
		}
		if err == nil {
			*e = done
			x.m.decided(KindExperiment, "auto_completed")
		}
	}
	return nil
}

// Timeseries returns hourly points in [from, to).
func (x *Experiments) Timeseries(ctx context.Context, e *store.Experiment, from, to time.Time) ([]Point, error) {
	buckets, err := x.st.Buckets(ctx, e.WorkspaceID, e.ID, from, to)
	if err != nil {
		return nil, fmt.Errorf("load buckets of %s: %w", e.ID, err)
	}
	keys := make(map[string]string, len(e.Variants))
	for _, v := range e.Variants {
		keys[v.ID] = v.Key
	}
	units := map[time.Time]int64{}
	for _, b := range buckets {
		units[b.Hour] += b.Units
	}
	out := make([]Point, 0, len(buckets))
	for _, b := range buckets {
		pt := Point{Hour: b.Hour.UTC(), Variant: keys[b.VariantID], Units: b.Units, Conversions: b.Conversions, Sum: b.Sum}
		if n := units[b.Hour]; n > 0 {
			pt.Weight = b.Expected / float64(n)
		}
		out = append(out, pt)
	}
	slices.SortStableFunc(out, func(a, b Point) int { return a.Hour.Compare(b.Hour) })
	return out, nil
}
