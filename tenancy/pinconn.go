package tenancy

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// The driver below lets a scope begin its transaction and pin its schema
// without a round trip of their own. When the context of BeginTx carries a
// pin, a connection made by Open holds its BEGIN and pin back and sends
// them in the same write as the scope's first statement (pipeline.go); a
// connection without the pipe sends "BEGIN; SELECT set_config(...)..." as
// its BEGIN. Either way the transaction never exists unpinned. Everything
// else (queries, commit, rollback, resets) is pgx's stdlib driver
// unchanged.

// pinKey carries a scope's *pinRequest in a context.
type pinKey struct{}

// pinRequest is the BEGIN statement of a scope, and whether a connection
// sent it. A handle not opened by Open has no pinConn: nothing sets done,
// and the scope pins with a statement of its own instead (InSchema).
type pinRequest struct {
	// spec is the pin, validated by withPin; begin() builds its SQL when
	// a path needs it.
	spec pinSpec
	done bool
	// pinErr is the error the pin drew when it went out with the scope's
	// first statement (pipeline.go); the statement failed with it.
	pinErr error
	// once: a ReadOnce scope, whose COMMIT follows its one statement.
	once bool
	// pin is the prepared pin (pin.go) of a tenant scope, which then goes
	// out on the extended protocol in front of the scope's first
	// statement (pipeline.go); the read pin of a ReadOnce scope.
	pin *pinBind
}

// begin returns the simple-protocol statement that begins the scope's
// transaction and pins it.
func (r *pinRequest) begin() string {
	sel, _ := pinSQL(r.spec) // withPin validated the spec
	if r.once {
		return "BEGIN READ ONLY; " + sel
	}
	return "BEGIN; " + sel
}

// withPin returns ctx carrying the pin of a transaction pinned as p says
// (pinSQL, or the prepared read pin, builds its SQL).
func withPin(ctx context.Context, p pinSpec) (context.Context, *pinRequest, error) {
	if !validSchema(p.Schema) || (p.Role != "" && !validRole(p.Role)) {
		_, err := pinSQL(p) // names what is wrong
		return ctx, nil, err
	}
	req := &pinRequest{spec: p, once: readOnce(ctx)}
	if p.Role != "" {
		var err error
		if req.pin, err = pinBinds.get(p, req.once); err != nil {
			return ctx, nil, err
		}
	}
	return context.WithValue(ctx, pinKey{}, req), req, nil
}

// connector wraps pgx's stdlib connector so its connections honour pins.
type connector struct {
	driver.Connector
	limits connLimits  // recycle.go
	pins   *namedStmts // pipeline.go
}

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	p := &pipe{pins: c.pins}
	conn, err := c.Connector.Connect(context.WithValue(ctx, pipeKey{}, p))
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(*stdlib.Conn)
	if !ok {
		conn.Close()
		return nil, errors.New("tenancy: unexpected driver connection type")
	}
	pc := &pinConn{Conn: sc, budget: c.limits.budget()}
	if p.w != nil {
		pc.pipe = p
	}
	return pc, nil
}

// pinConn is a stdlib connection whose BeginTx sends a scope's pin with
// its BEGIN, or with its first statement when it reads and writes through
// a pipe (pipeline.go).
type pinConn struct {
	*stdlib.Conn
	budget *connBudget // recycle.go; nil without limits
	pipe   *pipe
	live   liveness // alive_*.go
}

func (c *pinConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	req, ok := ctx.Value(pinKey{}).(*pinRequest)
	c.budget.began(req)
	if !ok || req.done {
		// No scope, or a second transaction begun with a scope's context
		// (one pin per scope): a plain BEGIN.
		tx, err := c.Conn.BeginTx(ctx, opts)
		if err != nil {
			return nil, beginFailed(ctx, c.Conn.Conn(), err)
		}
		return tx, nil
	}
	if sql.IsolationLevel(opts.Isolation) != sql.LevelDefault || opts.ReadOnly {
		return nil, errors.New("tenancy: a scoped transaction takes the default options")
	}
	if c.pipe != nil {
		return c.beginDeferred(ctx, req)
	}
	pc := c.Conn.Conn()
	if pc.IsClosed() {
		return nil, driver.ErrBadConn
	}
	tx, err := pc.BeginTx(ctx, pgx.TxOptions{BeginQuery: req.begin()})
	if err != nil {
		// The BEGIN ran and the pin failed: end the aborted transaction so
		// the connection goes back to the pool clean (if this fails too,
		// the pool's reset check discards the connection).
		if !pc.IsClosed() && pc.PgConn().TxStatus() != 'I' {
			rctx, cancel := rollbackContext(ctx)
			_, _ = pc.Exec(rctx, "ROLLBACK")
			cancel()
		}
		return nil, beginFailed(ctx, pc, err)
	}
	req.done = true
	return pinnedTx{ctx: ctx, tx: tx}, nil
}

// beginFailed decides whether database/sql may retry a failed BEGIN on
// another connection, which it does when the driver answers
// driver.ErrBadConn (twice on pooled connections, then once on a new one).
// A retry is safe when nothing reached the server (pgconn.SafeToRetry), and
// also when the connection died during the BEGIN: the begin statement and
// the pin write nothing, and a transaction cannot outlive its connection.
// That second case is the common one: a pooled connection whose backend
// was terminated (a restart, pg_terminate_backend) still accepts our write
// and then reads the server's farewell, so something was "sent". A request
// whose context has ended is not retried.
func beginFailed(ctx context.Context, pc *pgx.Conn, err error) error {
	if ctx.Err() != nil {
		return err
	}
	if pgconn.SafeToRetry(err) || pc.IsClosed() {
		return fmt.Errorf("%w: begin on a dead connection: %v", driver.ErrBadConn, err)
	}
	return err
}

type pinnedTx struct {
	ctx context.Context
	tx  pgx.Tx
}

func (t pinnedTx) Commit() error { return t.tx.Commit(t.ctx) }

// Rollback must run even when the request's context was cancelled, which is
// often why it runs at all.
func (t pinnedTx) Rollback() error {
	ctx, cancel := rollbackContext(t.ctx)
	defer cancel()
	return t.tx.Rollback(ctx)
}

// rollbackTimeout bounds a rollback against a server that stopped
// answering; past it pgx closes the connection, which ends the transaction
// on the server as surely.
const rollbackTimeout = 5 * time.Second

func rollbackContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
}
