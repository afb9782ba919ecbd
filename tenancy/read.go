package tenancy

import (
	"context"

	"gorm.io/gorm"
)

// ReadOnce is WithTx for a function that runs exactly one statement, a
// read: a point lookup or one page of a list. The transaction is READ ONLY,
// and on a handle from Open its pin and the statement go out in one write
// and run in one transaction, so the whole scope is one round trip
// (pipeline.go).
//
// A second statement is refused before it is sent (the COMMIT already went
// out behind the first, so it would run outside the transaction): it fails
// with ErrReadOnce, and the scope with it. A write fails as PostgreSQL
// refuses it in a read-only transaction (25006). Use WithTx for anything
// else.
func ReadOnce(ctx context.Context, r Resolved, fn func(tx *gorm.DB) error) error {
	return WithTx(context.WithValue(ctx, readOnceKey{}, true), r, fn)
}

// ErrReadOnce is the error of a second statement in a ReadOnce scope.
var ErrReadOnce = errorString("tenancy: a ReadOnce scope runs one statement; use WithTx")

type errorString string

func (e errorString) Error() string { return string(e) }

// readOnceKey marks the context of a ReadOnce scope for withPin.
type readOnceKey struct{}

// readOnce reports whether ctx is a ReadOnce scope's.
func readOnce(ctx context.Context) bool { return ctx.Value(readOnceKey{}) != nil }
