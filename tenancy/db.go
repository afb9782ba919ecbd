package tenancy

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// PoolConfig sizes the connection pool.
type PoolConfig struct {
	// MaxOpen caps open connections; keep it below the server's
	// max_connections minus its reserve, shared by every instance.
	MaxOpen int
	// MaxIdle caps idle connections kept for reuse.
	MaxIdle int
	// MaxLifetime recycles connections, which also bounds the catalog cache
	// a backend accumulates as it touches many tenant schemas.
	MaxLifetime time.Duration
	// ConnectTimeout bounds making a new connection when the URL sets no
	// connect_timeout; 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// TenantShare caps the connections one tenant's scopes (WithTx) hold
	// at once. 0 means a quarter of MaxOpen (at least 1): a tenant at its
	// cap leaves three quarters of the pool to the others, and it takes
	// four tenants saturating at once to fill it. Negative, or MaxOpen 0
	// (an unbounded pool, nothing to share), turns the cap off.
	TenantShare int
	// TenantWait bounds how long a scope over its tenant's share waits for
	// a slot before WithTx gives up with ErrBusy; 0 means DefaultTenantWait.
	TenantWait time.Duration
	// ConnMaxSchemas closes a connection, as it returns to the pool, once
	// it has pinned this many distinct tenant schemas, which bounds the
	// catalog cache its backend keeps (recycle.go); 0 means no limit.
	// DefaultPool sets DefaultConnMaxSchemas.
	ConnMaxSchemas int
	// ConnMaxTransactions closes a connection once it has served this many
	// transactions; 0 means no limit (the default: catalog memory grows
	// with schemas, not transactions, and MaxLifetime already renews
	// connections over time).
	ConnMaxTransactions int
	// StatementCache is how many ReadOnce statements each connection keeps
	// prepared, per tenant schema and SQL text (stmtcache.go); 0 turns
	// the cache off. DefaultPool sets DefaultStatementCache.
	StatementCache int
}

// DefaultTenantWait is how long a scope waits for its tenant's share: a
// point read holds a slot for a few milliseconds, so a burst of a few
// hundred short requests still passes, while a tenant whose slots are held
// by slow statements (up to RequestLimits.Statement) learns within a second
// that it is over its share.
const DefaultTenantWait = time.Second

// DefaultPool suits one instance on a small server: 20 connections, at most
// 5 of them (the default quarter) for any one tenant, each renewed after it
// has served 2,000 tenant schemas (DefaultConnMaxSchemas). MaxIdle equals
// MaxOpen: with fewer idle slots than open connections, every burst above
// the idle cap closes connections on release and opens new ones on the
// next burst, and each new PostgreSQL session forks a backend whose catalog
// caches start cold for every tenant schema it touches. Measured with the
// request-path bench at 100 tenants and 16 clients, 10 idle of 20 cost
// about 20 closed and reopened sessions per 1,000 requests and most of
// PostgreSQL's CPU per request. MaxLifetime still recycles connections.
var DefaultPool = PoolConfig{MaxOpen: 20, MaxIdle: 20, MaxLifetime: 30 * time.Minute,
	ConnMaxSchemas: DefaultConnMaxSchemas, StatementCache: DefaultStatementCache}

// tenantShare resolves the cap and the wait from pool; a cap of 0 means none.
func (p PoolConfig) tenantShare() (int, time.Duration) {
	k, wait := p.TenantShare, p.TenantWait
	switch {
	case k < 0 || p.MaxOpen <= 0:
		k = 0
	case k == 0:
		k = max(1, p.MaxOpen/4)
	}
	if wait <= 0 {
		wait = DefaultTenantWait
	}
	return k, wait
}

// Open connects to PostgreSQL at url and returns a GORM handle whose every
// connection starts with an empty search_path, a connection runtime parameter
// that changes no role or database default. An unqualified query that escapes
// a tenant scope therefore fails (42P01) instead of reading shared or public
// tables. Every connection has a connect timeout, TCP keepalive and a TCP
// user timeout (dial.go), so a dead network path is noticed. Statements use
// pgx's exec mode, whose statement cache keyed by SQL text alone would
// serve one plan to every tenant; tenancy prepares a scope's pin and first
// statement itself, per connection and tenant schema (pipeline.go,
// stmtcache.go), so tenants on different schema versions never see "cached
// plan must not change result type" and a transaction-mode pooler works.
func Open(ctx context.Context, url string, pool PoolConfig) (*gorm.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.RuntimeParams["search_path"] = ""
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "tenantry"
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	if cfg.ConnectTimeout == 0 { // the URL's connect_timeout wins
		cfg.ConnectTimeout = pool.ConnectTimeout
		if cfg.ConnectTimeout <= 0 {
			cfg.ConnectTimeout = DefaultConnectTimeout
		}
	}
	cfg.DialFunc = dialer(cfg.ConnectTimeout).DialContext
	sqlDB := sql.OpenDB(connector{Connector: stdlib.GetConnector(*cfg, stdlib.OptionBeforeConnect(attachPipe)),
		limits: connLimits{schemas: pool.ConnMaxSchemas, transactions: pool.ConnMaxTransactions},
		pins:   &namedStmts{stmts: pool.StatementCache}})
	sqlDB.SetMaxOpenConns(pool.MaxOpen)
	sqlDB.SetMaxIdleConns(pool.MaxIdle)
	sqlDB.SetConnMaxLifetime(pool.MaxLifetime)
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{
		// Every tenant write already runs in the scope's transaction.
		SkipDefaultTransaction: true,
		Logger:                 logger.Discard,
		// GORM's own ping takes no context, so an open of a silent server
		// waited out the whole connect timeout past the caller's deadline;
		// the ping below takes ctx.
		DisableAutomaticPing: true,
	})
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("open gorm: %w", err)
	}
	if k, wait := pool.tenantShare(); k > 0 {
		if err := db.Use(newShares(k, wait)); err != nil {
			sqlDB.Close()
			return nil, fmt.Errorf("tenant shares: %w", err)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return db, nil
}
