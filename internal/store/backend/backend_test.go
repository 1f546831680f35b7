package backend_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/samplit/samplit/internal/store/backend"
)

func TestIsPostgres(t *testing.T) {
	tests := []struct {
		name string
		dsn  string
		want bool
	}{
		{"postgres URL", "postgres://u@h/db", true},
		{"postgresql URL", "postgresql://u@h/db?sslmode=disable", true},
		{"file path", "/var/lib/samplit/samplit.db", false},
		{"relative path", "samplit.db", false},
		{"file URI", "file:samplit.db", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := backend.IsPostgres(tt.dsn); got != tt.want {
				t.Errorf("IsPostgres(%q) = %v, want %v", tt.dsn, got, tt.want)
			}
		})
	}
}

func TestMigrations(t *testing.T) {
	ctx := t.Context()
	dsn := filepath.Join(t.TempDir(), "samplit.db")

	// A fresh database without AutoMigrate: refused, with what to do.
	_, err := backend.Open(ctx, dsn, backend.Options{})
	var se *backend.SchemaError
	if !errors.As(err, &se) || se.Database != 0 || se.Binary < 1 {
		t.Fatalf("Open of an unmigrated database: %v, want a *SchemaError from version 0", err)
	}
	status, err := backend.MigrationStatus(ctx, dsn, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range status {
		if m.Applied {
			t.Errorf("migration %d applied before migrate", m.Version)
		}
	}

	if err := backend.Migrate(ctx, dsn, backend.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := backend.Migrate(ctx, dsn, backend.Options{}); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	status, err = backend.MigrationStatus(ctx, dsn, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(status) == 0 || status[0].Name != "00001_init.sql" {
		t.Fatalf("MigrationStatus = %+v", status)
	}
	for _, m := range status {
		if !m.Applied || m.AppliedAt.IsZero() {
			t.Errorf("migration %d (%s) not applied after migrate", m.Version, m.Name)
		}
	}
	s, err := backend.Open(ctx, dsn, backend.Options{})
	if err != nil {
		t.Fatalf("Open of a migrated database: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Error(err)
	}
	s.Close()

	// A database migrated by a newer binary: refused even with AutoMigrate.
	latest := status[len(status)-1].Version
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, TRUE)`, latest+6); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, auto := range []bool{false, true} {
		_, err = backend.Open(ctx, dsn, backend.Options{AutoMigrate: auto})
		if !errors.As(err, &se) || se.Database != latest+6 || se.Binary != latest {
			t.Fatalf("Open (AutoMigrate %v) of a newer database: %v", auto, err)
		}
		t.Logf("refused: %v", err)
	}
	if err := backend.Migrate(ctx, dsn, backend.Options{}); !errors.As(err, &se) {
		t.Errorf("Migrate of a newer database: %v, want a *SchemaError", err)
	}
}

func TestOpenAutoMigrate(t *testing.T) {
	s, err := backend.Open(t.Context(), filepath.Join(t.TempDir(), "samplit.db"), backend.Options{AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.CountWorkspaces(t.Context()); err != nil || n != 0 {
		t.Errorf("CountWorkspaces = %d, %v", n, err)
	}
}
