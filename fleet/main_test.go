package fleet_test

import (
	"context"
	"testing"

	"github.com/tenantry/tenantry/internal/pgtest"
	"github.com/tenantry/tenantry/models"
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
}

func newEnv(t *testing.T, pool tenancy.PoolConfig) *env {
	t.Helper()
	te := tenancytest.New(t, pool)
	return &env{url: te.URL, db: te.DB, ddl: te.Admin, dir: te.Directory()}
}

// directory returns a directory over the test's handles with opts.
func (e *env) directory(opts ...tenancy.Option) *tenancy.Directory {
	return tenancy.NewDirectory(e.db, append(opts, tenancy.WithAdmin(e.ddl))...)
}

func (e *env) onboard(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := e.dir.Onboard(context.Background(), n); err != nil {
			t.Fatalf("onboard %s: %v", n, err)
		}
	}
}

// admin runs SQL outside any scope as the DDL role, with the search_path
// a role would have by default (public), as an operator would.
func (e *env) admin(t *testing.T, sql string, args ...any) {
	t.Helper()
	if err := e.ddl.Exec("SET LOCAL search_path = public; "+sql, args...).Error; err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func createItem(t *testing.T, e *env, tenant, name string) {
	t.Helper()
	ten, err := e.dir.Active(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	err = tenancy.WithTx(context.Background(), ten, func(tx *gorm.DB) error {
		_, err := models.CreateItem(tx, models.ItemInput{Name: name})
		return err
	})
	if err != nil {
		t.Fatalf("create item in %s: %v", tenant, err)
	}
}

func listItems(ctx context.Context, e *env, tenant string) ([]models.Item, error) {
	ten, err := e.dir.Active(ctx, tenant)
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
