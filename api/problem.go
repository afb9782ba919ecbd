package api

import (
	"errors"
	"log/slog"

	"github.com/gin-gonic/gin"
	"github.com/tenantry/tenantry/ginmw"
	"github.com/tenantry/tenantry/problem"
)

// The HTTP layer's error kinds, rows of the one table in package problem.
var (
	errUnauthorized = problem.ErrUnauthorized
	errTooLarge     = problem.ErrTooLarge
	errNoRoute      = problem.ErrNoRoute
	errNoMethod     = problem.ErrNoMethod
	errBodyTimeout  = problem.ErrBodyTimeout
	errTooMany      = problem.ErrTooMany
)

type clientError = problem.ClientError

func notFound(detail string) error  { return problem.NotFound(detail) }
func invalid(detail string) error   { return problem.Invalid(detail) }
func unavailable(cause error) error { return problem.Unavailable(cause) }

// fail answers err as problem+json and aborts the chain. 4xx details come
// from the error when it was written for clients; 5xx answers say nothing
// of the cause, which goes to the log with the request id and tenant.
func (s *Server) fail(c *gin.Context, err error) {
	p, retryAfter, err := problem.From(err)
	p.Instance, p.RequestID = c.Request.URL.Path, c.GetString(requestIDKey)
	if le := (*limitError)(nil); errors.As(err, &le) {
		p.Detail, retryAfter = le.detail, le.retryAfterSeconds()
	}
	level := slog.LevelDebug
	if p.Status >= 500 {
		level = slog.LevelError
	}
	s.log.Log(c.Request.Context(), level, "request failed", "request_id", p.RequestID,
		"tenant", ginmw.TenantName(c), "status", p.Status, "error", err.Error())
	problem.Write(c.Writer, p, retryAfter)
	c.Abort()
}
