package dashboard

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/human"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/targeting"
)

// listLimit is the number of experiments on one page of the list.
const listLimit = 50

// maxTimeseriesSpan bounds the charts over time, as the API does: a longer
// experiment shows its last 92 days.
const maxTimeseriesSpan = 92 * 24 * time.Hour

// statusFilters are the list's filters, in the order shown.
var statusFilters = []store.Status{"", store.StatusRunning, store.StatusPaused, store.StatusDraft, store.StatusCompleted, store.StatusArchived}

type filterLink struct {
	Label, URL string
	Current    bool
}

type experimentRow struct {
	ID, Key, Name       string
	Status, Strategy    string
	Leader              string // "" when there is none yet (or too little data)
	Winner              string // the declared winner, "" when none
	PBest               float64
	Units               int64
	Started             *time.Time
	HasResults, HasLead bool
}

type experimentsPage struct {
	pageBase
	Filters []filterLink
	Filter  string
	Rows    []experimentRow
	Next    string
}

func filterLinks(base string, current store.Status) []filterLink {
	out := make([]filterLink, 0, len(statusFilters))
	for _, st := range statusFilters {
		l := filterLink{Label: "All", URL: base, Current: st == current}
		if st != "" {
			l.Label = strings.ToUpper(string(st[:1])) + string(st[1:])
			l.URL = base + "?status=" + string(st)
		}
		out = append(out, l)
	}
	return out
}

// parseListQuery reads ?status= and ?after= of a list page.
func parseListQuery(r *http.Request) (store.ListParams, bool) {
	q := r.URL.Query()
	// Newest first: what a person just made, or just started, is on top.
	p := store.ListParams{Limit: listLimit + 1, Status: store.Status(q.Get("status")), After: q.Get("after"), Newest: true}
	if !slices.Contains(statusFilters, p.Status) || len(p.After) > 100 {
		return p, false
	}
	return p, true
}

// leader is the variant most likely to be best, once every variant has
// the minimum sample: before that a "leader" is noise a person would read
// as a result.
func leader(res *optimize.Results, minSamples int) (key string, pbest float64, ok bool) {
	if res == nil || res.TotalUnits == 0 || len(res.Variants) == 0 {
		return "", 0, false
	}
	for _, v := range res.Variants {
		if v.Units < int64(minSamples) {
			return "", 0, false
		}
	}
	best := 0
	for i, v := range res.Variants {
		if v.PBest > res.Variants[best].PBest {
			best = i
		}
	}
	return res.Variants[best].Key, res.Variants[best].PBest, true
}

func (d *Dashboard) handleExperimentList(w http.ResponseWriter, r *http.Request, s *session) {
	params, ok := parseListQuery(r)
	if !ok {
		d.renderError(w, r, http.StatusBadRequest, "Unknown filter: choose one of the status links on the list page.")
		return
	}
	list, err := d.store.ListExperiments(r.Context(), s.workspaceID, params)
	if err != nil {
		d.fail(w, r, fmt.Errorf("list experiments: %w", err))
		return
	}
	page := experimentsPage{pageBase: d.base(r, s, "Experiments"), Filters: filterLinks("/experiments", params.Status), Filter: string(params.Status)}
	if len(list) > listLimit {
		list = list[:listLimit]
		q := url.Values{"after": {list[len(list)-1].ID}}
		if params.Status != "" {
			q.Set("status", string(params.Status))
		}
		page.Next = "/experiments?" + q.Encode()
	}
	for _, e := range list {
		row := experimentRow{ID: e.ID, Key: e.Key, Name: e.Name, Status: string(e.Status), Strategy: e.Strategy, Started: e.StartedAt}
		if res, err := d.results(r.Context(), &e); err == nil {
			row.HasResults, row.Units = true, res.TotalUnits
			row.Leader, row.PBest, row.HasLead = leader(res, e.Settings.MinSamples)
			if res.Winner != nil {
				row.Winner = *res.Winner
			}
		} else {
			d.log.Warn("dashboard: results for the list", "experiment", e.ID, "err", err)
		}
		page.Rows = append(page.Rows, row)
	}
	d.render(w, r, http.StatusOK, "experiments", page)
}

func (d *Dashboard) results(ctx context.Context, e *store.Experiment) (*optimize.Results, error) {
	if _, err := d.optimizers.For(e); err != nil {
		return nil, err
	}
	return d.optimizers.Experiments.Results(ctx, e)
}

// experimentOf finds the experiment of the session's workspace by id or key.
// Anything else, another workspace's experiment included, is not found.
func (d *Dashboard) experimentOf(ctx context.Context, s *session, ref string) (store.Experiment, error) {
	if ref == "" || len(ref) > 100 {
		return store.Experiment{}, apperr.New(apperr.NotFound, "no experiment")
	}
	e, err := d.store.GetExperiment(ctx, s.workspaceID, ref)
	if err == nil && e.WorkspaceID != s.workspaceID {
		// Defence in depth: the store scopes by workspace already.
		return store.Experiment{}, apperr.New(apperr.NotFound, "no experiment")
	}
	return e, err
}

// notFoundOr answers a lookup error: the 404 page, or a failure.
func (d *Dashboard) notFoundOr(w http.ResponseWriter, r *http.Request, err error, what string) {
	if apperr.Is(err, apperr.NotFound) {
		d.renderError(w, r, http.StatusNotFound, "There is no "+what+" here in this workspace.")
		return
	}
	d.fail(w, r, err)
}

// variantRow is one line of the variant table.
type variantRow struct {
	engine.VariantResult
	Name    string
	Index   int
	Class   string
	Control bool
	Leader  bool
	Winner  bool
	// Tripped is true when a guardrail stopped the variant.
	Tripped   bool
	PBestBar  bar
	WeightBar bar
}

// metricTable is one of the experiment's other metrics: its lines as the
// results give them.
type metricTable struct {
	Key       string
	Binary    bool
	Role      string
	Direction string
	// MaxDegradation is the guardrail's allowed degradation, 0 for a
	// secondary metric.
	MaxDegradation float64
	Rows           []metricRow
}

type metricRow struct {
	optimize.MetricVariant
	Class   string
	Control bool
}

// liveView is the part of an experiment's page that refreshes while it runs.
type liveView struct {
	ID            string
	Status        string
	Running       bool
	Binary        bool
	Sequential    bool
	RefreshURL    string
	Error         string
	TotalUnits    int64
	Rows          []variantRow
	DecisionState string
	Decision      string
	// Prior says which prior on lifts a winner must also convince, if any.
	Prior     string
	Leader    string
	Winner    string
	SRMAlert  bool
	SRMPValue *float64
	// Trips are the variants the guardrails stopped; Metrics the other
	// metrics' tables, in the experiment's order.
	Trips      []optimize.GuardrailTrip
	Metrics    []metricTable
	Density    densityChart
	Allocation timeChart
	Cumulative timeChart
	UpdatedAt  time.Time
}

// action is a lifecycle button.
type action struct {
	Name, Label, Confirm string
	Complete             bool // carries the winner choice
}

type experimentPage struct {
	pageBase
	E        store.Experiment
	Variants []store.Variant
	Live     liveView
	Actions  []action
	// ServeDefault is the variant "Serve from now on" proposes when the
	// experiment is completed: the winner, else the leader, else the
	// control. Never "no variant": stopping all traffic is a choice a
	// person makes, not a default they overlook.
	ServeDefault string
	Flash        string
	Error        string
	// Layer describes the experiment's layer and range ("" when in none);
	// Targeting its rules, one line per condition.
	Layer     string
	Targeting []string
	TargetAll bool
	// Attributes are the attributes the experiment counts, for the
	// breakdown selector; Breakdown the one chosen (?breakdown=).
	Attributes []string
	Breakdown  *optimize.Breakdown
	Binary     bool
	// Decision are the settings that decide when the experiment has a
	// winner (or no difference) and how it allocates meanwhile.
	Decision []setting
}

// setting is one line of the decision settings: the value in effect and,
// for the less obvious ones, a few words on what it does.
type setting struct {
	Key   string // the API's name, for tests and scripts
	Label string // the create form's label
	Value string
	Hint  string
}

// settingPct writes a setting given as a fraction as the percentage it was
// set to: 0.05 is "5%", 0.0125 "1.25%". pct is for estimates: it rounds to
// one decimal and writes 0.9999 as ">99.9%", which would misstate a
// threshold a person typed.
func settingPct(x float64) string { return human.Sig(100*x, 4) + "%" }

// decisionSettings lists the experiment's decision settings with the values
// the engine applies: a stored zero alpha, min_effect, decision or loss
// threshold (experiments stored before the setting existed) is the
// engine's default, as the API shows it. The strategy-specific ones are
// listed where they apply or were set.
func decisionSettings(e store.Experiment) []setting {
	s := e.Settings
	auto := setting{"auto_complete", "Auto-complete", "no", "a winner is declared; a person completes the experiment"}
	if s.AutoComplete {
		auto.Value, auto.Hint = "yes", "completes the experiment and serves the winner once one is found"
	}
	out := []setting{{"strategy", "Strategy", e.Strategy, engine.Describe(e.Strategy)}}
	out = append(out, winnerSettings(s, "experiments")...)
	out = append(out, auto)
	control := setting{"control_share", "Control share", "none", "the control competes like the other variants"}
	if s.ControlShare != nil && *s.ControlShare > 0 {
		control.Value, control.Hint = settingPct(*s.ControlShare), "fixed share of the traffic for the control"
	}
	out = append(out, control)
	tau2 := engine.DefaultTau2
	if s.Tau2 != nil {
		tau2 = cmp.Or(*s.Tau2, tau2)
	}
	out = append(out, setting{"tau2", "Test mixing scale (tau2)", exact(tau2), "mixing variance of the always-valid tests, per unit"})
	if e.Strategy == "explore" || s.Epsilon != nil {
		eps := engine.DefaultEpsilonC
		if s.Epsilon != nil {
			eps = cmp.Or(*s.Epsilon, eps)
		}
		out = append(out, setting{"epsilon", "Exploration (epsilon)", exact(eps), "c of ε = min(1, c·K/t)"})
	}
	if s.Gamma != nil && *s.Gamma > 0 && *s.Gamma < 1 {
		out = append(out, setting{"gamma", "Discount (gamma)", exact(*s.Gamma) + " per hour", "past data weighs less as it ages"})
	}
	return out
}

// winnerSettings are the settings of the winner and no_difference rule that
// experiments, campaigns and funnels share (only these fields of s are
// read), with the values the engine applies: a stored zero alpha,
// min_effect, decision or loss threshold is the engine's default. learns
// names what a prior on lifts is learned from ("experiments",
// "campaigns"), or is empty where none is (funnels).
func winnerSettings(s store.Settings, learns string) []setting {
	alpha := cmp.Or(s.Alpha, engine.DefaultAlpha)
	prior := setting{"prior_lift_sd", "Prior on lifts", "none", "flat: no assumption about the size of true lifts"}
	switch {
	case s.PriorLiftSD > 0:
		prior.Value, prior.Hint = "N(0, "+settingPct(s.PriorLiftSD)+")", "on relative lifts: a winner must also convince it"
	case learns != "" && s.LearnsPrior():
		prior.Value, prior.Hint = "learned", fmt.Sprintf("from this workspace's completed %s, once they hold %d comparisons", learns, engine.MinLiftHistory)
	case learns != "":
		prior.Hint = "flat, and learning from completed " + learns + " is off (learn_prior)"
	}
	return []setting{
		{"alpha", "Test level (alpha)", fmt.Sprintf("%s (%s confidence)", exact(alpha), settingPct(1-alpha)), ""},
		{"min_effect", "No-difference margin", "±" + settingPct(cmp.Or(s.MinEffect, engine.DefaultMinEffect)),
			"relative: variants provably this close count as no difference"},
		prior,
		{"decision_threshold", "Decision threshold", settingPct(cmp.Or(s.DecisionThreshold, engine.DefaultDecisionThreshold)),
			"P(best) a winner needs"},
		{"loss_threshold", "Loss threshold", small(cmp.Or(s.LossThreshold, engine.DefaultLossThreshold)),
			"expected loss a winner may still carry"},
		{"min_samples", "Minimum units per variant", strconv.Itoa(s.MinSamples), "before any decision"},
		{"weight_floor", "Weight floor", settingPct(s.WeightFloor), "least share of traffic of every variant"},
	}
}

// layerText describes where an experiment sits in its layer.
func layerText(e store.Experiment) string {
	if e.LayerID == "" {
		return ""
	}
	share := float64(e.LayerTo-e.LayerFrom) / store.LayerSlots
	if e.Status == store.StatusCompleted || e.Status == store.StatusArchived {
		return fmt.Sprintf("%s (held %s of its units; the range is free again)", e.LayerKey, pct(share))
	}
	return fmt.Sprintf("%s: %s of its units, the range %s–%s", e.LayerKey, pct(share),
		pct(float64(e.LayerFrom)/store.LayerSlots), pct(float64(e.LayerTo)/store.LayerSlots))
}

// targetingText is the experiment's rules, one line per condition.
func targetingText(r *targeting.Rules) (lines []string, all bool) {
	if r == nil {
		return nil, false
	}
	list, all := r.Any, false
	if len(r.All) > 0 {
		list, all = r.All, true
	}
	for _, c := range list {
		switch {
		case c.Values != nil:
			vs := make([]string, len(c.Values))
			for i, v := range c.Values {
				vs[i] = targeting.Text(v)
			}
			lines = append(lines, fmt.Sprintf("%s %s [%s]", c.Attribute, c.Op, strings.Join(vs, ", ")))
		case c.Value != nil:
			lines = append(lines, fmt.Sprintf("%s %s %s", c.Attribute, c.Op, targeting.Text(c.Value)))
		default:
			lines = append(lines, fmt.Sprintf("%s %s", c.Attribute, c.Op))
		}
	}
	return lines, all
}

// actionsFor lists the buttons an experiment's status allows (the API
// checks again; these only spare people a button that would be refused).
func actionsFor(e store.Experiment) []action {
	name := e.Name
	switch e.Status {
	case store.StatusDraft:
		return []action{{Name: "start", Label: "Start", Confirm: fmt.Sprintf("Start %q? Its variants are fixed from then on and units are assigned.", name)}}
	case store.StatusRunning:
		return []action{
			{Name: "pause", Label: "Pause", Confirm: fmt.Sprintf("Pause %q? No new unit is assigned until you resume it.", name)},
			{Name: "complete", Label: "Complete", Complete: true, Confirm: fmt.Sprintf("Complete %q? This cannot be undone.", name)},
		}
	case store.StatusPaused:
		return []action{
			{Name: "resume", Label: "Resume", Confirm: fmt.Sprintf("Resume %q? Units are assigned again.", name)},
			{Name: "complete", Label: "Complete", Complete: true, Confirm: fmt.Sprintf("Complete %q? This cannot be undone.", name)},
		}
	}
	return nil
}

var flashes = map[string]string{
	"created":  "Experiment created.",
	"start":    "Started: units are being assigned.",
	"pause":    "Paused: no new unit is assigned until you resume it.",
	"resume":   "Resumed: units are being assigned again.",
	"complete": "Completed.",
}

// live computes the refreshing part of the page from the results and the
// timeseries the optimizer gives, the same the API's endpoints return.
func (d *Dashboard) live(ctx context.Context, e *store.Experiment) (liveView, error) {
	v := liveView{
		ID: e.ID, Status: string(e.Status), Running: e.Status == store.StatusRunning,
		Binary: e.Metric == store.MetricBinary, Sequential: e.Strategy == "sequential",
		RefreshURL: "/experiments/" + e.ID + "/live",
	}
	if _, err := d.optimizers.For(e); err != nil {
		v.Error = "Results of this kind of experiment are not shown here."
		return v, nil
	}
	res, err := d.optimizers.Experiments.Results(ctx, e)
	if apperr.Is(err, apperr.Invalid) {
		v.Error = "The results cannot be computed: " + err.Error()
		return v, nil
	}
	if err != nil {
		return v, err
	}
	now := d.now().UTC()
	from, to := e.CreatedAt.Truncate(time.Hour), now.Truncate(time.Hour).Add(time.Hour)
	if to.Sub(from) > maxTimeseriesSpan {
		from = to.Add(-maxTimeseriesSpan)
	}
	pts, err := d.optimizers.Experiments.Timeseries(ctx, e, from, to)
	if err != nil {
		return v, err
	}
	// Results may have declared a winner or completed the experiment.
	v.Status, v.Running = string(res.Status), res.Status == store.StatusRunning
	v.TotalUnits, v.UpdatedAt = res.TotalUnits, res.UpdatedAt
	v.DecisionState, v.Decision = res.Decision.State, sentence(res.Decision.Reason)
	v.SRMAlert, v.SRMPValue = res.SRM.Alert, res.SRM.PValue
	if p := res.Prior; p != nil && p.Source == "learned" {
		v.Prior = fmt.Sprintf("A winner must also convince the prior learned from %d comparisons in this workspace's completed experiments: true lifts of about ±%s.",
			p.Comparisons, pct(p.LiftSD))
	} else if p != nil {
		v.Prior = fmt.Sprintf("A winner must also convince the prior on lifts set for this experiment: N(0, %s).", settingPct(p.LiftSD))
	}
	if res.Winner != nil {
		v.Winner = *res.Winner
	}
	v.Leader, _, _ = leader(res, e.Settings.MinSamples)
	names := map[string]store.Variant{}
	for _, vr := range e.Variants {
		names[vr.Key] = vr
	}
	v.Trips = res.GuardrailTrips
	tripped := map[string]bool{}
	for _, t := range res.GuardrailTrips {
		tripped[t.Variant] = true
	}
	for _, m := range e.Metrics {
		mr, ok := res.Metrics[m.Key]
		if !ok {
			continue
		}
		mt := metricTable{Key: m.Key, Binary: m.Type == store.MetricBinary, Role: m.Role, Direction: m.Direction}
		if mr.MaxDegradation != nil {
			mt.MaxDegradation = *mr.MaxDegradation
		}
		for i, l := range mr.Variants {
			mt.Rows = append(mt.Rows, metricRow{MetricVariant: l, Class: colorClass(i), Control: names[l.Key].Control})
		}
		v.Metrics = append(v.Metrics, mt)
	}
	for i, vr := range res.Variants {
		row := variantRow{
			VariantResult: vr, Name: names[vr.Key].Name, Index: i, Class: colorClass(i),
			Control: names[vr.Key].Control, Leader: vr.Key == v.Leader, Winner: vr.Key == v.Winner, Tripped: tripped[vr.Key],
			PBestBar: newBar("p_best", vr.Key, i, vr.PBest), WeightBar: newBar("weight", vr.Key, i, vr.Weight),
		}
		v.Rows = append(v.Rows, row)
	}
	v.Density = newDensityChart(res)
	v.Allocation = newAllocationChart(e, pts)
	v.Cumulative = newCumulativeChart(e, pts)
	return v, nil
}

// sentence ends the engine's reason with a full stop. It does not
// capitalise it: reasons often start with a variant key ("green beats
// control …"), and a key shown as "Green" is not the key the API takes.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// serveDefault is the winner, else the leader, else the control (else the
// first variant).
func serveDefault(variants []store.Variant, winner, leader string) string {
	if winner != "" {
		return winner
	}
	if leader != "" {
		return leader
	}
	for _, v := range variants {
		if v.Control {
			return v.Key
		}
	}
	if len(variants) > 0 {
		return variants[0].Key
	}
	return ""
}

func (d *Dashboard) experimentPage(ctx context.Context, r *http.Request, s *session, e store.Experiment) (experimentPage, error) {
	lv, err := d.live(ctx, &e)
	if err != nil {
		return experimentPage{}, err
	}
	if lv.Status != string(e.Status) {
		// The results changed the status (auto_complete): show the new one.
		if fresh, err := d.experimentOf(ctx, s, e.ID); err == nil {
			e = fresh
		}
	}
	variants := slices.Clone(e.Variants)
	slices.SortStableFunc(variants, func(a, b store.Variant) int { return a.Position - b.Position })
	page := experimentPage{
		pageBase: d.base(r, s, e.Name), E: e, Variants: variants, Live: lv, Actions: actionsFor(e),
		Layer: layerText(e), Binary: e.Metric == store.MetricBinary,
		ServeDefault: serveDefault(variants, lv.Winner, lv.Leader), Decision: decisionSettings(e),
	}
	page.Targeting, page.TargetAll = targetingText(e.Targeting)
	if _, err := d.optimizers.For(&e); err == nil {
		page.Attributes, err = d.store.SegmentAttributes(ctx, e.WorkspaceID, e.ID)
		if err != nil {
			return experimentPage{}, err
		}
		// Only an attribute the experiment counts is looked up: the
		// selector offers no other.
		if want := r.URL.Query().Get("breakdown"); want != "" && slices.Contains(page.Attributes, want) {
			page.Breakdown, err = d.optimizers.Experiments.Breakdown(ctx, &e, want)
			if err != nil {
				return experimentPage{}, err
			}
		}
	}
	return page, nil
}

func (d *Dashboard) handleExperiment(w http.ResponseWriter, r *http.Request, s *session) {
	e, err := d.experimentOf(r.Context(), s, r.PathValue("ref"))
	if err != nil {
		d.notFoundOr(w, r, err, "such experiment")
		return
	}
	page, err := d.experimentPage(r.Context(), r, s, e)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	page.Flash = flashes[r.URL.Query().Get("done")]
	d.render(w, r, http.StatusOK, "experiment", page)
}

// handleExperimentLive serves the refreshing part of the page alone, as an
// HTML fragment that the script swaps in.
func (d *Dashboard) handleExperimentLive(w http.ResponseWriter, r *http.Request, s *session) {
	e, err := d.experimentOf(r.Context(), s, r.PathValue("ref"))
	if err != nil {
		d.notFoundOr(w, r, err, "such experiment")
		return
	}
	lv, err := d.live(r.Context(), &e)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "experiment_live", lv)
}

var experimentActions = []string{"start", "pause", "resume", "complete"}

// handleExperimentAction changes an experiment's status through its
// Optimizer, under the lifecycle rules the API applies.
func (d *Dashboard) handleExperimentAction(w http.ResponseWriter, r *http.Request, s *session) {
	act := r.PathValue("action")
	if !slices.Contains(experimentActions, act) {
		d.renderError(w, r, http.StatusNotFound, "There is no such action.")
		return
	}
	e, err := d.experimentOf(r.Context(), s, r.PathValue("ref"))
	if err != nil {
		d.notFoundOr(w, r, err, "such experiment")
		return
	}
	var winner *string
	if act == "complete" {
		if win := r.PostFormValue("winner"); win != "" {
			winner = &win
		}
	}
	err = d.transition(r.Context(), &e, act, winner)
	if err == nil {
		http.Redirect(w, r, "/experiments/"+url.PathEscape(e.ID)+"?done="+act, http.StatusSeeOther)
		return
	}
	status, msg, ok := refusal(err)
	if !ok {
		d.fail(w, r, err)
		return
	}
	// Refused (say, another person paused it a moment ago): the page as it
	// is now, with the API's reason.
	if fresh, err := d.experimentOf(r.Context(), s, e.ID); err == nil {
		e = fresh
	}
	page, err := d.experimentPage(r.Context(), r, s, e)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	page.Error = msg
	d.render(w, r, status, "experiment", page)
}

// --- Create -------------------------------------------------------------------

// formRows is the number of variant rows of the create form; the API takes
// up to 20 variants, the form the common cases.
const formRows = 5

type variantInput struct{ Key, Name, Payload string }

// metricFormRows is the number of rows for other metrics (secondary and
// guardrail) of the create form; the API takes up to optimize.MaxMetrics.
const metricFormRows = 3

type metricInput struct{ Key, Type, Role, Direction, MaxDegradation string }

// conditionFormRows is the number of targeting conditions of the create
// form; the API takes up to targeting.MaxConditions.
const conditionFormRows = 4

// conditionInput is one targeting row as typed: Type says how Value is
// read (text, number or boolean); Value holds the values of in and not_in
// separated by commas.
type conditionInput struct{ Attribute, Op, Type, Value string }

// experimentForm holds what was typed, to show it again with the errors.
type experimentForm struct {
	Key, Name, Metric, Strategy                               string
	Rows                                                      []variantInput
	MetricRows                                                []metricInput
	Control                                                   int
	MinSamples, DecisionThreshold, LossThreshold, WeightFloor string
	Alpha, MinEffect, PriorLiftSD                             string
	Traffic, Seed                                             string
	Start                                                     bool
	// Match is "all" or "any" of the Conditions; Layer the key of the
	// layer to join ("" none) and LayerShare its share as typed.
	Match             string
	Conditions        []conditionInput
	Layer, LayerShare string
}

type option struct{ Value, Label string }

type newExperimentPage struct {
	pageBase
	F          experimentForm
	Errors     map[string]string // by form field
	Summary    []string
	Metrics    []option
	Strategies []option
	// Ops are the targeting operators; Layers the workspace's layers with
	// what is free in each, for the layer selector.
	Ops    []option
	Layers []layerRow
	// Defaults are the engine's defaults, shown as placeholders.
	Defaults map[string]string
}

var (
	metricOptions = []option{
		{"binary", "Binary — a unit converts or not"},
		{"continuous", "Continuous — a value such as revenue"},
	}
	// strategyOptions are the engine's strategies, the list the API and
	// the CLI accept, the default first.
	strategyOptions = func() []option {
		opts := []option{{"adaptive", "adaptive — " + engine.Describe("adaptive")}}
		for _, n := range engine.Names() {
			if n != "adaptive" {
				opts = append(opts, option{n, n + " — " + engine.Describe(n)})
			}
		}
		return opts
	}()
	// opOptions are the targeting operators, in the documentation's order.
	opOptions = func() []option {
		labels := map[targeting.Op]string{
			targeting.OpEq: "equals", targeting.OpNeq: "does not equal",
			targeting.OpIn: "is one of", targeting.OpNotIn: "is none of",
			targeting.OpGt: "greater than", targeting.OpGte: "at least",
			targeting.OpLt: "less than", targeting.OpLte: "at most",
			targeting.OpSemverEq: "version equals", targeting.OpSemverGt: "version above",
			targeting.OpSemverGte: "version at least", targeting.OpSemverLt: "version below",
			targeting.OpSemverLte: "version at most", targeting.OpExists: "is sent",
		}
		opts := make([]option, len(targeting.Ops))
		for i, op := range targeting.Ops {
			opts[i] = option{string(op), string(op) + " — " + labels[op]}
		}
		return opts
	}()
)

// newExperimentPage is the create form with f's values, the rows padded to
// the form's size, and the workspace's layers for the selector.
func (d *Dashboard) newExperimentPage(r *http.Request, s *session, f experimentForm) (newExperimentPage, error) {
	for len(f.Rows) < formRows {
		f.Rows = append(f.Rows, variantInput{})
	}
	for len(f.MetricRows) < metricFormRows {
		f.MetricRows = append(f.MetricRows, metricInput{Type: "binary", Role: "guardrail", Direction: "decrease"})
	}
	for len(f.Conditions) < conditionFormRows {
		f.Conditions = append(f.Conditions, conditionInput{Op: string(targeting.OpEq), Type: "text"})
	}
	layers, _, err := d.layerRows(r.Context(), s.workspaceID)
	if err != nil {
		return newExperimentPage{}, err
	}
	if f.Layer != "" && !slices.ContainsFunc(layers, func(l layerRow) bool { return l.Key == f.Layer }) {
		// Kept, so that the form shows what was chosen and the service's
		// refusal next to it.
		layers = append(layers, layerRow{Layer: store.Layer{Key: f.Layer}, Unknown: true})
	}
	return newExperimentPage{pageBase: d.base(r, s, "New experiment"), F: f, Errors: map[string]string{},
		Metrics: metricOptions, Strategies: strategyOptions, Ops: opOptions, Layers: layers, Defaults: map[string]string{
			"min_samples":        strconv.FormatInt(int64(engine.DefaultMinSamples), 10),
			"decision_threshold": exact(engine.DefaultDecisionThreshold),
			"loss_threshold":     exact(engine.DefaultLossThreshold),
			"weight_floor":       exact(engine.DefaultWeightFloor),
			"alpha":              exact(engine.DefaultAlpha),
			"min_effect":         exact(engine.DefaultMinEffect),
		}}, nil
}

func (d *Dashboard) handleNewExperiment(w http.ResponseWriter, r *http.Request, s *session) {
	f := experimentForm{Metric: "binary", Strategy: "adaptive", Start: true, Match: "all",
		Rows: []variantInput{{Key: "control"}, {Key: "treatment"}}}
	// /experiments/new?layer=checkout, the layers page's link, proposes
	// that layer.
	if l := r.URL.Query().Get("layer"); len(l) <= 100 {
		f.Layer = l
	}
	page, err := d.newExperimentPage(r, s, f)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "new_experiment", page)
}

// conditionValue reads one typed value of a targeting row: text as it is,
// a number, or true/false. It returns the reason when the text is not of
// the type.
func conditionValue(text, typ string) (any, string) {
	switch typ {
	case "number":
		x, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, fmt.Sprintf("%q is not a number: type a number such as 3 or 2.5, or choose the type text", text)
		}
		return x, ""
	case "boolean":
		switch strings.ToLower(text) {
		case "true":
			return true, ""
		case "false":
			return false, ""
		}
		return nil, fmt.Sprintf("%q is not true or false", text)
	case "text", "":
		return text, ""
	}
	return nil, "the type must be text, number or true/false"
}

// conditionOf turns a targeting row into the service's condition. The
// value's type follows the row's type, except that versions are always
// text and exists takes nothing, true or false. An empty value is left
// out, so that the service says it is required; the values of in and
// not_in are separated by commas. It returns the reason the row's value
// cannot be read ("" when it can).
func conditionOf(row conditionInput) (targeting.Condition, string) {
	c := targeting.Condition{Attribute: row.Attribute, Op: targeting.Op(row.Op)}
	switch {
	case c.Op == targeting.OpIn || c.Op == targeting.OpNotIn:
		c.Values = []any{}
		for _, part := range strings.Split(row.Value, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			v, reason := conditionValue(part, row.Type)
			if reason != "" {
				return c, reason
			}
			c.Values = append(c.Values, v)
		}
	case row.Value == "":
		// Left out: required by every operator but exists.
	case c.Op == targeting.OpExists:
		v, reason := conditionValue(row.Value, "boolean")
		if reason != "" {
			return c, reason + ": leave it empty for \"is sent\", or type false for \"is not sent\""
		}
		c.Value = v
	case strings.HasPrefix(row.Op, "semver_"):
		c.Value = row.Value
	default:
		v, reason := conditionValue(row.Value, row.Type)
		if reason != "" {
			return c, reason
		}
		c.Value = v
	}
	return c, ""
}

// fieldLabels name the API's fields as the form does, for the summary.
var fieldLabels = map[string]string{
	"key": "Key", "name": "Name", "metric": "Metric", "strategy": "Strategy", "variants": "Variants",
	"settings.min_samples": "Minimum units per variant", "settings.decision_threshold": "Decision threshold",
	"settings.loss_threshold": "Loss threshold", "settings.weight_floor": "Weight floor",
	"settings.alpha": "Test level (alpha)", "settings.min_effect": "No-difference margin", "settings.prior_lift_sd": "Prior on lifts",
	"settings.traffic": "Traffic share", "settings.seed": "Seed",
	"targeting": "Targeting", "layer": "Layer", "layer_share": "Share of the layer",
}

// handleCreateExperiment turns the form into an optimize.ExperimentSpec and
// creates the experiment through the experiments' service, which validates
// it as it does for the API: its field errors (the API's own messages) are
// shown next to the fields they name.
func (d *Dashboard) handleCreateExperiment(w http.ResponseWriter, r *http.Request, s *session) {
	f := experimentForm{
		Key: strings.TrimSpace(r.PostFormValue("key")), Name: strings.TrimSpace(r.PostFormValue("name")),
		Metric: r.PostFormValue("metric"), Strategy: r.PostFormValue("strategy"),
		MinSamples: strings.TrimSpace(r.PostFormValue("min_samples")), DecisionThreshold: strings.TrimSpace(r.PostFormValue("decision_threshold")),
		LossThreshold: strings.TrimSpace(r.PostFormValue("loss_threshold")), WeightFloor: strings.TrimSpace(r.PostFormValue("weight_floor")),
		Alpha: strings.TrimSpace(r.PostFormValue("alpha")), MinEffect: strings.TrimSpace(r.PostFormValue("min_effect")), PriorLiftSD: strings.TrimSpace(r.PostFormValue("prior_lift_sd")),
		Traffic: strings.TrimSpace(r.PostFormValue("traffic")), Seed: strings.TrimSpace(r.PostFormValue("seed")),
		Start: r.PostFormValue("start") != "",
		Match: r.PostFormValue("targeting.match"), Layer: strings.TrimSpace(r.PostFormValue("layer")),
		LayerShare: strings.TrimSpace(r.PostFormValue("layer_share")),
	}
	f.Control, _ = strconv.Atoi(r.PostFormValue("control"))
	for i := range formRows {
		f.Rows = append(f.Rows, variantInput{
			Key:     strings.TrimSpace(r.PostFormValue(fmt.Sprintf("variant.%d.key", i))),
			Name:    strings.TrimSpace(r.PostFormValue(fmt.Sprintf("variant.%d.name", i))),
			Payload: strings.TrimSpace(r.PostFormValue(fmt.Sprintf("variant.%d.payload", i))),
		})
	}
	for i := range metricFormRows {
		field := func(part string) string {
			return strings.TrimSpace(r.PostFormValue(fmt.Sprintf("metric.%d.%s", i, part)))
		}
		f.MetricRows = append(f.MetricRows, metricInput{Key: field("key"), Type: field("type"), Role: field("role"),
			Direction: field("direction"), MaxDegradation: field("max_degradation")})
	}
	for i := range conditionFormRows {
		field := func(part string) string {
			return strings.TrimSpace(r.PostFormValue(fmt.Sprintf("condition.%d.%s", i, part)))
		}
		f.Conditions = append(f.Conditions, conditionInput{Attribute: field("attribute"), Op: field("op"),
			Type: field("type"), Value: field("value")})
	}
	page, err := d.newExperimentPage(r, s, f)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	addErr := func(field, label, reason string) {
		if _, dup := page.Errors[field]; !dup {
			page.Errors[field] = reason
		}
		page.Summary = append(page.Summary, label+": "+reason)
	}

	// What only the form can get wrong (text where a number goes, a payload
	// that is not JSON) is checked here; everything else is the service's
	// to say.
	spec := optimize.ExperimentSpec{Key: f.Key, Name: f.Name, Metric: f.Metric, Strategy: f.Strategy,
		Start: f.Start, Variants: []optimize.VariantSpec{}}
	// formField names the form's field and label of each of the service's
	// variant fields ("variants[1].key"): the spec leaves out empty rows,
	// so its indices are not the form's rows.
	type formField struct{ field, label string }
	variantFields := map[string]formField{}
	for i, row := range f.Rows {
		if row == (variantInput{}) {
			continue // an empty row is not a variant
		}
		vs := optimize.VariantSpec{Key: row.Key, Name: row.Name, Control: i == f.Control}
		if row.Payload != "" {
			if !json.Valid([]byte(row.Payload)) {
				addErr(fmt.Sprintf("variant.%d.payload", i), fmt.Sprintf("Variant %d payload", i+1), `must be JSON, such as {"color": "green"} or "green"`)
			}
			vs.Payload = json.RawMessage(row.Payload)
		}
		for _, part := range []string{"key", "name", "payload", "control"} {
			variantFields[fmt.Sprintf("variants[%d].%s", len(spec.Variants), part)] = formField{
				fmt.Sprintf("variant.%d.%s", i, part), fmt.Sprintf("Variant %d %s", i+1, part)}
		}
		spec.Variants = append(spec.Variants, vs)
	}
	// A metric row counts when its key is filled in; the service names its
	// fields "metrics[j].role", shown next to the form's row.
	for i, row := range f.MetricRows {
		if row.Key == "" {
			continue
		}
		ms := optimize.MetricSpec{Key: row.Key, Type: row.Type, Role: row.Role, Direction: row.Direction}
		if row.Role == "secondary" {
			// The row's direction select always has a value; a secondary
			// metric's default direction (increase) is the service's.
			ms.Direction = ""
		}
		if row.MaxDegradation != "" && row.Role != "secondary" {
			x, err := strconv.ParseFloat(row.MaxDegradation, 64)
			if err != nil {
				addErr(fmt.Sprintf("metric.%d.max_degradation", i), fmt.Sprintf("Metric %d allowed degradation", i+1), "must be a number, such as 0.1 for 10%")
			} else {
				ms.MaxDegradation = &x
			}
		}
		for _, part := range []string{"key", "type", "role", "direction", "max_degradation"} {
			variantFields[fmt.Sprintf("metrics[%d].%s", len(spec.Metrics), part)] = formField{
				fmt.Sprintf("metric.%d.%s", i, part), fmt.Sprintf("Metric %d %s", i+1, strings.ReplaceAll(part, "_", " "))}
		}
		spec.Metrics = append(spec.Metrics, ms)
	}
	// A targeting row counts when its attribute or value is filled in; the
	// service names its fields "targeting.all[j].value", shown next to
	// the form's row.
	var conditions []targeting.Condition
	for i, row := range f.Conditions {
		if row.Attribute == "" && row.Value == "" {
			continue
		}
		c, reason := conditionOf(row)
		if reason != "" {
			addErr(fmt.Sprintf("condition.%d.value", i), fmt.Sprintf("Condition %d value", i+1), reason)
		}
		for _, list := range []string{"all", "any"} {
			at := fmt.Sprintf("targeting.%s[%d].", list, len(conditions))
			for _, part := range []string{"attribute", "op", "value", "values"} {
				ff := formField{fmt.Sprintf("condition.%d.%s", i, part), fmt.Sprintf("Condition %d %s", i+1, part)}
				switch part {
				case "op":
					ff.label = fmt.Sprintf("Condition %d operator", i+1)
				case "values":
					ff = formField{fmt.Sprintf("condition.%d.value", i), fmt.Sprintf("Condition %d values", i+1)}
				}
				variantFields[at+part] = ff
			}
			for k := range c.Values {
				variantFields[fmt.Sprintf("%svalues[%d]", at, k)] = formField{fmt.Sprintf("condition.%d.value", i),
					fmt.Sprintf("Condition %d value %d", i+1, k+1)}
			}
		}
		conditions = append(conditions, c)
	}
	if conditions != nil {
		switch f.Match {
		case "all":
			spec.Targeting = &targeting.Rules{All: conditions}
		case "any":
			spec.Targeting = &targeting.Rules{Any: conditions}
		default:
			addErr("targeting", "Targeting", "choose whether all or any of the conditions must hold")
		}
	}
	for _, list := range []string{"all", "any"} {
		variantFields["targeting."+list] = formField{"targeting", "Targeting"}
	}
	spec.Layer = f.Layer
	if f.LayerShare != "" {
		x, err := strconv.ParseFloat(f.LayerShare, 64)
		if err != nil {
			addErr("layer_share", fieldLabels["layer_share"], "must be a number, such as 0.5 for half of the layer's units")
		} else {
			spec.LayerShare = &x
		}
	}
	integer := func(field, text string) *int64 {
		if text == "" {
			return nil
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			addErr("settings."+field, fieldLabels["settings."+field], "must be a whole number")
			return nil
		}
		return &n
	}
	number := func(field, text string) *float64 {
		if text == "" {
			return nil
		}
		x, err := strconv.ParseFloat(text, 64)
		if err != nil {
			addErr("settings."+field, fieldLabels["settings."+field], "must be a number, such as 0.95")
			return nil
		}
		return &x
	}
	spec.Settings = optimize.SettingsSpec{
		MinSamples:        integer("min_samples", f.MinSamples),
		DecisionThreshold: number("decision_threshold", f.DecisionThreshold),
		LossThreshold:     number("loss_threshold", f.LossThreshold),
		WeightFloor:       number("weight_floor", f.WeightFloor),
		Alpha:             number("alpha", f.Alpha),
		MinEffect:         number("min_effect", f.MinEffect),
		PriorLiftSD:       number("prior_lift_sd", f.PriorLiftSD),
		Traffic:           number("traffic", f.Traffic),
		Seed:              integer("seed", f.Seed),
	}
	if len(page.Summary) > 0 {
		d.render(w, r, http.StatusUnprocessableEntity, "new_experiment", page)
		return
	}

	created, err := d.optimizers.Experiments.Create(r.Context(), s.workspaceID, spec)
	if err == nil {
		http.Redirect(w, r, "/experiments/"+url.PathEscape(created.ID)+"?done=created", http.StatusSeeOther)
		return
	}
	status, msg, ok := refusal(err)
	if !ok {
		d.fail(w, r, err)
		return
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		for _, fe := range ae.Fields {
			ff, ok := variantFields[fe.Field]
			if !ok {
				ff = formField{fe.Field, cmp.Or(fieldLabels[fe.Field], fe.Field)}
			}
			addErr(ff.field, ff.label, fe.Reason)
		}
	}
	if len(page.Summary) == 0 {
		page.Summary = []string{msg}
	} else if status == http.StatusConflict {
		// The conflict's sentence says more than its field's reason: how
		// much of the layer is free, or which key is taken.
		page.Summary = append([]string{sentence(msg)}, page.Summary...)
	}
	d.render(w, r, status, "new_experiment", page)
}
