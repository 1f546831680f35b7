package targeting

import (
	"encoding/json"
	"strings"
	"testing"
)

func rules(t *testing.T, s string) *Rules {
	t.Helper()
	var r Rules
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatal(err)
	}
	if ps := r.Validate(); len(ps) > 0 {
		t.Fatalf("rules %s: %v", s, ps)
	}
	return &r
}

func attrs(t *testing.T, s string) Attributes {
	t.Helper()
	var a Attributes
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		attrs string
		want  bool
	}{
		{"eq string", `{"all":[{"attribute":"country","op":"eq","value":"ES"}]}`, `{"country":"ES"}`, true},
		{"eq other", `{"all":[{"attribute":"country","op":"eq","value":"ES"}]}`, `{"country":"FR"}`, false},
		{"eq missing", `{"all":[{"attribute":"country","op":"eq","value":"ES"}]}`, `{}`, false},
		{"eq type differs", `{"all":[{"attribute":"n","op":"eq","value":"1"}]}`, `{"n":1}`, false},
		{"eq number", `{"all":[{"attribute":"n","op":"eq","value":1}]}`, `{"n":1.0}`, true},
		{"eq bool", `{"all":[{"attribute":"beta","op":"eq","value":true}]}`, `{"beta":true}`, true},
		{"eq bool false", `{"all":[{"attribute":"beta","op":"eq","value":true}]}`, `{"beta":false}`, false},
		{"neq", `{"all":[{"attribute":"plan","op":"neq","value":"free"}]}`, `{"plan":"pro"}`, true},
		{"neq same", `{"all":[{"attribute":"plan","op":"neq","value":"free"}]}`, `{"plan":"free"}`, false},
		{"neq missing", `{"all":[{"attribute":"plan","op":"neq","value":"free"}]}`, `{}`, true},
		{"in", `{"all":[{"attribute":"country","op":"in","values":["ES","MX"]}]}`, `{"country":"MX"}`, true},
		{"in not", `{"all":[{"attribute":"country","op":"in","values":["ES","MX"]}]}`, `{"country":"FR"}`, false},
		{"in missing", `{"all":[{"attribute":"country","op":"in","values":["ES","MX"]}]}`, `{}`, false},
		{"not_in", `{"all":[{"attribute":"country","op":"not_in","values":["ES","MX"]}]}`, `{"country":"FR"}`, true},
		{"not_in in", `{"all":[{"attribute":"country","op":"not_in","values":["ES","MX"]}]}`, `{"country":"ES"}`, false},
		{"not_in missing", `{"all":[{"attribute":"country","op":"not_in","values":["ES"]}]}`, `{}`, true},
		{"gt", `{"all":[{"attribute":"age","op":"gt","value":18}]}`, `{"age":19}`, true},
		{"gt equal", `{"all":[{"attribute":"age","op":"gt","value":18}]}`, `{"age":18}`, false},
		{"gte equal", `{"all":[{"attribute":"age","op":"gte","value":18}]}`, `{"age":18}`, true},
		{"lt", `{"all":[{"attribute":"age","op":"lt","value":18}]}`, `{"age":17.5}`, true},
		{"lt equal", `{"all":[{"attribute":"age","op":"lt","value":18}]}`, `{"age":18}`, false},
		{"lte equal", `{"all":[{"attribute":"age","op":"lte","value":18}]}`, `{"age":18}`, true},
		{"gt string vs number", `{"all":[{"attribute":"age","op":"gt","value":18}]}`, `{"age":"19"}`, false},
		{"gt strings", `{"all":[{"attribute":"d","op":"gt","value":"2026-01-01"}]}`, `{"d":"2026-02-01"}`, true},
		{"gt missing", `{"all":[{"attribute":"age","op":"gt","value":18}]}`, `{}`, false},
		// Semantic versions compare by number, not by text: "2.10.0" > "2.9.0".
		{"semver_gt numeric", `{"all":[{"attribute":"v","op":"semver_gt","value":"2.9.0"}]}`, `{"v":"2.10.0"}`, true},
		{"semver text would say otherwise", `{"all":[{"attribute":"v","op":"gt","value":"2.9.0"}]}`, `{"v":"2.10.0"}`, false},
		{"semver_gte equal", `{"all":[{"attribute":"v","op":"semver_gte","value":"2.3.0"}]}`, `{"v":"2.3.0"}`, true},
		{"semver_gte v prefix", `{"all":[{"attribute":"v","op":"semver_gte","value":"v2.3.0"}]}`, `{"v":"2.4.1"}`, true},
		{"semver_gte below", `{"all":[{"attribute":"v","op":"semver_gte","value":"2.3.0"}]}`, `{"v":"2.2.9"}`, false},
		{"semver prerelease below release", `{"all":[{"attribute":"v","op":"semver_lt","value":"2.3.0"}]}`, `{"v":"2.3.0-beta.1"}`, true},
		{"semver_eq shorthand", `{"all":[{"attribute":"v","op":"semver_eq","value":"2.3"}]}`, `{"v":"2.3.0"}`, true},
		{"semver_lte", `{"all":[{"attribute":"v","op":"semver_lte","value":"2.3.0"}]}`, `{"v":"2.3.0"}`, true},
		{"semver_lt false", `{"all":[{"attribute":"v","op":"semver_lt","value":"2.3.0"}]}`, `{"v":"2.3.0"}`, false},
		{"semver not a version", `{"all":[{"attribute":"v","op":"semver_gte","value":"2.3.0"}]}`, `{"v":"latest"}`, false},
		{"semver number", `{"all":[{"attribute":"v","op":"semver_gte","value":"2.3.0"}]}`, `{"v":3}`, false},
		{"exists", `{"all":[{"attribute":"email","op":"exists"}]}`, `{"email":"a@b"}`, true},
		{"exists missing", `{"all":[{"attribute":"email","op":"exists"}]}`, `{}`, false},
		{"exists false", `{"all":[{"attribute":"email","op":"exists","value":false}]}`, `{}`, true},
		{"exists false present", `{"all":[{"attribute":"email","op":"exists","value":false}]}`, `{"email":"x"}`, false},
		{"all both", `{"all":[{"attribute":"country","op":"eq","value":"ES"},{"attribute":"age","op":"gte","value":18}]}`, `{"country":"ES","age":30}`, true},
		{"all one fails", `{"all":[{"attribute":"country","op":"eq","value":"ES"},{"attribute":"age","op":"gte","value":18}]}`, `{"country":"ES","age":3}`, false},
		{"any one", `{"any":[{"attribute":"country","op":"eq","value":"ES"},{"attribute":"age","op":"gte","value":18}]}`, `{"country":"FR","age":30}`, true},
		{"any none", `{"any":[{"attribute":"country","op":"eq","value":"ES"},{"attribute":"age","op":"gte","value":18}]}`, `{"country":"FR","age":3}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rules(t, tt.rules).Match(attrs(t, tt.attrs)); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
	var none *Rules
	if !none.Match(nil) {
		t.Error("nil rules must match every unit")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		field string // the first problem's field
	}{
		{"empty", `{}`, "all"},
		{"both", `{"all":[{"attribute":"a","op":"exists"}],"any":[{"attribute":"a","op":"exists"}]}`, "any"},
		{"no conditions", `{"all":[]}`, "all"},
		{"unknown op", `{"all":[{"attribute":"a","op":"like","value":"x"}]}`, "all[0].op"},
		{"no attribute", `{"any":[{"op":"eq","value":"x"}]}`, "any[0].attribute"},
		{"long attribute", `{"all":[{"attribute":"` + strings.Repeat("a", 65) + `","op":"exists"}]}`, "all[0].attribute"},
		{"eq without value", `{"all":[{"attribute":"a","op":"eq"}]}`, "all[0].value"},
		{"eq object", `{"all":[{"attribute":"a","op":"eq","value":{"x":1}}]}`, "all[0].value"},
		{"in without values", `{"all":[{"attribute":"a","op":"in"}]}`, "all[0].values"},
		{"in bad item", `{"all":[{"attribute":"a","op":"in","values":["x",[1]]}]}`, "all[0].values[1]"},
		{"in with value", `{"all":[{"attribute":"a","op":"in","values":["x"],"value":"y"}]}`, "all[0].value"},
		{"eq with values", `{"all":[{"attribute":"a","op":"eq","value":"x","values":["y"]}]}`, "all[0].values"},
		{"gt bool", `{"all":[{"attribute":"a","op":"gt","value":true}]}`, "all[0].value"},
		{"semver bad", `{"all":[{"attribute":"a","op":"semver_gte","value":"two"}]}`, "all[0].value"},
		{"semver number", `{"all":[{"attribute":"a","op":"semver_gte","value":2}]}`, "all[0].value"},
		{"exists string", `{"all":[{"attribute":"a","op":"exists","value":"yes"}]}`, "all[0].value"},
		{"long string", `{"all":[{"attribute":"a","op":"eq","value":"` + strings.Repeat("x", 257) + `"}]}`, "all[0].value"},
		{"second condition", `{"all":[{"attribute":"a","op":"exists"},{"attribute":"b","op":"gt"}]}`, "all[1].value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Rules
			if err := json.Unmarshal([]byte(tt.rules), &r); err != nil {
				t.Fatal(err)
			}
			ps := r.Validate()
			if len(ps) == 0 {
				t.Fatalf("no problem found, want one at %s", tt.field)
			}
			if ps[0].Field != tt.field {
				t.Errorf("field = %q (%s), want %q", ps[0].Field, ps[0].Reason, tt.field)
			}
		})
	}
	many := Rules{All: make([]Condition, MaxConditions+1)}
	for i := range many.All {
		many.All[i] = Condition{Attribute: "a", Op: OpExists}
	}
	if ps := many.Validate(); len(ps) != 1 || ps[0].Field != "all" {
		t.Errorf("%d conditions: %v", len(many.All), ps)
	}
}

func TestCheckAttributes(t *testing.T) {
	if ps := CheckAttributes(attrs(t, `{"country":"ES","age":30,"beta":true}`)); len(ps) != 0 {
		t.Errorf("valid attributes: %v", ps)
	}
	tests := []struct {
		name, attrs, field string
	}{
		{"null", `{"a":null}`, "a"},
		{"object", `{"a":{"b":1}}`, "a"},
		{"array", `{"a":[1]}`, "a"},
		{"long value", `{"a":"` + strings.Repeat("x", MaxStringBytes+1) + `"}`, "a"},
		{"control", `{"a":"x\u0000y"}`, "a"},
		{"empty name", `{"":"x"}`, ""},
		{"long name", `{"` + strings.Repeat("k", MaxKeyBytes+1) + `":"x"}`, strings.Repeat("k", MaxKeyBytes+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := CheckAttributes(attrs(t, tt.attrs))
			if len(ps) != 1 || ps[0].Field != tt.field {
				t.Errorf("problems = %v, want one at %q", ps, tt.field)
			}
		})
	}
	a := Attributes{}
	for i := range MaxAttributes + 1 {
		a[strings.Repeat("k", i+1)] = "v"
	}
	if ps := CheckAttributes(a); len(ps) != 1 {
		t.Errorf("%d attributes: %v", len(a), ps)
	}
	delete(a, "k")
	if ps := CheckAttributes(a); len(ps) != 0 {
		t.Errorf("%d attributes: %v", len(a), ps)
	}
}

func TestText(t *testing.T) {
	for v, want := range map[any]string{"ES": "ES", 2.0: "2", 0.5: "0.5", true: "true", false: "false"} {
		if got := Text(v); got != want {
			t.Errorf("Text(%v) = %q, want %q", v, got, want)
		}
	}
}
