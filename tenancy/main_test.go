package tenancy_test

import (
	"context"
	"testing"

	"github.com/tenantry/tenantry/internal/pgtest"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"gorm.io/gorm"
)

func TestMain(m *testing.M) { pgtest.Run(m) }

// env is one test's fresh database with the shared schema applied: db is
// the request role's handle, ddl the DDL role's.
type env struct {
	url string
	db  *gorm.DB
	ddl *gorm.DB
	dir *tenancy.Directory
	te  *tenancytest.Env
}

func newEnv(t *testing.T, pool tenancy.PoolConfig) *env { return newEnvTB(t, pool) }

func newEnvTB(t testing.TB, pool tenancy.PoolConfig) *env {
	t.Helper()
	te := tenancytest.New(t, pool)
	return &env{url: te.URL, db: te.DB, ddl: te.Admin, dir: te.Directory(), te: te}
}

// tenantWithItem onboards tenant name with one item named item, and
// resolves it.
func (e *env) tenantWithItem(t *testing.T, name, item string) tenancy.Resolved {
	t.Helper()
	e.onboard(t, name)
	createItem(t, e, name, item)
	return tenancytest.Resolve(t, e.dir, name)
}

func (e *env) onboard(t *testing.T, names ...string) {
	t.Helper()
	tenancytest.Onboard(t, e.dir, names...)
}

// admin runs SQL outside any scope as the DDL role (tenancytest.AdminExec).
func (e *env) admin(t *testing.T, sql string, args ...any) {
	t.Helper()
	tenancytest.AdminExec(t, e.ddl, sql, args...)
}

func migrationsApplyShared(e *env) error { return migrations.ApplyShared(context.Background(), e.ddl) }
