// Package tenancytest opens, for one test, a fresh database in the strict
// setup of SECURITY.md: a DDL role that owns the database and applied the
// shared migrations, and a separate request role that owns nothing and can
// only switch to tenant roles inside scopes. Both connect through
// tenancy.Open as the service does.
package tenancytest

import (
	"context"
	"testing"

	"github.com/tenantry/tenantry/internal/pgtest"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// Env is one test's database: DB and URL log in as the request role, Admin
// and AdminURL as the DDL role.
type Env struct {
	DB       *gorm.DB
	URL      string
	Admin    *gorm.DB
	AdminURL string
	Roles    pgtest.Roles
}

// Directory returns a tenant directory over both handles, as serve builds
// it.
func (e *Env) Directory(opts ...tenancy.Option) *tenancy.Directory {
	return tenancy.NewDirectory(e.DB, append(opts, tenancy.WithAdmin(e.Admin))...)
}

// adminPool serves onboarding and migrations in tests; a few connections
// keep concurrent-onboarding tests concurrent.
var adminPool = tenancy.PoolConfig{MaxOpen: 8, MaxIdle: 2, MaxLifetime: tenancy.DefaultPool.MaxLifetime}

// New returns a fresh database (see pgtest.NewDBWithRoles) with the shared
// migrations applied and the request role readied (tenancy's EnsureRoles).
// pool sizes the request role's handle. Everything closes, and the roles
// are dropped, when the test ends.
func New(tb testing.TB, pool tenancy.PoolConfig) *Env {
	tb.Helper()
	r := pgtest.NewDBWithRoles(tb)
	ctx := context.Background()
	e := &Env{URL: r.AppURL, AdminURL: r.DDLURL, Roles: r}
	e.Admin = open(tb, r.DDLURL, adminPool)
	if err := migrations.ApplyShared(ctx, e.Admin); err != nil {
		tb.Fatalf("shared migrations: %v", err)
	}
	e.DB = open(tb, r.AppURL, pool)
	// tenancy.NewDirectory(e.DB) then onboards as the DDL role, as serve's
	// directory does.
	if err := tenancy.AttachAdmin(e.DB, e.Admin); err != nil {
		tb.Fatal(err)
	}
	if err := e.Directory().EnsureRoles(ctx, r.AppRole); err != nil {
		tb.Fatalf("ready the request role: %v", err)
	}
	return e
}

// Open returns the request role's handle on a fresh database (see New) and
// its URL. The DDL role's handle is attached to it (tenancy.AttachAdmin),
// so tenancy.NewDirectory(db) onboards and migrates; SQL run directly on
// db runs as the request role, which reaches no tenant schema: use New's
// Env.Admin to set up or inspect tenant data.
func Open(tb testing.TB, pool tenancy.PoolConfig) (*gorm.DB, string) {
	tb.Helper()
	e := New(tb, pool)
	return e.DB, e.URL
}

func open(tb testing.TB, url string, pool tenancy.PoolConfig) *gorm.DB {
	tb.Helper()
	db, err := tenancy.Open(context.Background(), url, pool)
	if err != nil {
		tb.Fatalf("open %s: %v", url, err)
	}
	tb.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	return db
}

// Resolve resolves tenant name through dir, as a request would, and fails
// the test if it cannot be served.
func Resolve(tb testing.TB, dir *tenancy.Directory, name string) tenancy.Resolved {
	tb.Helper()
	r, err := dir.Active(context.Background(), name)
	if err != nil {
		tb.Fatalf("resolve tenant %q: %v", name, err)
	}
	return r
}
