package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/tenancy"
	authtoken "github.com/tenantry/tenantry/token"
)

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
	// DB_STATEMENT_CACHE: statements each connection keeps prepared for
	// point reads and pages, per tenant schema
	// (tenancy.PoolConfig.StatementCache); 0 turns the cache off.
	num("DB_STATEMENT_CACHE", integer(&pool.StatementCache, 0))
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
