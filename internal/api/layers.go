package api

import (
	"fmt"
	"net/http"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

// layerJSON is the public shape of a layer: its experiments are those that
// hold a range of it now (neither completed nor archived).
type layerJSON struct {
	ID          string                `json:"id"`
	Key         string                `json:"key"`
	Name        string                `json:"name"`
	Experiments []layerExperimentJSON `json:"experiments"`
	CreatedAt   string                `json:"created_at"`
}

type layerExperimentJSON struct {
	Key   string     `json:"key"`
	Share float64    `json:"share"`
	Range [2]float64 `json:"range"`
}

type createLayerRequest struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

func toLayerJSON(l store.Layer, ranges []optimize.LayerRange) layerJSON {
	out := layerJSON{ID: l.ID, Key: l.Key, Name: l.Name, CreatedAt: timestamp(l.CreatedAt), Experiments: []layerExperimentJSON{}}
	for _, r := range ranges {
		out.Experiments = append(out.Experiments, layerExperimentJSON{Key: r.Experiment, Share: r.Share, Range: [2]float64{r.From, r.To}})
	}
	return out
}

// layerService returns the service that owns layers (the experiments').
func (s *server) layerService() (*optimize.Experiments, error) {
	if s.optimizers == nil || s.optimizers.Experiments == nil {
		return nil, apperr.New(apperr.Unavailable, "experiments are not served by this server")
	}
	return s.optimizers.Experiments, nil
}

// handleCreateLayer serves POST /v1/layers.
func (s *server) handleCreateLayer(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	var body createLayerRequest
	if err := decode(r, &body); err != nil {
		return err
	}
	x, err := s.layerService()
	if err != nil {
		return err
	}
	l, err := x.CreateLayer(r.Context(), p.WorkspaceID, body.Key, body.Name)
	if err != nil {
		return err
	}
	return respond(w, http.StatusCreated, toLayerJSON(l, nil))
}

// handleGetLayer serves GET /v1/layers/{ref}, ref the id or the key.
func (s *server) handleGetLayer(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	ref := r.PathValue("ref")
	notFound := apperr.New(apperr.NotFound, "no layer %q in this workspace", ref)
	if !isSlug(ref) {
		return notFound
	}
	x, err := s.layerService()
	if err != nil {
		return err
	}
	l, err := s.store.GetLayer(r.Context(), p.WorkspaceID, ref)
	if apperr.Is(err, apperr.NotFound) {
		return notFound
	}
	if err != nil {
		return fmt.Errorf("get layer %q: %w", ref, err)
	}
	ranges, err := x.LayerRanges(r.Context(), p.WorkspaceID, []string{l.ID})
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, toLayerJSON(l, ranges[l.ID]))
}

// handleListLayers serves GET /v1/layers, cursor-paginated like experiments.
func (s *server) handleListLayers(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	params, want, err := pageParams(r, id.Layer)
	if err != nil {
		return err
	}
	x, err := s.layerService()
	if err != nil {
		return err
	}
	list, err := s.store.ListLayers(r.Context(), p.WorkspaceID, params)
	if err != nil {
		return fmt.Errorf("list layers: %w", err)
	}
	ids := make([]string, len(list))
	for i, l := range list {
		ids[i] = l.ID
	}
	ranges, err := x.LayerRanges(r.Context(), p.WorkspaceID, ids)
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, page(list, want, func(l store.Layer) string { return l.ID }, func(l store.Layer) layerJSON {
		return toLayerJSON(l, ranges[l.ID])
	}))
}
