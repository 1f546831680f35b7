package sqlstore

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPositional(t *testing.T) {
	for _, tc := range []struct {
		name, query, want string
		order             []int
		ok                bool
	}{
		{"rows", "INSERT INTO t VALUES ($1, $2, $3), ($1, $4, $5)", "INSERT INTO t VALUES (?, ?, ?), (?, ?, ?)", []int{0, 1, 2, 0, 3, 4}, true},
		{"two digits", "SELECT $12, $2", "SELECT ?, ?", []int{11, 1}, true},
		{"quotes", `SELECT '$1 ?', "$2", $3`, `SELECT '$1 ?', "$2", ?`, []int{2}, true},
		{"no parameters", "SELECT 1", "", nil, false},
		{"question mark", "SELECT ?, $1", "", nil, false},
		{"bare dollar", "SELECT $a", "", nil, false},
		{"dollar zero", "SELECT $0", "", nil, false},
		{"unclosed quote", "SELECT '$1", "", nil, false},
		{"comment", "SELECT $1 -- it's", "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, order, ok := positional(tc.query)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("positional(%q) = %q, %v; want %q, %v", tc.query, got, ok, tc.want, tc.ok)
			}
			if diff := cmp.Diff(tc.order, order); diff != "" {
				t.Errorf("order mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCachedStmtArgs(t *testing.T) {
	c := cachedStmt{order: []int{0, 1, 2, 0, 3}}
	got := c.args([]any{"e", 1, 2.5, "u"})
	if diff := cmp.Diff([]any{"e", 1, 2.5, "e", "u"}, got); diff != "" {
		t.Errorf("args mismatch (-want +got):\n%s", diff)
	}
}
