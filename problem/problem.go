// Package problem answers errors as RFC 9457 problem details, by one table
// from error kinds to HTTP statuses.
package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Field     string `json:"field,omitempty"`
}

// Errors of the HTTP layer itself; the rest come from models.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrTooLarge     = errors.New("request body too large")
	ErrNoRoute      = errors.New("no such route")
	ErrNoMethod     = errors.New("method not allowed")
	ErrBodyTimeout  = errors.New("request body timed out")
	ErrTooMany      = errors.New("too many requests")
)

// kinds is the one table from error kind to response; tenancy.Classify
// first turns driver, network and PostgreSQL errors into these kinds.
// Order matters only in that the first match wins. retryAfter, in seconds,
// goes out as Retry-After: a retry of the same request may succeed then.
var kinds = []struct {
	kind       error
	status     int
	slug       string
	title      string
	retryAfter int
}{
	{ErrUnauthorized, http.StatusUnauthorized, "invalid-token", "Invalid or missing token", 0},
	{models.ErrInvalid, http.StatusBadRequest, "invalid-input", "Invalid input", 0},
	{ErrBodyTimeout, http.StatusRequestTimeout, "body-timeout", "Request body not received in time", 0},
	{ErrTooLarge, http.StatusRequestEntityTooLarge, "too-large", "Request body too large", 0},
	{models.ErrForbidden, http.StatusForbidden, "forbidden", "Forbidden", 0},
	{models.ErrNotFound, http.StatusNotFound, "not-found", "Not found", 0},
	{ErrNoRoute, http.StatusNotFound, "not-found", "Not found", 0},
	{ErrNoMethod, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", 0},
	// A write to a read-only tenant conflicts with the tenant's current
	// state, which an admin may change: 409 (RFC 9110 15.5.10), not 403,
	// which here means the token may not use the tenant at all.
	{models.ErrReadOnly, http.StatusConflict, "read-only", "Tenant is read-only", 0},
	{models.ErrConflict, http.StatusConflict, "conflict", "Conflict", 0},
	// A storage quota: the caller is known and may not store more; unlike
	// a 429, waiting does not help.
	{models.ErrQuota, http.StatusForbidden, "quota-exceeded", "Quota exceeded", 0},
	// 429 (RFC 6585 section 4): the tenant's rate, or its share of the
	// database pool, is used up; the database itself is fine. A share
	// frees when one of the tenant's scopes ends, usually within
	// milliseconds: one second is the least Retry-After can say. A rate
	// refusal says its own wait (limitError).
	{ErrTooMany, http.StatusTooManyRequests, "too-many-requests", "Too many requests", 1},
	{tenancy.ErrBusy, http.StatusTooManyRequests, "too-many-requests", "Too many requests", 1},
	// One second: most unavailability here is a restart, a lost
	// connection or a lock wait, over within a second or two; clients
	// that back off exponentially start from it.
	{models.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "Service unavailable", 1},
}

// kindOf returns the index of err's row in kinds, or -1.
func kindOf(err error) int {
	for i, k := range kinds {
		if errors.Is(err, k.kind) {
			return i
		}
	}
	return -1
}

// Type makes a problem type URI from a slug of the table.
func Type(slug string) string { return "urn:tenantry:problem:" + slug }

// ClientError carries a message fit for the client next to its kind (a
// row of the table) and, for the log only, its cause. RetryAfter, when
// set, overrides the kind's Retry-After.
type ClientError struct {
	Kind       error
	Detail     string
	Cause      error
	RetryAfter time.Duration
}

func (e *ClientError) Error() string {
	if e.Cause != nil {
		return e.Detail + ": " + e.Cause.Error()
	}
	return e.Detail
}

// Unwrap gives errors.Is the kind and the cause.
func (e *ClientError) Unwrap() []error { return []error{e.Kind, e.Cause} }

// retryAfterSeconds rounds the wait up to whole seconds, at least 1:
// Retry-After takes an integer, and 0 would invite an immediate retry that
// fails too.
func (e *ClientError) retryAfterSeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// Client returns an error of kind whose detail the client may read.
func Client(kind error, detail string) error { return &ClientError{Kind: kind, Detail: detail} }

// Unauthorized is a 401: no valid bearer token. The cause is logged only.
func Unauthorized(cause error) error {
	return &ClientError{Kind: ErrUnauthorized, Detail: "a valid bearer token is required", Cause: cause}
}

// Forbidden is a 403 with detail for the client.
func Forbidden(detail string) error { return Client(models.ErrForbidden, detail) }

// NotFound is a 404 with detail for the client.
func NotFound(detail string) error { return Client(models.ErrNotFound, detail) }

// Invalid is a 400 with detail for the client.
func Invalid(detail string) error { return Client(models.ErrInvalid, detail) }

// Unavailable is a 503 saying "not ready"; the cause is logged only.
func Unavailable(cause error) error {
	return &ClientError{Kind: models.ErrUnavailable, Detail: "not ready", Cause: cause}
}

// From builds the answer to err: its problem, the Retry-After seconds (0:
// none) and err as classified (tenancy.Classify), for the log. 4xx details
// come from the error when it was written for clients; 5xx answers say
// nothing of the cause.
func From(err error) (Problem, int, error) {
	retryAfter := 0
	p := Problem{Status: http.StatusInternalServerError, Type: Type("internal"),
		Title: "Internal server error", Detail: "the server failed to handle the request; quote the request id when reporting it"}
	kind := kindOf(err)
	if kind < 0 {
		// A raw database, driver or network error that escaped its
		// package unclassified: classify it here, once for all callers.
		err = tenancy.Classify(err)
		kind = kindOf(err)
	}
	if kind >= 0 {
		k := kinds[kind]
		p.Status, p.Type, p.Title, p.Detail = k.status, Type(k.slug), k.title, k.title
		retryAfter = k.retryAfter
	}
	var ce *ClientError
	var fe *models.FieldError
	switch {
	case errors.As(err, &ce):
		p.Detail = ce.Detail
		if ce.RetryAfter > 0 {
			retryAfter = ce.retryAfterSeconds()
		}
	case errors.As(err, &fe):
		p.Detail, p.Field = fe.Error(), fe.Field
	}
	switch {
	case errors.Is(err, tenancy.ErrBusy):
		p.Detail = "the tenant already uses its whole share of the database connections; retry shortly"
	case p.Status == http.StatusServiceUnavailable:
		switch {
		case errors.Is(err, tenancy.ErrBehind):
			p.Detail = "the tenant's schema is being migrated; retry shortly"
		case ce == nil:
			p.Detail = "the database cannot serve this request right now; retry shortly"
		}
	}
	return p, retryAfter, err
}

// Write sends p as application/problem+json, with Retry-After when
// retryAfter is positive and, on a 401, the Bearer challenge.
func Write(w http.ResponseWriter, p Problem, retryAfter int) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("Www-Authenticate", `Bearer realm="tenantry", error="invalid_token"`) // canonical: not copied on Set
	}
	b, err := json.Marshal(p)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"type":"about:blank","title":"Internal server error","status":%d}`, p.Status))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_, _ = w.Write(b)
}
