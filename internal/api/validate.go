package api

import (
	"encoding/json"
	"fmt"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/targeting"
)

// Limits and defaults of experiment creation: optimize's (BuildExperiment),
// named here for the funnel and campaign builders.
const (
	MaxSlugLen  = optimize.MaxSlugLen
	MaxNameLen  = optimize.MaxNameLen
	MinVariants = optimize.MinVariants
)

// fieldErrors collects every invalid field of a request, so that a client
// learns all it must fix in one round trip.
type fieldErrors []apperr.FieldError

func (fe *fieldErrors) add(field, format string, args ...any) {
	*fe = append(*fe, apperr.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (fe fieldErrors) err() error { return apperr.Fields(fe) }

// isSlug reports whether s is a key (optimize.IsKey).
func isSlug(s string) bool { return optimize.IsKey(s) }

// checkSlug validates a key field and explains a failure.
func checkSlug(fe *fieldErrors, field, s string) {
	if r := optimize.KeyProblem(s); r != "" {
		fe.add(field, "%s", r)
	}
}

// checkText validates a display name (optimize.TextProblem).
func checkText(fe *fieldErrors, field, s string, max int) {
	if r := optimize.TextProblem(s, max); r != "" {
		fe.add(field, "%s", r)
	}
}

// createExperimentRequest is the body of POST /v1/experiments. Variants and
// settings are decoded in a second step (see decodeField) so that errors
// name the variant's index.
type createExperimentRequest struct {
	Key      string            `json:"key"`
	Name     string            `json:"name"`
	Kind     string            `json:"kind"`
	Metric   string            `json:"metric"`
	Strategy string            `json:"strategy"`
	Variants []json.RawMessage `json:"variants"`
	Settings json.RawMessage   `json:"settings"`
	Start    bool              `json:"start"`
	// Targeting is decoded on its own (decodeCreateExperiment), so that
	// its errors carry the field path.
	Targeting  json.RawMessage   `json:"targeting"`
	Layer      string            `json:"layer"`
	LayerShare *float64          `json:"layer_share"`
	Metrics    []json.RawMessage `json:"metrics"`
}

// metricRequest is one of the other metrics of POST /v1/experiments.
type metricRequest struct {
	Key            string   `json:"key"`
	Type           string   `json:"type"`
	Role           string   `json:"role"`
	Direction      string   `json:"direction"`
	MaxDegradation *float64 `json:"max_degradation"`
}

type variantRequest struct {
	Key     string          `json:"key"`
	Name    string          `json:"name"`
	Control bool            `json:"control"`
	Payload json.RawMessage `json:"payload"`
}

// settingsRequest has a pointer per field so that "not given" (→ default)
// differs from a given zero.
type settingsRequest struct {
	MinSamples        *int64   `json:"min_samples"`
	DecisionThreshold *float64 `json:"decision_threshold"`
	LossThreshold     *float64 `json:"loss_threshold"`
	WeightFloor       *float64 `json:"weight_floor"`
	Alpha             *float64 `json:"alpha"`
	Traffic           *float64 `json:"traffic"`
	Seed              *int64   `json:"seed"`
	ControlShare      *float64 `json:"control_share"`
	AutoComplete      *bool    `json:"auto_complete"`
	Tau2              *float64 `json:"tau2"`
	Epsilon           *float64 `json:"epsilon"`
	Gamma             *float64 `json:"gamma"`
	MinEffect         *float64 `json:"min_effect"`
	ConversionWindow  *string  `json:"conversion_window"`
	PriorLiftSD       *float64 `json:"prior_lift_sd"`
	LearnPrior        *bool    `json:"learn_prior"`
}

// decodeCreateExperiment reads the body: a 400 when it cannot be read.
func decodeCreateExperiment(body createExperimentRequest) ([]variantRequest, settingsRequest, error) {
	variants := make([]variantRequest, len(body.Variants))
	for i, raw := range body.Variants {
		if err := decodeField(raw, &variants[i], fmt.Sprintf("variants[%d]", i)); err != nil {
			return nil, settingsRequest{}, err
		}
	}
	if len(body.Targeting) > 0 && string(body.Targeting) != "null" {
		var rules targeting.Rules
		if err := decodeField(body.Targeting, &rules, "targeting"); err != nil {
			return nil, settingsRequest{}, err
		}
	}
	for i, raw := range body.Metrics {
		var m metricRequest
		if err := decodeField(raw, &m, fmt.Sprintf("metrics[%d]", i)); err != nil {
			return nil, settingsRequest{}, err
		}
	}
	var settings settingsRequest
	if len(body.Settings) > 0 {
		if err := decodeField(body.Settings, &settings, "settings"); err != nil {
			return nil, settingsRequest{}, err
		}
	}
	return variants, settings, nil
}

// specOf is the request as optimize.BuildExperiment takes it.
func specOf(body createExperimentRequest, variants []variantRequest, sr settingsRequest) optimize.ExperimentSpec {
	spec := optimize.ExperimentSpec{Key: body.Key, Name: body.Name, Kind: body.Kind, Metric: body.Metric,
		Strategy: body.Strategy, Settings: optimize.SettingsSpec(sr), Start: body.Start,
		Layer: body.Layer, LayerShare: body.LayerShare}
	if len(body.Targeting) > 0 && string(body.Targeting) != "null" {
		// decodeCreateExperiment has checked that it decodes.
		spec.Targeting = new(targeting.Rules)
		_ = json.Unmarshal(body.Targeting, spec.Targeting)
	}
	for _, raw := range body.Metrics {
		// decodeCreateExperiment has refused a malformed one already,
		// naming its index.
		var m metricRequest
		_ = json.Unmarshal(raw, &m)
		spec.Metrics = append(spec.Metrics, optimize.MetricSpec(m))
	}
	if body.Variants != nil {
		spec.Variants = make([]optimize.VariantSpec, len(variants))
		for i, v := range variants {
			spec.Variants[i] = optimize.VariantSpec(v)
		}
	}
	return spec
}

// buildExperiment validates a decoded request and returns the experiment to
// store (without ids and times), or an Invalid error listing every bad
// field: optimize.BuildExperiment, which the funnel and campaign builders
// use for their variants too.
func buildExperiment(body createExperimentRequest, variants []variantRequest, sr settingsRequest) (store.Experiment, error) {
	return optimize.BuildExperiment(specOf(body, variants, sr))
}

// buildSettings validates the settings and fills in the defaults
// (optimize.BuildSettings).
func buildSettings(fe *fieldErrors, sr settingsRequest, k int) store.Settings {
	s, errs := optimize.BuildSettings(optimize.SettingsSpec(sr), k, len(*fe) == 0)
	*fe = append(*fe, errs...)
	return s
}
