package sqlstore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pressly/goose/v3"
)

// MigrationInfo describes one migration of the binary and whether the
// database has it.
type MigrationInfo struct {
	Version   int64
	Name      string // the file name, such as "00001_init.sql"
	Applied   bool
	AppliedAt time.Time // zero when not applied
}

// SchemaError reports a database whose schema does not match the binary.
type SchemaError struct {
	Database int64 // the database's schema version
	Binary   int64 // the newest migration the binary has
}

func (e *SchemaError) Error() string {
	if e.Database > e.Binary {
		return fmt.Sprintf("database schema version %d is newer than this samplit binary supports (%d); upgrade samplit", e.Database, e.Binary)
	}
	return fmt.Sprintf("database schema version %d is older than this samplit binary needs (%d); run `samplit migrate up`", e.Database, e.Binary)
}

// provider returns a goose provider over the write pool with the dialect's
// migrations and locker. Goose writes nothing to stdout: its log goes to a
// discarding slog logger, and Migrate returns what it applied.
func (s *Store) provider(ctx context.Context, lock bool) (*goose.Provider, error) {
	opts := []goose.ProviderOption{
		goose.WithSlog(slog.New(slog.DiscardHandler)),
		goose.WithDisableGlobalRegistry(true),
	}
	if lock && s.dialect.MigrateOptions != nil {
		more, err := s.dialect.MigrateOptions(ctx, s.write)
		if err != nil {
			return nil, err
		}
		opts = append(opts, more...)
	}
	p, err := goose.NewProvider(s.dialect.Goose, s.write, s.dialect.Migrations, opts...)
	if err != nil {
		return nil, fmt.Errorf("load %s migrations: %w", s.dialect.Name, err)
	}
	return p, nil
}

// versions returns the database's schema version and the binary's newest.
func (s *Store) versions(ctx context.Context) (db, binary int64, err error) {
	p, err := s.provider(ctx, false)
	if err != nil {
		return 0, 0, err
	}
	db, binary, err = p.GetVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("read schema version: %w", err)
	}
	return db, binary, nil
}

// Migrate applies every pending migration, under the dialect's lock so that
// replicas starting together apply each migration once. It refuses a
// database newer than the binary: an older binary must not write to a schema
// it does not know.
func (s *Store) Migrate(ctx context.Context) ([]MigrationInfo, error) {
	db, binary, err := s.versions(ctx)
	if err != nil {
		return nil, err
	}
	if db > binary {
		return nil, &SchemaError{Database: db, Binary: binary}
	}
	p, err := s.provider(ctx, true)
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", s.dialect.Name, err)
	}
	applied := make([]MigrationInfo, 0, len(results))
	for _, r := range results {
		applied = append(applied, MigrationInfo{
			Version: r.Source.Version, Name: baseName(r.Source.Path), Applied: true, AppliedAt: time.Now().UTC(),
		})
	}
	return applied, nil
}

// CheckSchema returns a *SchemaError unless the database's schema version is
// exactly the binary's newest migration.
func (s *Store) CheckSchema(ctx context.Context) error {
	db, binary, err := s.versions(ctx)
	if err != nil {
		return err
	}
	if db != binary {
		return &SchemaError{Database: db, Binary: binary}
	}
	return nil
}

// MigrationStatus lists the binary's migrations and whether each is applied.
func (s *Store) MigrationStatus(ctx context.Context) ([]MigrationInfo, error) {
	p, err := s.provider(ctx, false)
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	out := make([]MigrationInfo, 0, len(st))
	for _, m := range st {
		out = append(out, MigrationInfo{
			Version:   m.Source.Version,
			Name:      baseName(m.Source.Path),
			Applied:   m.State == goose.StateApplied,
			AppliedAt: m.AppliedAt.UTC(),
		})
	}
	return out, nil
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}
