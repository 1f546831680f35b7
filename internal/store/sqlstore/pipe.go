package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
)

// Rows is what a statement's result rows offer to the code that reads them:
// the methods *sql.Rows and a driver's native rows (pgx.Rows) have in
// common, so that the serving path reads its results the same way whether
// the statements went through database/sql or a dialect's pipeline.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// PipeStmt is one statement of a pipelined transaction.
type PipeStmt struct {
	Query string
	Args  []any
	// Rows, if set, reads the statement's rows; otherwise they are discarded.
	Rows func(Rows) error
	// Wrap, if set, adds context to the statement's error.
	Wrap func(error) error
}

// pipe runs the statements of one write transaction of the serving path in
// as few round trips as the connection allows. Statements are queued and
// sent together at flush, which the code calls only where it needs a result
// to decide what comes next; the transaction's last statements go out with
// its COMMIT. Through a dialect's Pipeline (PostgreSQL: pgx's batch, one
// network round trip per flush including BEGIN and COMMIT) a group-commit
// of new assignments costs two round trips instead of six; through
// database/sql (SQLite, or PostgreSQL behind a transaction pooler) flush
// runs the queued statements one after another in the transaction, with
// the same SQL and the same results.
type pipe struct {
	s      *Store
	ctx    context.Context
	tx     *sql.Tx // the database/sql path
	raw    any     // the driver connection of the Pipeline path
	queued []PipeStmt
	// probing says that the dialect's ProbeJoins has been queued in this
	// transaction.
	probing bool
	// uncached says that tx is not the write pool's, whose prepared
	// statements the statement cache holds (inReadPipeTx).
	uncached bool
}

func (p *pipe) queue(st PipeStmt) { p.queued = append(p.queued, st) }

// probeJoins queues the dialect's ProbeJoins, once per transaction, before
// a statement that joins a VALUES list of keys with a table.
func (p *pipe) probeJoins() {
	if q := p.s.dialect.ProbeJoins; q != "" && !p.probing {
		p.probing = true
		p.queue(PipeStmt{Query: q, Wrap: func(err error) error { return fmt.Errorf("plan joins as probes: %w", err) }})
	}
}

// flush runs the queued statements; their Rows functions have run when it
// returns. The first failing statement's error is returned (wrapped by its
// Wrap); the transaction must then be abandoned.
func (p *pipe) flush() error {
	stmts := p.queued
	p.queued = p.queued[:0:0]
	if len(stmts) == 0 {
		return nil
	}
	if p.tx == nil {
		return p.s.dialect.Pipeline(p.ctx, p.raw, stmts)
	}
	for _, st := range stmts {
		if err := p.runTx(st); err != nil {
			return err
		}
	}
	return nil
}

// exec and query run st in the transaction, through the statement cache
// unless the transaction is not the write pool's (uncached).
func (p *pipe) exec(st PipeStmt) (sql.Result, error) {
	if p.uncached {
		return p.tx.ExecContext(p.ctx, st.Query, st.Args...)
	}
	return p.s.txExec(p.ctx, p.tx, st.Query, st.Args...)
}

func (p *pipe) query(st PipeStmt) (*sql.Rows, error) {
	if p.uncached {
		return p.tx.QueryContext(p.ctx, st.Query, st.Args...)
	}
	return p.s.txQuery(p.ctx, p.tx, st.Query, st.Args...)
}

func (p *pipe) runTx(st PipeStmt) error {
	wrap := func(err error) error {
		if st.Wrap != nil {
			return st.Wrap(err)
		}
		return err
	}
	if st.Rows == nil {
		if _, err := p.exec(st); err != nil {
			return wrap(err)
		}
		return nil
	}
	rows, err := p.query(st)
	if err != nil {
		return wrap(err)
	}
	err = st.Rows(rows)
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return wrap(err)
	}
	return nil
}

// inPipeTx is inTx for code written against a pipe: it runs fn in a write
// transaction, flushes what fn left queued together with the COMMIT, and
// runs it all again from the start on an error the dialect calls retryable.
func (s *Store) inPipeTx(ctx context.Context, fn func(p *pipe) error) error {
	if s.dialect.Pipeline == nil {
		return s.inTx(ctx, func(tx *sql.Tx) error {
			p := &pipe{s: s, ctx: ctx, tx: tx}
			if err := fn(p); err != nil {
				return err
			}
			return p.flush()
		})
	}
	return s.retrying(ctx, func() error { return s.tryPipeTx(ctx, s.write, "BEGIN", fn) })
}

// inReadPipeTx is inPipeTx for reads: fn runs in a read-only transaction
// of the read pool, once (nothing it reads is retryable).
func (s *Store) inReadPipeTx(ctx context.Context, fn func(p *pipe) error) error {
	if s.dialect.Pipeline != nil {
		return s.tryPipeTx(ctx, s.read, "BEGIN READ ONLY", fn)
	}
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	p := &pipe{s: s, ctx: ctx, tx: tx, uncached: true}
	if err := fn(p); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := p.flush(); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// tryPipeTx runs fn once in a transaction that begin starts on a
// connection of db, through the dialect's Pipeline.
func (s *Store) tryPipeTx(ctx context.Context, db *sql.DB, begin string, fn func(p *pipe) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(raw any) error {
		p := &pipe{s: s, ctx: ctx, raw: raw}
		p.queue(PipeStmt{Query: begin, Wrap: func(err error) error { return fmt.Errorf("begin: %w", err) }})
		err := fn(p)
		if err == nil {
			p.queue(PipeStmt{Query: "COMMIT", Wrap: func(err error) error { return fmt.Errorf("commit: %w", err) }})
			err = p.flush()
		}
		if err != nil {
			// Whatever was sent is undone. If even the ROLLBACK fails the
			// connection is left inside a transaction, which the driver's
			// session reset sees and discards the connection for.
			p.queued = p.queued[:0]
			_ = s.dialect.Pipeline(context.WithoutCancel(ctx), raw, []PipeStmt{{Query: "ROLLBACK"}})
		}
		return err
	})
}

// queueKeyReads queues, for each chunk of keys (at most BatchRows), the
// statements stmts makes of a VALUES list of (parent, key) rows, its text
// and arguments, to be joined with a table by probeJoin; ProbeJoins goes
// first.
func (s *Store) queueKeyReads(p *pipe, parent string, keys []string, stmts func(values string, args []any) []PipeStmt) {
	p.probeJoins()
	_ = chunks(keys, s.maxRows, func(ks []string) error {
		rb := newRowsBuilder(parent)
		for _, k := range ks {
			rb.add("($1, ?)", k)
		}
		for _, st := range stmts(rb.String(), rb.args) {
			p.queue(st)
		}
		return nil
	})
}
