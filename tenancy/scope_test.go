package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

func createItem(t *testing.T, e *env, tenant, name string) {
	t.Helper()
	tenancytest.CreateItem(t, e.dir, tenant, name)
}

func listItems(ctx context.Context, e *env, tenant string) ([]models.Item, error) {
	return tenancytest.ListItems(ctx, e.dir, tenant)
}

func rawSearchPath(t *testing.T, db *gorm.DB) string {
	t.Helper()
	var sp string
	if err := db.Raw("SHOW search_path").Scan(&sp).Error; err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestConnectionsStartWithEmptySearchPath(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "acme")
	if got := rawSearchPath(t, e.db); got != "" {
		t.Fatalf("search_path outside a scope = %q, want empty", got)
	}
	// An unqualified query that escapes a scope fails instead of finding a table.
	err := e.db.Raw("SELECT count(*) FROM items").Scan(new(int)).Error
	if err == nil {
		t.Fatal("unqualified query outside a scope succeeded; want relation does not exist")
	}
}

func TestScopeNeverFallsBackToPublic(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.admin(t, `CREATE TABLE public.items (id bigint, name text, description text, created_at timestamptz, updated_at timestamptz)`)
	e.admin(t, `INSERT INTO public.items VALUES (1, 'CANARY', 'public decoy', now(), now())`)
	e.onboard(t, "acme", "bravo")
	createItem(t, e, "acme", "acme-1")

	items, err := listItems(context.Background(), e, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Name != "acme-1" {
		t.Fatalf("acme sees %+v, want only acme-1", items)
	}
	// bravo has an empty items table: it must see nothing, not the decoy.
	if items, err := listItems(context.Background(), e, "bravo"); err != nil || len(items) != 0 {
		t.Fatalf("bravo sees %+v, %v; want nothing", items, err)
	}
	// Drop bravo's table: the scope must fail, never fall back to public.items.
	e.admin(t, `DROP TABLE t_bravo.items`)
	items, err = listItems(context.Background(), e, "bravo")
	if err == nil {
		t.Fatalf("bravo without an items table got %+v, want an error", items)
	}
	if !errors.Is(err, models.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	// Drop the whole schema: still no fallback.
	e.admin(t, `DROP SCHEMA t_bravo CASCADE`)
	if items, err := listItems(context.Background(), e, "bravo"); err == nil || !errors.Is(err, models.ErrUnavailable) {
		t.Fatalf("bravo without a schema got %+v, %v; want ErrUnavailable", items, err)
	}
}

func TestScopePinsExactlyTheTenantSchema(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "acme-corp")
	ten := e.active(t, "acme-corp")
	var schemas string
	err := tenancy.WithTx(context.Background(), ten, func(tx *gorm.DB) error {
		return tx.Raw("SELECT current_schemas(false)::text").Scan(&schemas).Error
	})
	if err != nil || schemas != "{t_acme_corp}" {
		t.Fatalf("current_schemas = %q, %v; want {t_acme_corp}", schemas, err)
	}
}

// With one pooled connection, every request reuses the same backend, so any
// scope that survived its transaction would show up in the next request.
func TestNoScopeSurvivesOnAPoolOfOne(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1})
	e.onboard(t, "alpha", "beta")
	createItem(t, e, "alpha", "alpha-item")
	createItem(t, e, "beta", "beta-item")
	ctx := context.Background()
	alpha := e.active(t, "alpha")

	mishaps := []struct {
		name string
		run  func() error
	}{
		{"error", func() error {
			return tenancy.WithTx(ctx, alpha, func(tx *gorm.DB) error {
				if _, err := models.CreateItem(tx, models.ItemInput{Name: "rolled-back"}); err != nil {
					return err
				}
				return errors.New("handler failed")
			})
		}},
		{"panic", func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v", r)
				}
			}()
			return tenancy.WithTx(ctx, alpha, func(tx *gorm.DB) error {
				if _, err := models.CreateItem(tx, models.ItemInput{Name: "rolled-back"}); err != nil {
					return err
				}
				panic("handler panicked")
			})
		}},
		{"context cancelled mid-query", func() error {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			return tenancy.WithTx(cctx, alpha, func(tx *gorm.DB) error {
				if _, err := models.CreateItem(tx, models.ItemInput{Name: "rolled-back"}); err != nil {
					return err
				}
				time.AfterFunc(100*time.Millisecond, cancel) // while pg_sleep runs on the server
				return tx.Exec("SELECT pg_sleep(5)").Error
			})
		}},
		{"bad SQL", func() error {
			return tenancy.WithTx(ctx, alpha, func(tx *gorm.DB) error {
				return tx.Exec("SELECT * FROM no_such_table").Error
			})
		}},
	}
	for round := 0; round < 3; round++ {
		for _, m := range mishaps {
			if err := m.run(); err == nil {
				t.Fatalf("%s: want an error", m.name)
			}
			if got := rawSearchPath(t, e.db); got != "" {
				t.Fatalf("after %s, pooled connection has search_path %q", m.name, got)
			}
			for _, tenant := range []string{"beta", "alpha"} {
				items, err := listItems(ctx, e, tenant)
				if err != nil {
					t.Fatalf("after %s, list %s: %v", m.name, tenant, err)
				}
				if len(items) != 1 || items[0].Name != tenant+"-item" {
					t.Fatalf("after %s, %s sees %+v", m.name, tenant, items)
				}
			}
		}
	}
}

func TestConcurrentTenantsNeverCross(t *testing.T) {
	// 15 scopes of a tenant at once on a pool of 4 is far past a tenant's
	// share (1): the cap would refuse some after its wait. This test is
	// about isolation under contention, so the cap is off.
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 4, MaxIdle: 4, TenantShare: -1})
	const tenants, writes = 12, 15
	names := make([]string, tenants)
	for i := range names {
		names[i] = fmt.Sprintf("tenant%02d", i)
	}
	e.onboard(t, names...)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, tenants*writes)
	for _, n := range names {
		for w := 0; w < writes; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ten, err := e.dir.Active(ctx, n)
				if err != nil {
					errs <- err
					return
				}
				err = tenancy.WithTx(ctx, ten, func(tx *gorm.DB) error {
					if _, err := models.CreateItem(tx, models.ItemInput{Name: n}); err != nil {
						return err
					}
					items, err := models.ListItems(tx, 1000, 0)
					for _, it := range items {
						if it.Name != n {
							return fmt.Errorf("tenant %s saw item of %s", n, it.Name)
						}
					}
					return err
				})
				if err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, n := range names {
		items, err := listItems(ctx, e, n)
		if err != nil || len(items) != writes {
			t.Errorf("%s has %d items (%v), want %d", n, len(items), err, writes)
		}
	}
}

func TestNestedScopeIsRefused(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "alpha", "beta")
	ctx := context.Background()
	alpha := e.active(t, "alpha")
	beta := e.active(t, "beta")
	err := tenancy.WithTx(ctx, alpha, func(tx *gorm.DB) error {
		return tenancy.WithTx(tx.Statement.Context, beta, func(*gorm.DB) error { return nil })
	})
	if !errors.Is(err, tenancy.ErrNested) {
		t.Fatalf("nested via context: err = %v, want ErrNested", err)
	}
	// A scope on fn's tx (a savepoint) cannot even be asked for: WithTx
	// takes no handle, only the directory's Resolved, whose pool is the
	// root one.
}

// A savepoint rolled back inside the scope must not undo the pin: it was made
// before any savepoint, in the outermost transaction.
func TestSavepointRollbackKeepsThePin(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "alpha")
	ctx := context.Background()
	alpha := e.active(t, "alpha")
	var schema string
	err := tenancy.WithTx(ctx, alpha, func(tx *gorm.DB) error {
		errSavepoint := errors.New("roll back to savepoint")
		if err := tx.Transaction(func(sp *gorm.DB) error {
			if err := sp.Exec("SELECT set_config('search_path', 'public', true)").Error; err != nil {
				return err
			}
			return errSavepoint
		}); !errors.Is(err, errSavepoint) {
			return fmt.Errorf("the savepoint: %v, want it rolled back on purpose", err)
		}
		return tx.Raw("SELECT current_schema()").Scan(&schema).Error
	})
	if err != nil || schema != "t_alpha" {
		t.Fatalf("after savepoint rollback current_schema = %q, %v; want t_alpha", schema, err)
	}
}

func TestScopeRejectsUnderivedSchema(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	for _, s := range []string{"public", migrations.SharedSchema, "t_a,public", `t_a"; DROP SCHEMA tenantry; --`} {
		called := false
		err := tenancy.InSchema(context.Background(), e.db, s, tenancy.RequestLimits, func(*gorm.DB) error {
			called = true
			return nil
		})
		if !errors.Is(err, models.ErrInvalid) || called {
			t.Errorf("schema %q: err = %v, called = %v; want ErrInvalid before fn", s, err, called)
		}
	}
}

// Only the directory's resolution opens a tenant's scope: the zero
// Resolved (all code outside tenancy can make) and the value Active returns
// with an error (a suspended tenant's) open nothing, and fn never runs.
func TestScopeOpensOnlyForAResolvedTenant(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	ctx := context.Background()
	e.onboard(t, "acme")
	if _, err := e.dir.SetStatus(ctx, "acme", models.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	suspended, err := e.dir.Active(ctx, "acme")
	if !errors.Is(err, models.ErrForbidden) || suspended.Name() != "acme" {
		t.Fatalf("Active(suspended acme) = %q, %v; want its row and ErrForbidden", suspended.Name(), err)
	}
	for name, r := range map[string]tenancy.Resolved{"zero value": {}, "suspended": suspended} {
		called := false
		err := tenancy.WithTx(ctx, r, func(*gorm.DB) error {
			called = true
			return nil
		})
		if !errors.Is(err, tenancy.ErrUnresolved) || called {
			t.Errorf("%s: err = %v, called = %v; want ErrUnresolved before fn", name, err, called)
		}
	}
}

// A handle opened without tenancy.Open has neither the pinning driver nor
// the empty search_path; the scope must still pin before fn runs.
func TestScopePinsOnAForeignHandle(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.admin(t, `CREATE TABLE public.items (id bigint, name text, description text, created_at timestamptz, updated_at timestamptz);
		INSERT INTO public.items VALUES (1, 'CANARY', '', now(), now())`)
	e.onboard(t, "acme")
	createItem(t, e, "acme", "acme-1")
	foreign, err := gorm.Open(postgres.Open(e.url), &gorm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := foreign.DB(); err == nil {
			s.Close()
		}
	})
	// A directory over the foreign handle resolves tenants onto it.
	ten, err := tenancy.NewDirectory(foreign).Active(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	var items []models.Item
	err = tenancy.WithTx(context.Background(), ten, func(tx *gorm.DB) error {
		var err error
		items, err = models.ListItems(tx, 10, 0)
		return err
	})
	if err != nil || len(items) != 1 || items[0].Name != "acme-1" {
		t.Fatalf("through a foreign handle: %+v, %v", items, err)
	}
	e.admin(t, `DROP SCHEMA t_acme CASCADE`)
	err = tenancy.WithTx(context.Background(), ten, func(tx *gorm.DB) error {
		var err error
		items, err = models.ListItems(tx, 10, 0)
		return err
	})
	if !errors.Is(err, models.ErrUnavailable) {
		t.Fatalf("foreign handle, dropped schema: %+v, %v; want ErrUnavailable, never the decoy", items, err)
	}
}
