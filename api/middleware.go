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
	"github.com/tenantry/tenantry/ginmw"
)

const (
	requestIDKey = "tenantry.request_id"
	// endedKey holds why a request's context ended before its handlers
	// returned, if it did: the access log says so instead of a bare status.
	endedKey = "tenantry.ended"
	// maxRequestID bounds a client-supplied X-Request-ID that we echo and log.
	maxRequestID = 64
	// headerRequestID is X-Request-ID as net/http stores it: a key already
	// in canonical form is used as is, any other spelling is copied into it
	// on every Get and Set, an allocation per request.
	headerRequestID = "X-Request-Id"
)

// requestID adopts a well-formed X-Request-ID or makes one, and echoes it.
func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader(headerRequestID)
	if !validRequestID(id) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Set(requestIDKey, id)
	c.Header(headerRequestID, id)
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
	level := slog.LevelInfo
	// An array on the stack, not a slice grown per request.
	var a [8]slog.Attr
	attrs := a[:0]
	if ended := c.GetString(endedKey); ended != "" {
		// The status below is what the handler chose; whether the
		// client got it is doubtful, so say what really happened.
		level, attrs = slog.LevelWarn, append(attrs, slog.String("ended", ended))
	}
	attrs = append(attrs,
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.Int("status", c.Writer.Status()),
		slog.Float64("latency_ms", float64(time.Since(start).Microseconds())/1000),
		slog.Int("bytes", c.Writer.Size()),
		slog.String("request_id", c.GetString(requestIDKey)),
		slog.String("tenant", ginmw.TenantName(c)),
	)
	s.log.LogAttrs(c.Request.Context(), level, "request", attrs...)
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
		s.log.Error("panic", "request_id", c.GetString(requestIDKey), "tenant", ginmw.TenantName(c),
			"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		if !c.Writer.Written() {
			s.fail(c, fmt.Errorf("panic: %v", r))
		}
		c.Abort()
	}()
	c.Next()
}

// limitBody caps every request body. net/http gives a request without a
// body http.NoBody, which has nothing to cap: wrapping it would only cost
// an allocation per GET.
func (s *Server) limitBody(c *gin.Context) {
	if c.Request.Body != nil && c.Request.Body != http.NoBody {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.bodyLimit)
	}
	c.Next()
}

// handle adapts a handler that returns an error.
func (s *Server) handle(fn func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := fn(c); err != nil {
			s.fail(c, err)
		}
	}
}
