package store

import (
	"context"
	"encoding/json"
	"time"
)

// LayerSlots is the size of a layer's hash space: a unit falls in one slot
// (optimize hashes the unit id with the layer), and each experiment of the
// layer holds a range of slots, disjoint from the others'. A share is thus
// rounded to 1/10,000.
const LayerSlots = 10_000

// Layer is a set of mutually exclusive experiments: a unit takes part in at
// most one experiment of a layer.
type Layer struct {
	ID          string
	WorkspaceID string
	Key         string
	Name        string
	CreatedAt   time.Time
}

// LayerRange is the range an experiment holds in its layer.
type LayerRange struct {
	ExperimentID  string
	ExperimentKey string
	Status        Status
	From, To      int64 // slots [From, To)
}

// Layers stores layers. An experiment joins a layer when it is created
// (CreateExperiment allocates its range in the same transaction) and leaves
// it when it is completed or archived.
type Layers interface {
	// CreateLayer stores l; Conflict when the key exists in the workspace.
	CreateLayer(ctx context.Context, l Layer) error
	// GetLayer finds by id or, failing that, by key, in the workspace.
	GetLayer(ctx context.Context, workspaceID, ref string) (Layer, error)
	ListLayers(ctx context.Context, workspaceID string, p ListParams) ([]Layer, error)
	// LayerRanges returns the ranges held now (experiments neither completed
	// nor archived) in the layers, by layer id, each list by From.
	LayerRanges(ctx context.Context, workspaceID string, layerIDs []string) (map[string][]LayerRange, error)
}

// FitRange returns the first gap of size slots among the held ranges
// (first fit, from slot 0), and whether there is one. held need not be
// sorted.
func FitRange(held []LayerRange, size int64) (from, to int64, ok bool) {
	if size <= 0 || size > LayerSlots {
		return 0, 0, false
	}
	sorted := make([]LayerRange, len(held))
	copy(sorted, held)
	for i := 1; i < len(sorted); i++ { // insertion sort: a layer holds few experiments
		for j := i; j > 0 && sorted[j].From < sorted[j-1].From; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	at := int64(0)
	for _, r := range sorted {
		if r.From-at >= size {
			return at, at + size, true
		}
		at = max(at, r.To)
	}
	if LayerSlots-at >= size {
		return at, at + size, true
	}
	return 0, 0, false
}

// Breakdown counters: which attributes and values an experiment counts.
// An experiment counts at most MaxSegmentAttributes attributes (the first
// ones its units send) and, of each, at most MaxSegmentValues distinct
// values; a unit's later values are counted as OtherSegment. That bounds
// the counters of an experiment, and so the cost of a breakdown, whatever
// the units send (an attribute such as an e-mail address has a value per
// unit).
const (
	MaxSegmentAttributes = 50
	MaxSegmentValues     = 200
	OtherSegment         = "(other)"
)

// SegmentCounters are the counters of one variant among the units whose
// attribute had one value (or OtherSegment).
type SegmentCounters struct {
	Value       string
	VariantID   string
	Units       int64
	Conversions int64
	Sum         float64
	SumSq       float64
}

// Segments reads the breakdown counters.
type Segments interface {
	// SegmentCounters returns the counters of the experiment's attribute,
	// every value and variant; none when the attribute was never counted.
	SegmentCounters(ctx context.Context, workspaceID, experimentID, attribute string) ([]SegmentCounters, error)
	// SegmentAttributes returns the attributes the experiment counts, in
	// name order.
	SegmentAttributes(ctx context.Context, workspaceID, experimentID string) ([]string, error)
	// AssignmentAttributes returns the stored attributes of the units'
	// first assignments (units without attributes or assignment absent).
	AssignmentAttributes(ctx context.Context, workspaceID, experimentID string, unitIDs []string) (map[string]json.RawMessage, error)
}
