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
}

// DefaultPool suits one instance on a small server.
var DefaultPool = PoolConfig{MaxOpen: 20, MaxIdle: 10, MaxLifetime: 30 * time.Minute}

// Open connects to PostgreSQL at url and returns a GORM handle whose every
// connection starts with an empty search_path, a connection runtime parameter
// that changes no role or database default. An unqualified query that escapes
// a tenant scope therefore fails (42P01) instead of reading shared or public
// tables. Every connection has a connect timeout, TCP keepalive and a TCP
// user timeout (dial.go), so a dead network path is noticed. Statements use pgx's exec mode: no server-side statement cache, so
// tenants on different schema versions never trip "cached plan must not
// change result type" and a transaction-mode pooler works.
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
	sqlDB := sql.OpenDB(connector{stdlib.GetConnector(*cfg)})
	sqlDB.SetMaxOpenConns(pool.MaxOpen)
	sqlDB.SetMaxIdleConns(pool.MaxIdle)
	sqlDB.SetConnMaxLifetime(pool.MaxLifetime)
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{
		// Every tenant write already runs in the scope's transaction.
		SkipDefaultTransaction: true,
		Logger:                 logger.Discard,
	})
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("open gorm: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return db, nil
}
