package tenancy_test

import (
	"context"
	"testing"

	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/pgtest"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"gorm.io/gorm"
)

func TestMain(m *testing.M) { pgtest.Run(m) }

// env is one test's fresh database with the shared schema applied.
type env struct {
	url string
	db  *gorm.DB
	dir *tenancy.Directory
}

func newEnv(t *testing.T, pool tenancy.PoolConfig) *env {
	t.Helper()
	db, url := tenancytest.Open(t, pool)
	return &env{url: url, db: db, dir: tenancy.NewDirectory(db)}
}

func (e *env) onboard(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := e.dir.Onboard(context.Background(), n); err != nil {
			t.Fatalf("onboard %s: %v", n, err)
		}
	}
}

// admin runs SQL outside any scope with the search_path a superuser would
// have by default (public), as an attacker or an operator would.
func (e *env) admin(t *testing.T, sql string, args ...any) {
	t.Helper()
	if err := e.db.Exec("SET LOCAL search_path = public; "+sql, args...).Error; err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func migrationsApplyShared(e *env) error { return migrations.ApplyShared(context.Background(), e.db) }
