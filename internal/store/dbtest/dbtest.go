// Package dbtest gives a test a database of its own on each backend: a
// fresh SQLite file, and a fresh schema of the PostgreSQL database that
// SAMPLIT_TEST_POSTGRES_URL names.
//
// Without SAMPLIT_TEST_POSTGRES_URL the PostgreSQL tests are skipped, except
// in CI (CI=true), where a missing database must fail the run rather than
// pass it with half the backends untested.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// PostgresEnv is the variable that names the PostgreSQL test database.
const PostgresEnv = "SAMPLIT_TEST_POSTGRES_URL"

// HasPostgres reports whether the PostgreSQL tests run. In CI a missing
// database fails the test instead.
func HasPostgres(t testing.TB) bool {
	t.Helper()
	if os.Getenv(PostgresEnv) != "" {
		return true
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not set; CI must test PostgreSQL", PostgresEnv)
	}
	return false
}

// PostgresURL returns the test database's URL, or skips the test without
// one (fails it in CI).
func PostgresURL(t testing.TB) string {
	t.Helper()
	if !HasPostgres(t) {
		t.Skipf("%s is not set", PostgresEnv)
	}
	return os.Getenv(PostgresEnv)
}

// PostgresSchema creates a schema named prefix and a random suffix in the
// test database and returns a URL whose search_path is that schema; pgx
// sends it at connection start, so every connection of a pool, and the
// migrations, land in it. The schema is dropped when the test ends, after
// the cleanups registered later (servers using it stop first).
func PostgresSchema(t testing.TB, prefix string) string {
	t.Helper()
	base := PostgresURL(t)
	schema := prefix + strings.ToLower(rand.Text()[:16])
	if err := exec(base, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := exec(base, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return WithParam(t, base, "search_path", schema)
}

// exec runs one statement on a connection of its own: the test holds no
// connection while it runs (many tests in parallel each hold a schema).
func exec(dsn, stmt string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(context.Background(), stmt)
	return err
}

// WithParam returns the URL with a query parameter set.
func WithParam(t testing.TB, raw, key, value string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresEnv, err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// EachBackend runs fn as a subtest per backend with the DSN of a fresh
// database: "sqlite", a file in the test's temporary directory, and
// "postgres", a fresh schema (see PostgresSchema).
func EachBackend(t *testing.T, prefix string, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, filepath.Join(t.TempDir(), "s.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, PostgresSchema(t, prefix)) })
}
