// Command tenantry serves many tenants from one deployment, each in its own
// PostgreSQL schema. main.go is the only place that reads the environment,
// calls os.Exit or wires concrete types.
//
//	tenantry serve                      run the HTTP API
//	tenantry dev                        local database + demo tenants + serve
//	tenantry migrate [--concurrency N]  migrate the shared schema and every tenant
//	tenantry tenants create|list|delete|suspend|resume [NAME]
//	tenantry token --tenant NAME | --admin [--ttl 1h]
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
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
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

var errUsage = errors.New("usage: tenantry serve | dev | migrate | tenants create|list|delete|suspend|resume [NAME] | token --tenant NAME|--admin [--ttl 1h] | healthcheck")

const (
	// devDatabaseURL is where `tenantry dev` (make run) puts its local
	// database, and so the default DATABASE_URL.
	devDatabaseURL = "postgres://tenantry@127.0.0.1:54329/tenantry?sslmode=disable"
	devPort        = 54329
	// devSecret signs tokens only when TENANTRY_ENV=dev; anywhere else a
	// missing JWT_SECRET stops start-up.
	devSecret = "tenantry-dev-secret-not-for-production-use"
	// shutdownBudget stays below Kubernetes' default 30 s grace period.
	shutdownBudget = 25 * time.Second
)

// config is everything read from the environment.
type config struct {
	dev         bool
	databaseURL string
	addr        string
	auth        api.AuthConfig
	authErr     error // why auth is unusable; only commands that need it fail
	logLevel    slog.Level
	// tenantLabelCap, from METRICS_TENANT_LABEL_CAP, turns on a per-tenant
	// request counter for at most that many tenants (0: off).
	tenantLabelCap int
}

func loadConfig(getenv func(string) string) config {
	cfg := config{
		dev:         getenv("TENANTRY_ENV") == "dev",
		databaseURL: getenv("DATABASE_URL"),
		addr:        getenv("ADDR"),
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
	if strings.EqualFold(getenv("LOG_LEVEL"), "debug") {
		cfg.logLevel = slog.LevelDebug
	}
	cfg.auth = api.AuthConfig{
		Issuer:      getenv("JWT_ISSUER"),
		Audience:    getenv("JWT_AUDIENCE"),
		TenantClaim: getenv("JWT_TENANT_CLAIM"),
		Leeway:      30 * time.Second,
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
			cfg.auth.PublicKey, err = api.ParsePublicKeyPEM(pemBytes)
		}
		if err != nil {
			cfg.authErr = fmt.Errorf("JWT_PUBLIC_KEY_FILE: %w", err)
		}
	case secret != "":
		cfg.auth.Secret = []byte(secret)
		if len(secret) < api.MinSecretLen {
			cfg.authErr = fmt.Errorf("JWT_SECRET must be at least %d bytes", api.MinSecretLen)
		}
	case cfg.dev:
		cfg.auth.Secret = []byte(devSecret)
	default:
		cfg.authErr = errors.New("JWT_SECRET (at least 32 bytes) or JWT_PUBLIC_KEY_FILE is required; set TENANTRY_ENV=dev for a development secret")
	}
	return cfg
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
		return token(cfg, args, stdout)
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

// openDB connects and applies the shared migrations, which are idempotent
// and safe when several instances start together.
func openDB(ctx context.Context, cfg config) (*gorm.DB, func(), error) {
	return open(ctx, cfg, true)
}

// openReadOnly connects without migrating anything, for commands that only
// look (migrate status, migrate --dry-run, tenants list).
func openReadOnly(ctx context.Context, cfg config) (*gorm.DB, func(), error) {
	return open(ctx, cfg, false)
}

func open(ctx context.Context, cfg config, applyShared bool) (*gorm.DB, func(), error) {
	db, err := tenancy.Open(ctx, cfg.databaseURL, tenancy.DefaultPool)
	if err != nil {
		return nil, nil, err
	}
	closeDB := func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	}
	if !applyShared {
		return db, closeDB, nil
	}
	if err := migrations.ApplyShared(ctx, db); err != nil {
		closeDB()
		return nil, nil, fmt.Errorf("shared migrations: %w", err)
	}
	return db, closeDB, nil
}

// serve runs the API until ctx ends, then drains: readiness turns 503,
// in-flight requests finish within the shutdown budget, connections still
// open after it are closed (cancelling their requests, which rolls their
// transactions back), and the pool closes last. ready, if set, is called
// with the bound address once the listener is up.
func serve(ctx context.Context, cfg config, stdout io.Writer, ready func(addr string)) error {
	if cfg.authErr != nil {
		return cfg.authErr
	}
	log := newLogger(cfg, stdout)
	db, closeDB, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB()
	warnings, err := tenancy.RoleWarnings(ctx, db)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	dir := tenancy.NewDirectory(db)
	// Capture the onboarding blueprint now: the first onboarding does not
	// pay for it, and a binary whose models disagree with its migration
	// steps stops here rather than at its first onboarding.
	if _, err := dir.Blueprint(ctx); err != nil {
		return err
	}
	srv, err := api.NewServer(db, dir, api.Config{Auth: cfg.auth, Logger: log, TenantLabelCap: cfg.tenantLabelCap})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10, // room for an 8 KiB token and ordinary headers
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String())
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "budget", shutdownBudget.String())
	srv.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownBudget)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("shutdown budget exceeded; closing connections", "error", err)
		_ = hs.Close()
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
	latest := migrations.Tenant.Latest()
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
	db, closeDB, err := openFn(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB()
	if *dryRun {
		pending, err := migrations.SharedPending(ctx, db)
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
	results, err := tenancy.NewDirectory(db, tenancy.WithTTL(0)).Migrate(ctx, o)
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
	db, closeDB, err := openReadOnly(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB()
	if pending, err := migrations.SharedPending(ctx, db); err != nil || len(pending) > 0 {
		return fmt.Errorf("the shared schema is not migrated (run tenantry migrate): %v pending steps, %v", len(pending), err)
	}
	st, err := tenancy.NewDirectory(db, tenancy.WithTTL(0)).Status(ctx)
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
		_ = enc.Encode(map[string]any{"latest": migrations.Tenant.Latest(), "tenants": st, "drifted": drifted})
	} else {
		fmt.Fprintf(stdout, "%-48s %7s  %-10s %s\n", "TENANT", "VERSION", "PENDING", "DRIFT")
		for _, s := range st {
			fmt.Fprintf(stdout, "%-48s %7d  %-10s %s\n", s.Tenant, s.Version, fmt.Sprint(s.Pending), s.Drift)
		}
		fmt.Fprintf(stdout, "%d tenants, latest version %d, %d drifted\n", len(st), migrations.Tenant.Latest(), drifted)
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
	if sub != "list" && len(args) != 1 {
		return fmt.Errorf("tenants %s needs one NAME: %w", sub, errUsage)
	}
	openFn := openDB
	if sub == "list" {
		openFn = openReadOnly
	}
	db, closeDB, err := openFn(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB()
	dir := tenancy.NewDirectory(db, tenancy.WithTTL(0))
	var t models.Tenant
	switch sub {
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

func token(cfg config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	tenant := fs.String("tenant", "", "tenant the token is for")
	admin := fs.Bool("admin", false, "issue a platform-admin token")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
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
	tok, err := api.IssueToken(cfg.auth, *tenant, *admin, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
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
