// Package postgres opens Samplit's store on PostgreSQL through pgx/v5's
// database/sql driver, so that the queries are internal/store/sqlstore's,
// shared with SQLite. This package supplies the connection, the pool, the
// PostgreSQL migrations with their lock, and the mapping of SQLSTATEs.
//
// Poolers: Supabase's transaction pooler and pgbouncer in transaction mode
// hand each transaction to any server connection, so named prepared
// statements (which live on one server connection) break there. With
// Options.SimpleProtocol the driver sends every query with its arguments
// interpolated by pgx (the simple query protocol), and nothing is prepared.
//
// Migrations take a lock so that replicas starting together apply each
// migration once. On a direct connection that is a session advisory lock,
// keyed by database and schema. A session lock cannot work through a
// transaction pooler (the lock and the unlock may land on different server
// connections, and the lock outlives the client), so with SimpleProtocol the
// lock is goose's table lock instead: a row in goose_lock with a lease,
// taken and renewed by ordinary transactions. Running `samplit migrate up`
// over a direct connection (Supabase's port 5432) remains the safest choice
// for long migrations.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/crc64"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/samplit/samplit/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the PostgreSQL migrations (numbered goose .sql files).
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists at compile time
	}
	return sub
}

// SQLSTATEs the store tells apart.
const (
	uniqueViolation      = "23505"
	foreignKeyViolation  = "23503"
	serializationFailure = "40001"
	deadlockDetected     = "40P01"
)

// dialect returns the PostgreSQL dialect; the locker depends on whether a
// transaction pooler is in the way.
func dialect(pooled bool) sqlstore.Dialect {
	return sqlstore.Dialect{
		Name: "postgres",
		// Eight rows per counter: three replicas' transactions then pick
		// the same shard one time in eight, against every time with one.
		CounterShards: 8,
		Goose:         goose.DialectPostgres,
		Migrations:    Migrations(),
		MigrateOptions: func(ctx context.Context, db *sql.DB) ([]goose.ProviderOption, error) {
			return migrationLock(ctx, db, pooled)
		},
		IsUniqueViolation:     hasState(uniqueViolation),
		IsForeignKeyViolation: hasState(foreignKeyViolation),
		IsRetryable:           hasState(serializationFailure, deadlockDetected),
		SkipLocked:            " FOR UPDATE SKIP LOCKED",
		Pipeline:              pipelineFor(pooled),
		// For the rest of the transaction only (is_local): hash and merge
		// joins, the two plans that read the whole table, are off, so a
		// join with a VALUES list of keys probes the primary key. A
		// transaction pooler resets nothing: the setting ends with the
		// transaction.
		ProbeJoins: `SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`,
	}
}

// pipelineFor returns the dialect's Pipeline: pgx's batch, which sends the
// statements and one Sync in a single write and reads every result in one
// round trip. Behind a transaction pooler (simple protocol) it is nil and the
// statements go one by one through database/sql, the path tested against
// pgbouncer.
func pipelineFor(pooled bool) func(context.Context, any, []sqlstore.PipeStmt) error {
	if pooled {
		return nil
	}
	return pipeline
}

func pipeline(ctx context.Context, raw any, stmts []sqlstore.PipeStmt) error {
	c, ok := raw.(*stdlib.Conn)
	if !ok {
		return fmt.Errorf("postgres: pipeline on a %T, not a pgx connection", raw)
	}
	var b pgx.Batch
	for _, st := range stmts {
		b.Queue(st.Query, st.Args...)
	}
	br := c.Conn().SendBatch(ctx, &b)
	var first error
	for _, st := range stmts {
		if first != nil {
			break // the server skipped the rest; Close reads past them
		}
		rows, err := br.Query()
		if err == nil && st.Rows != nil {
			err = st.Rows(rows)
		}
		if err == nil {
			for rows.Next() { // unread rows of a statement without Rows
			}
		}
		if rows != nil {
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
		if err != nil {
			if st.Wrap != nil {
				err = st.Wrap(err)
			}
			first = err
		}
	}
	if err := br.Close(); err != nil && first == nil {
		first = err
	}
	return first
}

func hasState(codes ...string) func(error) bool {
	return func(err error) bool {
		var e *pgconn.PgError
		if !errors.As(err, &e) {
			return false
		}
		for _, c := range codes {
			if e.Code == c {
				return true
			}
		}
		return false
	}
}

// migrationLock returns the goose lock option. The advisory lock id is a
// hash of the database and schema names: replicas of one deployment share it,
// while deployments (or tests) in other schemas of the same server do not
// wait for each other.
func migrationLock(ctx context.Context, db *sql.DB, pooled bool) ([]goose.ProviderOption, error) {
	if pooled {
		l, err := lock.NewPostgresTableLocker(
			lock.WithTableLockTimeout(time.Second, 600),
			lock.WithTableUnlockTimeout(time.Second, 60),
		)
		if err != nil {
			return nil, fmt.Errorf("postgres: migration lock: %w", err)
		}
		return []goose.ProviderOption{goose.WithLocker(l)}, nil
	}
	var scope string
	if err := db.QueryRowContext(ctx, `SELECT current_database() || '.' || current_schema()`).Scan(&scope); err != nil {
		return nil, fmt.Errorf("postgres: migration lock: %w", err)
	}
	id := int64(crc64.Checksum([]byte("samplit.migrate."+scope), crc64.MakeTable(crc64.ECMA)))
	l, err := lock.NewPostgresSessionLocker(lock.WithLockID(id), lock.WithLockTimeout(1, 600))
	if err != nil {
		return nil, fmt.Errorf("postgres: migration lock: %w", err)
	}
	return []goose.ProviderOption{goose.WithSessionLocker(l)}, nil
}

// Options tune Open.
type Options struct {
	// SimpleProtocol turns prepared statements off, for Supabase's
	// transaction pooler (port 6543) and pgbouncer in transaction mode.
	SimpleProtocol bool
	// MaxConns is the pool size; zero means 10. Each replica holds at most
	// this many server connections (or pooler client connections).
	MaxConns int
}

// Open connects to the PostgreSQL database at url (a postgres:// URL or a
// key=value DSN; runtime parameters such as search_path may be given as
// query parameters). It does not migrate; see sqlstore.Store.Migrate.
func Open(url string, opts Options) (*sqlstore.Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgconn redacts the password in its message.
		return nil, fmt.Errorf("postgres: invalid connection URL: %v", err) // %v: not the unredacted ConnString
	}
	if opts.SimpleProtocol {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		cfg.StatementCacheCapacity = 0
		cfg.DescriptionCacheCapacity = 0
	}
	conns := opts.MaxConns
	if conns <= 0 {
		conns = 10
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	// Recycle connections now and then so that a failover or a pooler
	// restart is absorbed without errors piling up.
	db.SetConnMaxLifetime(30 * time.Minute)
	db.SetConnMaxIdleTime(5 * time.Minute)
	// PostgreSQL runs concurrent writers itself: one pool reads and writes.
	return sqlstore.New(db, db, dialect(opts.SimpleProtocol)), nil
}
