package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/fleet"
	"github.com/tenantry/tenantry/internal/pglocal"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	authtoken "github.com/tenantry/tenantry/token"
)

// demoTenants are onboarded by `tenantry dev`.
var demoTenants = []string{"acme", "globex"}

// dev is what `make run` runs: development mode, a local PostgreSQL under
// ./.data when DATABASE_URL is unset, two demo tenants, tokens and curl
// commands on stdout, then serve.
func dev(ctx context.Context, cfg config, getenv func(string) string, stdout io.Writer) error {
	cfg.dev = true
	if getenv("SHUTDOWN_DELAY") == "" {
		cfg.shutdownDelay = 0 // no load balancer to warn: Ctrl-C stops at once
	}
	if cfg.authErr != nil && getenv("JWT_SECRET") == "" && getenv("JWT_PUBLIC_KEY_FILE") == "" {
		cfg.auth.Secret, cfg.authErr = []byte(devSecret), nil
	}
	if cfg.authErr != nil {
		return cfg.authErr
	}
	if getenv("DATABASE_URL") == "" {
		dir, err := filepath.Abs(".data/postgres")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "starting a local PostgreSQL in %s on 127.0.0.1:%d ...\n", dir, devPort)
		cluster, err := pglocal.Start(ctx, pglocal.Options{Dir: dir, Port: devPort, Durable: true})
		if err != nil {
			return err
		}
		defer cluster.Stop()
		user, err := ensureDatabase(ctx, cluster.URL("postgres"), devRole)
		if err != nil {
			return err
		}
		// The strict setup, as in production: requests log in as a role
		// that owns nothing and can only switch to tenant roles; the owner
		// does DDL (SECURITY.md).
		cfg.migrationURL = fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", user, cluster.Port, devRole)
		cfg.databaseURL = fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", devRequestRole, cluster.Port, devRole)
	}
	h, err := openDB(ctx, cfg, tenancy.DefaultPool)
	if err != nil {
		return err
	}
	closeDB := h.close
	dir := h.directory(tenancy.WithTTL(0))
	for _, n := range demoTenants {
		if _, err := dir.Onboard(ctx, n); err != nil && !errors.Is(err, models.ErrConflict) {
			closeDB()
			return err
		}
	}
	// In development, tenants left by an older binary are brought up to
	// date at start; in production that is `tenantry migrate`'s job.
	sum, err := fleet.Migrate(ctx, dir, fleet.Options{Concurrency: 2})
	closeDB()
	if err != nil {
		return err
	}
	for _, r := range sum.Results {
		if r.Err != nil {
			return fmt.Errorf("migrate tenant %s: %w", r.Tenant, r.Err)
		}
	}
	return serve(ctx, cfg, stdout, func(addr string) { printWelcome(stdout, cfg, addr) })
}

// devRole names both the development database and its DDL role: an
// ordinary role that owns its database (so it may create the shared and
// tenant schemas) and may create roles (the tenants' roles), not the
// cluster's superuser. devRequestRole is the role requests log in as.
const (
	devRole        = "tenantry"
	devRequestRole = "tenantry_app"
)

// ensureDatabase makes the roles and the database when they are missing
// and returns the DDL user to connect as. A database left by an older
// layout, owned by the superuser, keeps being used as that superuser.
func ensureDatabase(ctx context.Context, adminURL, name string) (string, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()
	var owner *string
	err = conn.QueryRow(ctx, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", name).Scan(&owner)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", err
	}
	var roles [2]bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1), EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2)",
		name, devRequestRole).Scan(&roles[0], &roles[1]); err != nil {
		return "", err
	}
	if !roles[1] {
		// NOINHERIT, owns nothing: SECURITY.md's request role.
		if _, err := conn.Exec(ctx, "CREATE ROLE "+pgx.Identifier{devRequestRole}.Sanitize()+" LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"); err != nil {
			return "", err
		}
	}
	if owner != nil {
		if *owner == name {
			// A database made before tenant roles: its owner now needs
			// CREATEROLE to make them.
			if _, err := conn.Exec(ctx, "ALTER ROLE "+ident+" CREATEROLE"); err != nil {
				return "", err
			}
		}
		return *owner, nil
	}
	if !roles[0] {
		if _, err := conn.Exec(ctx, "CREATE ROLE "+ident+" LOGIN CREATEROLE NOSUPERUSER NOCREATEDB NOBYPASSRLS"); err != nil {
			return "", err
		}
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident+" OWNER "+ident); err != nil {
		return "", err
	}
	return name, nil
}

func printWelcome(w io.Writer, cfg config, addr string) {
	base := "http://localhost:" + addr[strings.LastIndex(addr, ":")+1:]
	mint := func(tenant string, role authtoken.Role) string {
		tok, err := authtoken.IssueToken(cfg.auth, tenant, role, 12*time.Hour)
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return tok
	}
	a, g, adm := mint("acme", authtoken.RoleTenant), mint("globex", authtoken.RoleTenant), mint("", authtoken.RoleAdmin)
	fmt.Fprintf(w, `
tenantry is serving on %[1]s (development mode; tokens last 12h)

  export ACME=%[2]s
  export GLOBEX=%[3]s
  export ADMIN=%[4]s

  # acme creates and lists items
  curl -s -X POST %[1]s/items -H "Authorization: Bearer $ACME" -H 'Content-Type: application/json' -d '{"name":"anvil","description":"heavy"}'
  curl -s %[1]s/items -H "Authorization: Bearer $ACME"
  # globex sees none of them
  curl -s %[1]s/items -H "Authorization: Bearer $GLOBEX"
  # the admin onboards a third tenant, which works at once; a token is bound
  # to its tenant's incarnation, so initech's is minted once initech exists
  curl -s -X POST %[1]s/admin/tenants -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -d '{"name":"initech"}'
  export INITECH=$(TENANTRY_ENV=dev go run . token --tenant initech)
  curl -s -X POST %[1]s/items -H "Authorization: Bearer $INITECH" -H 'Content-Type: application/json' -d '{"name":"stapler"}'

Ctrl-C stops the server and the local database (its data stays in .data/).

`, base, a, g, adm)
	_ = os.Stdout.Sync()
}
