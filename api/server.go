// Package api is tenantry's own HTTP service: its routes, handlers,
// metrics and OpenAPI document. It is built on the public packages as any
// program would be: tokens and tenant resolution come from ginmw (over
// token and tenancy), error answers from problem; it holds no database
// handle of its own.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tenantry/tenantry/ginmw"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/token"
	"gorm.io/gorm"
)

// Config configures a Server.
type Config struct {
	Auth   token.Config
	Logger *slog.Logger
	// BodyLimit caps request bodies; 0 means DefaultBodyLimit.
	BodyLimit int64
	// TenantLabelCap, when positive, adds a per-tenant request counter
	// for at most this many tenants (the rest count as one); 0 keeps
	// tenants out of metric labels entirely.
	TenantLabelCap int
	// RequestTimeout is every request's server-side deadline; 0 means
	// DefaultRequestTimeout. Keep it below the HTTP server's write timeout.
	RequestTimeout time.Duration
	// Monitor answers /readyz and the fleet metrics on a connection
	// budget of its own (tenancy.OpenMonitor); nil shares the directory's
	// pool, which is fine for tests but lets busy tenants make the
	// instance unready.
	Monitor *tenancy.Monitor
	// MetricsToken, when set, is the bearer token /metrics requires; its
	// holder sees tenant-labelled series too.
	MetricsToken string
	// MetricsElsewhere keeps /metrics off this router: the caller serves
	// MetricsHandler on an internal address instead.
	MetricsElsewhere bool
	// RateLimit is each tenant's request rate on /items; the zero value
	// turns it off.
	RateLimit RateLimit
	// Quota caps each tenant's storage; the zero value means none.
	Quota Quota
}

// DefaultRequestTimeout lets a scope's statement_timeout (5 s,
// tenancy.RequestLimits) fire first, so the usual failure is the database's
// own precise error, and leaves room for the answer inside the 30 s write
// timeout and the 25 s shutdown budget that stays under Kubernetes' 30 s
// grace period.
const DefaultRequestTimeout = 10 * time.Second

// DefaultBodyLimit caps request bodies at 64 KiB: the largest valid item is
// about 9 KiB of JSON (200 + 2000 characters of up to 4 bytes each).
const DefaultBodyLimit = 64 << 10

// Server serves the HTTP API. It holds no database handle: tenant data
// is reached through the directory's resolved tenants (tenancy.WithTx),
// readiness and fleet figures through a tenancy.Monitor.
type Server struct {
	dir       *tenancy.Directory
	mw        *ginmw.Middleware
	log       *slog.Logger
	bodyLimit int64
	// requestTimeout is each request's deadline (Config.RequestTimeout).
	requestTimeout time.Duration
	monitor        *tenancy.Monitor
	metricsToken   string
	metricsHere    bool
	draining       atomic.Bool
	router         *gin.Engine
	metrics        *metrics
	limiter        *rateLimiter // nil: no rate limit
	quota          Quota
}

// NewServer builds the server and its routes over dir's tenants.
func NewServer(dir *tenancy.Directory, cfg Config) (*Server, error) {
	auth, err := token.NewVerifier(cfg.Auth)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if dir == nil {
		return nil, errors.New("api: no tenant directory")
	}
	if cfg.Monitor == nil {
		cfg.Monitor = dir.Monitor()
	}
	s := &Server{dir: dir, log: cfg.Logger, bodyLimit: cfg.BodyLimit,
		requestTimeout: cfg.RequestTimeout, monitor: cfg.Monitor,
		metricsToken: cfg.MetricsToken, metricsHere: !cfg.MetricsElsewhere,
		metrics: newMetrics(dir.PoolStats, cfg.Monitor, cfg.TenantLabelCap, dir.Plan().Latest()),
		limiter: newRateLimiter(cfg.RateLimit), quota: cfg.Quota}
	if s.mw, err = ginmw.New(ginmw.Config{Verifier: auth, Directory: dir, Fail: s.fail}); err != nil {
		return nil, err
	}
	registerServerPools(s.metrics, dir)
	s.routes()
	return s, nil
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Drain marks the server as shutting down: /readyz answers 503 so load
// balancers stop sending traffic while in-flight requests finish.
func (s *Server) Drain() { s.draining.Store(true) }

// withTx runs fn in the request tenant's scope and times the scope.
func (s *Server) withTx(c *gin.Context, fn func(tx *gorm.DB) error) error {
	return s.scoped(c, tenancy.WithTx, fn)
}

// readTx runs fn, which makes exactly one read, in a ReadOnce scope: one
// round trip for the whole transaction.
func (s *Server) readTx(c *gin.Context, fn func(tx *gorm.DB) error) error {
	return s.scoped(c, tenancy.ReadOnce, fn)
}

func (s *Server) scoped(c *gin.Context, run func(context.Context, tenancy.Resolved, func(*gorm.DB) error) error, fn func(tx *gorm.DB) error) error {
	start := time.Now()
	// On tenancy.ErrRoleGone the scope has evicted the stale row, so the
	// client's retry (503 with Retry-After) resolves the tenant from the
	// registry and judges the token against the live row.
	t, _ := ginmw.Tenant(c) // none: the scope opens nothing (ErrUnresolved), as ginmw.Tx
	err := run(c.Request.Context(), t, fn)
	s.metrics.scopeObserver(err).Observe(time.Since(start).Seconds())
	return err
}

func (s *Server) handleHealthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *Server) handleReadyz(c *gin.Context) error {
	if s.draining.Load() {
		return unavailable(errors.New("shutting down"))
	}
	// A probe that waits longer than a second has its answer anyway:
	// kubelet's default probe timeout is one second.
	ctx, cancel := context.WithTimeout(c.Request.Context(), time.Second)
	defer cancel()
	if err := s.monitor.Ping(ctx); err != nil {
		return unavailable(err)
	}
	if servers := serverStates(ctx, s.dir); servers != nil {
		c.JSON(http.StatusOK, gin.H{"status": "ready", "servers": servers})
		return nil
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
	return nil
}
