package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Attributes describe a unit to the server: strings, numbers and booleans
// (at most 50, names up to 64 bytes, strings up to 256 bytes). They are
// matched against the experiment's Targeting, and those of a unit's first
// assignment are stored with it and counted in breakdowns.
type Attributes map[string]any

// The reasons an Assignment has no variant.
const (
	ReasonNotTargeted = "not_targeted" // the attributes do not match the targeting; nothing was stored
	ReasonLayer       = "layer"        // the unit falls in another experiment's range of the layer
	ReasonTraffic     = "traffic"      // the unit is outside the traffic share
)

// Targeting are the rules a unit's attributes must match to enter an
// experiment: All (every condition) or Any (at least one), not both.
type Targeting struct {
	All []Condition `json:"all,omitempty"`
	Any []Condition `json:"any,omitempty"`
}

// Condition is one test of an attribute. Op is eq, neq, in, not_in, gt,
// gte, lt, lte, semver_eq, semver_gt, semver_gte, semver_lt, semver_lte or
// exists; Value is the operand (a string, number or boolean), Values the
// list of in and not_in.
type Condition struct {
	Attribute string `json:"attribute"`
	Op        string `json:"op"`
	Value     any    `json:"value,omitempty"`
	Values    []any  `json:"values,omitempty"`
}

// AssignWithAttributes is Assign for a unit described by attributes. A unit
// whose attributes do not match the experiment's targeting gets an empty
// Variant with Reason ReasonNotTargeted, and nothing is stored for it.
func (c *Client) AssignWithAttributes(ctx context.Context, ref, unitID string, attrs Attributes, opts ...CallOption) (*Assignment, error) {
	var out Assignment
	body := struct {
		UnitID     string     `json:"unit_id"`
		Attributes Attributes `json:"attributes,omitempty"`
	}{unitID, attrs}
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("experiments", ref, "assign"), body: body, idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Unit is a unit of AssignUnits: its id and attributes.
type Unit struct {
	ID         string     `json:"unit_id"`
	Attributes Attributes `json:"attributes,omitempty"`
}

// AssignUnits assigns up to MaxBatch units, each with its own attributes,
// and returns their assignments in order.
func (c *Client) AssignUnits(ctx context.Context, ref string, units []Unit, opts ...CallOption) ([]Assignment, error) {
	var out struct {
		Assignments []Assignment `json:"assignments"`
	}
	body := struct {
		Units []Unit `json:"units"`
	}{units}
	if units == nil {
		body.Units = []Unit{}
	}
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("experiments", ref, "assign"), body: body, idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return out.Assignments, nil
}

// Breakdown is an experiment's results by the value of one attribute: the
// 20 values with the most units, then "(other)".
type Breakdown struct {
	Attribute string    `json:"attribute"`
	Segments  []Segment `json:"segments"`
}

// Segment is the results of the units with one value of the attribute.
type Segment struct {
	Value    string           `json:"value"`
	Units    int64            `json:"units"`
	Variants []SegmentVariant `json:"variants"`
}

// SegmentVariant is one variant's line of a Segment.
type SegmentVariant struct {
	Key         string  `json:"key"`
	Units       int64   `json:"units"`
	Conversions int64   `json:"conversions"`
	Sum         float64 `json:"sum"`
	Mean        float64 `json:"mean"`
	CILow       float64 `json:"ci_low"`
	CIHigh      float64 `json:"ci_high"`
	PBest       float64 `json:"p_best"`
}

// ResultsBy returns the experiment's results with their Breakdown by the
// attribute.
func (c *Client) ResultsBy(ctx context.Context, ref, attribute string, opts ...CallOption) (*Results, error) {
	var out Results
	q := url.Values{"breakdown": {attribute}}
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("experiments", ref, "results"), query: q, idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Layer is a set of mutually exclusive experiments: a unit takes part in at
// most one of them.
type Layer struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	Name string `json:"name"`
	// Experiments are those that hold a range of the layer now.
	Experiments []LayerExperiment `json:"experiments"`
	CreatedAt   time.Time         `json:"created_at"`
}

// LayerExperiment is the range of a layer an experiment holds.
type LayerExperiment struct {
	Key   string     `json:"key"`
	Share float64    `json:"share"`
	Range [2]float64 `json:"range"`
}

// CreateLayer creates a layer; experiments join it when they are created
// (CreateExperimentRequest.Layer). A key that exists is a 409.
func (c *Client) CreateLayer(ctx context.Context, key, name string, opts ...CallOption) (*Layer, error) {
	var out Layer
	body := struct {
		Key  string `json:"key"`
		Name string `json:"name,omitempty"`
	}{key, name}
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("layers"), body: body}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetLayer returns a layer by id or key.
func (c *Client) GetLayer(ctx context.Context, ref string, opts ...CallOption) (*Layer, error) {
	var out Layer
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("layers", ref), idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListLayers returns one page of the workspace's layers (p.Status is
// ignored).
func (c *Client) ListLayers(ctx context.Context, p ListParams, opts ...CallOption) (*Page[Layer], error) {
	var out Page[Layer]
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("layers"), query: p.query(false), idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}
