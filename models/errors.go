package models

import (
	"errors"
	"fmt"
)

// The error vocabulary. Packages wrap these with context; the API maps each
// kind to one HTTP status in one table.
var (
	// ErrNotFound: the thing asked for does not exist (in this tenant).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the thing to create exists already, or collides with one.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the input breaks a rule; nothing was changed.
	ErrInvalid = errors.New("invalid input")
	// ErrForbidden: the caller is known but may not act on this tenant.
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable: the storage cannot serve the request now (a missing
	// tenant schema, a timeout, a lost connection); the caller may retry.
	ErrUnavailable = errors.New("unavailable")
	// ErrReadOnly: the tenant is read-only and the request would write.
	ErrReadOnly = errors.New("tenant is read-only")
	// ErrQuota: the tenant has used up a storage quota; nothing was
	// written. Retrying does not help until it deletes data or the quota
	// is raised.
	ErrQuota = errors.New("quota exceeded")
)

// FieldError says which input field broke which rule. It matches ErrInvalid
// under errors.Is.
type FieldError struct {
	Field  string
	Reason string
}

// Invalid returns a FieldError for field.
func Invalid(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

func (e *FieldError) Error() string { return fmt.Sprintf("%s %s", e.Field, e.Reason) }

// Is makes errors.Is(err, ErrInvalid) true for every FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }
