package tenancy

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantry/tenantry/models"
)

// classify wraps a database error in the models vocabulary so callers can
// choose a response with errors.Is, while the original stays in the chain
// for the log. Errors that already carry a kind pass through unchanged.
func classify(err error) error {
	if err == nil || kindOf(err) != nil {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", models.ErrUnavailable, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if kind := sqlstateKind(pgErr.Code); kind != nil {
			return fmt.Errorf("%w: %w", kind, err)
		}
		return err
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return fmt.Errorf("%w: %w", models.ErrUnavailable, err)
	}
	return err
}

func kindOf(err error) error {
	for _, k := range []error{models.ErrInvalid, models.ErrNotFound, models.ErrConflict, models.ErrForbidden, models.ErrUnavailable} {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// sqlstateKind maps SQLSTATEs (PostgreSQL errcodes appendix) to error kinds.
// Undefined tables and schemas inside a tenant scope mean that tenant's
// storage is broken, not that the client erred: unavailable, never data.
func sqlstateKind(code string) error {
	switch code {
	case "23505", "42P06", "42P07": // unique_violation, duplicate_schema, duplicate_table
		return models.ErrConflict
	case "22001", "22021", "22P02", "22003": // too long, bad bytes, bad text, out of range
		return models.ErrInvalid
	case "57014", "55P03", "57P01", "57P02", "57P03", "40001", "40P01", "25P03", "53300", "0A000":
		// timeouts, lock waits, shutdowns, serialization, idle-in-tx, too many
		// connections, cached plan changed: all retryable.
		return models.ErrUnavailable
	case "42P01", "3F000", "42703":
		// A missing table, schema or column inside a scope: the tenant's
		// storage does not match this binary (a dropped schema, or
		// migration skew the version gate did not catch). Unavailable,
		// logged as a server error, never another tenant's data.
		return models.ErrUnavailable
	}
	if len(code) == 2+3 && code[:2] == "08" { // connection exceptions
		return models.ErrUnavailable
	}
	return nil
}
