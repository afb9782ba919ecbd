package tenancy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// Limits bounds one scoped transaction. The values become SET LOCAL settings
// in the scope's first statement, so they end with the transaction too.
type Limits struct {
	// Statement caps each statement (statement_timeout).
	Statement time.Duration
	// Lock caps each wait for a lock (lock_timeout).
	Lock time.Duration
	// Idle caps time spent idle inside the transaction
	// (idle_in_transaction_session_timeout): a handler that stalls holding
	// a pooled connection is cut off by the server.
	Idle time.Duration
}

// RequestLimits are the limits of an API request's transaction (security
// anchors D7: statement 5 s, lock 2 s, idle-in-transaction 10 s); together
// they stay below the 25 s shutdown budget.
var RequestLimits = Limits{Statement: 5 * time.Second, Lock: 2 * time.Second, Idle: 10 * time.Second}

// DDLLimits are the limits of onboarding and migration transactions: DDL
// may run longer but must not queue for long behind a request's locks.
var DDLLimits = Limits{Statement: 60 * time.Second, Lock: 5 * time.Second, Idle: 30 * time.Second}

// ErrNested is returned when a scope is opened inside another. Nested GORM
// transactions are savepoints, and rolling one back undoes a SET LOCAL made
// after it, so the pin must be made exactly once, by the outermost scope.
var ErrNested = errors.New("tenancy: nested scope")

type scopeKey struct{}

// WithTx runs fn in one transaction scoped to tenant t's schema, and commits
// it if fn returns nil. It rolls back if fn fails or panics, or if ctx is
// cancelled. The transaction's first statement, sent with its BEGIN in one
// round trip (see pinconn.go), pins search_path LOCAL to the tenant schema
// alone, sets the limits and fails if the schema is missing; the pin ends
// with the transaction, so nothing of it can survive on the pooled
// connection. Inside fn use only tx: the root db is another
// connection with an empty search_path, and unqualified queries fail there.
func WithTx(ctx context.Context, db *gorm.DB, t models.Tenant, fn func(tx *gorm.DB) error) error {
	return InSchema(ctx, db, t.SchemaName, RequestLimits, fn)
}

// InSchema is WithTx for a bare schema name and explicit limits; the
// migration runner and onboarding use it.
func InSchema(ctx context.Context, db *gorm.DB, schema string, lim Limits, fn func(tx *gorm.DB) error) error {
	if !validSchema(schema) {
		return fmt.Errorf("tenancy: schema %q: %w", schema, models.ErrInvalid)
	}
	if ctx.Value(scopeKey{}) != nil || isTx(db) {
		return ErrNested
	}
	ctx, req := withPin(context.WithValue(ctx, scopeKey{}, schema), schema, lim)
	return classify(db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Fail closed on any handle: when no pinConn sent the pin with
		// BEGIN (a handle not made by Open), pin now, before fn runs.
		if !req.done {
			if err := pin(tx, schema, lim); err != nil {
				return err
			}
		}
		return fn(tx)
	}))
}

// isTx reports whether db is already inside a transaction: only a
// transaction's connection can commit.
func isTx(db *gorm.DB) bool {
	_, ok := db.Statement.ConnPool.(gorm.TxCommitter)
	return ok
}

// pinSQL pins an already open transaction (a scratch schema created inside
// it, for instance) the way withPin pins a new one. set_config reads its
// value as an identifier list, so the schema goes in quoted; $5 checks that
// the schema exists, because PostgreSQL silently skips a missing schema in
// search_path and the scope must fail closed instead.
const pinSQL = `SELECT set_config('search_path', $1, true),
	set_config('statement_timeout', $2, true),
	set_config('lock_timeout', $3, true),
	set_config('idle_in_transaction_session_timeout', $4, true),
	to_regnamespace($5) IS NOT NULL`

func pin(tx *gorm.DB, schema string, lim Limits) error {
	q := quoteIdent(schema)
	var path, st, lt, it string
	var exists bool
	row := tx.Raw(pinSQL, q, ms(lim.Statement), ms(lim.Lock), ms(lim.Idle), q).Row()
	if err := row.Scan(&path, &st, &lt, &it, &exists); err != nil {
		return fmt.Errorf("pin %s: %w", schema, err)
	}
	if !exists {
		return fmt.Errorf("pin %s: %w: schema does not exist", schema, models.ErrUnavailable)
	}
	return nil
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
