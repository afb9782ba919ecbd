package tenancy

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantry/tenantry/models"
)

// Classify wraps a database, driver or network error in the models
// vocabulary so callers choose a response with errors.Is, while the
// original stays in the chain for the log. Errors that already carry a
// kind, and nil, pass through unchanged; an error the tables below do not
// know stays unclassified (a server error).
//
// The rule: a fault the caller can cure by retrying (the database is away,
// restarting, overloaded, or our own deadline ran out) is ErrUnavailable,
// which the API answers 503 with Retry-After. During a database restart
// nearly every error is a network or driver error, not a SQLSTATE, so those
// are listed as carefully as the SQLSTATEs.
func Classify(err error) error {
	if err == nil || kindOf(err) != nil {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if kind := sqlstateKind(pgErr.Code); kind != nil {
			return fmt.Errorf("%w: %w", kind, err)
		}
		return err
	}
	for _, f := range transportFaults {
		if f.match(err) {
			return fmt.Errorf("%w: %w", models.ErrUnavailable, err)
		}
	}
	return err
}

// classify is Classify for this package's own call sites.
func classify(err error) error { return Classify(err) }

func kindOf(err error) error {
	for _, k := range []error{models.ErrInvalid, models.ErrNotFound, models.ErrConflict, models.ErrForbidden, models.ErrUnavailable, models.ErrReadOnly} {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// errDBClosedText is database/sql's message once the pool was closed (its
// sentinel is unexported): a request still running while the process shuts
// down, which the client may retry against another instance.
const errDBClosedText = "sql: database is closed"

// transportFaults are the errors that mean "no answer from the database",
// not "the database refused this request": each is ErrUnavailable.
var transportFaults = []struct {
	name  string
	match func(error) bool
}{
	// Our own deadline or the client's cancellation ended the wait.
	{"context deadline or cancel", func(err error) bool {
		return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
	}},
	// pgconn says nothing was sent, or a network timeout ended the wait.
	{"pgconn safe to retry or timeout", func(err error) bool { return pgconn.SafeToRetry(err) || pgconn.Timeout(err) }},
	{"connect failed", func(err error) bool { var ce *pgconn.ConnectError; return errors.As(err, &ce) }},
	{"pgconn conn closed", func(err error) bool { return errors.Is(err, pgconn.ErrConnClosed) }},
	{"database/sql bad or done connection", func(err error) bool {
		return errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone)
	}},
	{"database/sql pool closed", func(err error) bool { return strings.Contains(err.Error(), errDBClosedText) }},
	{"refused, reset, broken pipe", func(err error) bool {
		return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
			errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, syscall.EHOSTUNREACH)
	}},
	{"connection ended mid-message", func(err error) bool {
		return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
	}},
	{"other network error", func(err error) bool { var ne net.Error; return errors.As(err, &ne) }},
}

// sqlstates maps SQLSTATEs (PostgreSQL manual, appendix A) to error kinds.
// A code not listed here (nor in a class below) is a server error.
var sqlstates = map[string]error{
	// The client's input collides with what exists.
	"23505": models.ErrConflict, // unique_violation
	"42P06": models.ErrConflict, // duplicate_schema
	"42P07": models.ErrConflict, // duplicate_table
	"42710": models.ErrConflict, // duplicate_object: a derived role exists already
	// The client's input is not storable; nothing was written.
	"22001": models.ErrInvalid, // string_data_right_truncation (too long)
	"22021": models.ErrInvalid, // character_not_in_repertoire (invalid bytes, NUL)
	"22P02": models.ErrInvalid, // invalid_text_representation
	"22003": models.ErrInvalid, // numeric_value_out_of_range
	// Retryable: the transaction was rolled back whole, a retry may pass.
	"57014": models.ErrUnavailable, // query_canceled (statement_timeout, cancel)
	"55P03": models.ErrUnavailable, // lock_not_available (lock_timeout)
	"40001": models.ErrUnavailable, // serialization_failure
	"40P01": models.ErrUnavailable, // deadlock_detected
	"25P03": models.ErrUnavailable, // idle_in_transaction_session_timeout
	"0A000": models.ErrUnavailable, // feature_not_supported: "cached plan must not change result type"
	// Retryable: the server is going away or not there yet.
	"57P01": models.ErrUnavailable, // admin_shutdown (pg_terminate_backend, fast shutdown)
	"57P02": models.ErrUnavailable, // crash_shutdown
	"57P03": models.ErrUnavailable, // cannot_connect_now (starting up, recovering)
	"57P05": models.ErrUnavailable, // idle_session_timeout
	// A missing table, schema or column inside a scope: the tenant's
	// storage does not match this binary (a dropped schema, or migration
	// skew the version gate did not catch). Unavailable, logged as a
	// server error, never another tenant's data.
	"42P01": models.ErrUnavailable, // undefined_table
	"3F000": models.ErrUnavailable, // invalid_schema_name
	"42703": models.ErrUnavailable, // undefined_column
	// 22023 invalid_parameter_value is deliberately absent: raised by the
	// scope's pin for a tenant role that is gone, it means a stale cached
	// registry row, and the scope itself turns it into ErrRoleGone (503)
	// only there; elsewhere it is the caller's own bad argument.
	// 42501 insufficient_privilege is deliberately absent: inside a scope
	// it means a missing grant or code that tried to cross the tenant
	// boundary. Retrying cannot help and the client did nothing wrong, so
	// it stays a 500 that someone must look at.
}

// sqlstateClasses are whole SQLSTATE classes (the first two characters).
var sqlstateClasses = map[string]error{
	"08": models.ErrUnavailable, // connection_exception
	"53": models.ErrUnavailable, // insufficient_resources (too many connections, out of memory, disk full)
}

func sqlstateKind(code string) error {
	if k, ok := sqlstates[code]; ok {
		return k
	}
	if len(code) == 5 {
		return sqlstateClasses[code[:2]]
	}
	return nil
}
