package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// These tests run the Citus code paths on plain PostgreSQL (CI has no
// Citus): tenancy.ForceCitusMode makes a directory onboard as it does on a
// coordinator. citus_cluster_test.go runs the same checks, and more, on a
// real cluster when TEST_CITUS_URL names one.

func TestClusterIsPlainPostgreSQLWithoutCitus(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	c, err := e.dir.Cluster(context.Background())
	if err != nil || c.Citus || c.String() != "postgresql" {
		t.Fatalf("Cluster() = %+v, %v; want plain postgresql", c, err)
	}
}

func TestMoveToNodeRefusesPlainPostgreSQLAndBadNodes(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "acme")
	ctx := context.Background()
	for _, node := range []string{"2", "127.0.0.1:9701"} {
		if _, err := e.dir.MoveToNode(ctx, "acme", node); !errors.Is(err, tenancy.ErrNotCitus) || !errors.Is(err, models.ErrInvalid) {
			t.Errorf("MoveToNode(acme, %s) on plain PostgreSQL = %v, want ErrNotCitus", node, err)
		}
	}
	for _, node := range []string{"", "0", "x:y", "h:70000"} {
		if _, err := e.dir.MoveToNode(ctx, "acme", node); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("MoveToNode(acme, %q) = %v, want ErrInvalid", node, err)
		}
	}
	if !schemaExists(t, e, "t_acme") {
		t.Fatal("a refused move touched the tenant")
	}
}

func TestCitusOnboardingServesTheTenant(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	tenancy.ForceCitusMode(e.dir)
	citusOnboardingServes(t, e.dir, e.ddl, "acme", "beta")
}

func TestCitusOnboardingFailureMidwayLeavesNothing(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	tenancy.ForceCitusMode(e.dir)
	citusOnboardingFailureLeavesNothing(t, e.dir, e.ddl, "acme", nil)
}

func TestCitusOnboardingTakesOverOnlyAnEmptyLeftover(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	tenancy.ForceCitusMode(e.dir)
	citusOnboardingTakesOverEmptyLeftover(t, e.dir, e.ddl, "acme", "beta")
}

// citusOnboardingServes onboards names and proves each one is whole: its
// roles may log in (Citus connects to workers as the scope's role), and a
// scope writes and reads its items as the tenant role.
func citusOnboardingServes(t *testing.T, dir *tenancy.Directory, ddl *gorm.DB, names ...string) []models.Tenant {
	t.Helper()
	ctx := context.Background()
	var out []models.Tenant
	for _, n := range names {
		ten, err := dir.Onboard(ctx, n)
		if err != nil {
			t.Fatalf("onboard %s: %v", n, err)
		}
		out = append(out, ten)
		var login int
		if err := ddl.Raw("SELECT count(*) FROM pg_roles WHERE rolname IN ($1, $2) AND rolcanlogin", ten.DBRole, ten.DBRoleRead).Scan(&login).Error; err != nil {
			t.Fatal(err)
		}
		if login != 2 {
			t.Fatalf("%s: %d of its 2 roles may log in", n, login)
		}
		r, err := dir.Active(ctx, n)
		if err != nil {
			t.Fatalf("resolve %s: %v", n, err)
		}
		var got []models.Item
		err = tenancy.WithTx(ctx, r, func(tx *gorm.DB) error {
			if _, err := models.CreateItem(tx, models.ItemInput{Name: "item of " + n}); err != nil {
				return err
			}
			var user string
			if err := tx.Raw("SELECT current_user").Scan(&user).Error; err != nil {
				return err
			}
			if user != ten.DBRole {
				return fmt.Errorf("scope runs as %s, want %s", user, ten.DBRole)
			}
			got, err = models.ListItems(tx, 10, 0)
			return err
		})
		if err != nil || len(got) != 1 || got[0].Name != "item of "+n {
			t.Fatalf("%s: items %+v, %v", n, got, err)
		}
		// ReadOnce: the prepared pin and the statement in one implicit
		// transaction, the statement prepared for the schema after the
		// first read where the pool caches statements.
		for range 3 {
			var it models.Item
			err := tenancy.ReadOnce(ctx, r, func(tx *gorm.DB) error {
				var err error
				it, err = models.GetItem(tx, got[0].ID)
				return err
			})
			if err != nil || it.Name != "item of "+n {
				t.Fatalf("%s: ReadOnce read %+v, %v", n, it, err)
			}
		}
	}
	return out
}

// citusOnboardingFailureLeavesNothing makes an onboarding fail after its
// schema and tables exist (one of the roles it is about to create exists
// already) and checks that nothing of the tenant remains: no registry row,
// no schema, no roles of its own. onWorkers, when set, counts the schema's
// copies on the workers. Once the blocking role is gone, the name onboards.
func citusOnboardingFailureLeavesNothing(t *testing.T, dir *tenancy.Directory, ddl *gorm.DB, name string, onWorkers func(schema string) int) {
	t.Helper()
	ctx := context.Background()
	dep, err := dir.Deployment(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := ddl.Raw("SELECT nextval(pg_get_serial_sequence('tenantry.tenants', 'id'))").Scan(&id).Error; err != nil {
		t.Fatal(err)
	}
	roles, err := tenancy.RolesFor(dep, id+1)
	if err != nil {
		t.Fatal(err)
	}
	if err := ddl.Exec(`CREATE ROLE "` + roles.Read + `" NOLOGIN`).Error; err != nil {
		t.Fatal(err)
	}
	blocked := true
	t.Cleanup(func() {
		if blocked {
			if err := ddl.Exec(`DROP ROLE IF EXISTS "` + roles.Read + `"`).Error; err != nil {
				t.Error(err)
			}
		}
	})
	if _, err := dir.Onboard(ctx, name); err == nil {
		t.Fatal("onboarding succeeded over an existing role")
	}
	schema, err := tenancy.SchemaFor(name)
	if err != nil {
		t.Fatal(err)
	}
	var left struct {
		Rows, Schemas, Roles int
	}
	if err := ddl.Raw(`SELECT (SELECT count(*) FROM tenantry.tenants WHERE name = $1) AS rows,
		(SELECT count(*) FROM pg_namespace WHERE nspname = $2) AS schemas,
		(SELECT count(*) FROM pg_roles WHERE rolname = $3) AS roles`, name, schema, roles.Write).Scan(&left).Error; err != nil {
		t.Fatal(err)
	}
	if left.Rows != 0 || left.Schemas != 0 || left.Roles != 0 {
		t.Fatalf("a failed onboarding left %+v", left)
	}
	if onWorkers != nil {
		if n := onWorkers(schema); n != 0 {
			t.Fatalf("a failed onboarding left its schema on %d workers", n)
		}
	}
	if err := ddl.Exec(`DROP ROLE "` + roles.Read + `"`).Error; err != nil {
		t.Fatal(err)
	}
	blocked = false
	citusOnboardingServes(t, dir, ddl, name)
}

// citusOnboardingTakesOverEmptyLeftover leaves what a process that died
// between onboarding's schema and its tables leaves (an empty schema that
// no tenant owns) and checks that the name onboards over it; a schema that
// holds a table is not onboarding's to take, and is refused untouched.
func citusOnboardingTakesOverEmptyLeftover(t *testing.T, dir *tenancy.Directory, ddl *gorm.DB, empty, full string) {
	t.Helper()
	ctx := context.Background()
	se, _ := tenancy.SchemaFor(empty)
	sf, _ := tenancy.SchemaFor(full)
	for _, sql := range []string{`CREATE SCHEMA "` + se + `"`, `CREATE SCHEMA "` + sf + `"`,
		`CREATE TABLE "` + sf + `".keep (id int PRIMARY KEY)`, `INSERT INTO "` + sf + `".keep VALUES (1)`} {
		if err := ddl.Exec(sql).Error; err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	t.Cleanup(func() {
		if err := ddl.Exec(`DROP SCHEMA IF EXISTS "` + sf + `" CASCADE`).Error; err != nil {
			t.Error(err)
		}
	})
	citusOnboardingServes(t, dir, ddl, empty)
	if _, err := dir.Onboard(ctx, full); !errors.Is(err, models.ErrConflict) {
		t.Fatalf("onboarding over a schema with a table: %v, want ErrConflict", err)
	}
	var kept int
	if err := ddl.Raw(`SELECT count(*) FROM "` + sf + `".keep`).Scan(&kept).Error; err != nil || kept != 1 {
		t.Fatalf("the refused schema's table: %d rows, %v", kept, err)
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func TestCitusConcurrentOnboardingsOfOneNameGiveOneTenant(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	tenancy.ForceCitusMode(e.dir)
	citusConcurrentOnboardings(t, e.dir, e.ddl, "acme")
}

// citusConcurrentOnboardings starts four onboardings of name at once: one
// succeeds, the others get ErrConflict, and the schema is the winner's.
func citusConcurrentOnboardings(t *testing.T, dir *tenancy.Directory, ddl *gorm.DB, name string) {
	t.Helper()
	const n = 4
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := dir.Onboard(context.Background(), name)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok, conflicts := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, models.ErrConflict):
			conflicts++
		default:
			t.Errorf("onboard %s: %v", name, err)
		}
	}
	if ok != 1 || conflicts != n-1 {
		t.Fatalf("%d onboardings succeeded and %d conflicted, want 1 and %d", ok, conflicts, n-1)
	}
	r, err := dir.Active(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if err := tenancy.WithTx(context.Background(), r, func(tx *gorm.DB) error {
		_, err := models.ListItems(tx, 1, 0)
		return err
	}); err != nil {
		t.Fatalf("the winner's schema: %v", err)
	}
}
