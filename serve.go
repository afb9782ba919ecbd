package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/tenancy"
)

func newLogger(cfg config, w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: cfg.logLevel}))
}

// serveAdminPool is the DDL role's pool in serve: admin requests only
// (onboarding, offboarding, status changes), never tenant traffic.
var serveAdminPool = tenancy.PoolConfig{MaxOpen: 4, MaxIdle: 1, MaxLifetime: 30 * time.Minute}

// errDrainIncomplete makes serve's exit status say that requests were
// still running when the drain budget ran out and were cancelled.
var errDrainIncomplete = errors.New("shutdown: the drain budget ran out")

// serve runs the API until ctx ends, then shuts down in order: /readyz
// answers 503 for SHUTDOWN_DELAY while the listener still accepts and
// serves, so load balancers stop sending first; then the listener closes
// and in-flight requests get SHUTDOWN_TIMEOUT to finish. Requests still
// running then are cancelled (their transactions roll back) and their
// connections closed; the pools close only after every handler returned,
// so no request meets a closed pool and no backend of ours is left. The
// error says whether the drain finished. ready, if set, is called with
// the bound address once the listener is up.
func serve(ctx context.Context, cfg config, stdout io.Writer, ready func(addr string)) error {
	if cfg.authErr != nil {
		return cfg.authErr
	}
	if cfg.serveErr != nil {
		return cfg.serveErr
	}
	log := newLogger(cfg, stdout)
	h, err := openDB(ctx, cfg, serveAdminPool)
	if err != nil {
		return err
	}
	defer h.close()
	mon, err := tenancy.OpenMonitor(ctx, cfg.databaseURL)
	if err != nil {
		return err
	}
	defer mon.Close()
	if cfg.tenantLabelCap > 0 && cfg.metricsAddr == "" && cfg.metricsToken == "" {
		log.Warn("METRICS_TENANT_LABEL_CAP is set but /metrics is anonymous: tenant series are hidden until METRICS_TOKEN or METRICS_ADDR is set")
	}
	dir := h.directory(tenancy.WithServerRoleCheck(serverRoleCheck(cfg, log)))
	if err := logCluster(ctx, dir, log); err != nil {
		return err
	}
	if err := checkRoles(ctx, cfg, h, dir, log); err != nil {
		return err
	}
	if err := checkServerRoles(ctx, dir, log); err != nil {
		return err
	}
	if advice := backupAdvice(ctx, h.admin); advice != "" {
		log.Warn(advice)
	}
	// Capture the onboarding blueprint now: the first onboarding does not
	// pay for it, and a binary whose models disagree with its migration
	// steps stops here rather than at its first onboarding.
	if _, err := dir.Blueprint(ctx); err != nil {
		return err
	}
	srv, err := api.NewServer(dir, api.Config{Auth: cfg.auth, Logger: log, TenantLabelCap: cfg.tenantLabelCap,
		RequestTimeout: cfg.requestTimeout, Monitor: mon, MetricsToken: cfg.metricsToken, MetricsElsewhere: cfg.metricsAddr != "",
		RateLimit: cfg.rateLimit, Quota: cfg.quota})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	// Every request's context descends from base, so cancelling base ends
	// the requests the drain budget could not wait for.
	base, cancelRequests := context.WithCancelCause(context.Background())
	defer cancelRequests(nil)
	var g requestGate
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !g.enter() { // a request that slipped in after the drain
				w.Header().Set("Connection", "close")
				w.Header().Set("Retry-After", "1")
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, `{"type":"urn:tenantry:problem:unavailable","title":"Service unavailable","status":503,"detail":"shutting down; retry"}`)
				return
			}
			defer g.leave()
			srv.ServeHTTP(w, r)
		}),
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10, // room for an 8 KiB token and ordinary headers
	}
	servers := []*http.Server{hs}
	errc := make(chan error, 2)
	if cfg.metricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.metricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("METRICS_ADDR: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srv.MetricsHandler())
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: writeTimeout, IdleTimeout: 2 * time.Minute}
		servers = append(servers, ms)
		go func() { errc <- ms.Serve(mln) }()
		log.Info("serving metrics", "addr", mln.Addr().String())
	}
	go func() { errc <- hs.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String())
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		for _, s := range servers {
			_ = s.Close()
		}
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: readiness off", "delay", cfg.shutdownDelay.String(), "drain", cfg.drainTimeout.String())
	srv.Drain()
	time.Sleep(cfg.shutdownDelay)
	log.Info("shutting down: draining")
	dctx, cancel := context.WithTimeout(context.Background(), cfg.drainTimeout)
	defer cancel()
	drainErr := hs.Shutdown(dctx)
	if drainErr != nil {
		running := g.running()
		log.Warn("drain budget exceeded; cancelling the requests still running", "requests", running, "error", drainErr)
		cancelRequests(errDrainIncomplete)
		_ = hs.Close()
		drainErr = fmt.Errorf("%w after %s: %d requests cancelled", errDrainIncomplete, cfg.drainTimeout, running)
	}
	// Wait for the handlers, cancelled or not, to return (and roll back)
	// before the pools close under them. A cancelled request ends within
	// pgx's reaction to its context plus the rollback bound.
	select {
	case <-g.close():
	case <-time.After(10 * time.Second):
		log.Error("handlers still running 10 s after their cancellation")
		drainErr = errors.Join(drainErr, errors.New("shutdown: handlers did not return"))
	}
	for _, s := range servers[1:] {
		_ = s.Shutdown(dctx)
		_ = s.Close()
	}
	if drainErr == nil {
		log.Info("drained")
	}
	return drainErr
}

// requestGate counts running handlers and, once closed, admits no more,
// so "every handler has returned" is a state that cannot be undone.
type requestGate struct {
	mu     sync.Mutex
	n      int
	closed bool
	done   chan struct{}
}

func (g *requestGate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *requestGate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.closed && g.n == 0 {
		close(g.done)
	}
}

func (g *requestGate) running() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// close admits no more requests and returns a channel closed once none is
// running.
func (g *requestGate) close() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed, g.done = true, make(chan struct{})
		if g.n == 0 {
			close(g.done)
		}
	}
	return g.done
}

// checkRoles refuses to serve, outside dev mode, with a request role that
// could cross the tenant boundary, naming each privilege and its fix; dev
// mode and lesser findings only warn.
func checkRoles(ctx context.Context, cfg config, h handles, dir *tenancy.Directory, log *slog.Logger) error {
	warnings, err := tenancy.RoleWarnings(ctx, h.db)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	findings, err := tenancy.CheckRequestRole(ctx, h.db, dir, h.separate)
	if err != nil {
		return err
	}
	var refuse []string
	for _, f := range findings {
		if f.Crosses && !cfg.dev {
			refuse = append(refuse, f.Message)
			continue
		}
		log.Warn(f.Message)
	}
	if len(refuse) > 0 {
		return fmt.Errorf("refusing to serve: the request role could cross the tenant boundary (TENANTRY_ENV=dev only warns):\n  - %s", strings.Join(refuse, "\n  - "))
	}
	return nil
}
