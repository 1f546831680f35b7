package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

type funnelRow struct {
	ID, Key, Name, Status, Strategy string
	Steps                           int
	Units, Conversions              int64
	Rate                            float64
	HasResults                      bool
	Started                         *time.Time
}

type funnelsPage struct {
	pageBase
	Filters []filterLink
	Rows    []funnelRow
	Next    string
}

func (d *Dashboard) funnelResults(ctx context.Context, f *store.Funnel) (*optimize.FunnelResults, error) {
	if d.optimizers.Funnels == nil {
		return nil, apperr.New(apperr.Unavailable, "funnel results are not served here")
	}
	return d.optimizers.Funnels.Results(ctx, f)
}

func (d *Dashboard) handleFunnelList(w http.ResponseWriter, r *http.Request, s *session) {
	params, ok := parseListQuery(r)
	if !ok {
		d.renderError(w, r, http.StatusBadRequest, "Unknown filter: choose one of the status links on the list page.")
		return
	}
	list, err := d.store.ListFunnels(r.Context(), s.workspaceID, params)
	if err != nil {
		d.fail(w, r, fmt.Errorf("list funnels: %w", err))
		return
	}
	page := funnelsPage{pageBase: d.base(r, s, "Funnels"), Filters: filterLinks("/funnels", params.Status)}
	if len(list) > listLimit {
		list = list[:listLimit]
		q := url.Values{"after": {list[len(list)-1].ID}}
		if params.Status != "" {
			q.Set("status", string(params.Status))
		}
		page.Next = "/funnels?" + q.Encode()
	}
	for _, f := range list {
		row := funnelRow{ID: f.ID, Key: f.Key, Name: f.Name, Status: string(f.Status), Strategy: f.Strategy, Steps: len(f.Steps), Started: f.StartedAt}
		if res, err := d.funnelResults(r.Context(), &f); err == nil {
			row.HasResults, row.Units, row.Conversions = true, res.TotalUnits, res.Conversions
			if res.TotalUnits > 0 {
				row.Rate = float64(res.Conversions) / float64(res.TotalUnits)
			}
		} else {
			d.log.Warn("dashboard: funnel results for the list", "funnel", f.ID, "err", err)
		}
		page.Rows = append(page.Rows, row)
	}
	d.render(w, r, http.StatusOK, "funnels", page)
}

func (d *Dashboard) funnelOf(ctx context.Context, s *session, ref string) (store.Funnel, error) {
	if ref == "" || len(ref) > 100 {
		return store.Funnel{}, apperr.New(apperr.NotFound, "no funnel")
	}
	f, err := d.store.GetFunnel(ctx, s.workspaceID, ref)
	if err == nil && f.WorkspaceID != s.workspaceID {
		return store.Funnel{}, apperr.New(apperr.NotFound, "no funnel")
	}
	return f, err
}

// funnelStepView is one step with its variants.
type funnelStepView struct {
	engine.FunnelStepResult
	Position int
	Rows     []funnelVariantRow
}

type funnelVariantRow struct {
	engine.FunnelVariantResult
	Class    string
	Leader   bool
	PBestBar bar
}

// pathStep is one step of a path; Same: the step's variants provably do
// not differ (no_difference), so it has no winner to show.
type pathStep struct {
	Step, Variant string
	Same          bool
}

// funnelLive is the refreshing part of a funnel's page.
type funnelLive struct {
	ID            string
	Status        string
	Running       bool
	RefreshURL    string
	Error         string
	TotalUnits    int64
	Conversions   int64
	Rate          float64
	Chart         funnelChart
	Steps         []funnelStepView
	BestPath      []pathStep // in step order; Variant "" while undecided
	Leading       *engine.FunnelPathResult
	LeadingPath   []pathStep
	MattersMost   *engine.StepSpread
	DecisionState string
	Decision      string
	UpdatedAt     time.Time
}

func (d *Dashboard) funnelLive(ctx context.Context, f *store.Funnel) (funnelLive, error) {
	v := funnelLive{ID: f.ID, Status: string(f.Status), Running: f.Status == store.StatusRunning, RefreshURL: "/funnels/" + f.ID + "/live"}
	res, err := d.funnelResults(ctx, f)
	if apperr.Is(err, apperr.Invalid) || apperr.Is(err, apperr.Unavailable) {
		v.Error = "The results cannot be shown: " + err.Error()
		return v, nil
	}
	if err != nil {
		return v, err
	}
	v.TotalUnits, v.Conversions, v.UpdatedAt = res.TotalUnits, res.Conversions, res.UpdatedAt
	if res.TotalUnits > 0 {
		v.Rate = float64(res.Conversions) / float64(res.TotalUnits)
	}
	v.Chart = newFunnelChart(res)
	v.DecisionState, v.Decision = res.Decision.State, sentence(res.Decision.Reason)
	v.MattersMost = res.MattersMost
	for k, st := range res.Steps {
		sv := funnelStepView{FunnelStepResult: st, Position: k + 1}
		best := -1
		for i, vr := range st.Variants {
			if vr.Units > 0 && (best < 0 || vr.PBest > st.Variants[best].PBest) {
				best = i
			}
		}
		for i, vr := range st.Variants {
			sv.Rows = append(sv.Rows, funnelVariantRow{FunnelVariantResult: vr, Class: colorClass(i), Leader: i == best, PBestBar: newBar("p_best", vr.Key, i, vr.PBest)})
		}
		v.Steps = append(v.Steps, sv)
		if w, ok := res.BestPath[st.Key]; ok {
			p := pathStep{Step: st.Key}
			if w != nil {
				p.Variant = *w
			}
			p.Same = st.NoDifference()
			v.BestPath = append(v.BestPath, p)
		}
	}
	if res.LeadingPath != nil {
		v.Leading = res.LeadingPath
		for _, st := range res.Steps {
			if vk, ok := res.LeadingPath.Variants[st.Key]; ok {
				v.LeadingPath = append(v.LeadingPath, pathStep{Step: st.Key, Variant: vk})
			}
		}
		// Steps the funnel no longer lists (none today) would be lost above;
		// keep any such in a stable order rather than drop them.
		var extra []string
		for k := range res.LeadingPath.Variants {
			if !slices.ContainsFunc(v.LeadingPath, func(p pathStep) bool { return p.Step == k }) {
				extra = append(extra, k)
			}
		}
		sort.Strings(extra)
		for _, k := range extra {
			v.LeadingPath = append(v.LeadingPath, pathStep{Step: k, Variant: res.LeadingPath.Variants[k]})
		}
	}
	return v, nil
}

type funnelPage struct {
	pageBase
	F       store.Funnel
	Live    funnelLive
	Actions []action
	Flash   string
	Error   string
	// Decision are the settings of its steps' winner and no_difference rule.
	Decision []setting
}

func (d *Dashboard) funnelPage(ctx context.Context, r *http.Request, s *session, f store.Funnel) (funnelPage, error) {
	lv, err := d.funnelLive(ctx, &f)
	if err != nil {
		return funnelPage{}, err
	}
	acts := actionsFor(store.Experiment{Name: f.Name, Status: f.Status})
	for i := range acts {
		acts[i].Complete = false // a funnel's steps keep their declared winners
	}
	return funnelPage{pageBase: d.base(r, s, f.Name), F: f, Live: lv, Actions: acts, Decision: winnerSettings(f.Settings.Decision(), "")}, nil
}

func (d *Dashboard) handleFunnel(w http.ResponseWriter, r *http.Request, s *session) {
	f, err := d.funnelOf(r.Context(), s, r.PathValue("ref"))
	if err != nil {
		d.notFoundOr(w, r, err, "such funnel")
		return
	}
	page, err := d.funnelPage(r.Context(), r, s, f)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	page.Flash = flashes[r.URL.Query().Get("done")]
	d.render(w, r, http.StatusOK, "funnel", page)
}

func (d *Dashboard) handleFunnelLive(w http.ResponseWriter, r *http.Request, s *session) {
	f, err := d.funnelOf(r.Context(), s, r.PathValue("ref"))
	if err != nil {
		d.notFoundOr(w, r, err, "such funnel")
		return
	}
	lv, err := d.funnelLive(r.Context(), &f)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "funnel_live", lv)
}

// handleFunnelAction changes a funnel's status through its Optimizer, under
// the lifecycle rules the API applies.
func (d *Dashboard) handleFunnelAction(w http.ResponseWriter, r *http.Request, s *session) {
	act := r.PathValue("action")
	if !slices.Contains(experimentActions, act) {
		d.renderError(w, r, http.StatusNotFound, "There is no such action.")
		return
	}
	f, err := d.funnelOf(r.Context(), s, r.PathValue("ref"))
	if err != nil {
		d.notFoundOr(w, r, err, "such funnel")
		return
	}
	err = d.transition(r.Context(), &f, act, nil)
	if err == nil {
		http.Redirect(w, r, "/funnels/"+url.PathEscape(f.ID)+"?done="+act, http.StatusSeeOther)
		return
	}
	status, msg, ok := refusal(err)
	if !ok {
		d.fail(w, r, err)
		return
	}
	if fresh, err := d.funnelOf(r.Context(), s, f.ID); err == nil {
		f = fresh
	}
	page, err := d.funnelPage(r.Context(), r, s, f)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	page.Error = msg
	d.render(w, r, status, "funnel", page)
}
