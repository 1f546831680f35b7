package webhook

import (
	"encoding/json"
	"time"

	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

// Payload is the body of every delivery: the event's envelope. It is
// rebuilt from the stored event on every attempt, the same bytes each time.
type Payload struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	CreatedAt   string          `json:"created_at"`
	WorkspaceID string          `json:"workspace_id"`
	Data        json.RawMessage `json:"data"`
}

// Body returns the JSON body of ev's deliveries.
func Body(ev store.OutboxEvent) []byte {
	data := ev.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	b, _ := json.Marshal(Payload{ // cannot fail: strings and valid JSON
		ID: ev.ID, Type: string(ev.Type), CreatedAt: timestamp(ev.CreatedAt), WorkspaceID: ev.WorkspaceID, Data: data,
	})
	return b
}

// timestamp is the API's one timestamp format.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// NewEvent returns an event with a new id whose data is v as JSON.
func NewEvent(typ store.EventType, workspaceID string, at time.Time, v any) store.OutboxEvent {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte("{}")
	}
	return store.OutboxEvent{ID: id.New(id.Event), WorkspaceID: workspaceID, Type: typ, Data: data, CreatedAt: at.UTC()}
}

// ExperimentSummary is how an experiment appears in event data: enough to
// identify it and act, without the variants' payloads.
type ExperimentSummary struct {
	ID       string  `json:"id"`
	Key      string  `json:"key"`
	Name     string  `json:"name"`
	Kind     string  `json:"kind"`
	Metric   string  `json:"metric"`
	Strategy string  `json:"strategy"`
	Status   string  `json:"status"`
	Winner   *string `json:"winner"`
}

// Summarize returns e's summary.
func Summarize(e store.Experiment) ExperimentSummary {
	s := ExperimentSummary{ID: e.ID, Key: e.Key, Name: e.Name, Kind: string(e.Kind), Metric: string(e.Metric),
		Strategy: e.Strategy, Status: string(e.Status)}
	if e.Winner != "" {
		w := e.Winner
		s.Winner = &w
	}
	return s
}

// ExperimentEvent returns an experiment lifecycle event (started, paused,
// resumed, completed) for e as it is after the change.
func ExperimentEvent(typ store.EventType, e store.Experiment, at time.Time) store.OutboxEvent {
	return NewEvent(typ, e.WorkspaceID, at, map[string]any{"experiment": Summarize(e)})
}

// WinnerFound returns experiment.winner_found for e, its winner's key and
// the decision's sentence (with the anytime-valid interval).
func WinnerFound(e store.Experiment, winner, reason string, at time.Time) store.OutboxEvent {
	e.Winner = winner
	return NewEvent(store.EventExperimentWinnerFound, e.WorkspaceID, at, map[string]any{
		"experiment": Summarize(e), "winner": winner,
		"decision": map[string]any{"state": "winner_found", "reason": reason},
	})
}

// NoDifference returns experiment.no_difference for e with the decision's
// sentence.
func NoDifference(e store.Experiment, reason string, at time.Time) store.OutboxEvent {
	return NewEvent(store.EventExperimentNoDifference, e.WorkspaceID, at, map[string]any{
		"experiment": Summarize(e), "decision": map[string]any{"state": "no_difference", "reason": reason},
	})
}

// GuardrailTripped returns experiment.guardrail_tripped: the guardrail
// metric stopped variant of e (it gets no more traffic), with the reason.
func GuardrailTripped(e store.Experiment, variant, metric, reason string, at time.Time) store.OutboxEvent {
	return NewEvent(store.EventExperimentGuardrail, e.WorkspaceID, at, map[string]any{
		"experiment": Summarize(e), "variant": variant, "metric": metric, "reason": reason,
	})
}

// SRMDetected returns experiment.srm_detected for e with the test's p-value.
func SRMDetected(e store.Experiment, pValue float64, at time.Time) store.OutboxEvent {
	return NewEvent(store.EventExperimentSRMDetected, e.WorkspaceID, at, map[string]any{
		"experiment": Summarize(e), "p_value": pValue,
	})
}

// FunnelWinnerFound returns funnel.winner_found for a step of f.
func FunnelWinnerFound(f store.Funnel, step, winner string, at time.Time) store.OutboxEvent {
	return NewEvent(store.EventFunnelWinnerFound, f.WorkspaceID, at, map[string]any{
		"funnel": funnelSummary(f),
		"step":   step, "winner": winner,
	})
}

// FunnelNoDifference returns funnel.no_difference for a step of f, with the
// decision's sentence.
func FunnelNoDifference(f store.Funnel, step, reason string, at time.Time) store.OutboxEvent {
	return NewEvent(store.EventFunnelNoDifference, f.WorkspaceID, at, map[string]any{
		"funnel": funnelSummary(f), "step": step,
		"decision": map[string]any{"state": "no_difference", "reason": reason},
	})
}

// funnelSummary is how a funnel appears in event data.
func funnelSummary(f store.Funnel) map[string]any {
	return map[string]any{"id": f.ID, "key": f.Key, "name": f.Name, "status": string(f.Status)}
}

// campaignSummary is how a campaign appears in event data.
func campaignSummary(c store.Campaign) map[string]any {
	return map[string]any{"id": c.ID, "key": c.Key, "name": c.Name, "channel": string(c.Channel), "status": string(c.Status)}
}

// CampaignWinnerFound returns campaign.winner_found for c and its winner.
func CampaignWinnerFound(c store.Campaign, winner string, at time.Time) store.OutboxEvent {
	return NewEvent(store.EventCampaignWinnerFound, c.WorkspaceID, at, map[string]any{
		"campaign": campaignSummary(c), "winner": winner,
	})
}

// CampaignNoDifference returns campaign.no_difference for c, with the
// decision's sentence.
func CampaignNoDifference(c store.Campaign, reason string, at time.Time) store.OutboxEvent {
	return NewEvent(store.EventCampaignNoDifference, c.WorkspaceID, at, map[string]any{
		"campaign": campaignSummary(c), "decision": map[string]any{"state": "no_difference", "reason": reason},
	})
}

// CampaignGuardrailTripped returns campaign.guardrail_tripped for the
// variant of c that the guardrail stopped.
func CampaignGuardrailTripped(c store.Campaign, variant string, at time.Time) store.OutboxEvent {
	return NewEvent(store.EventCampaignGuardrail, c.WorkspaceID, at, map[string]any{
		"campaign": campaignSummary(c), "variant": variant,
	})
}

// Ping returns the ping event of a test delivery.
func Ping(workspaceID, webhookID string, at time.Time) store.OutboxEvent {
	return NewEvent(store.EventPing, workspaceID, at, map[string]any{"webhook_id": webhookID})
}
