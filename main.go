// Command tenantry serves many tenants from one deployment, each in its own
// PostgreSQL schema. main.go is the only place that reads the environment,
// calls os.Exit or wires concrete types.
//
//	tenantry serve                      run the HTTP API
//	tenantry dev                        local database + demo tenants + serve
//	tenantry migrate [--concurrency N]  migrate the shared schema and every tenant
//	tenantry tenants create|list|delete|suspend|resume|read-only [NAME]
//	tenantry tenants move NAME --to SERVER|NODE  another server, or on Citus a worker (node id or host:port)
//	tenantry token --tenant NAME [--no-lookup] | --admin [--ttl 1h]
//	tenantry healthcheck                probe /healthz (Docker HEALTHCHECK)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	authtoken "github.com/tenantry/tenantry/token"
	"gorm.io/gorm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tenantry:", err)
		if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: tenantry serve | dev | migrate | tenants create|list|delete|suspend|resume|read-only [NAME] | tenants move NAME --to SERVER|NODE | token --tenant NAME|--admin [--ttl 1h] | healthcheck")

const (
	// devDatabaseURL is where `tenantry dev` (make run) puts its local
	// database, and so the default DATABASE_URL.
	devDatabaseURL = "postgres://tenantry@127.0.0.1:54329/tenantry?sslmode=disable"
	devPort        = 54329
	// devSecret signs tokens only when TENANTRY_ENV=dev; anywhere else a
	// missing JWT_SECRET stops start-up.
	devSecret = "tenantry-dev-secret-not-for-production-use"
	// writeTimeout bounds writing a response; every request's deadline
	// (REQUEST_TIMEOUT) must end its work before it, so that its answer,
	// even a 503, still reaches the client.
	writeTimeout = 30 * time.Second
	// defaultShutdownDelay and defaultDrainTimeout add up to 25 s, below
	// Kubernetes' default 30 s grace period before SIGKILL. The delay lets load balancers see /readyz fail and stop
	// sending before the listener closes; endpoint removal usually takes a
	// few seconds to propagate.
	defaultShutdownDelay = 5 * time.Second
	defaultDrainTimeout  = 20 * time.Second
)

// config is everything read from the environment.
type config struct {
	dev         bool
	databaseURL string
	// migrationURL, from MIGRATION_DATABASE_URL, is the DDL role's URL:
	// onboarding, offboarding, status changes and migrations. Unset, the
	// DATABASE_URL role does both jobs (the simple setup; SECURITY.md).
	migrationURL string
	addr         string
	auth         authtoken.Config
	authErr      error // why auth is unusable; only commands that need it fail
	logLevel     slog.Level
	// tenantLabelCap, from METRICS_TENANT_LABEL_CAP, turns on a per-tenant
	// request counter for at most that many tenants (0: off).
	tenantLabelCap int
	// Reliability settings of serve (serveErr says which is unusable).
	requestTimeout time.Duration // REQUEST_TIMEOUT
	shutdownDelay  time.Duration // SHUTDOWN_DELAY
	drainTimeout   time.Duration // SHUTDOWN_TIMEOUT
	metricsAddr    string        // METRICS_ADDR
	metricsToken   string        // METRICS_TOKEN
	serveErr       error
	// Fairness: the pool with each tenant's share of it, the per-tenant
	// rate and the optional quotas (TENANT_* variables).
	pool      tenancy.PoolConfig
	rateLimit api.RateLimit
	quota     api.Quota
	// servers are the TENANT_SERVERS* variables (servers.go); serversErr
	// stops every command that opens the database.
	servers    serverConfig
	serversErr error
}

func loadConfig(getenv func(string) string) config {
	cfg := config{
		dev:          getenv("TENANTRY_ENV") == "dev",
		databaseURL:  getenv("DATABASE_URL"),
		migrationURL: getenv("MIGRATION_DATABASE_URL"),
		addr:         getenv("ADDR"),
	}
	if cfg.databaseURL == "" {
		cfg.databaseURL = devDatabaseURL
	}
	if cfg.addr == "" {
		cfg.addr = ":8080"
	}
	if n, err := strconv.Atoi(getenv("METRICS_TENANT_LABEL_CAP")); err == nil && n > 0 {
		cfg.tenantLabelCap = n
	}
	cfg.metricsAddr, cfg.metricsToken = getenv("METRICS_ADDR"), getenv("METRICS_TOKEN")
	cfg.serveErr = errors.Join(
		durationEnv(getenv, "REQUEST_TIMEOUT", api.DefaultRequestTimeout, &cfg.requestTimeout),
		durationEnv(getenv, "SHUTDOWN_DELAY", defaultShutdownDelay, &cfg.shutdownDelay),
		durationEnv(getenv, "SHUTDOWN_TIMEOUT", defaultDrainTimeout, &cfg.drainTimeout))
	if cfg.serveErr == nil && cfg.requestTimeout >= writeTimeout {
		cfg.serveErr = fmt.Errorf("REQUEST_TIMEOUT %s must be below the %s write timeout", cfg.requestTimeout, writeTimeout)
	}
	// A malformed TENANT_* value stops serve rather than run without the
	// limit the operator asked for.
	var limitsErr error
	cfg.pool, cfg.rateLimit, cfg.quota, limitsErr = loadLimits(getenv)
	cfg.serveErr = errors.Join(cfg.serveErr, limitsErr)
	cfg.servers, cfg.serversErr = loadServers(getenv)
	if strings.EqualFold(getenv("LOG_LEVEL"), "debug") {
		cfg.logLevel = slog.LevelDebug
	}
	cfg.auth = authtoken.Config{
		Issuer:      getenv("JWT_ISSUER"),
		Audience:    getenv("JWT_AUDIENCE"),
		TenantClaim: getenv("JWT_TENANT_CLAIM"),
		Leeway:      30 * time.Second,
		// JWT_TENANT_ID_CLAIM: the claim binding a token to a tenant's
		// registry id (api's default "tenant_id" when unset).
		TenantIDClaim: getenv("JWT_TENANT_ID_CLAIM"),
	}
	if v := getenv("JWT_MAX_LIFETIME"); v != "" {
		// A bad value must stop start-up, not fall back to the default.
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			cfg.authErr = fmt.Errorf("JWT_MAX_LIFETIME %q must be a positive duration such as 24h", v)
		}
		cfg.auth.MaxLifetime = d
	}
	if cfg.auth.TenantClaim == "" {
		cfg.auth.TenantClaim = "tenant"
	}
	secret, keyFile := getenv("JWT_SECRET"), getenv("JWT_PUBLIC_KEY_FILE")
	switch {
	case keyFile != "" && secret != "":
		cfg.authErr = errors.New("set either JWT_SECRET or JWT_PUBLIC_KEY_FILE, not both")
	case keyFile != "":
		pemBytes, err := os.ReadFile(keyFile)
		if err == nil {
			cfg.auth.PublicKey, err = authtoken.ParsePublicKeyPEM(pemBytes)
		}
		if err != nil {
			cfg.authErr = fmt.Errorf("JWT_PUBLIC_KEY_FILE: %w", err)
		}
	case secret != "":
		cfg.auth.Secret = []byte(secret)
		if len(secret) < authtoken.MinSecretLen {
			cfg.authErr = fmt.Errorf("JWT_SECRET must be at least %d bytes", authtoken.MinSecretLen)
		}
	case cfg.dev:
		cfg.auth.Secret = []byte(devSecret)
	default:
		cfg.authErr = errors.New("JWT_SECRET (at least 32 bytes) or JWT_PUBLIC_KEY_FILE is required; set TENANTRY_ENV=dev for a development secret")
	}
	return cfg
}

// durationEnv reads a Go duration ("10s", "1m") from name into dst, or def
// when unset; SHUTDOWN_DELAY may be 0, the others must be positive.
func durationEnv(getenv func(string) string, name string, def time.Duration, dst *time.Duration) error {
	*dst = def
	v := getenv(name)
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || (d == 0 && name != "SHUTDOWN_DELAY") {
		return fmt.Errorf("%s=%q: want a positive duration such as 10s", name, v)
	}
	*dst = d
	return nil
}

// loadLimits reads the fairness settings; unset variables keep the
// defaults of tenancy.DefaultPool and api.DefaultRateLimit.
func loadLimits(getenv func(string) string) (tenancy.PoolConfig, api.RateLimit, api.Quota, error) {
	pool, rl, q := tenancy.DefaultPool, api.DefaultRateLimit, api.Quota{}
	var errs []error
	num := func(name string, parse func(string) error) {
		if v := getenv(name); v != "" {
			if err := parse(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	}
	integer := func(dst *int, min int) func(string) error {
		return func(v string) error {
			n, err := strconv.Atoi(v)
			if err == nil && n < min {
				err = fmt.Errorf("must be at least %d", min)
			}
			*dst = n
			return err
		}
	}
	int64At0 := func(dst *int64) func(string) error {
		return func(v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil && n < 0 {
				err = errors.New("must be 0 (off) or more")
			}
			*dst = n
			return err
		}
	}
	num("TENANT_POOL_SHARE", integer(&pool.TenantShare, -1))
	num("TENANT_POOL_WAIT", func(v string) (err error) {
		if pool.TenantWait, err = time.ParseDuration(v); err == nil && pool.TenantWait <= 0 {
			err = errors.New("must be positive")
		}
		return err
	})
	// DB_CONN_MAX_SCHEMAS and DB_CONN_MAX_TRANSACTIONS renew a pooled
	// connection after that many distinct tenant schemas or transactions
	// (tenancy.PoolConfig.ConnMaxSchemas); 0 turns a limit off.
	num("DB_CONN_MAX_SCHEMAS", integer(&pool.ConnMaxSchemas, 0))
	num("DB_CONN_MAX_TRANSACTIONS", integer(&pool.ConnMaxTransactions, 0))
	num("TENANT_RATE", func(v string) (err error) {
		if rl.PerSecond, err = strconv.ParseFloat(v, 64); err == nil && (rl.PerSecond < 0 || math.IsNaN(rl.PerSecond) || math.IsInf(rl.PerSecond, 0)) {
			err = errors.New("must be 0 (off) or a positive number")
		}
		return err
	})
	num("TENANT_BURST", integer(&rl.Burst, 1))
	num("TENANT_MAX_ITEMS", int64At0(&q.Items))
	num("TENANT_MAX_BYTES", int64At0(&q.Bytes))
	return pool, rl, q, errors.Join(errs...)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg := loadConfig(getenv)
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, cfg, stdout, nil)
	case "dev":
		return dev(ctx, cfg, getenv, stdout)
	case "migrate":
		return migrate(ctx, cfg, args, stdout)
	case "tenants":
		return tenants(ctx, cfg, args, stdout)
	case "token":
		return token(ctx, cfg, args, stdout)
	case "healthcheck":
		return healthcheck(ctx, cfg)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, errUsage)
		return nil
	}
	return fmt.Errorf("unknown command %q: %w", cmd, errUsage)
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: cfg.logLevel}))
}

// handles are the database handles of one command: db logs in as the
// request role (DATABASE_URL), admin as the DDL role
// (MIGRATION_DATABASE_URL, or db itself when that is unset).
type handles struct {
	db, admin *gorm.DB
	separate  bool
	close     func()
	servers   []tenancy.Option // placement and routing over TENANT_SERVERS
}

// directory returns a tenant directory over both handles.
func (h handles) directory(opts ...tenancy.Option) *tenancy.Directory {
	return tenancy.NewDirectory(h.db, append(append(opts, h.servers...), tenancy.WithAdmin(h.admin))...)
}

// openDB connects, applies the shared migrations (idempotent and safe
// when several instances start together) and readies the roles: the
// request role joins the deployment's group and may read the registry, and
// tenants onboarded before tenant roles get theirs. adminPool sizes the DDL
// role's pool.
func openDB(ctx context.Context, cfg config, adminPool tenancy.PoolConfig) (handles, error) {
	return open(ctx, cfg, adminPool, true)
}

// openReadOnly connects without migrating anything, for commands that only
// look (migrate status, migrate --dry-run, tenants list).
func openReadOnly(ctx context.Context, cfg config, adminPool tenancy.PoolConfig) (handles, error) {
	return open(ctx, cfg, adminPool, false)
}

func open(ctx context.Context, cfg config, adminPool tenancy.PoolConfig, prepare bool) (handles, error) {
	h := handles{separate: cfg.migrationURL != "" && cfg.migrationURL != cfg.databaseURL,
		servers: cfg.servers.options(cfg.pool)}
	if cfg.serversErr != nil {
		return h, cfg.serversErr
	}
	var err error
	if h.db, err = tenancy.Open(ctx, cfg.databaseURL, cfg.pool); err != nil {
		return h, err
	}
	h.admin = h.db
	if h.separate {
		if h.admin, err = tenancy.Open(ctx, cfg.migrationURL, adminPool); err != nil {
			closeGorm(h.db)
			return h, fmt.Errorf("MIGRATION_DATABASE_URL: %w", err)
		}
	}
	h.close = func() {
		closeGorm(h.db)
		if h.separate {
			closeGorm(h.admin)
		}
	}
	if !prepare {
		return h, nil
	}
	if err := migrations.ApplyShared(ctx, h.admin); err != nil {
		h.close()
		return h, fmt.Errorf("shared migrations: %w", err)
	}
	var requestRole string
	if err := h.db.WithContext(ctx).Raw("SELECT current_user").Scan(&requestRole).Error; err != nil {
		h.close()
		return h, err
	}
	if err := h.directory(tenancy.WithTTL(0)).EnsureRoles(ctx, requestRole); err != nil {
		h.close()
		return h, err
	}
	return h, nil
}

func closeGorm(db *gorm.DB) {
	if s, err := db.DB(); err == nil {
		s.Close()
	}
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
	dir := h.directory()
	if err := logCluster(ctx, dir, log); err != nil {
		return err
	}
	if err := checkRoles(ctx, cfg, h, dir, log); err != nil {
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

// migrate applies the shared migrations, then brings tenant schemas to the
// target version. The exit status says whether any tenant failed.
func migrate(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "status" {
		return migrateStatus(ctx, cfg, args[1:], stdout)
	}
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	concurrency := fs.Int("concurrency", 4, "tenants migrated at once")
	only := fs.String("tenants", "", "comma-separated tenant names (default: every tenant not at the target version)")
	dryRun := fs.Bool("dry-run", false, "show what would run; change nothing")
	to := fs.Int("to", 0, "target version, 1..latest (default: latest); lower undoes steps that have down SQL")
	asJSON := fs.Bool("json", false, "print a JSON summary instead of text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *concurrency < 1 || *concurrency > 64 {
		return fmt.Errorf("--concurrency must be 1..64: %w", errUsage)
	}
	latest := migrations.Items.Latest()
	if *to < 0 || *to > latest {
		return fmt.Errorf("--to must be 1..%d (0 or unset: latest): %w", latest, errUsage)
	}
	target := *to
	if target == 0 {
		target = latest
	}
	openFn := openDB
	if *dryRun {
		openFn = openReadOnly // a dry run changes nothing, the shared schema included
	}
	h, err := openFn(ctx, cfg, tenancy.PoolConfig{MaxOpen: *concurrency + 1, MaxIdle: *concurrency + 1, MaxLifetime: time.Hour})
	if err != nil {
		return err
	}
	defer h.close()
	if *dryRun {
		pending, err := migrations.SharedPending(ctx, h.admin)
		if err != nil {
			return err
		}
		if len(pending) > 0 {
			var vs []int
			for _, s := range pending {
				vs = append(vs, s.Version)
			}
			fmt.Fprintf(stdout, "shared schema: would run steps %v; tenants are listed once it is migrated\n", vs)
			return nil
		}
	}
	o := tenancy.MigrateOptions{Options: migrations.Options{To: *to, Concurrency: *concurrency, DryRun: *dryRun}}
	if *only != "" {
		o.Tenants = strings.Split(*only, ",")
	}
	if !*asJSON && isTerminal(os.Stderr) {
		o.Progress = progressBar(os.Stderr)
	}
	start := time.Now()
	results, err := h.directory(tenancy.WithTTL(0)).Migrate(ctx, o)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"tenants": len(results), "failed": failed, "dry_run": *dryRun,
			"target": target, "seconds": elapsed.Seconds(), "results": results})
	} else {
		for _, r := range results {
			status := fmt.Sprintf("v%d -> v%d", r.From, r.To)
			if *dryRun {
				status = fmt.Sprintf("v%d, would run steps %v", r.From, r.Steps)
			}
			if r.Err != nil {
				status = fmt.Sprintf("FAILED at v%d: %s", r.From, r.Err)
			}
			fmt.Fprintf(stdout, "%-48s %8.1f ms  %s\n", r.Tenant, float64(r.Duration.Microseconds())/1000, status)
		}
		fmt.Fprintf(stdout, "%d tenants, %d failed, %.2fs\n", len(results), failed, elapsed.Seconds())
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d tenants failed to migrate", failed, len(results))
	}
	return nil
}

func migrateStatus(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("migrate status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	h, err := openReadOnly(ctx, cfg, tenancy.DefaultPool)
	if err != nil {
		return err
	}
	defer h.close()
	if pending, err := migrations.SharedPending(ctx, h.admin); err != nil || len(pending) > 0 {
		return fmt.Errorf("the shared schema is not migrated (run tenantry migrate): %v pending steps, %v", len(pending), err)
	}
	st, err := h.directory(tenancy.WithTTL(0)).Status(ctx)
	if err != nil {
		return err
	}
	drifted := 0
	for _, s := range st {
		if s.Drift != "" {
			drifted++
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"latest": migrations.Items.Latest(), "tenants": st, "drifted": drifted})
	} else {
		fmt.Fprintf(stdout, "%-48s %7s  %-10s %s\n", "TENANT", "VERSION", "PENDING", "DRIFT")
		for _, s := range st {
			fmt.Fprintf(stdout, "%-48s %7d  %-10s %s\n", s.Tenant, s.Version, fmt.Sprint(s.Pending), s.Drift)
		}
		fmt.Fprintf(stdout, "%d tenants, latest version %d, %d drifted\n", len(st), migrations.Items.Latest(), drifted)
		if advice := backupAdvice(ctx, h.admin); advice != "" {
			fmt.Fprintln(stdout, "warning:", advice)
		}
	}
	if drifted > 0 {
		return fmt.Errorf("%d tenant schemas drifted", drifted)
	}
	return nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws done / failed / rate / ETA on one terminal line.
func progressBar(w io.Writer) func(migrations.Progress) {
	return func(p migrations.Progress) {
		const width = 30
		fill := width * p.Done / max(p.Total, 1)
		rate := float64(p.Done) / max(p.Elapsed.Seconds(), 1e-9)
		eta := time.Duration(float64(p.Total-p.Done) / max(rate, 1e-9) * float64(time.Second))
		fmt.Fprintf(w, "\r[%s%s] %d/%d done, %d failed, %.0f tenants/s, ETA %s ",
			strings.Repeat("#", fill), strings.Repeat(" ", width-fill), p.Done, p.Total, p.Failed, rate, eta.Round(time.Second))
		if p.Done == p.Total {
			fmt.Fprintln(w)
		}
	}
}

func tenants(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	sub, args := args[0], args[1:]
	if sub != "list" && sub != "move" && len(args) != 1 {
		return fmt.Errorf("tenants %s needs one NAME: %w", sub, errUsage)
	}
	openFn := openDB
	if sub == "list" {
		openFn = openReadOnly
	}
	h, err := openFn(ctx, cfg, serveAdminPool)
	if err != nil {
		return err
	}
	defer h.close()
	dir := h.directory(tenancy.WithTTL(0))
	defer dir.Close()
	var t models.Tenant
	switch sub {
	case "move":
		return tenantsMove(ctx, dir, args, stdout)
	case "create":
		t, err = dir.Onboard(ctx, args[0])
	case "delete":
		if err = dir.Offboard(ctx, args[0]); err == nil {
			fmt.Fprintf(stdout, "deleted %s\n", args[0])
		}
		return err
	case "suspend":
		t, err = dir.SetStatus(ctx, args[0], models.StatusSuspended)
	case "resume":
		t, err = dir.SetStatus(ctx, args[0], models.StatusActive)
	case "read-only":
		t, err = dir.SetStatus(ctx, args[0], models.StatusReadOnly)
	case "list":
		ts, err := dir.List(ctx)
		if err != nil {
			return err
		}
		for _, t := range ts {
			fmt.Fprintf(stdout, "%-48s %-52s %-9s %s\n", t.Name, t.SchemaName, t.Status, t.CreatedAt.Format(time.RFC3339))
		}
		return nil
	default:
		return fmt.Errorf("unknown tenants command %q: %w", sub, errUsage)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\t%s\t%s\n", t.Name, t.SchemaName, t.Status)
	return nil
}

// token mints a development token. A tenant token carries the tenant's
// registry id, looked up in DATABASE_URL, so it dies with this incarnation
// of the tenant; --no-lookup skips the database and binds the token by its
// iat alone (it is refused if the tenant was created after it).
func token(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	tenant := fs.String("tenant", "", "tenant the token is for")
	admin := fs.Bool("admin", false, "issue a platform-admin token")
	ttl := fs.Duration("ttl", time.Hour, "lifetime (at most JWT_MAX_LIFETIME)")
	noLookup := fs.Bool("no-lookup", false, "do not look the tenant up; bind the token by iat only")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.authErr != nil {
		return cfg.authErr
	}
	if *tenant == "" && !*admin {
		return fmt.Errorf("token needs --tenant NAME or --admin: %w", errUsage)
	}
	if *ttl <= 0 {
		return fmt.Errorf("--ttl must be positive: %w", errUsage)
	}
	var tok string
	var err error
	if *tenant != "" && !*admin && !*noLookup {
		tok, err = tenantToken(ctx, cfg, *tenant, *ttl)
	} else {
		role := authtoken.RoleTenant
		if *admin {
			role = authtoken.RoleAdmin
		}
		tok, err = authtoken.IssueToken(cfg.auth, *tenant, role, *ttl)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// tenantToken looks tenant up and mints a token bound to its registry id.
func tenantToken(ctx context.Context, cfg config, tenant string, ttl time.Duration) (string, error) {
	h, err := openReadOnly(ctx, cfg, tenancy.DefaultPool)
	if err != nil {
		return "", fmt.Errorf("look up tenant %q (--no-lookup skips it): %w", tenant, err)
	}
	defer h.close()
	t, err := h.directory(tenancy.WithTTL(0)).Get(ctx, tenant)
	if err != nil {
		return "", fmt.Errorf("look up tenant %q: %w", tenant, err)
	}
	return authtoken.IssueTenantToken(cfg.auth, t, ttl)
}

// healthcheck probes the local /healthz; the container image has no shell
// or curl, so Docker's HEALTHCHECK runs this.
func healthcheck(ctx context.Context, cfg config) error {
	_, port, err := net.SplitHostPort(cfg.addr)
	if err != nil {
		return fmt.Errorf("ADDR %q: %w", cfg.addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+port+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %d", resp.StatusCode)
	}
	return nil
}
