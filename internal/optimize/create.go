package optimize

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/targeting"
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

// Strategies that experiment creation accepts: every strategy of the
// engine, the same list the CLI's simulate takes (one list, so that what
// a user simulates can be served). multi_step is the funnel strategy and is
// set by the funnel optimizer, not chosen here.
var strategies = engine.Names()

// fieldErrors collects every invalid field, so that a caller learns all it
// must fix in one round trip.
type fieldErrors []apperr.FieldError

func (fe *fieldErrors) add(field, format string, args ...any) {
	*fe = append(*fe, apperr.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// IsKey reports whether s is a key: 1 to 64 of a-z, 0-9, '-' and '_',
// starting with a letter or digit. ASCII only, on purpose: keys end up in
// URLs, logs and code, where look-alike Unicode, invisible characters and
// right-to-left overrides would cause confusion or worse.
func IsKey(s string) bool {
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

// KeyProblem explains why s is not a valid key, or returns "".
func KeyProblem(s string) string {
	switch {
	case s == "":
		return "is required"
	case len(s) > MaxSlugLen:
		return fmt.Sprintf("must be at most %d characters", MaxSlugLen)
	case !IsKey(s):
		return "must hold only lower-case letters a-z, digits, '-' and '_', and start with a letter or digit"
	}
	return ""
}

// TextProblem explains why s is not a valid display name, or returns "":
// at most max characters, valid UTF-8, no control or invisible formatting
// characters (NUL, newlines, the right-to-left override, zero-width
// joiners), not blank.
func TextProblem(s string, max int) string {
	switch {
	case !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError):
		return "must be valid UTF-8"
	case utf8.RuneCountInString(s) > max:
		return fmt.Sprintf("must be at most %d characters", max)
	case strings.TrimSpace(s) == "":
		return "must not be blank"
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Sprintf("must not contain the character %U", r)
		}
	}
	return ""
}

func (fe *fieldErrors) key(field, s string) {
	if r := KeyProblem(s); r != "" {
		fe.add(field, "%s", r)
	}
}

func (fe *fieldErrors) text(field, s string, max int) {
	if r := TextProblem(s, max); r != "" {
		fe.add(field, "%s", r)
	}
}

// ExperimentSpec is what a person asks for when creating an experiment.
// Empty strings and nil settings mean the defaults.
type ExperimentSpec struct {
	Key      string
	Name     string
	Kind     string
	Metric   string
	Strategy string
	// Variants: nil means none were given.
	Variants []VariantSpec
	Settings SettingsSpec
	// Start creates the experiment running.
	Start bool
	// Targeting, when not nil, are the rules a unit must match to enter.
	Targeting *targeting.Rules
	// Layer is the key or id of the layer the experiment joins ("" none),
	// LayerShare the share of the layer's units it takes.
	Layer      string
	LayerShare *float64
	// Metrics are the experiment's other metrics (secondary and guardrail).
	Metrics []MetricSpec
}

// MaxMetrics is how many metrics besides the primary an experiment may have.
const MaxMetrics = 10

// MetricSpec is one of an ExperimentSpec's other metrics. Empty strings
// mean the defaults: role secondary, direction increase.
type MetricSpec struct {
	Key            string
	Type           string
	Role           string
	Direction      string
	MaxDegradation *float64
}

// buildMetrics validates the other metrics (field names as in the API's
// JSON: "metrics[1].role") and returns them without ids.
func buildMetrics(fe *fieldErrors, specs []MetricSpec) []store.MetricDef {
	if len(specs) > MaxMetrics {
		fe.add("metrics", "must hold at most %d metrics besides the primary, not %d", MaxMetrics, len(specs))
		return nil
	}
	var out []store.MetricDef
	seen := map[string]int{}
	for i, m := range specs {
		field := fmt.Sprintf("metrics[%d]", i)
		fe.key(field+".key", m.Key)
		if m.Key == store.PrimaryMetric {
			fe.add(field+".key", "%q is the primary metric's key", store.PrimaryMetric)
		} else if j, dup := seen[m.Key]; dup && m.Key != "" {
			fe.add(field+".key", "duplicates metrics[%d].key %q", j, m.Key)
		} else {
			seen[m.Key] = i
		}
		switch m.Type {
		case string(store.MetricBinary), string(store.MetricContinuous):
		case "":
			fe.add(field+".type", "is required: binary or continuous")
		default:
			fe.add(field+".type", "must be binary or continuous")
		}
		role := cmpOr(m.Role, store.RoleSecondary)
		if role != store.RoleSecondary && role != store.RoleGuardrail {
			fe.add(field+".role", "must be secondary or guardrail")
		}
		dir := m.Direction
		switch dir {
		case engine.Increase, engine.Decrease:
		case "":
			if role == store.RoleGuardrail {
				fe.add(field+".direction", "is required for a guardrail: increase (higher is better) or decrease (lower is better)")
			}
			dir = engine.Increase
		default:
			fe.add(field+".direction", "must be increase or decrease")
		}
		var maxDeg float64
		switch {
		case role == store.RoleGuardrail && m.MaxDegradation == nil:
			fe.add(field+".max_degradation", "is required for a guardrail: how much worse than the control a variant may be, relative to the control (0.1 = 10%%)")
		case role != store.RoleGuardrail && m.MaxDegradation != nil:
			fe.add(field+".max_degradation", "is only for guardrail metrics")
		case m.MaxDegradation != nil && !(*m.MaxDegradation > 0 && *m.MaxDegradation < 1):
			fe.add(field+".max_degradation", "must be in (0, 1), relative to the control's mean")
		case m.MaxDegradation != nil:
			maxDeg = *m.MaxDegradation
		}
		out = append(out, store.MetricDef{Key: m.Key, Type: store.Metric(m.Type), Role: role, Position: i, Direction: dir, MaxDegradation: maxDeg})
	}
	return out
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// VariantSpec is one variant of an ExperimentSpec.
type VariantSpec struct {
	Key     string
	Name    string
	Control bool
	Payload json.RawMessage
}

// SettingsSpec has a pointer per field so that "not given" (the default)
// differs from a given zero.
type SettingsSpec struct {
	MinSamples        *int64
	DecisionThreshold *float64
	LossThreshold     *float64
	WeightFloor       *float64
	Alpha             *float64
	Traffic           *float64
	Seed              *int64
	ControlShare      *float64
	AutoComplete      *bool
	Tau2              *float64
	Epsilon           *float64
	Gamma             *float64
	MinEffect         *float64
	// ConversionWindow is a Go duration ("36h") or days ("7d").
	ConversionWindow *string
	PriorLiftSD      *float64
	// LearnPrior, when false, turns off the prior learned from the
	// workspace's completed experiments (store.Settings.LearnPrior).
	LearnPrior *bool
}

// BuildExperiment validates spec and returns the experiment to store
// (without ids and times, in draft), or an Invalid error listing every bad
// field, named as in the API's JSON ("variants[1].key", "settings.alpha").
// Funnels and campaigns build their variants with it too, so that a
// variant means the same everywhere.
//
// When no variant is marked as the control, the first one is: lift and the
// sequential test need a baseline, and the first listed is what people
// usually mean.
func BuildExperiment(spec ExperimentSpec) (store.Experiment, error) {
	var fe fieldErrors
	fe.key("key", spec.Key)
	if id.HasPrefix(spec.Key, id.Experiment) {
		// GET /v1/experiments/{ref} tries ids before keys: such a key could
		// be shadowed by, or shadow, an experiment's id.
		fe.add("key", "must not look like an experiment id")
	}
	name := spec.Name
	if name == "" {
		name = spec.Key
	} else {
		fe.text("name", name, MaxNameLen)
	}
	switch spec.Kind {
	case "", string(store.KindStandard):
	default:
		fe.add("kind", "must be %q; other kinds are created by their campaigns and funnels", store.KindStandard)
	}
	metric := spec.Metric
	switch metric {
	case string(store.MetricBinary), string(store.MetricContinuous):
	case "":
		metric = string(DefaultMetric)
	default:
		fe.add("metric", "must be binary or continuous")
	}
	strategy := spec.Strategy
	if strategy == "" {
		strategy = DefaultStrategy
	} else if !slices.Contains(strategies, strategy) {
		fe.add("strategy", "must be one of %s", strings.Join(strategies, ", "))
	}

	variants := spec.Variants
	switch {
	case variants == nil:
		fe.add("variants", "is required: between %d and %d variants", MinVariants, MaxVariants)
	case len(variants) < MinVariants || len(variants) > MaxVariants:
		fe.add("variants", "must hold between %d and %d variants, not %d", MinVariants, MaxVariants, len(variants))
	}
	e := store.Experiment{
		Key:      spec.Key,
		Name:     name,
		Kind:     store.KindStandard,
		Metric:   store.Metric(metric),
		Strategy: strategy,
		Status:   store.StatusDraft,
	}
	seen := map[string]int{}
	controls := 0
	for i, v := range variants {
		field := fmt.Sprintf("variants[%d]", i)
		fe.key(field+".key", v.Key)
		if j, dup := seen[v.Key]; dup && v.Key != "" {
			fe.add(field+".key", "duplicates variants[%d].key %q", j, v.Key)
		} else {
			seen[v.Key] = i
		}
		vname := v.Name
		if vname == "" {
			vname = v.Key
		} else {
			fe.text(field+".name", vname, MaxNameLen)
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
	sr := spec.Settings
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
	if spec.Targeting != nil {
		for _, p := range spec.Targeting.Validate() {
			fe.add("targeting."+p.Field, "%s", p.Reason)
		}
		e.Targeting = spec.Targeting
	}
	switch {
	case spec.Layer == "" && spec.LayerShare != nil:
		fe.add("layer_share", "is only for an experiment in a layer: name its layer")
	case spec.Layer != "" && spec.LayerShare == nil:
		fe.add("layer_share", "is required with layer: the share of the layer's units the experiment takes, in (0, 1]")
	case spec.Layer != "":
		if !IsKey(spec.Layer) {
			fe.add("layer", "must be a layer's key or id")
		}
		// A share is a whole number of the layer's slots, at least one.
		if v := *spec.LayerShare; !(v >= 1.0/store.LayerSlots && v <= 1) {
			fe.add("layer_share", "must be from %g to 1", 1.0/store.LayerSlots)
		}
		e.LayerKey, e.LayerShare = spec.Layer, *spec.LayerShare
	}
	e.Metrics = buildMetrics(&fe, spec.Metrics)
	var errs []apperr.FieldError
	e.Settings, errs = BuildSettings(sr, len(variants), len(fe) == 0)
	fe = append(fe, errs...)
	return e, apperr.Fields(fe)
}

// BuildSettings validates the decision settings of k variants and fills in
// the defaults. valid says whether the rest of the request is valid: the
// checks across fields run only then, so that one mistake is named once.
func BuildSettings(sr SettingsSpec, k int, valid bool) (store.Settings, []apperr.FieldError) {
	var fe fieldErrors
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
	if v := sr.PriorLiftSD; v != nil {
		if !(*v >= 0 && *v <= 1) {
			fe.add("settings.prior_lift_sd", "must be 0 (no prior) or a relative lift from 0 to 1, such as 0.03 when most true lifts are within a few percent")
		}
		s.PriorLiftSD = *v
	}
	if v := sr.LearnPrior; v != nil && !*v {
		// Stored only when turned off: nil is the default, on.
		s.LearnPrior = v
	}
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
	if v := sr.ConversionWindow; v != nil {
		d, err := ParseDays(*v)
		if err != nil || d < MinConversionWindow || d > MaxConversionWindow {
			fe.add("settings.conversion_window", "must be a duration such as \"24h\" or \"7d\", from 1m to 365d (leave it out for no window)")
		}
		s.ConversionWindow = d
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
	if valid && len(fe) == 0 && s.ControlShare != nil && *s.ControlShare+s.WeightFloor*float64(k-1) > 1 {
		fe.add("settings.control_share", "plus the weight floor of each other variant must not exceed 1")
	}
	return s, fe
}

// The bounds of a conversion window: a minute (shorter ones are a mistake
// in the unit) to a year.
const (
	MinConversionWindow = time.Minute
	MaxConversionWindow = 365 * 24 * time.Hour
)

// FormatDays writes whole days as "7d" (the form the API accepts) and
// anything else as a Go duration.
func FormatDays(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// ParseDays reads a Go duration ("36h", "90m") or whole or fractional days
// ("7d", "1.5d"): the form of every window and half-life setting.
func ParseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		f, err := strconv.ParseFloat(n, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e5 {
			return 0, errors.New("bad days")
		}
		return time.Duration(f * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(s)
}

// CreateError is the error of storing a new object whose key is taken (a
// Conflict naming the key field), or err with context.
func CreateError(err error, article, noun, key string) error {
	if apperr.Is(err, apperr.Conflict) {
		return &apperr.Error{Code: apperr.Conflict, Err: err,
			Message: fmt.Sprintf("%s %s with the key %q exists in this workspace", article, noun, key),
			Fields:  []apperr.FieldError{{Field: "key", Reason: "is taken"}}}
	}
	return fmt.Errorf("create %s: %w", noun, err)
}

// Create validates spec (BuildExperiment) and stores the new experiment in
// the workspace, running when spec.Start, with the events of its creation
// (experiment.started) in the same transaction.
func (x *Experiments) Create(ctx context.Context, workspaceID string, spec ExperimentSpec) (store.Experiment, error) {
	e, err := BuildExperiment(spec)
	if err != nil {
		return store.Experiment{}, err
	}
	now := x.now().UTC()
	e.ID = id.New(id.Experiment)
	e.WorkspaceID = workspaceID
	e.CreatedAt, e.UpdatedAt = now, now
	for i := range e.Variants {
		e.Variants[i].ID = id.New(id.Variant)
	}
	for i := range e.Metrics {
		e.Metrics[i].ID = id.New(id.Metric)
	}
	if spec.Start {
		e.Status = store.StatusRunning
		e.StartedAt = &now
	}
	if e.LayerKey != "" {
		// The layer must be the workspace's own: another workspace's layer
		// is as unknown as one that does not exist.
		l, err := x.st.GetLayer(ctx, workspaceID, e.LayerKey)
		if apperr.Is(err, apperr.NotFound) {
			return store.Experiment{}, apperr.Fields([]apperr.FieldError{{Field: "layer", Reason: fmt.Sprintf("no layer %q in this workspace", e.LayerKey)}})
		}
		if err != nil {
			return store.Experiment{}, fmt.Errorf("load layer %q: %w", e.LayerKey, err)
		}
		e.LayerID, e.LayerKey = l.ID, l.Key
	}
	if err := x.st.CreateExperiment(ctx, e, CreateEvents(e, now)...); err != nil {
		var ae *apperr.Error
		if errors.As(err, &ae) && ae.Code == apperr.Conflict && len(ae.Fields) > 0 && ae.Fields[0].Field == "layer_share" {
			return store.Experiment{}, err // the share does not fit: the store's message says why
		}
		return store.Experiment{}, CreateError(err, "an", "experiment", e.Key)
	}
	if e.LayerID != "" {
		// The store chose the range in its transaction: show it.
		stored, err := x.st.GetExperiment(ctx, workspaceID, e.ID)
		if err != nil {
			return store.Experiment{}, fmt.Errorf("reload experiment %s: %w", e.ID, err)
		}
		return stored, nil
	}
	return e, nil
}
