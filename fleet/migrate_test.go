package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantry/tenantry/fleet"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/migrations/migrationstest"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

func onboardMany(t *testing.T, e *env, prefix string, n int) []string {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	e.onboard(t, names...)
	return names
}

// versions returns each tenant's ledger version and registry version.
func versions(t *testing.T, e *env) map[string][2]int {
	t.Helper()
	var rows []struct {
		Name          string
		SchemaName    string
		SchemaVersion int
	}
	if err := e.ddl.Raw("SELECT name, schema_name, schema_version FROM " + migrations.TenantsTable).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := map[string][2]int{}
	for _, r := range rows {
		var ledger int
		if err := e.ddl.Raw(`SELECT count(*) FROM "` + r.SchemaName + `".schema_migrations`).Scan(&ledger).Error; err != nil {
			t.Fatal(err)
		}
		out[r.Name] = [2]int{ledger, r.SchemaVersion}
	}
	return out
}

func hasColumn(t *testing.T, e *env, schema, column string) bool {
	t.Helper()
	var n int
	if err := e.ddl.Raw("SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'items' AND column_name = $2", schema, column).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// migrate runs fleet.Migrate and returns the visited tenants' results.
func migrate(ctx context.Context, dir *tenancy.Directory, o fleet.Options) ([]fleet.Result, error) {
	s, err := fleet.Migrate(ctx, dir, o)
	return s.Results, err
}

func failures(rs []fleet.Result) map[string]error {
	out := map[string]error{}
	for _, r := range rs {
		if r.Err != nil {
			out[r.Tenant] = r.Err
		}
	}
	return out
}

func TestBlueprintBuildsWhatAutoMigrateBuilds(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	ctx := context.Background()
	slow := e.directory(tenancy.WithAutoMigrate())
	if _, err := slow.Onboard(ctx, "slow"); err != nil {
		t.Fatal(err)
	}
	e.onboard(t, "fast")
	fp := func(schema string) string {
		var out string
		err := tenancy.InSchema(ctx, e.ddl, schema, tenancy.DDLLimits, func(tx *gorm.DB) error {
			var err error
			out, err = migrations.Fingerprint(tx, schema)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	slowFP, fastFP := fp("t_slow"), fp("t_fast")
	if slowFP != fastFP || !strings.Contains(slowFP, "index idx_items_name") {
		t.Fatalf("fast path differs from AutoMigrate:\nautomigrate:\n%s\nblueprint:\n%s", slowFP, fastFP)
	}
	// The sequence behind items.id belongs to the tenant's own schema.
	if !strings.Contains(fastFP, "nextval('items_id_seq'::regclass)") {
		t.Fatalf("items.id default does not use the schema's own sequence:\n%s", fastFP)
	}
	// And replaying the plan's steps from empty gives the same shape, so
	// tenants upgraded step by step match tenants born at the latest.
	st, err := fleet.Inspect(ctx, e.dir, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Drift != "" || s.Version != migrations.Items.Latest() || len(s.Pending) != 0 {
			t.Fatalf("status %+v", s)
		}
	}
}

func TestMigrate200TenantsAtConcurrency8(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 10, MaxIdle: 10})
	names := onboardMany(t, e, "fleet", 200)
	createItem(t, e, names[7], "widget")
	plan := migrationstest.PlanWith(migrationstest.SKUStep)
	dir := e.directory(tenancy.WithPlan(plan))
	var last fleet.Progress
	rs, err := migrate(context.Background(), dir, fleet.Options{
		Concurrency: 8, Progress: func(p fleet.Progress) { last = p }})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 200 || len(failures(rs)) != 0 {
		t.Fatalf("%d results, failures %v", len(rs), failures(rs))
	}
	if last.Done != 200 || last.Total != 200 || last.Failed != 0 {
		t.Fatalf("last progress %+v", last)
	}
	for name, v := range versions(t, e) {
		if v != [2]int{2, 2} {
			t.Fatalf("%s at ledger/registry %v, want [2 2]", name, v)
		}
	}
	var sku string
	if err := e.ddl.Raw(`SELECT sku FROM t_` + names[7] + `.items`).Scan(&sku).Error; err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sku, "SKU-") {
		t.Fatalf("backfill gave sku %q", sku)
	}
	// A second run has nothing to select.
	rs, err = migrate(context.Background(), dir, fleet.Options{Concurrency: 8})
	if err != nil || len(rs) != 0 {
		t.Fatalf("re-run touched %d tenants (%v)", len(rs), err)
	}
	st, err := fleet.Inspect(context.Background(), dir, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Drift != "" {
			t.Fatalf("drift after migration: %+v", s)
		}
	}
}

func TestFailingTenantKeepsItsOldVersion(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	onboardMany(t, e, "ok", 12)
	e.onboard(t, "doomed")
	bad := migrationstest.SKUStep
	bad.Up = `DO $$ BEGIN IF current_schema() = 't_doomed' THEN RAISE EXCEPTION 'boom'; END IF; END $$;` + migrationstest.SKUStep.Up
	dir := e.directory(tenancy.WithPlan(migrationstest.PlanWith(bad)))
	rs, err := migrate(context.Background(), dir, fleet.Options{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	f := failures(rs)
	if len(rs) != 13 || len(f) != 1 || f["doomed"] == nil {
		t.Fatalf("results %d, failures %v; want only doomed", len(rs), f)
	}
	for name, v := range versions(t, e) {
		want := [2]int{2, 2}
		if name == "doomed" {
			want = [2]int{1, 1}
		}
		if v != want {
			t.Fatalf("%s at %v, want %v", name, v, want)
		}
	}
	if hasColumn(t, e, "t_doomed", "sku") || !hasColumn(t, e, "t_ok0003", "sku") {
		t.Fatal("the failed tenant was half-migrated, or the others were not migrated")
	}
	// Its items stay served: the failed step was compatible.
	if _, err := listItems(context.Background(), e, "doomed"); err != nil {
		t.Fatalf("doomed after the failed run: %v", err)
	}
}

func TestCancelledRunResumes(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	onboardMany(t, e, "resume", 40)
	dir := e.directory(tenancy.WithPlan(migrationstest.PlanWith(migrationstest.SKUStep)))
	ctx, cancel := context.WithCancel(context.Background())
	rs, err := migrate(ctx, dir, fleet.Options{Concurrency: 2,
		Progress: func(p fleet.Progress) {
			if p.Done == 10 {
				cancel()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	migrated := 0
	for _, r := range rs {
		if r.Err == nil {
			migrated++
		}
	}
	if migrated < 10 || migrated == 40 {
		t.Fatalf("%d of 40 migrated before the cancel took effect; want 10 to 39", migrated)
	}
	// No tenant is half-way: ledger, registry and columns agree.
	for name, v := range versions(t, e) {
		if v[0] != v[1] || hasColumn(t, e, "t_"+name, "sku") != (v[0] == 2) {
			t.Fatalf("%s is half-migrated: ledger/registry %v", name, v)
		}
	}
	rs, err = migrate(context.Background(), dir, fleet.Options{Concurrency: 2})
	if err != nil || len(failures(rs)) != 0 || len(rs) != 40-migrated {
		t.Fatalf("resume: %d results (want %d), failures %v, %v", len(rs), 40-migrated, failures(rs), err)
	}
	for name, v := range versions(t, e) {
		if v != [2]int{2, 2} {
			t.Fatalf("%s at %v after resuming", name, v)
		}
	}
}

func TestTwoRunnersNeverDoubleApply(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 8, MaxIdle: 8})
	names := onboardMany(t, e, "twin", 30)
	// A step that is visibly not idempotent (run twice, it leaves two rows)
	// and slow enough that the runners meet on the same schemas.
	marker := migrations.Step{Version: 2, Name: "marker", Up: `SELECT pg_sleep(0.02); INSERT INTO items (name, description) VALUES ('marker', '')`}
	dir := e.directory(tenancy.WithPlan(migrationstest.PlanWith(marker)))
	var wg sync.WaitGroup
	results := make([][]fleet.Result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Name every tenant, so both runners visit all of them.
			rs, err := migrate(context.Background(), dir, fleet.Options{Tenants: names, Concurrency: 3})
			if err != nil {
				t.Error(err)
			}
			results[i] = rs
		}()
	}
	wg.Wait()
	applied := 0
	for _, rs := range results {
		if f := failures(rs); len(f) != 0 {
			t.Fatalf("failures: %v", f)
		}
		for _, r := range rs {
			applied += len(r.Steps)
		}
	}
	if applied != len(names) {
		t.Fatalf("the step was applied %d times over %d tenants", applied, len(names))
	}
	for _, n := range names {
		var markers int
		if err := e.ddl.Raw(`SELECT count(*) FROM t_` + n + `.items WHERE name = 'marker'`).Scan(&markers).Error; err != nil {
			t.Fatal(err)
		}
		if markers != 1 {
			t.Fatalf("%s has %d markers, want 1", n, markers)
		}
	}
}

func TestEditedStepIsRefused(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	names := onboardMany(t, e, "edit", 3)
	ctx := context.Background()
	if _, err := migrate(ctx, e.directory(tenancy.WithPlan(migrationstest.PlanWith(migrationstest.SKUStep))), fleet.Options{}); err != nil {
		t.Fatal(err)
	}
	edited := migrationstest.SKUStep
	edited.Up = strings.Replace(migrationstest.SKUStep.Up, "varchar(32)", "varchar(64)", 1)
	dir := e.directory(tenancy.WithPlan(migrationstest.PlanWith(edited)))
	rs, err := migrate(ctx, dir, fleet.Options{Tenants: names})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if !errors.Is(r.Err, migrations.ErrEdited) {
			t.Fatalf("%s: err = %v, want ErrEdited", r.Tenant, r.Err)
		}
	}
	st, err := fleet.Inspect(ctx, dir, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if !strings.Contains(s.Drift, "edited") {
			t.Fatalf("status of %s does not flag the edited step: %+v", s.Tenant, s)
		}
	}
}

func TestDryRunChangesNothingAndDownStepsUndo(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	onboardMany(t, e, "dry", 3)
	ctx := context.Background()
	dir := e.directory(tenancy.WithPlan(migrationstest.PlanWith(migrationstest.SKUStep)))
	rs, err := migrate(ctx, dir, fleet.Options{DryRun: true})
	if err != nil || len(rs) != 3 {
		t.Fatalf("dry run: %d results, %v", len(rs), err)
	}
	for _, r := range rs {
		if r.Err != nil || !slices.Equal(r.Steps, []int{2}) || r.From != 1 {
			t.Fatalf("dry run result %+v", r)
		}
	}
	if hasColumn(t, e, "t_dry0000", "sku") || versions(t, e)["dry0000"] != [2]int{1, 1} {
		t.Fatal("the dry run changed a schema")
	}
	if _, err := migrate(ctx, dir, fleet.Options{}); err != nil {
		t.Fatal(err)
	}
	rs, err = migrate(ctx, dir, fleet.Options{To: 1})
	if err != nil || len(failures(rs)) != 0 || len(rs) != 3 {
		t.Fatalf("down: %v %v", failures(rs), err)
	}
	if hasColumn(t, e, "t_dry0001", "sku") || versions(t, e)["dry0001"] != [2]int{1, 1} {
		t.Fatal("--to 1 did not undo the step")
	}
}

func TestDriftIsFlagged(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "clean", "tampered")
	e.admin(t, `ALTER TABLE t_tampered.items ADD COLUMN rogue integer`)
	st, err := fleet.Inspect(context.Background(), e.dir, 4)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range st {
		got[s.Tenant] = s.Drift
	}
	if got["clean"] != "" || got["tampered"] == "" {
		t.Fatalf("drift = %v; want only tampered flagged", got)
	}
}

// A tenant behind an incompatible step is refused with ErrUnavailable (503
// with Retry-After at the API), and served again once migrated; a tenant
// behind only compatible steps is served throughout.
func TestTenantBehindAnIncompatibleStepIsUnavailable(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "behind")
	ctx := context.Background()
	compatible := e.directory(tenancy.WithPlan(migrationstest.PlanWith(migrationstest.SKUStep)))
	if _, err := compatible.Active(ctx, "behind"); err != nil {
		t.Fatalf("behind a compatible step: %v", err)
	}
	breaking := migrationstest.SKUStep
	breaking.Compatible = false
	dir := e.directory(tenancy.WithPlan(migrationstest.PlanWith(breaking)))
	_, err := dir.Active(ctx, "behind")
	if !errors.Is(err, tenancy.ErrBehind) || !errors.Is(err, models.ErrUnavailable) {
		t.Fatalf("behind an incompatible step: %v, want ErrBehind", err)
	}
	if _, err := migrate(ctx, dir, fleet.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := dir.Active(ctx, "behind"); err != nil {
		t.Fatalf("after migrating: %v", err)
	}
}

// Tenants on different schema versions share one pooled connection. The
// service's exec mode keeps no server-side plans, so the result shape may
// differ between tenants; pgx's default statement cache would fail here
// with "cached plan must not change result type" (0A000), which the second
// half shows.
func TestTenantsOnDifferentVersionsShareAConnection(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1})
	e.onboard(t, "newer", "older")
	createItem(t, e, "newer", "n")
	createItem(t, e, "older", "o")
	dir := e.directory(tenancy.WithPlan(migrationstest.PlanWith(migrationstest.SKUStep)))
	if _, err := migrate(context.Background(), dir, fleet.Options{Tenants: []string{"newer"}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		for _, n := range []string{"newer", "older"} {
			ten, err := dir.Active(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			var rows []map[string]any
			err = tenancy.WithTx(ctx, ten, func(tx *gorm.DB) error {
				return tx.Raw("SELECT * FROM items").Scan(&rows).Error
			})
			if err != nil || len(rows) != 1 || rows[0]["name"] != n[:1] {
				t.Fatalf("round %d, %s: %v %v", i, n, rows, err)
			}
		}
	}

	conn, err := pgx.Connect(ctx, e.url) // default mode: cache_statement
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var hazard error
	for _, n := range []string{"newer", "older"} {
		ten, err := dir.Active(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true), set_config('role', $2, true)", ten.Row().SchemaName, ten.Row().DBRole); err != nil {
			t.Fatal(err)
		}
		rows, err := tx.Query(ctx, "SELECT * FROM items WHERE id > $1", 0)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
		}
		tx.Rollback(ctx)
		if err != nil {
			hazard = err
		}
	}
	var pgErr *pgconn.PgError
	if !errors.As(hazard, &pgErr) || pgErr.Code != "0A000" {
		t.Fatalf("pgx's statement cache across versions gave %v; the hazard this test guards against is gone?", hazard)
	}
}

func TestGoStepsRunInTheTenantTransaction(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "gostep")
	createItem(t, e, "gostep", "lower")
	upper := migrations.Step{Version: 2, Name: "upper-case names in Go", Go: func(tx *gorm.DB) error {
		var items []models.Item
		if err := tx.Find(&items).Error; err != nil {
			return err
		}
		for _, it := range items {
			if err := tx.Model(&it).Update("name", strings.ToUpper(it.Name)).Error; err != nil {
				return err
			}
		}
		return nil
	}}
	dir := e.directory(tenancy.WithPlan(migrationstest.PlanWith(upper)))
	rs, err := migrate(context.Background(), dir, fleet.Options{})
	if err != nil || len(rs) != 1 || rs[0].Err != nil || rs[0].To != 2 {
		t.Fatalf("migrate: %+v, %v", rs, err)
	}
	items, err := listItems(context.Background(), e, "gostep")
	if err != nil || len(items) != 1 || items[0].Name != "LOWER" {
		t.Fatalf("after the Go step: %+v, %v", items, err)
	}
}

// A second runner waits for the first to finish a schema, however long its
// step takes (past lock_timeout), then finds nothing to do.
func TestSecondRunnerWaitsPastLockTimeout(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "slowstep")
	sleep := fmt.Sprint(tenancy.DDLLimits.Lock.Seconds() + 1)
	slow := migrations.Step{Version: 2, Name: "slow",
		Up: `SELECT pg_sleep(` + sleep + `); INSERT INTO items (name, description) VALUES ('once', '')`}
	dir := e.directory(tenancy.WithPlan(migrationstest.PlanWith(slow)))
	ctx := context.Background()
	opts := fleet.Options{Tenants: []string{"slowstep"}}
	first := make(chan []fleet.Result, 1)
	go func() {
		rs, err := migrate(ctx, dir, opts)
		if err != nil {
			t.Errorf("first runner: %v", err)
		}
		first <- rs
	}()
	for i := 0; ; i++ { // the first runner is inside its step
		var n int
		if err := e.ddl.Raw("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%pg_sleep(" + sleep + ")%'").Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if i > 500 {
			t.Fatal("the first runner never started its step")
		}
		time.Sleep(10 * time.Millisecond)
	}
	second, err := migrate(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	rs := <-first
	if len(rs) != 1 || rs[0].Err != nil || !slices.Equal(rs[0].Steps, []int{2}) {
		t.Fatalf("first runner: %+v", rs)
	}
	if len(second) != 1 || second[0].Err != nil || len(second[0].Steps) != 0 || second[0].To != 2 {
		t.Fatalf("second runner: %+v; want it to wait, then find nothing to do", second)
	}
	var once int
	if err := e.ddl.Raw(`SELECT count(*) FROM t_slowstep.items WHERE name = 'once'`).Scan(&once).Error; err != nil {
		t.Fatal(err)
	}
	if once != 1 {
		t.Fatalf("the step ran %d times", once)
	}
}

// Version 0 is an empty schema: a tenant schema with no ledger and no
// tables has no drift; one with tables but no ledger does.
func TestStatusAtVersionZero(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.admin(t, `CREATE SCHEMA t_empty; INSERT INTO `+migrations.TenantsTable+` (name, schema_name) VALUES ('empty', 't_empty')`)
	e.admin(t, `CREATE SCHEMA t_legacy; CREATE TABLE t_legacy.items (id bigserial PRIMARY KEY);
		INSERT INTO `+migrations.TenantsTable+` (name, schema_name) VALUES ('legacy', 't_legacy')`)
	st, err := fleet.Inspect(context.Background(), e.dir, 4)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]fleet.SchemaReport{}
	for _, s := range st {
		got[s.Tenant] = s
	}
	if s := got["empty"]; s.Version != 0 || s.Drift != "" || len(s.Pending) != migrations.Items.Latest() {
		t.Fatalf("empty schema: %+v", s)
	}
	if s := got["legacy"]; s.Version != 0 || !strings.Contains(s.Drift, "tables differ") {
		t.Fatalf("tables without a ledger: %+v", s)
	}
}

// The summary accounts for the whole fleet, not only the tenants a run
// visited: current, migrated, failed and skipped add up to the registry.
func TestSummaryCountsTheFleet(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	ctx := context.Background()
	onboardMany(t, e, "sum", 5)
	e.onboard(t, "doomed")
	bad := migrationstest.SKUStep
	bad.Up = `DO $$ BEGIN IF current_schema() = 't_doomed' THEN RAISE EXCEPTION 'boom'; END IF; END $$;` + migrationstest.SKUStep.Up
	dir := e.directory(tenancy.WithPlan(migrationstest.PlanWith(bad)))

	// Named: two visited (one migrates, one fails); the other four are
	// behind and skipped.
	s, err := fleet.Migrate(ctx, dir, fleet.Options{Tenants: []string{"sum0000", "doomed"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := (fleet.Summary{Target: 2, Tenants: 6, Current: 0, Migrated: 1, Failed: 1, Skipped: 4}); !sameCounts(s, want) {
		t.Fatalf("named run: %+v, want counts %+v", s, want)
	}
	// Named again, with one up to date: it is current, and so is the one
	// migrated before, which is not named.
	s, err = fleet.Migrate(ctx, dir, fleet.Options{Tenants: []string{"sum0001"}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := (fleet.Summary{Target: 2, DryRun: true, Tenants: 6, Current: 1, Migrated: 1, Failed: 0, Skipped: 4}); !sameCounts(s, want) {
		t.Fatalf("dry run: %+v, want counts %+v", s, want)
	}
	// Everything: four migrate, doomed fails again, one was current.
	s, err = fleet.Migrate(ctx, dir, fleet.Options{Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	if want := (fleet.Summary{Target: 2, Tenants: 6, Current: 1, Migrated: 4, Failed: 1}); !sameCounts(s, want) {
		t.Fatalf("full run: %+v, want counts %+v", s, want)
	}
	if len(s.Results) != 5 {
		t.Fatalf("full run visited %d tenants, want 5", len(s.Results))
	}
	// The old version is a valid target; versions outside the plan are not.
	for _, to := range []int{-1, 3} {
		if _, err := fleet.Migrate(ctx, dir, fleet.Options{To: to}); err == nil {
			t.Errorf("To: %d accepted", to)
		}
	}
	if _, err := fleet.Migrate(ctx, dir, fleet.Options{Tenants: []string{"nobody"}}); err == nil {
		t.Error("an unknown tenant name was accepted")
	} else if !strings.Contains(err.Error(), "nobody") || !isNotFound(err) {
		t.Errorf("unknown tenant: %v", err)
	}
}

func sameCounts(got, want fleet.Summary) bool {
	return got.Target == want.Target && got.DryRun == want.DryRun && got.Tenants == want.Tenants && got.Current == want.Current &&
		got.Migrated == want.Migrated && got.Failed == want.Failed && got.Skipped == want.Skipped
}

func isNotFound(err error) bool { return errors.Is(err, models.ErrNotFound) }
