package tenancy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

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

// RequestLimits are the limits of an API request's transaction: a point
// read or write takes milliseconds, so 5 s per statement, 2 s per lock wait
// and 10 s idle inside a transaction only ever cut runaway work, and they
// stay below the request deadline and the 25 s shutdown budget.
var RequestLimits = Limits{Statement: 5 * time.Second, Lock: 2 * time.Second, Idle: 10 * time.Second}

// DDLLimits are the limits of onboarding and migration transactions: DDL
// may run longer but must not queue for long behind a request's locks.
var DDLLimits = Limits{Statement: 60 * time.Second, Lock: 5 * time.Second, Idle: 30 * time.Second}

// ErrNested is returned when a scope is opened inside another. Nested GORM
// transactions are savepoints, and rolling one back undoes a SET LOCAL made
// after it, so the pin must be made exactly once, by the outermost scope.
var ErrNested = errors.New("tenancy: nested scope")

type scopeKey struct{}

// WithTx runs fn in one transaction scoped to the resolved tenant r, on
// the pool the directory chose for it, and commits it if fn returns nil.
// It rolls back if fn fails or panics, or if ctx is cancelled. The
// transaction's first statement, sent with its BEGIN and with fn's first
// statement in one write (see pipeline.go), pins search_path LOCAL to the
// tenant schema alone, switches LOCAL to the tenant's role (its read-only
// role when the tenant is read-only), sets the limits and fails if the
// schema is missing. The pin ends with the transaction, so nothing of it
// can survive on the pooled connection. When the pin fails, fn's first
// statement fails with its error without running. Inside fn use only tx:
// the root db is another
// connection with an empty search_path, and unqualified queries fail there.
//
// A Resolved that no Directory produced opens nothing (ErrUnresolved). A
// tenant without roles (onboarded before roles existed, and not migrated
// since) is refused with ErrNoRole rather than served as the login role.
// When the tenant's role is gone (ErrRoleGone: the row was a stale
// incarnation), the directory forgets the name, so a retry resolves it
// afresh.
//
// On a handle from Open, a tenant's scopes hold at most its share of the
// pool (PoolConfig.TenantShare); past it WithTx waits up to TenantWait for
// a slot, then returns ErrBusy without touching the database (share.go).
func WithTx(ctx context.Context, r Resolved, fn func(tx *gorm.DB) error) error {
	if r.db == nil || r.dir == nil {
		return ErrUnresolved
	}
	t, db := r.row, r.db
	role, readOnly := t.DBRole, t.Status == models.StatusReadOnly
	if readOnly {
		role = t.DBRoleRead
	}
	if (role == "" || !validRole(role)) && validSchema(t.SchemaName) {
		// No role, or one named the way tenant roles were before they
		// carried the registry id: `tenantry migrate` gives or renames it.
		return fmt.Errorf("tenant %q: %w", t.Name, ErrNoRole)
	}
	release, err := acquireShare(ctx, db, t.SchemaName)
	if err != nil {
		return err
	}
	defer release()
	err = scope(ctx, db, pinSpec{Schema: t.SchemaName, Role: role, Limits: r.limits}, fn)
	if readOnly && isSQLState(err, "42501") {
		// The read-only role has SELECT only: PostgreSQL refused a write
		// that the API should have turned away before it ran.
		return fmt.Errorf("tenant %q: %w: %w", t.Name, models.ErrReadOnly, err)
	}
	if errors.Is(err, ErrRoleGone) || isSQLState(err, "3F000") {
		// The row named a dropped incarnation's role, or a schema that is
		// gone (the tenant moved to another server): evict it, so the
		// retry resolves the tenant from the registry.
		r.dir.Forget(t.Name)
	}
	return err
}

// ErrNoRole means a tenant has no database role yet; `tenantry migrate`
// gives the roles to a fleet onboarded before them. It matches
// models.ErrUnavailable: the tenant is served again once migrated.
var ErrNoRole = fmt.Errorf("tenant has no database role; run tenantry migrate: %w", models.ErrUnavailable)

// InSchema is WithTx for a bare schema name and explicit limits, as the
// login role (no role switch); the migration runner and the drift check
// use it.
func InSchema(ctx context.Context, db *gorm.DB, schema string, lim Limits, fn func(tx *gorm.DB) error) error {
	return scope(ctx, db, pinSpec{Schema: schema, Limits: lim}, fn)
}

// scope runs fn in a transaction pinned as p says.
func scope(ctx context.Context, db *gorm.DB, p pinSpec, fn func(tx *gorm.DB) error) error {
	if !validSchema(p.Schema) {
		return fmt.Errorf("tenancy: schema %q: %w", p.Schema, models.ErrInvalid)
	}
	if ctx.Value(scopeKey{}) != nil || isTx(db) {
		return ErrNested
	}
	ctx, req, err := withPin(context.WithValue(ctx, scopeKey{}, p.Schema), p)
	if err != nil {
		return err
	}
	ran := false
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Fail closed on any handle: when no pinConn sent the pin with
		// BEGIN (a handle not made by Open), pin now, before fn runs.
		if !req.done {
			// A ReadOnce scope is READ ONLY here too; SET TRANSACTION
			// must come before the transaction's first query.
			if req.once {
				if err := tx.Exec("SET TRANSACTION READ ONLY").Error; err != nil {
					return err
				}
			}
			if err := pin(tx, p); err != nil {
				return err
			}
		}
		ran = true
		return fn(tx)
	})
	if (!ran || req.pinErr != nil) && p.Role != "" && isSQLState(err, roleMissingState) {
		return fmt.Errorf("scope %s as %s: %w: %w", p.Schema, p.Role, ErrRoleGone, err)
	}
	return classify(err)
}

// roleMissingState is what the pin's set_config('role', ...) raises for a
// role that does not exist: invalid_parameter_value (PostgreSQL 15 checks
// the value in the GUC's check hook), not undefined_object. It means the
// role of a tenant incarnation is gone only when the pin raised it, before
// fn ran: inside fn the same code is a handler's own invalid argument.
const roleMissingState = "22023"

// ErrRoleGone means the scope's tenant role no longer exists: the registry
// row it came from is stale (typically another instance deleted the tenant,
// and onboarded a successor under the same name, whose roles are named
// after its new id). Nothing ran. It matches models.ErrUnavailable (503
// with Retry-After); a caller that cached the row must evict it
// (Directory.Forget) so the retry resolves the tenant afresh.
var ErrRoleGone = fmt.Errorf("tenant role is gone (a stale registry row): %w", models.ErrUnavailable)

// isTx reports whether db is already inside a transaction: only a
// transaction's connection can commit.
func isTx(db *gorm.DB) bool {
	_, ok := db.Statement.ConnPool.(gorm.TxCommitter)
	return ok
}

// pin pins an already open transaction the way withPin pins a new one.
func pin(tx *gorm.DB, p pinSpec) error {
	sel, err := pinSQL(p)
	if err != nil {
		return err
	}
	if err := tx.Exec(sel).Error; err != nil {
		return fmt.Errorf("pin %s: %w", p.Schema, err)
	}
	return nil
}

func isSQLState(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
