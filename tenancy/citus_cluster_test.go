package tenancy_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantry/tenantry/fleet"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"gorm.io/gorm"
)

// The tests below need a Citus cluster: TEST_CITUS_URL names a database on
// its coordinator (citus installed on every node, two or more workers
// added, wal_level = logical for moves) and a role that may create schemas
// and roles there (the DDL role; a superuser is not needed). Without it they
// skip. Every tenant they make has a random name and is offboarded at the
// end, so the database can be reused.

// citusEnv is a directory on the Citus coordinator, in the one-URL setup.
type citusEnv struct {
	db  *gorm.DB
	dir *tenancy.Directory
	tag string
}

func newCitusEnv(t *testing.T) *citusEnv {
	t.Helper()
	url := os.Getenv("TEST_CITUS_URL")
	if url == "" {
		t.Skip("TEST_CITUS_URL is not set (a Citus coordinator database)")
	}
	ctx := context.Background()
	db := tenancytest.Connect(t, url, tenancy.PoolConfig{MaxOpen: 16, MaxIdle: 8, MaxLifetime: time.Minute, StatementCache: 64})
	if err := migrations.ApplyShared(ctx, db); err != nil {
		t.Fatalf("shared migrations on Citus: %v", err)
	}
	var role string
	if err := db.Raw("SELECT current_user").Scan(&role).Error; err != nil {
		t.Fatal(err)
	}
	dir := tenancy.NewDirectory(db, tenancy.WithTTL(0))
	if err := dir.EnsureRoles(ctx, role); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return &citusEnv{db: db, dir: dir, tag: "c" + hex.EncodeToString(b)}
}

// name returns a tenant name unique to this run, offboarded at the end.
func (e *citusEnv) name(t *testing.T, base string) string {
	t.Helper()
	n := e.tag + "-" + base
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.dir.Offboard(ctx, n); err != nil && !isNotFound(err) {
			t.Errorf("offboard %s: %v", n, err)
		}
	})
	return n
}

func isNotFound(err error) bool { return err != nil && errorsIs(err, models.ErrNotFound) }

// onWorkers counts the workers that have schema.
func (e *citusEnv) onWorkers(t *testing.T) func(schema string) int {
	return func(schema string) int {
		t.Helper()
		var n int
		err := e.db.Raw(`SELECT count(*) FROM run_command_on_workers(
			format('SELECT count(*) FROM pg_namespace WHERE nspname = %L', $1::text)) WHERE NOT success OR result <> '0'`, schema).Scan(&n).Error
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

func TestCitusClusterKeepsTheRegistryOnTheCoordinator(t *testing.T) {
	e := newCitusEnv(t)
	c, err := e.dir.Cluster(context.Background())
	if err != nil || !c.Citus || c.Workers < 2 {
		t.Fatalf("Cluster() = %+v, %v; want Citus with two workers or more", c, err)
	}
	var dist struct{ Schema, Tables int }
	if err := e.db.Raw(`SELECT (SELECT count(*) FROM pg_dist_schema WHERE schemaid = 'tenantry'::regnamespace) AS schema,
		(SELECT count(*) FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
			WHERE c.relnamespace = 'tenantry'::regnamespace) AS tables`).Scan(&dist).Error; err != nil {
		t.Fatal(err)
	}
	if dist.Schema != 0 || dist.Tables != 0 {
		t.Fatalf("the registry is distributed: %+v", dist)
	}
}

func TestCitusClusterDistributesEveryTenantOverTheWorkers(t *testing.T) {
	e := newCitusEnv(t)
	ctx := context.Background()
	var names []string
	for i := range 6 {
		names = append(names, e.name(t, fmt.Sprint("t", i)))
	}
	start := time.Now()
	ts := citusOnboardingServes(t, e.dir, e.db, names...)
	t.Logf("onboarded and served %d tenants in %v", len(ts), time.Since(start).Round(time.Millisecond))
	nodes := map[int]int{}
	for _, ten := range ts {
		var distributed int
		if err := e.db.Raw("SELECT count(*) FROM pg_dist_schema WHERE schemaid = to_regnamespace($1)", ten.SchemaName).Scan(&distributed).Error; err != nil {
			t.Fatal(err)
		}
		p, err := e.dir.Placement(ctx, ten.Name)
		if err != nil || distributed != 1 || len(p) != 1 {
			t.Fatalf("%s: distributed %d, placement %v, %v", ten.Name, distributed, p, err)
		}
		nodes[p[0].ID]++
	}
	if len(nodes) < 2 {
		t.Fatalf("every tenant is on one worker: %v", nodes)
	}
	t.Logf("tenants per node id: %v", nodes)
}

func TestCitusClusterOnboardingFailureMidwayLeavesNothing(t *testing.T) {
	e := newCitusEnv(t)
	citusOnboardingFailureLeavesNothing(t, e.dir, e.db, e.name(t, "fail"), e.onWorkers(t))
}

func TestCitusClusterOnboardingTakesOverOnlyAnEmptyLeftover(t *testing.T) {
	e := newCitusEnv(t)
	citusOnboardingTakesOverEmptyLeftover(t, e.dir, e.db, e.name(t, "empty"), e.name(t, "full"))
}

// TestCitusClusterMigratesAStepAcrossTheFleet runs a real step (a column
// and an index) on tenants spread over the workers, then checks the drift
// report and that the new column takes writes in a tenant scope.
func TestCitusClusterMigratesAStepAcrossTheFleet(t *testing.T) {
	e := newCitusEnv(t)
	ctx := context.Background()
	var names []string
	for i := range 4 {
		names = append(names, e.name(t, fmt.Sprint("m", i)))
	}
	citusOnboardingServes(t, e.dir, e.db, names...)
	plan := migrations.Plan{Models: migrations.Items.Models, Steps: append(append([]migrations.Step(nil), migrations.Items.Steps...), migrations.Step{
		Version: len(migrations.Items.Steps) + 1, Name: "item notes", Up: `
ALTER TABLE items ADD COLUMN note text NOT NULL DEFAULT '';
-- an index too; its statement must reach the worker alone
CREATE INDEX idx_items_note ON items (note)`,
	})}
	next := tenancy.NewDirectory(e.db, tenancy.WithTTL(0), tenancy.WithPlan(plan))
	start := time.Now()
	sum, err := fleet.Migrate(ctx, next, fleet.Options{Concurrency: 2, Tenants: names})
	if err != nil {
		t.Fatal(err)
	}
	res := sum.Results
	if len(res) != len(names) {
		t.Fatalf("migrated %d tenants, want %d: %+v", len(res), len(names), sum)
	}
	for _, r := range res {
		if r.Err != nil || r.To != plan.Latest() {
			t.Fatalf("%s: %+v", r.Tenant, r)
		}
	}
	t.Logf("migrated %d tenants one step in %v", len(res), time.Since(start).Round(time.Millisecond))
	st, err := fleet.Inspect(ctx, next, 4)
	if err != nil {
		t.Fatal(err)
	}
	mine := map[string]bool{}
	for _, n := range names {
		mine[n] = true
	}
	for _, s := range st {
		if mine[s.Tenant] && (s.Drift != "" || s.Version != plan.Latest()) {
			t.Fatalf("status of %s: %+v", s.Tenant, s)
		}
	}
	for _, n := range names {
		r, err := next.Active(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		var note string
		err = tenancy.WithTx(ctx, r, func(tx *gorm.DB) error {
			if err := tx.Exec("INSERT INTO items (name, note) VALUES ('n', 'on the worker')").Error; err != nil {
				return err
			}
			return tx.Raw("SELECT note FROM items WHERE name = 'n'").Scan(&note).Error
		})
		if err != nil || note != "on the worker" {
			t.Fatalf("%s: note %q, %v", n, note, err)
		}
	}
}

// TestCitusClusterMovesATenantUnderLoad moves a tenant to the other worker
// while writers keep inserting, and checks that every acknowledged write is
// there afterwards. It reports the failed writes and the longest gap
// between two acknowledged writes (the move's write pause, at most).
func TestCitusClusterMovesATenantUnderLoad(t *testing.T) {
	e := newCitusEnv(t)
	ctx := context.Background()
	name := e.name(t, "mover")
	citusOnboardingServes(t, e.dir, e.db, name)
	ten, err := e.dir.Active(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	from, err := e.dir.Placement(ctx, name)
	if err != nil || len(from) != 1 {
		t.Fatalf("placement %v, %v", from, err)
	}
	var nodes []tenancy.Node
	if err := e.db.Raw(`SELECT nodeid AS id, nodename AS host, nodeport AS port FROM pg_dist_node
		WHERE groupid <> 0 AND isactive AND shouldhaveshards AND nodeid <> $1 ORDER BY nodeid`, from[0].ID).Scan(&nodes).Error; err != nil || len(nodes) == 0 {
		t.Fatalf("another worker: %v, %v", nodes, err)
	}
	to := nodes[0]
	for _, bad := range []string{"1", "999999", "127.0.0.1:1"} {
		if _, err := e.dir.MoveToNode(ctx, name, bad); !errorsIs(err, models.ErrInvalid) {
			t.Errorf("move to %s: %v, want ErrInvalid", bad, err)
		}
	}

	var (
		stop    atomic.Bool
		failed  atomic.Int64
		mu      sync.Mutex
		acked   []int64
		stamps  []time.Time
		wg      sync.WaitGroup
		writers = 4
	)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				var it models.Item
				err := tenancy.WithTx(ctx, ten, func(tx *gorm.DB) error {
					var err error
					it, err = models.CreateItem(tx, models.ItemInput{Name: "w"})
					return err
				})
				if err != nil {
					failed.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked = append(acked, it.ID)
				stamps = append(stamps, time.Now())
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	got, err := e.dir.MoveToNode(ctx, name, fmt.Sprintf("%s:%d", to.Host, to.Port))
	took := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if err != nil || got.ID != to.ID {
		t.Fatalf("move: %v, %v", got, err)
	}
	after, err := e.dir.Placement(ctx, name)
	if err != nil || len(after) != 1 || after[0].ID != to.ID {
		t.Fatalf("placement after the move %v, %v; want %v", after, err, to)
	}
	sort.Slice(stamps, func(i, j int) bool { return stamps[i].Before(stamps[j]) })
	var gap time.Duration
	for i := 1; i < len(stamps); i++ {
		gap = max(gap, stamps[i].Sub(stamps[i-1]))
	}
	var ids []int64
	if err := tenancy.WithTx(ctx, ten, func(tx *gorm.DB) error {
		return tx.Raw("SELECT id FROM items").Scan(&ids).Error
	}); err != nil {
		t.Fatal(err)
	}
	have := map[int64]bool{}
	for _, id := range ids {
		have[id] = true
	}
	for _, id := range acked {
		if !have[id] {
			t.Fatalf("acknowledged item %d is gone after the move", id)
		}
	}
	t.Logf("moved %s from node %d to node %d in %v under %d writers: %d writes acknowledged (all present), %d failed, longest gap between acknowledged writes %v",
		name, from[0].ID, to.ID, took.Round(time.Millisecond), writers, len(acked), failed.Load(), gap.Round(time.Millisecond))
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
}

// TestCitusClusterFleetFigures measures a fleet of TEST_CITUS_FLEET tenants
// (unset: skipped) with 4 concurrent clients: onboarding, one write and one
// read per tenant across the workers, a one-step migration of the fleet and
// its drift report, and offboarding. It asserts only that everything
// succeeded; the figures are logged (docs/SCALE.md, "Citus").
func TestCitusClusterFleetFigures(t *testing.T) {
	n := 0
	if _, err := fmt.Sscan(os.Getenv("TEST_CITUS_FLEET"), &n); err != nil || n < 1 {
		t.Skip("TEST_CITUS_FLEET is not set (how many tenants to measure)")
	}
	e := newCitusEnv(t)
	ctx := context.Background()
	names := make([]string, n)
	for i := range names {
		names[i] = e.name(t, fmt.Sprint("f", i))
	}
	const clients = 4
	each := func(what string, fn func(name string) error) time.Duration {
		t.Helper()
		start := time.Now()
		jobs := make(chan string)
		var wg sync.WaitGroup
		var first atomic.Value
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for name := range jobs {
					if err := fn(name); err != nil {
						first.CompareAndSwap(nil, fmt.Errorf("%s %s: %w", what, name, err))
					}
				}
			}()
		}
		for _, name := range names {
			jobs <- name
		}
		close(jobs)
		wg.Wait()
		if err, _ := first.Load().(error); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		t.Logf("%s: %d tenants in %v, %.1f tenants/s", what, n, took.Round(time.Millisecond), float64(n)/took.Seconds())
		return took
	}
	each("onboard", func(name string) error { _, err := e.dir.Onboard(ctx, name); return err })
	perNode := map[int]int{}
	var mu sync.Mutex
	writeRead := func(name string) error {
		ten, err := e.dir.Active(ctx, name)
		if err != nil {
			return err
		}
		return tenancy.WithTx(ctx, ten, func(tx *gorm.DB) error {
			it, err := models.CreateItem(tx, models.ItemInput{Name: name})
			if err != nil {
				return err
			}
			got, err := models.GetItem(tx, it.ID)
			if err == nil && got.Name != name {
				err = fmt.Errorf("read %q back", got.Name)
			}
			return err
		})
	}
	// The first scope of a tenant on a pooled connection makes Citus open
	// a connection to the tenant's worker as the tenant role; the second
	// pass finds it cached (citus.max_cached_conns_per_worker).
	each("write+read, first touch (one scope each)", writeRead)
	each("write+read, warm (one scope each)", writeRead)
	var workerConns int
	if err := e.db.Raw(`SELECT coalesce(sum(result::int), 0) FROM run_command_on_workers(
		$$SELECT count(*) FROM pg_stat_activity WHERE usename LIKE 'tr%'$$)`).Scan(&workerConns).Error; err != nil {
		t.Fatal(err)
	}
	t.Logf("connections on the workers as tenant roles: %d", workerConns)
	for _, name := range names {
		p, err := e.dir.Placement(ctx, name)
		if err != nil || len(p) != 1 {
			t.Fatalf("%s: %v, %v", name, p, err)
		}
		mu.Lock()
		perNode[p[0].ID]++
		mu.Unlock()
	}
	t.Logf("tenants per node id: %v", perNode)
	plan := migrations.Plan{Models: migrations.Items.Models, Steps: append(append([]migrations.Step(nil), migrations.Items.Steps...), migrations.Step{
		Version: len(migrations.Items.Steps) + 1, Name: "item notes",
		Up: "ALTER TABLE items ADD COLUMN note text NOT NULL DEFAULT '';\nCREATE INDEX idx_items_note ON items (note)"})}
	next := tenancy.NewDirectory(e.db, tenancy.WithTTL(0), tenancy.WithPlan(plan))
	start := time.Now()
	sum, err := fleet.Migrate(ctx, next, fleet.Options{Concurrency: clients, Tenants: names})
	if err != nil {
		t.Fatal(err)
	}
	res := sum.Results
	if len(res) != len(names) {
		t.Fatalf("migrated %d tenants, want %d: %+v", len(res), len(names), sum)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("migrate %s: %v", r.Tenant, r.Err)
		}
	}
	t.Logf("migrate one step (column + index), concurrency %d: %d tenants in %v", clients, n, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	st, err := fleet.Inspect(ctx, next, 4)
	if err != nil {
		t.Fatal(err)
	}
	drifted := 0
	for _, s := range st {
		if s.Drift != "" && s.Version == plan.Latest() {
			drifted++
		}
	}
	if drifted != 0 {
		t.Fatalf("%d migrated tenants drifted", drifted)
	}
	t.Logf("migrate status (drift check) of %d tenants in the database: %v", len(st), time.Since(start).Round(time.Millisecond))
	each("offboard", func(name string) error { return e.dir.Offboard(ctx, name) })
}

func TestCitusClusterConcurrentOnboardingsOfOneNameGiveOneTenant(t *testing.T) {
	e := newCitusEnv(t)
	citusConcurrentOnboardings(t, e.dir, e.db, e.name(t, "race"))
}

// TestCitusClusterKeepsAProgramsSharedTablesOnTheCoordinator applies a
// program's shared plan (migrations.App) and checks that its schema, like
// the registry, is not a distributed schema and its table no Citus table.
func TestCitusClusterKeepsAProgramsSharedTablesOnTheCoordinator(t *testing.T) {
	e := newCitusEnv(t)
	ctx := context.Background()
	schema := "s" + e.tag
	t.Cleanup(func() {
		if err := e.db.Exec(`DROP SCHEMA IF EXISTS "` + schema + `" CASCADE`).Error; err != nil {
			t.Error(err)
		}
	})
	app := migrations.App{Tenant: migrations.Items, SharedSchema: schema, Shared: migrations.Plan{Steps: []migrations.Step{
		{Version: 1, Name: "plans", Up: "CREATE TABLE plans (id bigserial PRIMARY KEY, name text NOT NULL);\nCREATE INDEX plans_name ON plans (name)"},
	}}}
	dir := tenancy.NewDirectory(e.db, tenancy.WithTTL(0), tenancy.WithApp(app))
	if err := dir.ApplyShared(ctx); err != nil {
		t.Fatal(err)
	}
	var dist struct{ Schema, Tables int }
	if err := e.db.Raw(`SELECT (SELECT count(*) FROM pg_dist_schema WHERE schemaid = to_regnamespace($1)) AS schema,
		(SELECT count(*) FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
			WHERE c.relnamespace = to_regnamespace($1)) AS tables`, schema).Scan(&dist).Error; err != nil {
		t.Fatal(err)
	}
	if dist.Schema != 0 || dist.Tables != 0 {
		t.Fatalf("the program's shared schema is distributed: %+v", dist)
	}
}
