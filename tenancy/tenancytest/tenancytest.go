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
	"github.com/tenantry/tenantry/models"
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
	e.Admin = Connect(tb, r.DDLURL, adminPool)
	if err := migrations.ApplyShared(ctx, e.Admin); err != nil {
		tb.Fatalf("shared migrations: %v", err)
	}
	e.DB = Connect(tb, r.AppURL, pool)
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

// Connect opens url through tenancy.Open with pool, as the service does,
// and closes the handle when the test ends.
func Connect(tb testing.TB, url string, pool tenancy.PoolConfig) *gorm.DB {
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

// Onboard onboards each tenant of names through dir, failing the test on
// the first that does not.
func Onboard(tb testing.TB, dir *tenancy.Directory, names ...string) {
	tb.Helper()
	for _, n := range names {
		if _, err := dir.Onboard(context.Background(), n); err != nil {
			tb.Fatalf("onboard %s: %v", n, err)
		}
	}
}

// AdminExec runs sql outside any scope on admin (the DDL role's handle),
// with the search_path a role would have by default (public), as an
// operator would.
func AdminExec(tb testing.TB, admin *gorm.DB, sql string, args ...any) {
	tb.Helper()
	if err := admin.Exec("SET LOCAL search_path = public; "+sql, args...).Error; err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// CreateItem creates an item called name in tenant through its scope.
func CreateItem(tb testing.TB, dir *tenancy.Directory, tenant, name string) {
	tb.Helper()
	ten := Resolve(tb, dir, tenant)
	err := tenancy.WithTx(context.Background(), ten, func(tx *gorm.DB) error {
		_, err := models.CreateItem(tx, models.ItemInput{Name: name})
		return err
	})
	if err != nil {
		tb.Fatalf("create item in %s: %v", tenant, err)
	}
}

// ListItems lists up to 1,000 of tenant's items through its scope.
func ListItems(ctx context.Context, dir *tenancy.Directory, tenant string) ([]models.Item, error) {
	ten, err := dir.Active(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var items []models.Item
	err = tenancy.WithTx(ctx, ten, func(tx *gorm.DB) error {
		var err error
		items, err = models.ListItems(tx, 1000, 0)
		return err
	})
	return items, err
}
