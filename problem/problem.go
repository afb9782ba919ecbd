package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
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
	errUnauthorized = errors.New("unauthorized")
	errTooLarge     = errors.New("request body too large")
	errNoRoute      = errors.New("no such route")
	errNoMethod     = errors.New("method not allowed")
	errBodyTimeout  = errors.New("request body timed out")
	errTooMany      = errors.New("too many requests")
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
	{errUnauthorized, http.StatusUnauthorized, "invalid-token", "Invalid or missing token", 0},
	{models.ErrInvalid, http.StatusBadRequest, "invalid-input", "Invalid input", 0},
	{errBodyTimeout, http.StatusRequestTimeout, "body-timeout", "Request body not received in time", 0},
	{errTooLarge, http.StatusRequestEntityTooLarge, "too-large", "Request body too large", 0},
	{models.ErrForbidden, http.StatusForbidden, "forbidden", "Forbidden", 0},
	{models.ErrNotFound, http.StatusNotFound, "not-found", "Not found", 0},
	{errNoRoute, http.StatusNotFound, "not-found", "Not found", 0},
	{errNoMethod, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", 0},
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
	{errTooMany, http.StatusTooManyRequests, "too-many-requests", "Too many requests", 1},
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

// problemType makes a problem type URI from a slug.
func problemType(slug string) string { return "urn:tenantry:problem:" + slug }

// clientError carries a message fit for the client next to its kind.
type clientError struct {
	kind   error
	detail string
	cause  error
}

func (e *clientError) Error() string {
	if e.cause != nil {
		return e.detail + ": " + e.cause.Error()
	}
	return e.detail
}
func (e *clientError) Unwrap() []error { return []error{e.kind, e.cause} }

func unauthorized(cause error) error {
	return &clientError{kind: errUnauthorized, detail: "a valid bearer token is required", cause: cause}
}
func forbidden(detail string) error { return &clientError{kind: models.ErrForbidden, detail: detail} }
func notFound(detail string) error  { return &clientError{kind: models.ErrNotFound, detail: detail} }
func invalid(detail string) error   { return &clientError{kind: models.ErrInvalid, detail: detail} }
func unavailable(cause error) error {
	return &clientError{kind: models.ErrUnavailable, detail: "not ready", cause: cause}
}

// fail answers err as problem+json and aborts the chain. 4xx details come
// from the error when it was written for clients; 5xx answers say nothing
// of the cause, which goes to the log with the request id and tenant.
func (s *Server) fail(c *gin.Context, err error) {
	retryAfter := 0
	p := Problem{Status: http.StatusInternalServerError, Type: problemType("internal"),
		Title: "Internal server error", Detail: "the server failed to handle the request; quote the request id when reporting it",
		Instance: c.Request.URL.Path, RequestID: c.GetString(requestIDKey)}
	kind := kindOf(err)
	if kind < 0 {
		// A raw database, driver or network error that escaped its
		// package unclassified: classify it here, once for all callers.
		err = tenancy.Classify(err)
		kind = kindOf(err)
	}
	if kind >= 0 {
		k := kinds[kind]
		p.Status, p.Type, p.Title, p.Detail = k.status, problemType(k.slug), k.title, k.title
		retryAfter = k.retryAfter
	}
	var ce *clientError
	var fe *models.FieldError
	var le *limitError
	switch {
	case errors.As(err, &ce):
		p.Detail = ce.detail
	case errors.As(err, &fe):
		p.Detail, p.Field = fe.Error(), fe.Field
	case errors.As(err, &le):
		p.Detail = le.detail
		retryAfter = le.retryAfterSeconds()
	}
	if retryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(retryAfter))
	}
	switch {
	case p.Status == http.StatusUnauthorized:
		c.Header("WWW-Authenticate", `Bearer realm="tenantry", error="invalid_token"`)
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
	level := slog.LevelDebug
	if p.Status >= 500 {
		level = slog.LevelError
	}
	s.log.Log(c.Request.Context(), level, "request failed", "request_id", p.RequestID,
		"tenant", c.GetString(tenantKey), "status", p.Status, "error", err.Error())
	writeProblem(c, p)
}

func writeProblem(c *gin.Context, p Problem) {
	b, err := json.Marshal(p)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"type":"about:blank","title":"Internal server error","status":%d}`, p.Status))
	}
	c.Data(p.Status, "application/problem+json", b)
	c.Abort()
}
