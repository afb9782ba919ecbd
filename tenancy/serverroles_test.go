package tenancy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/internal/pglocal"
	"github.com/tenantry/tenantry/internal/pgtest"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
)

// refuseCrossing is serve's judgement outside dev mode: any finding that
// crosses the tenant boundary refuses the server.
func refuseCrossing(_ string, f []tenancy.Finding) error {
	var msgs []string
	for _, x := range f {
		if x.Crosses {
			msgs = append(msgs, x.Message)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

// TestServerRequestRoleIsCheckedLikeHomes: a TENANT_SERVERS server whose
// request role could cross the tenant boundary is refused, by the start-up
// check and, for a directory that never ran it (a server down at start-up),
// when the server's pool first opens for a tenant; tenants on home stay
// served. Each privilege is granted on its own, checked by a fresh
// directory (a new process), and taken back.
func TestServerRequestRoleIsCheckedLikeHomes(t *testing.T) {
	ctx := context.Background()
	te := tenancytest.New(t, fleetPool)
	b := pgtest.NewServer(t, pglocal.Options{})
	newDir := func(srv tenancy.Server) *tenancy.Directory {
		d := te.Directory(tenancy.WithTTL(0), tenancy.WithServers([]tenancy.Server{srv}, fleetPool),
			tenancy.WithServerRoleCheck(refuseCrossing))
		t.Cleanup(func() {
			if err := d.Close(); err != nil {
				t.Errorf("close directory: %v", err)
			}
		})
		return d
	}
	strict := tenancy.Server{Name: "b", URL: b.Roles.AppURL, AdminURL: b.Roles.DDLURL}
	dir := newDir(strict)
	if f, err := dir.CheckServerRole(ctx, "b"); err != nil || len(f) != 0 {
		t.Fatalf("strict roles on b: findings %v, %v; want none", f, err)
	}
	// Home first, then b: one tenant on each.
	for _, n := range []string{"onhome", "onb"} {
		if _, err := dir.Onboard(ctx, n); err != nil {
			t.Fatalf("onboard %s: %v", n, err)
		}
	}
	onb, err := dir.Get(ctx, "onb")
	if err != nil || onb.Server != "b" {
		t.Fatalf("tenant onb: server %q, %v; want b", onb.Server, err)
	}
	if f, err := newDir(strict).CheckServerRole(ctx, "b"); err != nil || len(f) != 0 {
		t.Fatalf("strict roles on b with a tenant there: findings %v, %v; want none", f, err)
	}

	app, ddl := pgx.Identifier{b.Roles.AppRole}.Sanitize(), pgx.Identifier{b.Roles.DDLRole}.Sanitize()
	group := pgx.Identifier{mustGroup(t, dir)}.Sanitize()
	db, schema := pgx.Identifier{b.Roles.Name}.Sanitize(), pgx.Identifier{onb.SchemaName}.Sanitize()
	for _, c := range []struct{ name, grant, undo, want string }{
		{"superuser", "ALTER ROLE " + app + " SUPERUSER", "ALTER ROLE " + app + " NOSUPERUSER", "SUPERUSER"},
		{"bypassrls", "ALTER ROLE " + app + " BYPASSRLS", "ALTER ROLE " + app + " NOBYPASSRLS", "BYPASSRLS"},
		{"inherit", "ALTER ROLE " + app + " INHERIT", "ALTER ROLE " + app + " NOINHERIT", "INHERIT"},
		{"createrole", "ALTER ROLE " + app + " CREATEROLE", "ALTER ROLE " + app + " NOCREATEROLE", "CREATEROLE"},
		{"not in the group", "REVOKE " + group + " FROM " + app,
			"GRANT " + group + " TO " + app, "not a member"},
		{"create on the database", "GRANT CREATE ON DATABASE " + db + " TO " + app, "REVOKE CREATE ON DATABASE " + db + " FROM " + app, "CREATE schemas in the database"},
		{"create on public", "GRANT CREATE ON SCHEMA public TO " + app, "REVOKE CREATE ON SCHEMA public FROM " + app, "CREATE in 1 schemas"},
		{"owns a tenant schema", "ALTER SCHEMA " + schema + " OWNER TO " + app, "ALTER SCHEMA " + schema + " OWNER TO " + ddl, "owns 1 of 1 tenant schemas"},
		{"usage on a tenant schema", "GRANT USAGE ON SCHEMA " + schema + " TO " + app, "REVOKE USAGE ON SCHEMA " + schema + " FROM " + app, "can use 1 of 1 tenant schemas"},
	} {
		t.Run(c.name, func(t *testing.T) {
			superExec(t, b, c.grant)
			defer superExec(t, b, c.undo)
			// The start-up check.
			_, err := newDir(strict).CheckServerRole(ctx, "b")
			if !errors.Is(err, tenancy.ErrRoleRefused) || !errors.Is(err, models.ErrUnavailable) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("start-up check: got %v, want ErrRoleRefused naming %q", err, c.want)
			}
			// No start-up check: the first tenant request opens the pool.
			lazy := newDir(strict)
			if _, err := lazy.Active(ctx, "onb"); !errors.Is(err, tenancy.ErrRoleRefused) || !errors.Is(err, models.ErrUnavailable) {
				t.Fatalf("tenant on b: got %v, want refused (ErrUnavailable)", err)
			}
			if _, err := lazy.Active(ctx, "onb"); !errors.Is(err, tenancy.ErrRoleRefused) {
				t.Fatalf("tenant on b, again: got %v, want still refused", err)
			}
			if _, err := lazy.Active(ctx, "onhome"); err != nil {
				t.Fatalf("tenant on home while b is refused: %v", err)
			}
		})
	}
	// One URL on b (no TENANT_SERVERS_DDL): warned about, not refused.
	f, err := newDir(tenancy.Server{Name: "b", URL: b.Roles.AppURL}).CheckServerRole(ctx, "b")
	if err != nil || len(f) != 1 || f[0].Crosses || !strings.Contains(f[0].Message, "also the DDL role") {
		t.Fatalf("one URL on b: findings %v, %v; want one warning", f, err)
	}
	// A server down at start-up is reported as such, not refused.
	down := newDir(tenancy.Server{Name: "b", URL: "postgres://app:pw@127.0.0.1:1/db?sslmode=disable", AdminURL: b.Roles.DDLURL})
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := down.CheckServerRole(cctx, "b"); !errors.Is(err, models.ErrUnavailable) || errors.Is(err, tenancy.ErrRoleRefused) {
		t.Fatalf("server down: got %v, want ErrUnavailable, not refused", err)
	}
}

func mustGroup(t *testing.T, d *tenancy.Directory) string {
	t.Helper()
	dep, err := d.Deployment(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	g, err := tenancy.GroupRole(dep)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func superExec(t *testing.T, s pgtest.Server, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.SuperURL)
	if err != nil {
		t.Fatalf("connect to port %d: %v", s.Cluster.Port, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Tenant schemas are known on another server by their prefix "t_", whose
// underscore must match itself: a schema such as "tools" that the request
// role may use is none of the tenants' business, and no reason to refuse
// the server.
func TestServerRoleCheckCountsOnlyTenantSchemas(t *testing.T) {
	ctx := context.Background()
	te := tenancytest.New(t, fleetPool)
	b := pgtest.NewServer(t, pglocal.Options{})
	app := pgx.Identifier{b.Roles.AppRole}.Sanitize()
	superExec(t, b, "CREATE SCHEMA tools; GRANT USAGE ON SCHEMA tools TO "+app)
	d := te.Directory(tenancy.WithTTL(0),
		tenancy.WithServers([]tenancy.Server{{Name: "b", URL: b.Roles.AppURL, AdminURL: b.Roles.DDLURL}}, fleetPool),
		tenancy.WithServerRoleCheck(refuseCrossing))
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close directory: %v", err)
		}
	})
	if f, err := d.CheckServerRole(ctx, "b"); err != nil || len(f) != 0 {
		t.Fatalf("usage on schema tools: findings %v, %v; want none", f, err)
	}
}
