package tenancy_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
)

func schemaExists(t *testing.T, e *env, schema string) bool {
	t.Helper()
	var n int
	if err := e.ddl.Raw("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// waitForLockWait waits until a backend running a query like pattern waits
// for a lock.
func waitForLockWait(t *testing.T, e *env, pattern string) {
	t.Helper()
	for i := 0; i < 500; i++ {
		var n int
		if err := e.ddl.Raw("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE $1", pattern).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no backend waited for the lock")
}

func registryCount(t *testing.T, e *env) int {
	t.Helper()
	var n int
	if err := e.ddl.Raw("SELECT count(*) FROM " + migrations.TenantsTable).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOnboardCreatesSchemaTablesAndRow(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	ten, err := e.dir.Onboard(context.Background(), "acme-corp")
	if err != nil {
		t.Fatal(err)
	}
	if ten.ID == 0 || ten.Name != "acme-corp" || ten.SchemaName != "t_acme_corp" || ten.Status != models.StatusActive {
		t.Fatalf("onboarded %+v", ten)
	}
	var tables []string
	if err := e.ddl.Raw("SELECT table_name FROM information_schema.tables WHERE table_schema = 't_acme_corp' ORDER BY 1").Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	if len(tables) != 2 || tables[0] != "items" || tables[1] != "schema_migrations" {
		t.Fatalf("tables in t_acme_corp = %v, want [items schema_migrations]", tables)
	}
	if ten.SchemaVersion != migrations.Items.Latest() {
		t.Fatalf("new tenant at version %d, want the latest, %d", ten.SchemaVersion, migrations.Items.Latest())
	}
	var public int
	if err := e.ddl.Raw("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&public).Error; err != nil {
		t.Fatal(err)
	}
	if public != 0 {
		t.Fatalf("onboarding created %d tables in public", public)
	}
}

// The last step of onboarding (the registry row) fails: the schema and
// tables made before it must vanish with the transaction.
func TestOnboardingIsAtomic(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.admin(t, `ALTER TABLE `+migrations.TenantsTable+` ADD CONSTRAINT refuse_doomed CHECK (name <> 'doomed')`)
	if _, err := e.dir.Onboard(context.Background(), "doomed"); err == nil {
		t.Fatal("onboarding doomed succeeded")
	}
	if schemaExists(t, e, "t_doomed") || registryCount(t, e) != 0 {
		t.Fatal("failed onboarding left a schema or a row behind")
	}
	// An onboarding cancelled mid-transaction, with its schema and tables
	// made and its registry insert waiting on a lock, leaves nothing either.
	lock := e.ddl.Begin()
	if err := lock.Exec("LOCK TABLE " + migrations.TenantsTable + " IN SHARE MODE").Error; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := e.dir.Onboard(ctx, "cancelled"); done <- err }()
	// Its last statement, the registry insert, waits: the schema and the
	// tables were made before it in the same transaction.
	waitForLockWait(t, e, "%INSERT INTO%tenants%")
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled onboarding succeeded")
	}
	lock.Rollback()
	if schemaExists(t, e, "t_cancelled") || registryCount(t, e) != 0 {
		t.Fatal("cancelled onboarding left a schema or a row behind")
	}
}

func TestOnboardRaceGivesOneSuccess(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	// "race-x" and "race_x" derive one schema: they race too.
	names := []string{"race-x", "race_x", "race-x", "race_x", "race-x", "race_x", "race-x", "race_x"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, conflict := 0, 0
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.dir.Onboard(context.Background(), n)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, models.ErrConflict):
				conflict++
			default:
				t.Errorf("onboard %s: %v (neither success nor conflict)", n, err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 || conflict != len(names)-1 {
		t.Fatalf("%d successes and %d conflicts, want 1 and %d", ok, conflict, len(names)-1)
	}
	if registryCount(t, e) != 1 {
		t.Fatalf("registry has %d rows, want 1", registryCount(t, e))
	}
}

func TestOnboardConflictsWithAStraySchema(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.admin(t, `CREATE SCHEMA t_stray; CREATE TABLE t_stray.keep (x int)`)
	if _, err := e.dir.Onboard(context.Background(), "stray"); !errors.Is(err, models.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	var n int
	if err := e.ddl.Raw("SELECT count(*) FROM t_stray.keep").Scan(&n).Error; err != nil {
		t.Fatalf("the stray schema was touched: %v", err)
	}
}

func TestOffboardDropsEverything(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "gone")
	createItem(t, e, "gone", "x")
	ctx := context.Background()
	if err := e.dir.Offboard(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if schemaExists(t, e, "t_gone") || registryCount(t, e) != 0 {
		t.Fatal("offboarding left the schema or the row")
	}
	if _, err := e.dir.Active(ctx, "gone"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("Active after offboard: %v, want ErrNotFound", err)
	}
	if err := e.dir.Offboard(ctx, "gone"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("second offboard: %v, want ErrNotFound", err)
	}
	// The name can be onboarded again, fresh.
	e.onboard(t, "gone")
	if items, err := listItems(ctx, e, "gone"); err != nil || len(items) != 0 {
		t.Fatalf("re-onboarded tenant sees %v, %v", items, err)
	}
}

func TestChangedTenantIsNeverServedFromCache(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "cached")
	ctx := context.Background()
	if _, err := e.dir.Active(ctx, "cached"); err != nil { // warm the cache
		t.Fatal(err)
	}
	if _, err := e.dir.SetStatus(ctx, "cached", models.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dir.Active(ctx, "cached"); !errors.Is(err, models.ErrForbidden) {
		t.Fatalf("suspended tenant: %v, want ErrForbidden", err)
	}
	if _, err := e.dir.SetStatus(ctx, "cached", models.StatusActive); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dir.Active(ctx, "cached"); err != nil {
		t.Fatalf("resumed tenant: %v", err)
	}
	if err := e.dir.Offboard(ctx, "cached"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dir.Active(ctx, "cached"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("deleted tenant: %v, want ErrNotFound", err)
	}
}

func TestSharedMigrationIsIdempotentUnderConcurrency(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := migrationsApplyShared(e); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	var n int
	if err := e.ddl.Raw("SELECT count(*) FROM " + migrations.SharedLedger).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != migrations.Shared.Latest() {
		t.Fatalf("ledger has %d rows, want %d", n, migrations.Shared.Latest())
	}
}

func TestRoleWarningsNameASuperuserAndADecoy(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	w, err := tenancy.RoleWarnings(context.Background(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	var super bool
	if err := e.ddl.Raw("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super).Error; err != nil {
		t.Fatal(err)
	}
	if super != (len(w) == 1) {
		t.Fatalf("superuser=%v, warnings %q", super, w)
	}
	e.admin(t, `CREATE TABLE public.items (id int)`)
	w2, err := tenancy.RoleWarnings(context.Background(), e.db)
	if err != nil || len(w2) != len(w)+1 {
		t.Fatalf("with a public decoy: %q, %v", w2, err)
	}
}

func TestTenantAheadOfTheBinaryIsUnavailable(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "future")
	e.admin(t, `UPDATE `+migrations.TenantsTable+` SET schema_version = 99 WHERE name = 'future'`)
	if _, err := e.dir.Active(context.Background(), "future"); !errors.Is(err, tenancy.ErrAheadOfBinary) || !errors.Is(err, models.ErrUnavailable) {
		t.Fatalf("tenant at version 99: %v, want ErrAheadOfBinary", err)
	}
}

// A transaction on the tenant's table that never ends (no idle timeout: it
// runs outside any scope) cannot hold an offboarding forever: after the
// grace, the offboarding cuts it and drops the schema, and the cut
// transaction cannot commit. It runs as the DDL role, which the
// offboarding may signal; a request role's backends need the DDL role to
// hold pg_signal_backend (SECURITY.md), else they are waited out.
func TestOffboardCutsWorkThatNeverFinishes(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "stuck")
	tx := e.ddl.Begin()
	if tx.Error != nil {
		t.Fatal(tx.Error)
	}
	if err := tx.Exec(`INSERT INTO "t_stuck".items (name, description, created_at, updated_at)
		VALUES ('held', '', now(), now())`).Error; err != nil {
		t.Fatal(err)
	}
	if err := e.dir.Offboard(context.Background(), "stuck"); err != nil {
		t.Fatalf("offboard with a stuck writer: %v", err)
	}
	if schemaExists(t, e, "t_stuck") {
		t.Fatal("schema t_stuck survived")
	}
	if err := tx.Commit().Error; err == nil {
		t.Fatal("the stuck transaction committed after the offboarding")
	}
	if _, err := e.dir.Get(context.Background(), "stuck"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("registry after offboarding: %v, want not found", err)
	}
}

// Offboarding a tenant that does not exist is not found and changes nothing.
func TestOffboardUnknownTenantIsNotFound(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "keeper")
	if err := e.dir.Offboard(context.Background(), "ghost"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("offboard ghost: %v, want not found", err)
	}
	if n := registryCount(t, e); n != 1 {
		t.Fatalf("registry rows = %d, want 1", n)
	}
}
