package optimize

import (
	"context"
	"fmt"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

// MaxLayerNameLen bounds a layer's display name.
const MaxLayerNameLen = MaxNameLen

// CreateLayer validates and stores a new layer of the workspace. An
// experiment joins it at creation (ExperimentSpec.Layer), which allocates
// its range.
func (x *Experiments) CreateLayer(ctx context.Context, workspaceID, key, name string) (store.Layer, error) {
	var fe fieldErrors
	fe.key("key", key)
	if id.HasPrefix(key, id.Layer) {
		fe.add("key", "must not look like a layer id")
	}
	if name == "" {
		name = key
	} else {
		fe.text("name", name, MaxLayerNameLen)
	}
	if len(fe) > 0 {
		return store.Layer{}, apperr.Fields(fe)
	}
	l := store.Layer{ID: id.New(id.Layer), WorkspaceID: workspaceID, Key: key, Name: name, CreatedAt: x.now().UTC()}
	if err := x.st.CreateLayer(ctx, l); err != nil {
		return store.Layer{}, CreateError(err, "a", "layer", key)
	}
	return l, nil
}

// LayerRange is the share of a layer an experiment holds: [From, To) of
// the layer's hash space, as fractions.
type LayerRange struct {
	Experiment string
	Share      float64
	From, To   float64
}

// LayerRanges returns the ranges held in each layer (by id).
func (x *Experiments) LayerRanges(ctx context.Context, workspaceID string, layerIDs []string) (map[string][]LayerRange, error) {
	held, err := x.st.LayerRanges(ctx, workspaceID, layerIDs)
	if err != nil {
		return nil, fmt.Errorf("load layer ranges: %w", err)
	}
	out := make(map[string][]LayerRange, len(held))
	for l, rs := range held {
		for _, r := range rs {
			out[l] = append(out[l], LayerRange{Experiment: r.ExperimentKey,
				Share: float64(r.To-r.From) / store.LayerSlots, From: float64(r.From) / store.LayerSlots, To: float64(r.To) / store.LayerSlots})
		}
	}
	return out, nil
}
