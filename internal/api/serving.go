package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/targeting"
)

// Limits of the serving endpoints (contract: at most 1000 per batch, unit
// ids up to 256 bytes).
const (
	maxBatch       = 1000
	maxUnitIDBytes = 256
	maxIdemKey     = 256
	// maxEventValue bounds a continuous value so that sums of squares of a
	// billion units stay finite in float64.
	maxEventValue = 1e12
	// maxTimeseriesSpan bounds one timeseries request (hourly points).
	maxTimeseriesSpan = 92 * 24 * time.Hour
)

// checkUnitID returns why a unit id is unacceptable, or "".
func checkUnitID(u string) string {
	switch {
	case u == "":
		return "must not be empty"
	case len(u) > maxUnitIDBytes:
		return fmt.Sprintf("must be at most %d bytes, got %d", maxUnitIDBytes, len(u))
	case !utf8.ValidString(u):
		return "must be valid UTF-8"
	case strings.ContainsFunc(u, isControl):
		// NUL cannot be stored in PostgreSQL text, and no real id has
		// control characters: refuse them rather than mangle them.
		return "must not contain control characters"
	}
	return ""
}

// optimizerFor returns the Optimizer of an experiment, funnel or campaign
// (optimize.Services.For).
func (s *server) optimizerFor(object any) (optimize.Optimizer, error) {
	return s.optimizers.For(object)
}

type assignRequest struct {
	UnitID  *string  `json:"unit_id"`
	UnitIDs []string `json:"unit_ids"`
	// Attributes go with unit_id, or with every unit of unit_ids.
	Attributes targeting.Attributes `json:"attributes"`
	// Units is a batch whose units carry attributes of their own.
	Units []unitRequest `json:"units"`
}

type unitRequest struct {
	UnitID     string               `json:"unit_id"`
	Attributes targeting.Attributes `json:"attributes"`
}

type assignmentJSON struct {
	UnitID  string          `json:"unit_id"`
	Variant *string         `json:"variant"`
	Payload json.RawMessage `json:"payload"`
	New     bool            `json:"new"`
	// Reason says why variant is null: not_targeted, layer or traffic.
	Reason string `json:"reason,omitempty"`
	// Control names the experiment's control and its payload, in the
	// answer for one unit only: the SDKs remember it to fall back on when
	// the server cannot be reached (contract, "SDKs").
	Control *controlJSON `json:"control,omitempty"`
}

type controlJSON struct {
	Variant string          `json:"variant"`
	Payload json.RawMessage `json:"payload"`
}

// nullJSON is the payload of a variant without one. Shared, read only: a
// conversion of the literal per answer was an allocation each.
var nullJSON = json.RawMessage("null")

// controlOf returns the experiment's control variant, or nil when it has none.
func controlOf(e *store.Experiment) *controlJSON {
	for _, v := range e.Variants {
		if v.Control {
			c := &controlJSON{Variant: v.Key, Payload: nullJSON}
			if len(v.Payload) > 0 {
				c.Payload = v.Payload
			}
			return c
		}
	}
	return nil
}

func toAssignmentJSON(a optimize.Assignment) assignmentJSON {
	out := assignmentJSON{UnitID: a.UnitID, Payload: nullJSON, New: a.New, Reason: a.Reason}
	if a.Variant != nil {
		k := a.Variant.Key
		out.Variant = &k
		if len(a.Variant.Payload) > 0 {
			out.Payload = a.Variant.Payload
		}
	}
	return out
}

// handleAssign serves POST /v1/experiments/{ref}/assign, for one unit
// ({"unit_id"}) or a batch ({"unit_ids"}).
func (s *server) handleAssign(w http.ResponseWriter, r *http.Request) error {
	var body assignRequest
	if err := decodeFast(r, &body, decodeAssignFast); err != nil {
		return err
	}
	var fe fieldErrors
	var units []string
	attrs := make([]targeting.Attributes, 0, 1)
	checkAttrs := func(field string, a targeting.Attributes) {
		for _, p := range targeting.CheckAttributes(a) {
			f := field
			if p.Field != "" {
				f += "." + p.Field
			}
			fe.add(f, "%s", p.Reason)
		}
	}
	switch {
	case (body.UnitID != nil) && (body.UnitIDs != nil || body.Units != nil), body.UnitIDs != nil && body.Units != nil:
		fe.add("unit_ids", "send one of unit_id, unit_ids and units")
	case body.Units != nil:
		if body.Attributes != nil {
			fe.add("attributes", "goes with unit_id or unit_ids; each of units has its own")
		}
		if len(body.Units) == 0 || len(body.Units) > maxBatch {
			fe.add("units", "must hold 1 to %d units, got %d", maxBatch, len(body.Units))
		}
		for i, u := range body.Units {
			if reason := checkUnitID(u.UnitID); reason != "" {
				fe.add(fmt.Sprintf("units[%d].unit_id", i), "%s", reason)
			}
			checkAttrs(fmt.Sprintf("units[%d].attributes", i), u.Attributes)
			units = append(units, u.UnitID)
			attrs = append(attrs, u.Attributes)
		}
	case body.UnitID != nil:
		if reason := checkUnitID(*body.UnitID); reason != "" {
			fe.add("unit_id", "%s", reason)
		}
		units = []string{*body.UnitID}
	case body.UnitIDs != nil:
		if len(body.UnitIDs) == 0 || len(body.UnitIDs) > maxBatch {
			fe.add("unit_ids", "must hold 1 to %d unit ids, got %d", maxBatch, len(body.UnitIDs))
		}
		for i, u := range body.UnitIDs {
			if reason := checkUnitID(u); reason != "" {
				fe.add(fmt.Sprintf("unit_ids[%d]", i), "%s", reason)
			}
		}
		units = body.UnitIDs
	default:
		fe.add("unit_id", "is required (or unit_ids or units for a batch)")
	}
	if body.Units == nil {
		checkAttrs("attributes", body.Attributes)
	}
	if err := fe.err(); err != nil {
		return err
	}
	e, err := s.experimentByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	opt, err := s.optimizerFor(&e)
	if err != nil {
		return err
	}
	us := make([]optimize.Unit, len(units))
	for i, u := range units {
		us[i].ID = u
		if body.Units != nil {
			us[i].Attributes = attrs[i]
		} else {
			us[i].Attributes = body.Attributes
		}
	}
	alloc, err := opt.Allocate(r.Context(), us)
	if err != nil {
		return err
	}
	as := alloc.Assignments
	if body.UnitID != nil {
		one := toAssignmentJSON(as[0])
		one.Control = controlOf(&e)
		return respond(w, http.StatusOK, one)
	}
	out := struct {
		Assignments []assignmentJSON `json:"assignments"`
	}{Assignments: make([]assignmentJSON, len(as))}
	for i, a := range as {
		out.Assignments[i] = toAssignmentJSON(a)
	}
	return respond(w, http.StatusOK, out)
}

type eventRequest struct {
	UnitID         string   `json:"unit_id"`
	Metric         string   `json:"metric"`
	Value          *float64 `json:"value"`
	IdempotencyKey string   `json:"idempotency_key"`
}

type eventsRequest struct {
	eventRequest
	Events []json.RawMessage `json:"events"`
}

type rejectedJSON struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

type eventsResponse struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	// Late counts the events that came after their unit's conversion
	// window: stored, never counted (experiments with a window only).
	Late     int            `json:"late"`
	Rejected []rejectedJSON `json:"rejected"`
}

// checkEvent validates one event against the experiment's metric and
// returns the event to store, or the field that makes it unacceptable.
func checkEvent(ev eventRequest, e *store.Experiment, now time.Time) (store.Event, *apperr.FieldError) {
	bad := func(field, format string, args ...any) (store.Event, *apperr.FieldError) {
		return store.Event{}, &apperr.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	metric := e.Metric
	if ev.Metric != "" && ev.Metric != store.PrimaryMetric {
		m, ok := e.MetricByKey(ev.Metric)
		if !ok {
			known := []string{store.PrimaryMetric}
			for _, m := range e.Metrics {
				known = append(known, m.Key)
			}
			return bad("metric", "unknown metric %q: this experiment's metrics are %s", ev.Metric, strings.Join(known, ", "))
		}
		metric = m.Type
	}
	if reason := checkUnitID(ev.UnitID); reason != "" {
		return bad("unit_id", "%s", reason)
	}
	if len(ev.IdempotencyKey) > maxIdemKey || strings.ContainsFunc(ev.IdempotencyKey, isControl) {
		return bad("idempotency_key", "must be at most %d bytes without control characters", maxIdemKey)
	}
	out := store.Event{UnitID: ev.UnitID, Value: 1, IdempotencyKey: ev.IdempotencyKey, At: now, Metric: ev.Metric}
	switch metric {
	case store.MetricBinary:
		// A binary event is a conversion; a value, when sent, must say so.
		if ev.Value != nil && *ev.Value != 1 {
			return bad("value", "must be 1 (a conversion) or left out for a binary metric")
		}
	case store.MetricContinuous:
		if ev.Value == nil {
			return bad("value", "is required for a continuous metric")
		}
		if math.IsNaN(*ev.Value) || math.Abs(*ev.Value) > maxEventValue {
			return bad("value", "must be a number between -%g and %g", maxEventValue, maxEventValue)
		}
		out.Value = *ev.Value
	}
	return out, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// handleEvents serves POST /v1/experiments/{ref}/events, for one event or a
// batch ({"events": [...]}). The 202 is sent only after the accepted events
// are committed: acknowledged events survive any crash.
func (s *server) handleEvents(w http.ResponseWriter, r *http.Request) error {
	var body eventsRequest
	if err := decodeFast(r, &body, decodeEventsFast); err != nil {
		return err
	}
	single := body.Events == nil
	if !single && (body.UnitID != "" || body.Value != nil || body.IdempotencyKey != "" || body.Metric != "") {
		return apperr.Fields([]apperr.FieldError{{Field: "events", Reason: "send either one event or an events list, not both"}})
	}
	if !single && (len(body.Events) == 0 || len(body.Events) > maxBatch) {
		return apperr.Fields([]apperr.FieldError{{Field: "events", Reason: fmt.Sprintf("must hold 1 to %d events, got %d", maxBatch, len(body.Events))}})
	}
	e, err := s.experimentByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	now := s.now()
	raw, err := batchItems(single, body.eventRequest, body.Events, decodeEventFast)
	if err != nil {
		return err
	}
	// index holds the position in the request of each valid event.
	valid, index, rejected, err := checkBatch(raw, single, func(ev eventRequest) (store.Event, *apperr.FieldError) {
		return checkEvent(ev, &e, now)
	})
	if err != nil {
		return err
	}
	resp := eventsResponse{Rejected: rejected}
	if len(valid) > 0 {
		opt, err := s.optimizerFor(&e)
		if err != nil {
			return err
		}
		outcomes := make([]optimize.Outcome, len(valid))
		for i, ev := range valid {
			outcomes[i] = optimize.Outcome{Unit: ev.UnitID, Type: ev.Metric, Value: ev.Value, IdempotencyKey: ev.IdempotencyKey, At: ev.At}
		}
		results, err := opt.Record(r.Context(), outcomes)
		if err != nil {
			return err
		}
		for j, res := range results {
			switch res.Outcome {
			case store.OutcomeAccepted:
				resp.Accepted++
			case store.OutcomeDuplicate:
				resp.Duplicates++
			case store.OutcomeLate:
				resp.Late++
			default:
				resp.Rejected = append(resp.Rejected, rejectedJSON{Index: index[j], Error: res.Reason})
			}
		}
	}
	slices.SortFunc(resp.Rejected, func(a, b rejectedJSON) int { return a.Index - b.Index })
	return respond(w, http.StatusAccepted, resp)
}

// handleResults serves GET /v1/experiments/{ref}/results.
func (s *server) handleResults(w http.ResponseWriter, r *http.Request) error {
	e, err := s.experimentByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	opt, err := s.optimizerFor(&e)
	if err != nil {
		return err
	}
	attribute, breakdown := r.URL.Query().Get("breakdown"), r.URL.Query().Has("breakdown")
	if breakdown {
		if reason := targeting.KeyProblem(attribute); reason != "" {
			return apperr.Fields([]apperr.FieldError{{Field: "breakdown", Reason: "must name an attribute: " + reason}})
		}
	}
	res, err := opt.Analyze(r.Context())
	if err != nil {
		return err
	}
	if breakdown {
		results, ok := res.(*optimize.Results)
		if !ok {
			return apperr.Fields([]apperr.FieldError{{Field: "breakdown", Reason: "is only for experiments"}})
		}
		results.Breakdown, err = s.optimizers.Experiments.Breakdown(r.Context(), &e, attribute)
		if err != nil {
			return err
		}
	}
	return respond(w, http.StatusOK, res)
}

// handleTimeseries serves GET /v1/experiments/{ref}/timeseries?from=&to=
// (RFC 3339; default: from the experiment's creation to now).
func (s *server) handleTimeseries(w http.ResponseWriter, r *http.Request) error {
	e, err := s.experimentByRef(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	now := s.now()
	from, to := e.CreatedAt.Truncate(time.Hour), now.Truncate(time.Hour).Add(time.Hour)
	var fe fieldErrors
	q := r.URL.Query()
	parse := func(name string, dst *time.Time) {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				fe.add(name, "must be an RFC 3339 time such as 2026-11-27T10:00:00Z")
				return
			}
			*dst = t.UTC()
		}
	}
	parse("from", &from)
	parse("to", &to)
	if len(fe) == 0 {
		if !to.After(from) {
			fe.add("to", "must be after from")
		} else if to.Sub(from) > maxTimeseriesSpan {
			if q.Get("from") == "" {
				from = to.Add(-maxTimeseriesSpan) // a long-running experiment: its last quarter
			} else {
				fe.add("to", "the span from from to to must be at most %d days", int(maxTimeseriesSpan/(24*time.Hour)))
			}
		}
	}
	if err := fe.err(); err != nil {
		return err
	}
	if _, err := s.optimizerFor(&e); err != nil {
		return err
	}
	// Hourly points are the experiments' own (funnels and campaigns have
	// waves and steps instead).
	pts, err := s.optimizers.Experiments.Timeseries(r.Context(), &e, from, to)
	if err != nil {
		return err
	}
	if pts == nil {
		pts = []optimize.Point{}
	}
	return respond(w, http.StatusOK, struct {
		ExperimentID string           `json:"experiment_id"`
		From         time.Time        `json:"from"`
		To           time.Time        `json:"to"`
		Points       []optimize.Point `json:"points"`
	}{e.ID, from, to, pts})
}
