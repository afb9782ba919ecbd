package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/token"
)

const (
	requestIDKey = "tenantry.request_id"
	tenantKey    = "tenantry.tenant_name"
	tenantRowKey = "tenantry.tenant"
	// endedKey holds why a request's context ended before its handlers
	// returned, if it did: the access log says so instead of a bare status.
	endedKey = "tenantry.ended"
	// maxRequestID bounds a client-supplied X-Request-ID that we echo and log.
	maxRequestID = 64
)

// requestID adopts a well-formed X-Request-ID or makes one, and echoes it.
func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-ID")
	if !validRequestID(id) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Set(requestIDKey, id)
	c.Header("X-Request-ID", id)
	c.Next()
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// accessLog writes one JSON line per request with the route template, never
// the raw path's ids, and never the Authorization header.
func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	level, attrs := slog.LevelInfo, []slog.Attr(nil)
	if ended := c.GetString(endedKey); ended != "" {
		// The status below is what the handler chose; whether the
		// client got it is doubtful, so say what really happened.
		level, attrs = slog.LevelWarn, append(attrs, slog.String("ended", ended))
	}
	s.log.LogAttrs(c.Request.Context(), level, "request", append(attrs,
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.Int("status", c.Writer.Status()),
		slog.Float64("latency_ms", float64(time.Since(start).Microseconds())/1000),
		slog.Int("bytes", c.Writer.Size()),
		slog.String("request_id", c.GetString(requestIDKey)),
		slog.String("tenant", c.GetString(tenantKey)),
	)...)
}

// deadline gives every request a server-side deadline, carried by its
// context into the tenant lookup, the scope and every query, and applied to
// reading its body too. It is below the HTTP server's write timeout, so the
// work ends, and its answer (503 with Retry-After) is written, while the
// client can still receive it.
func (s *Server) deadline(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.requestTimeout)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	if dl, ok := ctx.Deadline(); ok && c.Request.ContentLength != 0 {
		// A body that trickles in cannot outlast the request; writers
		// without a connection (tests' recorders) do not support it.
		// Only while a body remains: net/http clears the deadline when
		// the body hits EOF and starts its background read of the
		// connection. Without a body that read is already running, and a
		// deadline set on it now would fire mid-handler, and net/http
		// would take it for a dead client and cancel the connection's
		// context, and with it every later request on that keep-alive
		// connection.
		_ = http.NewResponseController(c.Writer).SetReadDeadline(dl)
	}
	c.Next()
	switch cause := context.Cause(ctx); {
	case cause == nil:
	case errors.Is(cause, context.DeadlineExceeded):
		c.Set(endedKey, "deadline exceeded")
	case errors.Is(cause, context.Canceled):
		c.Set(endedKey, "client went away")
	default:
		c.Set(endedKey, cause.Error()) // a shutdown that cancelled it, say
	}
}

// recovery turns a panic into a logged stack and a generic 500 problem.
// The tenant transaction was already rolled back by the scope.
func (s *Server) recovery(c *gin.Context) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if r == http.ErrAbortHandler {
			panic(r)
		}
		s.log.Error("panic", "request_id", c.GetString(requestIDKey), "tenant", c.GetString(tenantKey),
			"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		if !c.Writer.Written() {
			s.fail(c, fmt.Errorf("panic: %v", r))
		}
		c.Abort()
	}()
	c.Next()
}

// limitBody caps every request body.
func (s *Server) limitBody(c *gin.Context) {
	if c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.bodyLimit)
	}
	c.Next()
}

// requireTenant resolves the token's tenant to a registry entry that may be
// served (active, or read-only for reads). A token without a tenant, or
// naming a tenant that does not exist or is suspended, is forbidden: the
// token itself was valid. A write to a read-only tenant is a conflict.
func (s *Server) requireTenant(c *gin.Context) {
	cl := claimsOf(c)
	if cl == nil || cl.Tenant == "" {
		s.fail(c, forbidden("the token names no tenant"))
		return
	}
	c.Set(tenantKey, cl.Tenant)
	t, err := s.dir.Active(c.Request.Context(), cl.Tenant)
	if err == nil && !s.auth.Bound(cl, t.Row()) {
		t, err = s.currentIncarnation(c, cl, t)
	}
	switch {
	case errors.Is(err, models.ErrNotFound):
		s.fail(c, forbidden("the token's tenant does not exist"))
		return
	case errors.Is(err, models.ErrForbidden):
		s.fail(c, forbidden("the token's tenant is not active"))
		return
	case err != nil:
		s.fail(c, err)
		return
	}
	if t.ReadOnly() && !readMethod(c.Request.Method) {
		// Turned away before any SQL; the scope's SELECT-only role would
		// refuse the write anyway (a handler bug cannot get past it).
		s.fail(c, &clientError{Kind: models.ErrReadOnly, Detail: "the tenant is read-only: reads are served, writes are refused until an admin makes it active"})
		return
	}
	c.Set(tenantRowKey, t)
	c.Next()
}

func readMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// currentIncarnation is called when a token is not bound to the cached
// tenant t. The cache may hold an older incarnation than the registry
// (another instance deleted and re-created the name); if so, it evicts the
// name and judges the token against the fresh row. A token for an earlier
// incarnation reads like one for a tenant that does not exist (403, the
// same words): its tenant is gone, the signature was fine.
func (s *Server) currentIncarnation(c *gin.Context, cl *token.Claims, t tenancy.Resolved) (tenancy.Resolved, error) {
	ctx := c.Request.Context()
	fresh, err := s.dir.Get(ctx, cl.Tenant)
	if err == nil && fresh.ID != t.ID() {
		s.dir.Forget(cl.Tenant)
		t, err = s.dir.Active(ctx, cl.Tenant)
	}
	if err == nil && !s.auth.Bound(cl, t.Row()) {
		var iat time.Time
		if cl.IssuedAt != nil {
			iat = cl.IssuedAt.Time
		}
		row := t.Row()
		err = fmt.Errorf("token for tenant %q issued at %s (tenant id %d) is not for its incarnation %d created at %s: %w",
			cl.Tenant, iat.Format(time.RFC3339), cl.TenantID, row.ID, row.CreatedAt.Format(time.RFC3339), models.ErrNotFound)
	}
	return t, err
}

// handle adapts a handler that returns an error.
func (s *Server) handle(fn func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := fn(c); err != nil {
			s.fail(c, err)
		}
	}
}
