// Package tenancytest opens, for one test, a fresh database with the shared
// migrations applied, through tenancy.Open as the service does.
package tenancytest

import (
	"context"
	"testing"

	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/pgtest"
	"gorm.io/gorm"
)

// Open returns a handle on a fresh database (see pgtest.NewDB) and its URL.
// The handle closes when the test ends.
func Open(tb testing.TB, pool tenancy.PoolConfig) (*gorm.DB, string) {
	tb.Helper()
	url := pgtest.NewDB(tb)
	ctx := context.Background()
	db, err := tenancy.Open(ctx, url, pool)
	if err != nil {
		tb.Fatalf("open %s: %v", url, err)
	}
	tb.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	if err := migrations.ApplyShared(ctx, db); err != nil {
		tb.Fatalf("shared migrations: %v", err)
	}
	return db, url
}
