// Package dbtest gives a test a database of its own on each backend: a
// fresh SQLite file, already migrated, and a fresh schema of the PostgreSQL
// database that SAMPLIT_TEST_POSTGRES_URL names.
//
// Without SAMPLIT_TEST_POSTGRES_URL the PostgreSQL tests are skipped, except
// in CI (CI=true), where a missing database must fail the run rather than
// pass it with half the backends untested.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/samplit/samplit/internal/store/sqlite"
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

// SQLite returns the path of a fresh SQLite database in the test's
// temporary directory with every migration applied: a copy of a template
// the process migrated once. Migrating costs about 2 s under the race
// detector (modernc's SQLite is Go, all of it instrumented), and the suites
// open hundreds of databases; a copy costs milliseconds. Opening the copy
// with AutoMigrate finds nothing to do. The migrations themselves are
// tested on empty files (internal/store/backend).
func SQLite(t testing.TB) string {
	t.Helper()
	tmpl, err := sqliteTemplate()
	if err != nil {
		t.Fatalf("migrated SQLite template: %v", err)
	}
	path := filepath.Join(t.TempDir(), "s.db")
	if err := os.WriteFile(path, tmpl, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sqliteTemplate migrates a database once per process and returns its
// file's bytes.
var sqliteTemplate = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "samplit-dbtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "template.db")
	s, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		return nil, err
	}
	_, err = s.Migrate(context.Background())
	if err == nil {
		// Everything into the main file, so that it alone is the database.
		_, err = s.WriteDB().Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return os.ReadFile(path)
})

// EachBackend runs fn as a subtest per backend with the DSN of a fresh
// database: "sqlite", a migrated file in the test's temporary directory
// (see SQLite), and "postgres", a fresh schema (see PostgresSchema).
func EachBackend(t *testing.T, prefix string, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, PostgresSchema(t, prefix)) })
}
