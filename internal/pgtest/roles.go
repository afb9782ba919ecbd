package pgtest

import (
	"context"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/migrations"
)

// Roles is a fresh database with the two login roles of the strict setup
// (SECURITY.md): DDL owns the database and may create roles; App, the
// request role, is NOINHERIT and owns nothing.
type Roles struct {
	Name             string // the database
	DDLURL, AppURL   string
	DDLRole, AppRole string
}

// NewDBWithRoles creates a database and its two login roles for this test.
// When the test ends it drops the database, then the login roles and every
// role the service derived for it (named after the deployment id the
// shared migration stored), so nothing of the test stays on the server.
func NewDBWithRoles(tb testing.TB) Roles {
	tb.Helper()
	if adminURL == "" {
		tb.Skipf("no PostgreSQL: %s", skipWhy)
	}
	name := randomName("test_")
	r := Roles{Name: name, DDLRole: name + "_ddl", AppRole: name + "_app"}
	ctx := context.Background()
	ddl, app, db := pgx.Identifier{r.DDLRole}.Sanitize(), pgx.Identifier{r.AppRole}.Sanitize(), pgx.Identifier{name}.Sanitize()
	// The password is there for servers that do not trust loopback (the
	// Docker image); the test server is throwaway and loopback-only.
	exec(tb, ctx, "CREATE ROLE "+ddl+" LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS PASSWORD 'test'")
	exec(tb, ctx, "CREATE ROLE "+app+" LOGIN NOINHERIT NOSUPERUSER NOCREATEROLE NOBYPASSRLS PASSWORD 'test'")
	tb.Cleanup(func() { dropRoles(tb, ctx, name, r.DDLRole, r.AppRole) })
	exec(tb, ctx, "CREATE DATABASE "+db+" OWNER "+ddl)
	base := WithDatabase(adminURL, name)
	r.DDLURL, r.AppURL = withUser(tb, base, r.DDLRole), withUser(tb, base, r.AppRole)
	return r
}

func withUser(tb testing.TB, u, user string) string {
	tb.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		tb.Fatalf("parse %s: %v", u, err)
	}
	pu.User = url.UserPassword(user, "test")
	return pu.String()
}

// dropRoles drops database name, then its login roles and derived roles.
// Roles are server-wide and outlive a database; one left behind would
// leak into every later test on the server.
func dropRoles(tb testing.TB, ctx context.Context, name string, logins ...string) {
	tb.Helper()
	conn, err := pgx.Connect(ctx, WithDatabase(adminURL, name))
	var dep string
	if err == nil {
		// No deployment table: the shared migration never ran, so no role
		// was derived.
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", migrations.DeploymentTable).Scan(&exists); err != nil {
			tb.Errorf("look for the deployment of %s: %v", name, err)
		} else if exists {
			if err := conn.QueryRow(ctx, "SELECT id FROM "+migrations.DeploymentTable).Scan(&dep); err != nil {
				tb.Errorf("read the deployment of %s: %v", name, err)
			}
		}
		conn.Close(ctx)
	}
	exec(tb, ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	roles := append([]string{}, logins...)
	if dep != "" {
		admin, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			tb.Fatalf("connect to test server: %v", err)
		}
		defer admin.Close(ctx)
		rows, err := admin.Query(ctx, `SELECT rolname FROM pg_roles WHERE starts_with(rolname, 'tr' || $1 || '_')`, dep)
		if err != nil {
			tb.Fatalf("list derived roles: %v", err)
		}
		derived, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			tb.Fatalf("list derived roles: %v", err)
		}
		roles = append(derived, roles...)
	}
	for _, r := range roles {
		exec(tb, ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize())
	}
}
