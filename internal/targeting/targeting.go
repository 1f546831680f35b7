// Package targeting decides which units may enter an experiment, from the
// attributes a client sends with an assignment and the experiment's rules.
//
// It is a pure leaf package, like the engine: no I/O, no clock, nothing of
// the project imported, so that the API (validation at creation), the
// optimizer (evaluation per request) and the SDKs' conformance tests share
// one definition of what a rule means.
//
// Attributes are strings, numbers (float64) and booleans. A rule set is
// {"all": [...]} (every condition holds) or {"any": [...]} (at least one
// does); a condition names an attribute, an operator and a value or values.
// A condition on an attribute the unit did not send is false, except for
// neq and not_in (a missing value is not equal to anything) and for
// exists with "value": false.
package targeting

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/mod/semver"
)

// Limits of attributes and rules (documented in docs/targeting.md). They keep
// one assignment request and one stored unit small: the attributes of a
// unit's first assignment are stored with it.
const (
	MaxAttributes     = 50  // attributes per request
	MaxKeyBytes       = 64  // bytes of an attribute name
	MaxStringBytes    = 256 // bytes of a string value
	MaxConditions     = 20  // conditions per rule set
	MaxConditionItems = 100 // values of one in / not_in condition
)

// Op is a condition's operator.
type Op string

// The operators.
const (
	OpEq        Op = "eq"
	OpNeq       Op = "neq"
	OpIn        Op = "in"
	OpNotIn     Op = "not_in"
	OpGt        Op = "gt"
	OpGte       Op = "gte"
	OpLt        Op = "lt"
	OpLte       Op = "lte"
	OpSemverEq  Op = "semver_eq"
	OpSemverGt  Op = "semver_gt"
	OpSemverGte Op = "semver_gte"
	OpSemverLt  Op = "semver_lt"
	OpSemverLte Op = "semver_lte"
	OpExists    Op = "exists"
)

// Ops lists every operator, in the order the documentation gives them.
var Ops = []Op{OpEq, OpNeq, OpIn, OpNotIn, OpGt, OpGte, OpLt, OpLte,
	OpSemverEq, OpSemverGt, OpSemverGte, OpSemverLt, OpSemverLte, OpExists}

// Condition is one test of one attribute. Value is a string, float64 or bool
// (a JSON scalar); Values is the list of in and not_in.
type Condition struct {
	Attribute string `json:"attribute"`
	Op        Op     `json:"op"`
	Value     any    `json:"value,omitempty"`
	Values    []any  `json:"values,omitempty"`
}

// Rules are an experiment's targeting: All or Any, not both.
type Rules struct {
	All []Condition `json:"all,omitempty"`
	Any []Condition `json:"any,omitempty"`
}

// Attributes are what a client says about a unit.
type Attributes map[string]any

// Problem names one invalid field (a dotted path relative to what was
// checked, such as "all[1].value") and why.
type Problem struct {
	Field  string
	Reason string
}

// Match reports whether attributes satisfy the rules. Nil rules match every
// unit. Rules must have passed Validate.
func (r *Rules) Match(attrs Attributes) bool {
	if r == nil {
		return true
	}
	if len(r.All) > 0 {
		for _, c := range r.All {
			if !c.Match(attrs) {
				return false
			}
		}
		return true
	}
	for _, c := range r.Any {
		if c.Match(attrs) {
			return true
		}
	}
	return len(r.Any) == 0
}

// Match reports whether the attributes satisfy the condition.
func (c Condition) Match(attrs Attributes) bool {
	v, ok := attrs[c.Attribute]
	switch c.Op {
	case OpExists:
		want := true
		if b, isBool := c.Value.(bool); isBool {
			want = b
		}
		return ok == want
	case OpNeq:
		return !ok || !equal(v, c.Value)
	case OpNotIn:
		return !ok || !inList(v, c.Values)
	}
	if !ok {
		return false
	}
	switch c.Op {
	case OpEq:
		return equal(v, c.Value)
	case OpIn:
		return inList(v, c.Values)
	case OpGt, OpGte, OpLt, OpLte:
		cmp, ok := compare(v, c.Value)
		return ok && holds(c.Op, cmp)
	case OpSemverEq, OpSemverGt, OpSemverGte, OpSemverLt, OpSemverLte:
		s, isString := v.(string)
		want, _ := c.Value.(string)
		a, b := canonicalSemver(s), canonicalSemver(want)
		if !isString || a == "" || b == "" {
			return false // not a version: the unit does not match a version rule
		}
		return holds(Op(strings.TrimPrefix(string(c.Op), "semver_")), semver.Compare(a, b))
	}
	return false
}

// holds applies a comparison operator (eq, gt, gte, lt, lte) to the result
// of a three-way comparison.
func holds(op Op, cmp int) bool {
	switch op {
	case OpEq:
		return cmp == 0
	case OpGt:
		return cmp > 0
	case OpGte:
		return cmp >= 0
	case OpLt:
		return cmp < 0
	case OpLte:
		return cmp <= 0
	}
	return false
}

// equal compares two scalars of the same type; values of different types
// (the string "1" and the number 1) are never equal.
func equal(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	}
	return false
}

func inList(v any, list []any) bool {
	for _, x := range list {
		if equal(v, x) {
			return true
		}
	}
	return false
}

// compare orders two numbers numerically or two strings byte-wise; other
// pairs are not comparable.
func compare(a, b any) (int, bool) {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok {
			return 0, false
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	}
	return 0, false
}

// canonicalSemver returns s as golang.org/x/mod/semver wants it ("v" and the
// version: "2.3.0" → "v2.3.0"; a leading "v" is accepted), or "" when s is
// not a semantic version. "2" and "2.3" are shorthands for 2.0.0 and 2.3.0.
func canonicalSemver(s string) string {
	if s == "" || len(s) > MaxStringBytes {
		return ""
	}
	if s[0] != 'v' {
		s = "v" + s
	}
	if !semver.IsValid(s) {
		return ""
	}
	return s
}

// Validate checks the rules and returns every problem, with fields named
// relative to the rules ("all[0].op").
func (r *Rules) Validate() []Problem {
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if r == nil {
		return nil
	}
	list, name := r.All, "all"
	switch {
	case r.All != nil && r.Any != nil:
		add("any", "give either all or any, not both")
		return ps
	case r.Any != nil:
		list, name = r.Any, "any"
	case r.All == nil:
		add("all", "is required: a list of conditions (or any)")
		return ps
	}
	if len(list) == 0 || len(list) > MaxConditions {
		add(name, "must hold 1 to %d conditions, got %d", MaxConditions, len(list))
	}
	for i, c := range list {
		field := fmt.Sprintf("%s[%d]", name, i)
		if reason := KeyProblem(c.Attribute); reason != "" {
			add(field+".attribute", "%s", reason)
		}
		scalar := func(v any, f string) {
			if reason := valueProblem(v); reason != "" {
				add(f, "%s", reason)
			}
		}
		switch c.Op {
		case OpEq, OpNeq:
			scalar(c.Value, field+".value")
		case OpIn, OpNotIn:
			if len(c.Values) == 0 || len(c.Values) > MaxConditionItems {
				add(field+".values", "must hold 1 to %d values for %s", MaxConditionItems, c.Op)
			}
			for j, v := range c.Values {
				scalar(v, fmt.Sprintf("%s.values[%d]", field, j))
			}
		case OpGt, OpGte, OpLt, OpLte:
			switch c.Value.(type) {
			case float64, string:
				scalar(c.Value, field+".value")
			default:
				add(field+".value", "must be a number or a string for %s", c.Op)
			}
		case OpSemverEq, OpSemverGt, OpSemverGte, OpSemverLt, OpSemverLte:
			s, ok := c.Value.(string)
			if !ok || canonicalSemver(s) == "" {
				add(field+".value", "must be a semantic version such as \"2.3.0\" for %s", c.Op)
			}
		case OpExists:
			if _, ok := c.Value.(bool); c.Value != nil && !ok {
				add(field+".value", "must be true, false or left out for exists")
			}
		default:
			ops := make([]string, len(Ops))
			for j, o := range Ops {
				ops[j] = string(o)
			}
			add(field+".op", "must be one of %s", strings.Join(ops, ", "))
			continue
		}
		if c.Values != nil && c.Op != OpIn && c.Op != OpNotIn {
			add(field+".values", "is only for in and not_in; use value")
		}
		if c.Value != nil && (c.Op == OpIn || c.Op == OpNotIn) {
			add(field+".value", "is not for %s; use values", c.Op)
		}
	}
	return ps
}

// KeyProblem explains why name is not an acceptable attribute name, or
// returns "".
func KeyProblem(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case len(name) > MaxKeyBytes:
		return fmt.Sprintf("must be at most %d bytes, got %d", MaxKeyBytes, len(name))
	case !utf8.ValidString(name) || strings.ContainsFunc(name, isControl):
		return "must be valid UTF-8 without control characters"
	}
	return ""
}

// valueProblem explains why v is not an acceptable attribute value, or
// returns "".
func valueProblem(v any) string {
	switch x := v.(type) {
	case string:
		switch {
		case len(x) > MaxStringBytes:
			return fmt.Sprintf("must be at most %d bytes, got %d", MaxStringBytes, len(x))
		case !utf8.ValidString(x) || strings.ContainsFunc(x, isControl):
			// NUL cannot be stored in PostgreSQL text.
			return "must be valid UTF-8 without control characters"
		}
		return ""
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "must be a finite number"
		}
		return ""
	case bool:
		return ""
	case nil:
		return "is required: a string, a number or a boolean"
	}
	return "must be a string, a number or a boolean"
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// CheckAttributes returns every problem of a unit's attributes, with fields
// named by attribute ("country").
func CheckAttributes(attrs Attributes) []Problem {
	var ps []Problem
	if len(attrs) > MaxAttributes {
		return []Problem{{Field: "", Reason: fmt.Sprintf("must hold at most %d attributes, got %d", MaxAttributes, len(attrs))}}
	}
	for k, v := range attrs {
		if reason := KeyProblem(k); reason != "" {
			ps = append(ps, Problem{Field: k, Reason: "name " + reason})
			continue
		}
		if reason := valueProblem(v); reason != "" {
			ps = append(ps, Problem{Field: k, Reason: reason})
		}
	}
	return ps
}

// Text is the text of an attribute value as breakdowns group by it: a
// string as it is, a number in its shortest form ("2", "0.5", "1e+21"), a
// boolean as "true" or "false". The string "2" and the number 2 share a
// text, and so a segment.
func Text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}
