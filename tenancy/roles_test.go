package tenancy_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantry/tenantry/fleet"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/migrations/migrationstest"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// active returns tenant name as the directory resolves it for a request.
func (e *env) active(t *testing.T, name string) tenancy.Resolved {
	t.Helper()
	ten, err := e.dir.Active(context.Background(), name)
	if err != nil {
		t.Fatalf("active %s: %v", name, err)
	}
	return ten
}

// Inside a scope, only the search_path kept tenants apart until tenant
// roles: a schema-qualified query reached every schema. Now PostgreSQL
// refuses each of these with insufficient_privilege (42501), even though
// the query names its target outright.
func TestScopeIsPermissionDeniedOutsideItsSchema(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.admin(t, `CREATE TABLE public.items (id bigint, name text); INSERT INTO public.items VALUES (1, 'CANARY')`)
	e.onboard(t, "acme", "globex")
	createItem(t, e, "globex", "secret")
	acme := e.active(t, "acme")
	for _, q := range []string{
		`SELECT count(*) FROM t_globex.items`,
		`INSERT INTO t_globex.items (name, description) VALUES ('x', '')`,
		`DELETE FROM t_globex.items`,
		`SELECT count(*) FROM ` + migrations.TenantsTable,
		`UPDATE ` + migrations.TenantsTable + ` SET schema_name = 't_globex' WHERE name = 'acme'`,
		`SELECT count(*) FROM ` + migrations.DeploymentTable,
		`SELECT count(*) FROM public.items`,
		`CREATE TABLE public.planted (id int)`,
		`CREATE TABLE t_acme.planted (id int)`,
		`DELETE FROM t_acme.schema_migrations`,
	} {
		err := tenancy.WithTx(context.Background(), acme, func(tx *gorm.DB) error {
			return tx.Exec(q).Error
		})
		if got := sqlState(err); got != "42501" {
			t.Errorf("in acme's scope, %s: %v (SQLSTATE %q), want 42501 permission denied", q, err, got)
		}
	}
	// Its own tables stay reachable, qualified or not.
	err := tenancy.WithTx(context.Background(), acme, func(tx *gorm.DB) error {
		var n int64
		return tx.Raw(`SELECT count(*) FROM t_acme.items`).Scan(&n).Error
	})
	if err != nil {
		t.Fatalf("acme reading its own items: %v", err)
	}
	items, err := listItems(context.Background(), e, "globex")
	if err != nil || len(items) != 1 || items[0].Name != "secret" {
		t.Fatalf("globex's items after acme's attempts: %+v, %v", items, err)
	}
}

// Outside a scope the request role holds no tenant's privileges: the
// group role that lets it switch is NOINHERIT, and so is the request role.
func TestRequestRoleOutsideAScopeReachesNoTenant(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "acme")
	err := e.db.Exec(`SELECT count(*) FROM t_acme.items`).Error
	if got := sqlState(err); got != "42501" {
		t.Fatalf("request role outside a scope: %v (SQLSTATE %q), want 42501", err, got)
	}
	findings, err := tenancy.CheckRequestRole(context.Background(), e.db, e.dir, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		if f.Crosses {
			t.Errorf("the strict setup's request role: %s", f.Message)
		}
	}
}

// The DDL role posing as the request role owns every schema and can grant
// itself any role: the start-up check refuses it, naming each privilege.
func TestCheckRefusesARequestRoleThatOwnsTheTenants(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "acme")
	if err := e.dir.EnsureRoles(context.Background(), e.te.Roles.DDLRole); err != nil {
		t.Fatal(err)
	}
	findings, err := tenancy.CheckRequestRole(context.Background(), e.ddl, e.dir, true)
	if err != nil {
		t.Fatal(err)
	}
	var crossing []string
	for _, f := range findings {
		if f.Crosses {
			crossing = append(crossing, f.Message)
		}
	}
	all := strings.Join(crossing, "\n")
	for _, want := range []string{"NOCREATEROLE", "NOINHERIT", "can use 1 of 1 tenant schemas", "REVOKE INSERT, UPDATE, DELETE"} {
		if !strings.Contains(all, want) {
			t.Errorf("findings lack %q:\n%s", want, all)
		}
	}
	// The same role as the one-URL setup: a warning, not a refusal.
	findings, err = tenancy.CheckRequestRole(context.Background(), e.ddl, e.dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 1 || findings[0].Crosses || !strings.Contains(findings[0].Message, "MIGRATION_DATABASE_URL") {
		t.Fatalf("one-URL findings: %+v", findings)
	}
}

// Neither the role nor the search_path survives a scope, on a pool of one
// connection that every scope shares.
func TestNoRoleSurvivesTheScope(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1})
	e.onboard(t, "acme")
	acme := e.active(t, "acme")
	var inside string
	err := tenancy.WithTx(context.Background(), acme, func(tx *gorm.DB) error {
		return tx.Raw("SELECT current_user").Scan(&inside).Error
	})
	if err != nil || inside != acme.Row().DBRole {
		t.Fatalf("current_user inside the scope = %q, %v; want %q", inside, err, acme.Row().DBRole)
	}
	errOnPurpose := errors.New("fail on purpose")
	if err := tenancy.WithTx(context.Background(), acme, func(tx *gorm.DB) error {
		return errOnPurpose
	}); !errors.Is(err, errOnPurpose) {
		t.Fatalf("a failing scope returned %v, want its own error", err)
	}
	var after string
	if err := e.db.Raw("SELECT current_user").Scan(&after).Error; err != nil {
		t.Fatal(err)
	}
	if after != e.te.Roles.AppRole {
		t.Fatalf("current_user after the scopes = %q, want the login role %q", after, e.te.Roles.AppRole)
	}
}

// A read-only tenant is served reads; its scope runs as a role with SELECT
// only, so a write fails in PostgreSQL with ErrReadOnly whatever the
// caller meant.
func TestReadOnlyTenantCannotWrite(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "acme")
	createItem(t, e, "acme", "kept")
	if _, err := e.dir.SetStatus(context.Background(), "acme", models.StatusReadOnly); err != nil {
		t.Fatal(err)
	}
	acme := e.active(t, "acme")
	for _, q := range []string{
		`INSERT INTO items (name, description) VALUES ('x', '')`,
		`UPDATE items SET name = 'changed'`,
		`DELETE FROM items`,
		`SELECT nextval('items_id_seq')`,
	} {
		err := tenancy.WithTx(context.Background(), acme, func(tx *gorm.DB) error { return tx.Exec(q).Error })
		if !errors.Is(err, models.ErrReadOnly) {
			t.Errorf("read-only %s: %v, want ErrReadOnly", q, err)
		}
	}
	items, err := listItems(context.Background(), e, "acme")
	if err != nil || len(items) != 1 || items[0].Name != "kept" {
		t.Fatalf("read-only reads: %+v, %v", items, err)
	}
	if _, err := e.dir.SetStatus(context.Background(), "acme", models.StatusActive); err != nil {
		t.Fatal(err)
	}
	createItem(t, e, "acme", "writable again")
}

// Offboarding drops the tenant's roles with its schema, so the name can be
// onboarded again (a role left behind would collide).
func TestOffboardDropsTheRoles(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "acme")
	acme := e.active(t, "acme")
	if err := e.dir.Offboard(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := e.ddl.Raw("SELECT count(*) FROM pg_roles WHERE rolname IN (?, ?)", acme.Row().DBRole, acme.Row().DBRoleRead).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d roles of the offboarded tenant remain", n)
	}
	e.onboard(t, "acme")
	createItem(t, e, "acme", "second incarnation")
}

// Roles are server-wide: the same tenant in two databases of one server
// gets two sets of roles, and neither scope can use the other's.
func TestRoleNamesDifferPerDatabase(t *testing.T) {
	a, b := newEnv(t, tenancy.DefaultPool), newEnv(t, tenancy.DefaultPool)
	a.onboard(t, "acme")
	b.onboard(t, "acme")
	ra, rb := a.active(t, "acme"), b.active(t, "acme")
	if ra.Row().DBRole == rb.Row().DBRole || ra.Row().DBRoleRead == rb.Row().DBRoleRead {
		t.Fatalf("two databases share roles: %+v and %+v", ra, rb)
	}
	// a's request role may not switch to b's tenant role, even when a's
	// registry row (tampered with here) names it.
	if err := a.ddl.Exec(`UPDATE `+migrations.TenantsTable+` SET db_role = $1 WHERE name = 'acme'`, rb.Row().DBRole).Error; err != nil {
		t.Fatal(err)
	}
	a.dir.Forget("acme")
	err := tenancy.WithTx(context.Background(), a.active(t, "acme"), func(tx *gorm.DB) error { return nil })
	if got := sqlState(err); got != "42501" {
		t.Fatalf("database a switching to database b's role: %v (SQLSTATE %q), want 42501", err, got)
	}
}

// A fleet onboarded before tenant roles has none; one EnsureRoles (run by
// tenantry migrate) gives them, and a second changes nothing.
func TestEnsureRolesGivesAnOldFleetItsRoles(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "old", "older")
	createItem(t, e, "old", "before")
	for _, n := range []string{"old", "older"} {
		ten := e.active(t, n)
		s, roles := `"`+ten.Row().SchemaName+`"`, `"`+ten.Row().DBRole+`", "`+ten.Row().DBRoleRead+`"`
		e.admin(t, `REVOKE ALL ON ALL TABLES IN SCHEMA `+s+` FROM `+roles+`;
			REVOKE ALL ON ALL SEQUENCES IN SCHEMA `+s+` FROM `+roles+`;
			REVOKE ALL ON SCHEMA `+s+` FROM `+roles+`;
			ALTER DEFAULT PRIVILEGES IN SCHEMA `+s+` REVOKE ALL ON TABLES FROM `+roles+`;
			ALTER DEFAULT PRIVILEGES IN SCHEMA `+s+` REVOKE ALL ON SEQUENCES FROM `+roles+`;
			DROP ROLE `+roles)
	}
	e.admin(t, `UPDATE `+migrations.TenantsTable+` SET db_role = '', db_role_read = ''`)
	e.dir.Forget("old")
	e.dir.Forget("older")
	old := e.active(t, "old")
	if err := tenancy.WithTx(context.Background(), old, func(*gorm.DB) error { return nil }); !errors.Is(err, tenancy.ErrNoRole) {
		t.Fatalf("scope of a tenant without roles: %v, want ErrNoRole", err)
	}
	for range 2 {
		if err := e.dir.EnsureRoles(context.Background(), e.te.Roles.AppRole); err != nil {
			t.Fatal(err)
		}
	}
	items, err := listItems(context.Background(), e, "old")
	if err != nil || len(items) != 1 {
		t.Fatalf("after EnsureRoles: %+v, %v", items, err)
	}
	createItem(t, e, "older", "after")
	// The backfilled roles are as tight as onboarded ones.
	err = tenancy.WithTx(context.Background(), e.active(t, "old"), func(tx *gorm.DB) error {
		return tx.Exec(`SELECT count(*) FROM t_older.items`).Error
	})
	if got := sqlState(err); got != "42501" {
		t.Fatalf("backfilled role reading another tenant: %v, want 42501", err)
	}
}

// A table a later migration adds is covered by the default privileges
// that onboarding set: the tenant role may use it, the read-only role may
// read it, and other tenants still may not.
func TestDefaultPrivilegesCoverTablesMigrationsAdd(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "acme", "globex")
	notes := migrations.Step{Version: 2, Name: "notes", Up: `CREATE TABLE notes (id bigserial PRIMARY KEY, body text NOT NULL)`}
	dir := tenancy.NewDirectory(e.db, tenancy.WithAdmin(e.ddl), tenancy.WithPlan(migrationstest.PlanWith(notes)))
	sum, err := fleet.Migrate(context.Background(), dir, fleet.Options{})
	if res := sum.Results; err != nil || len(res) != 2 || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("migrate: %+v, %v", sum, err)
	}
	acme, err := dir.Active(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	err = tenancy.WithTx(context.Background(), acme, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO notes (body) VALUES ('hello')`).Error
	})
	if err != nil {
		t.Fatalf("tenant role writing the new table: %v", err)
	}
	err = tenancy.WithTx(context.Background(), acme, func(tx *gorm.DB) error {
		return tx.Exec(`SELECT count(*) FROM t_globex.notes`).Error
	})
	if got := sqlState(err); got != "42501" {
		t.Fatalf("another tenant's new table: %v, want 42501", err)
	}
}

// The shared migration revokes CREATE on public from PUBLIC (the
// CVE-2018-1058 pattern): the request role cannot plant objects there.
func TestNobodyCreatesInPublic(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	err := e.db.Exec(`CREATE TABLE public.planted (id int)`).Error
	if got := sqlState(err); got != "42501" {
		t.Fatalf("request role creating in public: %v, want 42501", err)
	}
	var granted bool
	if err := e.ddl.Raw(`SELECT has_schema_privilege('public', 'public', 'CREATE')`).Scan(&granted).Error; err != nil {
		t.Fatal(err)
	}
	if granted {
		t.Fatal("PUBLIC may still create in schema public")
	}
}

// Derived role names fit PostgreSQL's 63-byte limit for the largest id,
// differ for every id (every incarnation), and the write, read and group
// roles never coincide. Ids that are not a registry id are refused.
func TestRoleNamesFitAndNeverCoincide(t *testing.T) {
	dep := "0123456789"
	group, err := tenancy.GroupRole(dep)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int64{}
	ids := []int64{1, 2, 10, 11, 101, 1 << 31, math.MaxInt64}
	for _, id := range ids {
		r, err := tenancy.RolesFor(dep, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, role := range []string{r.Write, r.Read} {
			if len(role) > 63 {
				t.Errorf("id %d: role %q is %d bytes", id, role, len(role))
			}
			if role == group {
				t.Errorf("id %d: role %q is the group role", id, role)
			}
			if prev, ok := seen[role]; ok && prev != id {
				t.Errorf("role %q derived for ids %d and %d", role, prev, id)
			}
			seen[role] = id
		}
	}
	if r, err := tenancy.RolesFor(dep, 42); err != nil || r.Write != "tr0123456789_w42" || r.Read != "tr0123456789_r42" {
		t.Errorf("RolesFor(%q, 42) = %+v, %v; want tr0123456789_w42 and tr0123456789_r42", dep, r, err)
	}
	for _, bad := range []string{"", "012345678", "0123456789a", "ABCDEF0123", "01234-6789"} {
		if _, err := tenancy.RolesFor(bad, 1); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("deployment %q: %v, want ErrInvalid", bad, err)
		}
	}
	for _, bad := range []int64{0, -1, math.MinInt64} {
		if _, err := tenancy.RolesFor(dep, bad); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("id %d: %v, want ErrInvalid", bad, err)
		}
	}
	if len(seen) != 2*len(ids) {
		t.Fatalf("%d distinct roles for %d ids: %v", len(seen), len(ids), seen)
	}
}

// nextTenantID draws a value from the registry's id sequence, so the next
// onboarding gets the one after it.
func nextTenantID(t *testing.T, e *env) int64 {
	t.Helper()
	var id int64
	if err := e.ddl.Raw("SELECT nextval(pg_get_serial_sequence($1, 'id'))", migrations.TenantsTable).Scan(&id).Error; err != nil {
		t.Fatal(err)
	}
	return id
}

// A role that exists already under the name the next tenant id derives
// is a conflict, and onboarding leaves nothing behind: no schema, no row,
// no second role. The id it drew is spent, so the next try gets fresh
// roles and succeeds.
func TestRoleCollisionIsAConflictAndChangesNothing(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	dep, err := e.dir.Deployment(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	next := nextTenantID(t, e) + 1
	r, err := tenancy.RolesFor(dep, next)
	if err != nil {
		t.Fatal(err)
	}
	e.admin(t, `CREATE ROLE "`+r.Write+`" NOLOGIN`)
	if _, err := e.dir.Onboard(context.Background(), "clash"); !errors.Is(err, models.ErrConflict) {
		t.Fatalf("onboarding onto an existing role: %v, want ErrConflict", err)
	}
	if schemaExists(t, e, "t_clash") || registryCount(t, e) != 0 {
		t.Fatal("a failed onboarding left a schema or a row")
	}
	var n int64
	if err := e.ddl.Raw("SELECT count(*) FROM pg_roles WHERE rolname = ?", r.Read).Scan(&n).Error; err != nil || n != 0 {
		t.Fatalf("the read role was left behind (%d, %v)", n, err)
	}
	ten, err := e.dir.Onboard(context.Background(), "clash")
	if err != nil {
		t.Fatalf("onboarding again after the collision: %v", err)
	}
	if ten.ID <= next || ten.DBRole == r.Write {
		t.Fatalf("the retry got id %d and role %q, want an id past %d and a fresh role", ten.ID, ten.DBRole, next)
	}
}

// A tenant's roles are its incarnation's: deleted and onboarded again
// under the same name, it keeps the schema name but gets new roles, and the
// old ones are gone. A scope over the old registry row (as another
// instance's cache may still hold it) fails closed with ErrRoleGone, an
// unavailable tenant, before anything runs; it never reaches the
// successor's rows.
func TestScopeOverAStaleIncarnationFailsClosed(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	ctx := context.Background()
	e.onboard(t, "acme")
	// The first incarnation resolved while read-only, and while active:
	// the rows another instance's cache may hold.
	if _, err := e.dir.SetStatus(ctx, "acme", models.StatusReadOnly); err != nil {
		t.Fatal(err)
	}
	oldRO := e.active(t, "acme")
	if _, err := e.dir.SetStatus(ctx, "acme", models.StatusActive); err != nil {
		t.Fatal(err)
	}
	old := e.active(t, "acme")
	if err := e.dir.Offboard(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	e.onboard(t, "acme")
	createItem(t, e, "acme", "the successor's")
	succ := e.active(t, "acme")
	if succ.Row().SchemaName != old.Row().SchemaName || succ.Row().ID == old.Row().ID || succ.Row().DBRole == old.Row().DBRole || succ.Row().DBRoleRead == old.Row().DBRoleRead {
		t.Fatalf("successor %+v, first %+v: want the same schema under new roles", succ, old)
	}
	var left int64
	if err := e.ddl.Raw("SELECT count(*) FROM pg_roles WHERE rolname IN (?, ?)", old.Row().DBRole, old.Row().DBRoleRead).Scan(&left).Error; err != nil || left != 0 {
		t.Fatalf("the first incarnation's roles outlived it (%d, %v)", left, err)
	}
	for _, stale := range []tenancy.Resolved{old, oldRO} {
		// The pin goes out with fn's first statement, so fn is called;
		// its statement must fail with the pin's error, unrun.
		var stmtErr error
		err := tenancy.WithTx(ctx, stale, func(tx *gorm.DB) error {
			stmtErr = tx.Exec(`DELETE FROM items`).Error
			return stmtErr
		})
		if !errors.Is(err, tenancy.ErrRoleGone) || !errors.Is(err, models.ErrUnavailable) || stmtErr == nil {
			t.Fatalf("scope over the stale %s row: %v (statement: %v), want ErrRoleGone from the first statement", stale.Row().Status, err, stmtErr)
		}
	}
	items, err := listItems(ctx, e, "acme")
	if err != nil || len(items) != 1 || items[0].Name != "the successor's" {
		t.Fatalf("the successor's items: %+v, %v", items, err)
	}
	// Inside fn the same SQLSTATE is the handler's own: not ErrRoleGone.
	err = tenancy.WithTx(ctx, succ, func(tx *gorm.DB) error {
		return tx.Exec(`SELECT set_config('role', 'no_such_role_here', true)`).Error
	})
	if errors.Is(err, tenancy.ErrRoleGone) || sqlState(err) != "22023" {
		t.Fatalf("a handler's own 22023: %v, want it unwrapped", err)
	}
}

// Tenant roles were once named after the tenant (tr<dep>_w_<name>), which a
// successor of the same name would share. A tenant with such roles is
// refused like one without roles until EnsureRoles (tenantry migrate)
// renames them to the id form; their grants survive the rename, and a
// second run changes nothing.
func TestEnsureRolesRenamesNameDerivedRoles(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	ctx := context.Background()
	e.onboard(t, "acme", "globex")
	createItem(t, e, "acme", "kept")
	dep, err := e.dir.Deployment(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := e.active(t, "acme")
	oldW, oldR := "tr"+dep+"_w_acme", "tr"+dep+"_r_acme"
	e.admin(t, `ALTER ROLE "`+want.Row().DBRole+`" RENAME TO "`+oldW+`"; ALTER ROLE "`+want.Row().DBRoleRead+`" RENAME TO "`+oldR+`";
		UPDATE `+migrations.TenantsTable+` SET db_role = '`+oldW+`', db_role_read = '`+oldR+`' WHERE name = 'acme'`)
	e.dir.Forget("acme")
	legacy := e.active(t, "acme")
	if legacy.Row().DBRole != oldW {
		t.Fatalf("setup: acme's role is %q, want %q", legacy.Row().DBRole, oldW)
	}
	if err := tenancy.WithTx(ctx, legacy, func(*gorm.DB) error { return nil }); !errors.Is(err, tenancy.ErrNoRole) {
		t.Fatalf("scope with a name-derived role: %v, want ErrNoRole", err)
	}
	for range 2 {
		if err := e.dir.EnsureRoles(ctx, e.te.Roles.AppRole); err != nil {
			t.Fatal(err)
		}
	}
	got := e.active(t, "acme")
	if got.Row().DBRole != want.Row().DBRole || got.Row().DBRoleRead != want.Row().DBRoleRead {
		t.Fatalf("after EnsureRoles acme has roles %q/%q, want %q/%q", got.Row().DBRole, got.Row().DBRoleRead, want.Row().DBRole, want.Row().DBRoleRead)
	}
	var left int64
	if err := e.ddl.Raw("SELECT count(*) FROM pg_roles WHERE rolname IN (?, ?)", oldW, oldR).Scan(&left).Error; err != nil || left != 0 {
		t.Fatalf("name-derived roles left: %d, %v", left, err)
	}
	items, err := listItems(ctx, e, "acme")
	if err != nil || len(items) != 1 || items[0].Name != "kept" {
		t.Fatalf("acme after the rename: %+v, %v", items, err)
	}
	err = tenancy.WithTx(ctx, got, func(tx *gorm.DB) error {
		return tx.Exec(`SELECT count(*) FROM t_globex.items`).Error
	})
	if got := sqlState(err); got != "42501" {
		t.Fatalf("renamed role reading another tenant: %v, want 42501", err)
	}
}
