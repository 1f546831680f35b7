package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

// campaignRow is one line of the campaign list. It shows what the stored
// campaign knows (sends, waves, declared winner, stopped variants) and does
// not analyse every campaign: computing results also records decisions,
// which a list page should not trigger for fifty campaigns at a time.
type campaignRow struct {
	ID, Key, Name, Status    string
	Channel, Objective, Mode string
	Variants                 int
	Sent, Waves              int64
	Winner                   string
	Stopped                  []string
	Started                  *time.Time
}

type campaignsPage struct {
	pageBase
	Filters []filterLink
	Rows    []campaignRow
	Next    string
}

func (d *Dashboard) handleCampaignList(w http.ResponseWriter, r *http.Request, s *session) {
	params, ok := parseListQuery(r)
	if !ok {
		d.renderError(w, r, http.StatusBadRequest, "Unknown filter: choose one of the status links on the list page.")
		return
	}
	list, err := d.store.ListCampaigns(r.Context(), s.workspaceID, params)
	if err != nil {
		d.fail(w, r, fmt.Errorf("list campaigns: %w", err))
		return
	}
	page := campaignsPage{pageBase: d.base(r, s, "Campaigns"), Filters: filterLinks("/campaigns", params.Status)}
	if len(list) > listLimit {
		list = list[:listLimit]
		q := url.Values{"after": {list[len(list)-1].ID}}
		if params.Status != "" {
			q.Set("status", string(params.Status))
		}
		page.Next = "/campaigns?" + q.Encode()
	}
	for _, c := range list {
		page.Rows = append(page.Rows, campaignRow{
			ID: c.ID, Key: c.Key, Name: c.Name, Status: string(c.Status),
			Channel: c.Channel, Objective: c.Objective, Mode: c.Mode, Variants: len(c.Variants),
			Sent: c.Sent, Waves: c.Waves, Winner: c.Winner, Stopped: c.Stopped, Started: c.StartedAt,
		})
	}
	d.render(w, r, http.StatusOK, "campaigns", page)
}

// campaignOf finds the campaign by id or key in the session's workspace.
func (d *Dashboard) campaignOf(ctx context.Context, s *session, ref string) (store.Campaign, error) {
	if ref == "" || len(ref) > 100 {
		return store.Campaign{}, apperr.New(apperr.NotFound, "no campaign")
	}
	c, err := d.store.GetCampaign(ctx, s.workspaceID, ref)
	if err == nil && c.WorkspaceID != s.workspaceID {
		// Defence in depth: the store scopes by workspace already.
		return store.Campaign{}, apperr.New(apperr.NotFound, "no campaign")
	}
	return c, err
}

// campaignVariantRow is one line of a campaign's variant table.
type campaignVariantRow struct {
	optimize.CampaignVariantResults
	Class    string
	Leader   bool
	Winner   bool
	Stopped  bool
	PBestBar bar
}

// campaignLive is the refreshing part of a campaign's page.
type campaignLive struct {
	ID            string
	Status        string
	Running       bool
	RefreshURL    string
	Error         string
	Sent          int64
	Objective     string
	Rows          []campaignVariantRow
	Guardrail     *store.CampaignGuardrail
	Stopped       []string
	Leader        string
	Winner        string
	DecisionState string
	Decision      string
	Waves         waveChart
	UpdatedAt     time.Time
}

func (d *Dashboard) campaignLive(ctx context.Context, c *store.Campaign) (campaignLive, error) {
	v := campaignLive{ID: c.ID, Status: string(c.Status), Running: c.Status == store.StatusRunning,
		RefreshURL: "/campaigns/" + c.ID + "/live", Objective: c.Objective, Guardrail: c.Settings.Guardrail}
	if d.optimizers.Campaigns == nil {
		v.Error = "The results cannot be shown: campaigns are not served here."
		return v, nil
	}
	res, err := d.optimizers.Campaigns.Results(ctx, c)
	if apperr.Is(err, apperr.Invalid) || apperr.Is(err, apperr.Unavailable) {
		v.Error = "The results cannot be shown: " + err.Error()
		return v, nil
	}
	if err != nil {
		return v, err
	}
	v.Sent, v.UpdatedAt = res.Sent, res.UpdatedAt
	v.DecisionState, v.Decision = res.Decision.State, sentence(res.Decision.Reason)
	if res.Leader != nil {
		v.Leader = *res.Leader
	}
	if res.Winner != nil {
		v.Winner = *res.Winner
	}
	for i, vr := range res.Variants {
		stopped := slices.Contains(c.Stopped, vr.Key) || (vr.Guardrail != nil && vr.Guardrail.Tripped)
		if stopped {
			v.Stopped = append(v.Stopped, vr.Key)
		}
		v.Rows = append(v.Rows, campaignVariantRow{
			CampaignVariantResults: vr, Class: colorClass(i),
			Leader: vr.Key == v.Leader, Winner: vr.Key == v.Winner, Stopped: stopped,
			PBestBar: newBar("p_best", vr.Key, i, vr.PBest),
		})
	}
	v.Waves = newWaveChart(res, v.Stopped)
	return v, nil
}

type campaignPage struct {
	pageBase
	C       store.Campaign
	Live    campaignLive
	Actions []action
	Flash   string
	Error   string
	// Decision are the settings of its winner and no_difference rule.
	Decision []setting
}

func (d *Dashboard) campaignPage(ctx context.Context, r *http.Request, s *session, c store.Campaign) (campaignPage, error) {
	lv, err := d.campaignLive(ctx, &c)
	if err != nil {
		return campaignPage{}, err
	}
	acts := actionsFor(store.Experiment{Name: c.Name, Status: c.Status})
	for i := range acts {
		acts[i].Complete = false // the optimizer declares a campaign's winner
	}
	return campaignPage{pageBase: d.base(r, s, c.Name), C: c, Live: lv, Actions: acts, Decision: winnerSettings(c.Settings.Decision(), "campaigns")}, nil
}

func (d *Dashboard) handleCampaign(w http.ResponseWriter, r *http.Request, s *session) {
	c, err := d.campaignOf(r.Context(), s, r.PathValue("ref"))
	if err != nil {
		d.notFoundOr(w, r, err, "such campaign")
		return
	}
	page, err := d.campaignPage(r.Context(), r, s, c)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	page.Flash = campaignFlashes[r.URL.Query().Get("done")]
	d.render(w, r, http.StatusOK, "campaign", page)
}

var campaignFlashes = map[string]string{
	"start":    "Started: sends are being allocated.",
	"pause":    "Paused: no new recipient is sent until you resume it.",
	"resume":   "Resumed: recipients are being sent again.",
	"complete": "Completed.",
}

func (d *Dashboard) handleCampaignLive(w http.ResponseWriter, r *http.Request, s *session) {
	c, err := d.campaignOf(r.Context(), s, r.PathValue("ref"))
	if err != nil {
		d.notFoundOr(w, r, err, "such campaign")
		return
	}
	lv, err := d.campaignLive(r.Context(), &c)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "campaign_live", lv)
}

// handleCampaignAction changes a campaign's status through its Optimizer,
// under the lifecycle rules the API applies.
func (d *Dashboard) handleCampaignAction(w http.ResponseWriter, r *http.Request, s *session) {
	act := r.PathValue("action")
	if !slices.Contains(experimentActions, act) {
		d.renderError(w, r, http.StatusNotFound, "There is no such action.")
		return
	}
	c, err := d.campaignOf(r.Context(), s, r.PathValue("ref"))
	if err != nil {
		d.notFoundOr(w, r, err, "such campaign")
		return
	}
	err = d.transition(r.Context(), &c, act, nil)
	if err == nil {
		http.Redirect(w, r, "/campaigns/"+url.PathEscape(c.ID)+"?done="+act, http.StatusSeeOther)
		return
	}
	status, msg, ok := refusal(err)
	if !ok {
		d.fail(w, r, err)
		return
	}
	if fresh, err := d.campaignOf(r.Context(), s, c.ID); err == nil {
		c = fresh
	}
	page, err := d.campaignPage(r.Context(), r, s, c)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	page.Error = msg
	d.render(w, r, status, "campaign", page)
}
