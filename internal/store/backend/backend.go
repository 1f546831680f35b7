// Package backend chooses the storage backend from a DSN: a postgres:// or
// postgresql:// URL opens PostgreSQL, anything else is a SQLite file path (or
// a "file:" URI). It is the one place the server and the CLI open a store, so
// that both check the schema version the same way.
package backend

import (
	"context"
	"fmt"

	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/postgres"
	"github.com/samplit/samplit/internal/store/sqlite"
	"github.com/samplit/samplit/internal/store/sqlstore"
)

// Options tune how a store is opened.
type Options struct {
	// AutoMigrate applies pending migrations on Open (serve does). Without
	// it, Open refuses a database whose schema is behind the binary.
	AutoMigrate bool
	// SimpleProtocol turns prepared statements off on PostgreSQL, for
	// Supabase's transaction pooler and pgbouncer in transaction mode.
	SimpleProtocol bool
	// MaxConns is the PostgreSQL pool size, or the SQLite read pool size;
	// zero chooses a default.
	MaxConns int
}

// MigrationInfo describes one migration of the binary and whether the
// database has it.
type MigrationInfo = sqlstore.MigrationInfo

// SchemaError reports a schema version that does not match the binary; its
// message says what to do.
type SchemaError = sqlstore.SchemaError

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool { return store.IsPostgresDSN(dsn) }

// PostgresOnThisMachine reports whether dsn names a PostgreSQL database
// whose every server address is this machine's (postgres.OnThisMachine).
func PostgresOnThisMachine(dsn string) bool {
	return IsPostgres(dsn) && postgres.OnThisMachine(dsn)
}

// openSQL opens the dsn's backend without touching its schema.
func openSQL(dsn string, opts Options) (*sqlstore.Store, error) {
	if IsPostgres(dsn) {
		return postgres.Open(dsn, postgres.Options{SimpleProtocol: opts.SimpleProtocol, MaxConns: opts.MaxConns})
	}
	return sqlite.Open(dsn, sqlite.Options{Readers: opts.MaxConns})
}

// Open opens the store. With opts.AutoMigrate it first applies pending
// migrations; either way it refuses, with a *SchemaError, a database whose
// schema is newer than the binary ("database schema version 7 is newer than
// this samplit binary supports (5); upgrade samplit") or, without
// AutoMigrate, older.
func Open(ctx context.Context, dsn string, opts Options) (store.Store, error) {
	s, err := openSQL(dsn, opts)
	if err != nil {
		return nil, err
	}
	if opts.AutoMigrate {
		_, err = s.Migrate(ctx)
	} else {
		err = s.CheckSchema(ctx)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Migrate applies every pending migration (samplit migrate up); the CLI can
// show the result with MigrationStatus.
func Migrate(ctx context.Context, dsn string, opts Options) error {
	s, err := openSQL(dsn, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// MigrationStatus lists the binary's migrations and whether each is applied
// (samplit migrate status).
func MigrationStatus(ctx context.Context, dsn string, opts Options) ([]MigrationInfo, error) {
	s, err := openSQL(dsn, opts)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.MigrationStatus(ctx)
}
