package main

import (
	"context"
	"fmt"

	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

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
