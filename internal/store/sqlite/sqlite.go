// Package sqlite opens Samplit's store on a SQLite file, through the pure-Go
// driver modernc.org/sqlite, so that the default install needs no database
// server and no C compiler.
//
// The queries are internal/store/sqlstore's; this package supplies the DSN,
// the connection pools, the SQLite migrations and the mapping of SQLite's
// error codes.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"strings"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/samplit/samplit/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the SQLite migrations (numbered goose .sql files).
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists at compile time
	}
	return sub
}

// Dialect is the SQLite dialect of sqlstore.
var Dialect = sqlstore.Dialect{
	Name:                  "sqlite",
	Goose:                 goose.DialectSQLite3,
	Migrations:            Migrations(),
	IsUniqueViolation:     hasCode(sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY),
	IsForeignKeyViolation: hasCode(sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY),
	// BUSY reaches us only when another process (a CLI command beside the
	// server) holds the write lock longer than busy_timeout; in one process
	// the single writer connection queues writers in Go instead.
	IsRetryable: hasPrimaryCode(sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED), BatchRows: 64, CacheStatements: true,
	AnonymousParams: true,
}

// hasCode returns a predicate matching SQLite extended result codes.
func hasCode(codes ...int) func(error) bool {
	return func(err error) bool {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return false
		}
		for _, c := range codes {
			if e.Code() == c {
				return true
			}
		}
		return false
	}
}

// hasPrimaryCode matches the primary result code (the low byte of the
// extended code), so that every BUSY_* variant counts as BUSY.
func hasPrimaryCode(codes ...int) func(error) bool {
	return func(err error) bool {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return false
		}
		for _, c := range codes {
			if e.Code()&0xff == c {
				return true
			}
		}
		return false
	}
}

// Options tune Open.
type Options struct {
	// Readers is the size of the read pool; zero means the number of CPUs,
	// at least 2.
	Readers int
	// Synchronous is SQLite's synchronous pragma: "FULL" (the default) or
	// "NORMAL". In WAL mode NORMAL may lose the last commits on power loss
	// (never on a crash of the process); FULL makes every acknowledged
	// commit durable, which the event path promises. Measured on a loaded
	// 2-core machine: a single-unit Assign takes 0.86 ms with FULL and
	// 0.28 ms with NORMAL (the fsync of every commit); a 1000-event batch
	// 35 ms and 31 ms. Group commit makes FULL cheap per event.
	Synchronous string
}

// Open opens (creating if needed) the SQLite database at path, which may be a
// file path or a "file:" URI. It does not migrate; see sqlstore.Store.Migrate.
//
// It opens two pools over the file. Writes go through a pool of exactly one
// connection: SQLite allows one writer at a time anyway, and queueing writers
// on database/sql's pool is fair and costs nothing, while several writer
// connections would spin on busy_timeout and, worse, deferred transactions
// that read then write can fail with SQLITE_BUSY no timeout resolves.
// _txlock=immediate makes every write transaction take the write lock at
// BEGIN for the same reason, which matters when another process (a CLI
// command) writes too. Reads go through a separate pool, read-only and with
// deferred transactions, which WAL lets run alongside the writer.
func Open(path string, opts Options) (*sqlstore.Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	if strings.Contains(path, ":memory:") || strings.Contains(path, "mode=memory") {
		// Two pools over one in-memory database would be two databases.
		return nil, errors.New("sqlite: in-memory databases are not supported; use a file")
	}
	sync := strings.ToUpper(opts.Synchronous)
	if sync == "" {
		sync = "FULL"
	}
	if sync != "FULL" && sync != "NORMAL" {
		return nil, fmt.Errorf("sqlite: synchronous must be FULL or NORMAL, not %q", opts.Synchronous)
	}
	readers := opts.Readers
	if readers <= 0 {
		readers = max(2, runtime.NumCPU())
	}
	pragmas := []string{"busy_timeout(5000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(" + sync + ")"}
	write, err := sql.Open("sqlite", dsn(path, pragmas, "immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	// Create the file and switch it to WAL before readers open it: a
	// query_only connection cannot change the journal mode.
	if err := write.PingContext(context.Background()); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", dsn(path, append(pragmas, "query_only(1)"), "deferred"))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	read.SetMaxOpenConns(readers)
	read.SetMaxIdleConns(readers)
	read.SetConnMaxIdleTime(0)
	return sqlstore.New(read, write, Dialect), nil
}

// dsn builds the modernc DSN: the path (or file: URI) with the pragmas and
// transaction locking mode as query parameters.
func dsn(path string, pragmas []string, txlock string) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", txlock)
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + q.Encode()
}
