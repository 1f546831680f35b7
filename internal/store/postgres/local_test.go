package postgres_test

import (
	"testing"

	"github.com/samplit/samplit/internal/store/postgres"
)

func TestOnThisMachine(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", true},
		{"postgres://u@127.0.0.2/db", true},
		{"postgres://u@[::1]:5432/db", true},
		{"postgres://u@localhost/db", true},
		{"postgres://u@LocalHost:6432/db", true},
		{"postgres://u@%2Fvar%2Frun%2Fpostgresql/db", true},
		{"host=/tmp dbname=test", true},
		{"host=127.0.0.1 port=5432 dbname=test", true},
		{"postgres://u@127.0.0.1,[::1]:5433/db", true},
		{"postgres://u@10.0.0.5/db", false},
		{"postgres://u@[::ffff:10.0.0.5]/db", false},
		{"postgres://u@[::ffff:127.0.0.1]/db", true},
		{"postgres://u@db.example.com/db", false},
		{"postgres://u@localhost.example.com/db", false},
		{"postgres://u@aws-0-eu-west-1.pooler.supabase.com:6543/postgres", false},
		{"postgres://u@127.0.0.1,db.example.com/db", false}, // a fallback elsewhere
		{"host=10.1.2.3 dbname=test", false},
		{"postgres://u@127.0.0.1:notaport/db", false}, // does not parse
	} {
		if got := postgres.OnThisMachine(tc.url); got != tc.want {
			t.Errorf("OnThisMachine(%q) = %v, want %v", tc.url, got, tc.want)
		}
	}
}
