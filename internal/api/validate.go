package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

// Limits and defaults of experiment creation. The defaults are the values
// design.md gives the engine; they are filled in here, at creation, so that
// what an experiment runs with is stored and shown, and a later change of a
// default does not change a running experiment.
const (
	MaxSlugLen     = 64
	MaxNameLen     = 200
	MinVariants    = 2
	MaxVariants    = 20
	MaxPayloadSize = 16 << 10
	maxMinSamples  = 1_000_000_000

	// The statistical defaults are the engine's, so that the API and the
	// offline calculator agree.
	DefaultStrategy          = "adaptive"
	DefaultMetric            = store.MetricBinary
	DefaultMinSamples        = engine.DefaultMinSamples
	DefaultDecisionThreshold = engine.DefaultDecisionThreshold
	DefaultLossThreshold     = engine.DefaultLossThreshold
	DefaultWeightFloor       = engine.DefaultWeightFloor
	DefaultAlpha             = engine.DefaultAlpha
	DefaultTraffic           = 1.0
)

// Strategies that POST /v1/experiments accepts. multi_step is the funnel
// strategy and is set by the funnel optimizer, not chosen here.
var strategies = []string{"adaptive", "fast_learning", "explore", "sequential"}

// fieldErrors collects every invalid field of a request, so that a client
// learns all it must fix in one round trip.
type fieldErrors []apperr.FieldError

func (fe *fieldErrors) add(field, format string, args ...any) {
	*fe = append(*fe, apperr.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (fe fieldErrors) err() error { return apperr.Fields(fe) }

// isSlug reports whether s is a key: 1 to 64 of a-z, 0-9, '-' and '_',
// starting with a letter or digit. ASCII only, on purpose: keys end up in
// URLs, logs and code, where look-alike Unicode, invisible characters and
// right-to-left overrides would cause confusion or worse.
func isSlug(s string) bool {
	if len(s) == 0 || len(s) > MaxSlugLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

// checkSlug validates a key field and explains a failure.
func checkSlug(fe *fieldErrors, field, s string) {
	switch {
	case s == "":
		fe.add(field, "is required")
	case len(s) > MaxSlugLen:
		fe.add(field, "must be at most %d characters", MaxSlugLen)
	case !isSlug(s):
		fe.add(field, "must hold only lower-case letters a-z, digits, '-' and '_', and start with a letter or digit")
	}
}

// checkText validates a display name: at most max characters, valid UTF-8,
// no control or invisible formatting characters (NUL, newlines, the
// right-to-left override, zero-width joiners), not blank.
func checkText(fe *fieldErrors, field, s string, max int) {
	switch {
	case !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError):
		fe.add(field, "must be valid UTF-8")
		return
	case utf8.RuneCountInString(s) > max:
		fe.add(field, "must be at most %d characters", max)
		return
	case strings.TrimSpace(s) == "":
		fe.add(field, "must not be blank")
		return
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			fe.add(field, "must not contain the character %U", r)
			return
		}
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
}

// decodeCreateExperiment reads the body: a 400 when it cannot be read.
func decodeCreateExperiment(body createExperimentRequest) ([]variantRequest, settingsRequest, error) {
	variants := make([]variantRequest, len(body.Variants))
	for i, raw := range body.Variants {
		if err := decodeField(raw, &variants[i], fmt.Sprintf("variants[%d]", i)); err != nil {
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

// buildExperiment validates a decoded request and returns the experiment to
// store (without ids and times), or an Invalid error listing every bad field.
//
// When no variant is marked as the control, the first one is: lift and the
// sequential test need a baseline, and the first listed is what people
// usually mean.
func buildExperiment(body createExperimentRequest, variants []variantRequest, sr settingsRequest) (store.Experiment, error) {
	var fe fieldErrors
	checkSlug(&fe, "key", body.Key)
	if id.HasPrefix(body.Key, id.Experiment) {
		// GET /v1/experiments/{ref} tries ids before keys: such a key could
		// be shadowed by, or shadow, an experiment's id.
		fe.add("key", "must not look like an experiment id")
	}
	name := body.Name
	if name == "" {
		name = body.Key
	} else {
		checkText(&fe, "name", name, MaxNameLen)
	}
	switch body.Kind {
	case "", string(store.KindStandard):
	default:
		fe.add("kind", "must be %q; other kinds are created by their campaigns and funnels", store.KindStandard)
	}
	switch body.Metric {
	case string(store.MetricBinary), string(store.MetricContinuous):
	case "":
		body.Metric = string(DefaultMetric)
	default:
		fe.add("metric", "must be binary or continuous")
	}
	strategy := body.Strategy
	if strategy == "" {
		strategy = DefaultStrategy
	} else if !slices.Contains(strategies, strategy) {
		fe.add("strategy", "must be one of %s", strings.Join(strategies, ", "))
	}

	switch {
	case body.Variants == nil:
		fe.add("variants", "is required: between %d and %d variants", MinVariants, MaxVariants)
	case len(variants) < MinVariants || len(variants) > MaxVariants:
		fe.add("variants", "must hold between %d and %d variants, not %d", MinVariants, MaxVariants, len(variants))
	}
	e := store.Experiment{
		Key:      body.Key,
		Name:     name,
		Kind:     store.KindStandard,
		Metric:   store.Metric(body.Metric),
		Strategy: strategy,
		Status:   store.StatusDraft,
	}
	seen := map[string]int{}
	controls := 0
	for i, v := range variants {
		field := fmt.Sprintf("variants[%d]", i)
		checkSlug(&fe, field+".key", v.Key)
		if j, dup := seen[v.Key]; dup && v.Key != "" {
			fe.add(field+".key", "duplicates variants[%d].key %q", j, v.Key)
		} else {
			seen[v.Key] = i
		}
		vname := v.Name
		if vname == "" {
			vname = v.Key
		} else {
			checkText(&fe, field+".name", vname, MaxNameLen)
		}
		if v.Control {
			controls++
			if controls == 2 {
				fe.add(field+".control", "only one variant may be the control")
			}
		}
		payload := json.RawMessage("null")
		if len(v.Payload) > 0 {
			var buf bytes.Buffer
			if err := json.Compact(&buf, v.Payload); err != nil {
				fe.add(field+".payload", "must be a JSON value")
			} else if buf.Len() > MaxPayloadSize {
				fe.add(field+".payload", "must be at most %d bytes of JSON, not %d", MaxPayloadSize, buf.Len())
			} else {
				payload = buf.Bytes()
			}
		}
		e.Variants = append(e.Variants, store.Variant{
			Key: v.Key, Name: vname, Control: v.Control, Payload: payload, Position: i,
		})
	}
	if controls == 0 && len(e.Variants) > 0 {
		e.Variants[0].Control = true
	}
	if sr.WeightFloor == nil {
		// The strategies whose weights follow the data keep every arm at 1%
		// by default: the anytime-valid decision weighs units by their
		// propensities, which must stay away from 0 (docs/decisions.md).
		f := engine.DefaultWeightFloorFor(strategy)
		if f*float64(len(variants)) >= 1 {
			f = 0 // too many variants for the default; an explicit floor is still checked
		}
		sr.WeightFloor = &f
	}
	e.Settings = buildSettings(&fe, sr, len(variants))
	return e, fe.err()
}

// buildSettings validates the settings and fills in the defaults.
func buildSettings(fe *fieldErrors, sr settingsRequest, k int) store.Settings {
	s := store.Settings{
		MinSamples:        DefaultMinSamples,
		DecisionThreshold: DefaultDecisionThreshold,
		LossThreshold:     DefaultLossThreshold,
		WeightFloor:       DefaultWeightFloor,
		Alpha:             DefaultAlpha,
		Traffic:           DefaultTraffic,
		Seed:              sr.Seed,
	}
	if v := sr.MinSamples; v != nil {
		if *v < 0 || *v > maxMinSamples {
			fe.add("settings.min_samples", "must be an integer from 0 to %d", maxMinSamples)
		}
		s.MinSamples = int(min(max(*v, 0), maxMinSamples))
	}
	openUnit := func(field string, v *float64, dst *float64) {
		if v == nil {
			return
		}
		if !(*v > 0 && *v < 1) {
			fe.add(field, "must be greater than 0 and less than 1")
		}
		*dst = *v
	}
	openUnit("settings.decision_threshold", sr.DecisionThreshold, &s.DecisionThreshold)
	openUnit("settings.alpha", sr.Alpha, &s.Alpha)
	if v := sr.MinEffect; v != nil {
		openUnit("settings.min_effect", v, &s.MinEffect)
	} else {
		s.MinEffect = engine.DefaultMinEffect
	}
	if v := sr.LossThreshold; v != nil {
		if !(*v > 0) || math.IsInf(*v, 0) {
			fe.add("settings.loss_threshold", "must be greater than 0 (the expected loss a winner may still carry, in the metric's unit)")
		}
		s.LossThreshold = *v
	}
	if v := sr.WeightFloor; v != nil {
		// Each of the K variants gets at least the floor, so K·floor must
		// stay below 1 to leave any room for learning.
		limit := 1.0
		if k > 0 {
			limit = 1 / float64(k)
		}
		if !(*v >= 0 && *v < limit) {
			fe.add("settings.weight_floor", "must be at least 0 and less than 1/%d (the number of variants)", max(k, 1))
		}
		s.WeightFloor = *v
	}
	if v := sr.Traffic; v != nil {
		if !(*v > 0 && *v <= 1) {
			fe.add("settings.traffic", "must be greater than 0 and at most 1")
		}
		s.Traffic = *v
	}
	if v := sr.ControlShare; v != nil {
		if !(*v > 0 && *v < 1) {
			fe.add("settings.control_share", "must be greater than 0 and less than 1")
		}
		s.ControlShare = v
	}
	if v := sr.AutoComplete; v != nil {
		s.AutoComplete = *v
	}
	positive := func(field string, v *float64) {
		if v != nil && !(*v > 0) {
			fe.add(field, "must be greater than 0")
		}
	}
	positive("settings.tau2", sr.Tau2)
	positive("settings.epsilon", sr.Epsilon)
	s.Tau2, s.Epsilon = sr.Tau2, sr.Epsilon
	if v := sr.Gamma; v != nil {
		if !(*v > 0 && *v <= 1) {
			fe.add("settings.gamma", "must be greater than 0 and at most 1")
		}
		s.Gamma = v
	}
	// Checked only when each field is valid alone, so one mistake is named once.
	if len(*fe) == 0 && s.ControlShare != nil && *s.ControlShare+s.WeightFloor*float64(k-1) > 1 {
		fe.add("settings.control_share", "plus the weight floor of each other variant must not exceed 1")
	}
	return s
}
