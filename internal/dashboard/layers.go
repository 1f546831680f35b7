package dashboard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/store"
)

// The layers page lists the workspace's layers, each with the range of its
// hash space every experiment holds and what is free, and creates a layer
// through the experiments' service (CreateLayer, what POST /v1/layers
// calls), so the key rules and their messages are the API's own. An
// experiment joins a layer when it is created: the new-experiment form has
// the layer selector, fed by the same rows.

// layersShown bounds the list; the API pages through them all.
const layersShown = 200

// layerRange is one experiment's part of a layer, as fractions of its
// units.
type layerRange struct {
	Experiment      string
	Status          string
	Share, From, To float64
	Class           string // the colour of its bar
}

// layerRow is one layer with the ranges held now (experiments neither
// completed nor archived) and what is free: Free in all, Largest in one
// range (the most a new experiment may take).
type layerRow struct {
	store.Layer
	Ranges        []layerRange
	Free, Largest float64
	// Unknown marks, in the new-experiment form, a layer key typed into
	// the address or sent by a stale form that is not the workspace's.
	Unknown bool
}

// layerRows reads the workspace's layers (the first layersShown) and their
// ranges; more says there are others.
func (d *Dashboard) layerRows(ctx context.Context, workspaceID string) (rows []layerRow, more bool, err error) {
	list, err := d.store.ListLayers(ctx, workspaceID, store.ListParams{Limit: layersShown + 1})
	if err != nil {
		return nil, false, fmt.Errorf("list layers: %w", err)
	}
	if len(list) > layersShown {
		list, more = list[:layersShown], true
	}
	ids := make([]string, len(list))
	for i, l := range list {
		ids[i] = l.ID
	}
	held, err := d.store.LayerRanges(ctx, workspaceID, ids)
	if err != nil {
		return nil, false, fmt.Errorf("layer ranges: %w", err)
	}
	for _, l := range list {
		row := layerRow{Layer: l}
		free, largest := freeSlots(held[l.ID])
		row.Free, row.Largest = float64(free)/store.LayerSlots, float64(largest)/store.LayerSlots
		for i, r := range held[l.ID] {
			row.Ranges = append(row.Ranges, layerRange{Experiment: r.ExperimentKey, Status: string(r.Status),
				Share: float64(r.To-r.From) / store.LayerSlots,
				From:  float64(r.From) / store.LayerSlots, To: float64(r.To) / store.LayerSlots,
				Class: colorClass(i)})
		}
		rows = append(rows, row)
	}
	return rows, more, nil
}

// freeSlots returns how many slots of a layer are free in all and in its
// largest free range, from the held ranges (in any order).
func freeSlots(held []store.LayerRange) (free, largest int64) {
	sorted := make([]store.LayerRange, len(held))
	copy(sorted, held)
	// A layer holds few experiments: sort by From.
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && sorted[j].From < sorted[j-1].From; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	at := int64(0)
	for _, r := range sorted {
		if gap := r.From - at; gap > 0 {
			free += gap
			largest = max(largest, gap)
		}
		at = max(at, r.To)
	}
	if gap := store.LayerSlots - at; gap > 0 {
		free += gap
		largest = max(largest, gap)
	}
	return free, largest
}

type layersPage struct {
	pageBase
	Rows []layerRow
	More bool
	// The create form: its values after a failed attempt, and its errors.
	Key, Name string
	Errors    map[string]string
	Summary   []string
	Flash     string
}

func (d *Dashboard) layersPage(r *http.Request, s *session) (layersPage, error) {
	rows, more, err := d.layerRows(r.Context(), s.workspaceID)
	if err != nil {
		return layersPage{}, err
	}
	return layersPage{pageBase: d.base(r, s, "Layers"), Rows: rows, More: more, Errors: map[string]string{}}, nil
}

func (d *Dashboard) handleLayerList(w http.ResponseWriter, r *http.Request, s *session) {
	page, err := d.layersPage(r, s)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	// The confirmation names a layer of the list only: an address cannot
	// make the page claim anything else.
	if key := r.URL.Query().Get("created"); key != "" && slices.ContainsFunc(page.Rows, func(l layerRow) bool { return l.Key == key }) {
		page.Flash = fmt.Sprintf("Layer %q created. Experiments join it when they are created: choose it in the new-experiment form.", key)
	}
	d.render(w, r, http.StatusOK, "layers", page)
}

// layerFieldLabels name the service's fields as the form does.
var layerFieldLabels = map[string]string{"key": "Key", "name": "Name"}

// handleCreateLayer creates a layer through the experiments' service; its
// refusals (a bad key, a key taken) show next to the field they name, with
// what was typed.
func (d *Dashboard) handleCreateLayer(w http.ResponseWriter, r *http.Request, s *session) {
	key, name := strings.TrimSpace(r.PostFormValue("key")), strings.TrimSpace(r.PostFormValue("name"))
	x := d.optimizers.Experiments
	l, err := x.CreateLayer(r.Context(), s.workspaceID, key, name)
	if err == nil {
		http.Redirect(w, r, "/layers?created="+url.QueryEscape(l.Key), http.StatusSeeOther)
		return
	}
	status, msg, ok := refusal(err)
	if !ok {
		d.fail(w, r, err)
		return
	}
	page, err2 := d.layersPage(r, s)
	if err2 != nil {
		d.fail(w, r, err2)
		return
	}
	page.Key, page.Name = key, name
	var ae *apperr.Error
	if errors.As(err, &ae) {
		for _, fe := range ae.Fields {
			if _, dup := page.Errors[fe.Field]; !dup {
				page.Errors[fe.Field] = fe.Reason
			}
			page.Summary = append(page.Summary, cmp.Or(layerFieldLabels[fe.Field], fe.Field)+": "+fe.Reason)
		}
	}
	if len(page.Summary) == 0 {
		page.Summary = []string{msg}
	} else if status == http.StatusConflict {
		page.Summary = append([]string{sentence(msg)}, page.Summary...)
	}
	d.render(w, r, status, "layers", page)
}
