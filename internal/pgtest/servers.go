package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/internal/pglocal"
)

// Server is a throwaway PostgreSQL server of one test's own, for tests
// that need several servers (tenant placement and moves) or a server
// setting the shared one lacks (wal_level=logical). It is stopped and
// removed when the test ends, with everything in it.
type Server struct {
	Cluster *pglocal.Cluster
	// SuperURL logs in as the superuser, on the test database.
	SuperURL string
	// Roles is the test database and its two login roles, as
	// NewDBWithRoles makes them.
	Roles Roles
}

// NewServer starts a server with the machine's PostgreSQL binaries and
// makes a database with the strict setup's two login roles in it. Without
// binaries the test skips, or fails when CI or REQUIRE_DB is set.
func NewServer(tb testing.TB, o pglocal.Options) Server {
	tb.Helper()
	if _, err := pglocal.BinDir(); err != nil {
		if os.Getenv("CI") != "" || os.Getenv("REQUIRE_DB") != "" {
			tb.Fatalf("extra PostgreSQL server: %v", err)
		}
		tb.Skipf("extra PostgreSQL server: %v", err)
	}
	dir, err := os.MkdirTemp("", "tenantry-pgtest-server-")
	if err != nil {
		tb.Fatal(err)
	}
	// The server may run as another user (postgres, when tests run as
	// root), which must be able to enter the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	o.Dir = dir
	c, err := pglocal.Start(context.Background(), o)
	if err != nil {
		os.RemoveAll(dir)
		tb.Fatalf("start an extra PostgreSQL server: %v", err)
	}
	tb.Cleanup(func() {
		if err := c.Stop(); err != nil {
			tb.Errorf("stop server on port %d: %v", c.Port, err)
		}
		os.RemoveAll(dir)
	})
	name := randomName("test_")
	r := Roles{Name: name, DDLRole: name + "_ddl", AppRole: name + "_app"}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		tb.Fatalf("connect to server on port %d: %v", c.Port, err)
	}
	defer conn.Close(ctx)
	ddl, app, db := pgx.Identifier{r.DDLRole}.Sanitize(), pgx.Identifier{r.AppRole}.Sanitize(), pgx.Identifier{name}.Sanitize()
	for _, sql := range []string{
		"CREATE ROLE " + ddl + " LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS PASSWORD 'test'",
		"CREATE ROLE " + app + " LOGIN NOINHERIT NOSUPERUSER NOCREATEROLE NOBYPASSRLS PASSWORD 'test'",
		"CREATE DATABASE " + db + " OWNER " + ddl,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			tb.Fatalf("%s: %v", sql, err)
		}
	}
	base := c.URL(name)
	r.DDLURL, r.AppURL = withUser(tb, base, r.DDLRole), withUser(tb, base, r.AppRole)
	return Server{Cluster: c, SuperURL: base, Roles: r}
}
