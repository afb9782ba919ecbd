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
	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/pglocal"
)

// demoTenants are onboarded by `tenantry dev`.
var demoTenants = []string{"acme", "globex"}

// dev is what `make run` runs: development mode, a local PostgreSQL under
// ./.data when DATABASE_URL is unset, two demo tenants, tokens and curl
// commands on stdout, then serve.
func dev(ctx context.Context, cfg config, getenv func(string) string, stdout io.Writer) error {
	cfg.dev = true
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
		if err := ensureDatabase(ctx, cluster.URL("postgres"), "tenantry"); err != nil {
			return err
		}
		cfg.databaseURL = cluster.URL("tenantry")
	}
	db, closeDB, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	dir := tenancy.NewDirectory(db, tenancy.WithTTL(0))
	for _, n := range demoTenants {
		if _, err := dir.Onboard(ctx, n); err != nil && !errors.Is(err, models.ErrConflict) {
			closeDB()
			return err
		}
	}
	// In development, tenants left by an older binary are brought up to
	// date at start; in production that is `tenantry migrate`'s job.
	results, err := dir.Migrate(ctx, tenancy.MigrateOptions{Options: migrations.Options{Concurrency: 2}})
	closeDB()
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Err != nil {
			return fmt.Errorf("migrate tenant %s: %w", r.Tenant, r.Err)
		}
	}
	return serve(ctx, cfg, stdout, func(addr string) { printWelcome(stdout, cfg, addr) })
}

func ensureDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

func printWelcome(w io.Writer, cfg config, addr string) {
	base := "http://localhost:" + addr[strings.LastIndex(addr, ":")+1:]
	mint := func(tenant string, admin bool) string {
		tok, err := api.IssueToken(cfg.auth, tenant, admin, 12*time.Hour)
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return tok
	}
	a, g, i, adm := mint("acme", false), mint("globex", false), mint("initech", false), mint("", true)
	fmt.Fprintf(w, `
tenantry is serving on %[1]s (development mode; tokens last 12h)

  export ACME=%[2]s
  export GLOBEX=%[3]s
  export ADMIN=%[4]s
  export INITECH=%[5]s

  # acme creates and lists items
  curl -s -X POST %[1]s/items -H "Authorization: Bearer $ACME" -H 'Content-Type: application/json' -d '{"name":"anvil","description":"heavy"}'
  curl -s %[1]s/items -H "Authorization: Bearer $ACME"
  # globex sees none of them
  curl -s %[1]s/items -H "Authorization: Bearer $GLOBEX"
  # the admin onboards a third tenant, which works at once
  curl -s -X POST %[1]s/admin/tenants -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -d '{"name":"initech"}'
  curl -s -X POST %[1]s/items -H "Authorization: Bearer $INITECH" -H 'Content-Type: application/json' -d '{"name":"stapler"}'

Ctrl-C stops the server and the local database (its data stays in .data/).

`, base, a, g, adm, i)
	_ = os.Stdout.Sync()
}
