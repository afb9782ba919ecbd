package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/internal/pglocal"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/tenancy"
)

// after measures, on the fleet a -keep run left behind, what the main run
// does not: `tenantry migrate status` built from o.repo (so another
// revision's can be timed on the same fleet), onboarding into the full
// database against a fresh one on the same server, and the role switch of
// a request as a function of the tenant roles its login reaches. It prints
// markdown to add to docs/SCALE.md by hand.
func after(ctx context.Context, o options) error {
	c, err := pglocal.Start(ctx, pglocal.Options{Dir: filepath.Join(o.after, "pg"), Durable: true})
	if err != nil {
		return err
	}
	defer c.Stop()
	dir, err := os.MkdirTemp("", "tenantry-scalebench-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e := &env{o: o, cluster: c}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	if err := e.onboardAtScale(ctx, w); err != nil {
		return err
	}
	if err := e.roleSwitch(ctx, w); err != nil {
		return err
	}
	bin, err := build(ctx, o.repo, dir)
	if err != nil {
		return err
	}
	if o.statusTimeout > 0 {
		d, out, errText := e.status(ctx, bin)
		w("\n`tenantry migrate status` at `%s` over %d tenants: %.1f s (%.2f ms per tenant)%s; it ended with:\n\n```\n%s\n```\n",
			gitHead(o.repo), o.tenants, d.Seconds(), ms(d)/float64(o.tenants), errText, out)
	}
	fmt.Print(b.String())
	return nil
}

// onboardAtScale onboards tenants one at a time, alternately into the
// full database and into a fresh one on the same server, so that the
// machine's load weighs on both alike; the ratio is the cost of the
// tenants already there.
func (e *env) onboardAtScale(ctx context.Context, w func(string, ...any)) error {
	conn, err := pgx.Connect(ctx, e.cluster.URL("postgres"))
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS scale_fresh")
	if err == nil {
		_, err = conn.Exec(ctx, "CREATE DATABASE scale_fresh")
	}
	conn.Close(ctx)
	if err != nil {
		return err
	}
	dirs := make([]*tenancy.Directory, 2)
	for i, name := range []string{"scale", "scale_fresh"} {
		db, err := tenancy.Open(ctx, e.cluster.URL(name), tenancy.PoolConfig{MaxOpen: 2, MaxIdle: 2})
		if err != nil {
			return err
		}
		defer closeDB(db)
		if err := migrations.ApplyShared(ctx, db); err != nil {
			return err
		}
		dirs[i] = tenancy.NewDirectory(db, tenancy.WithTTL(0))
		if _, err := dirs[i].Blueprint(ctx); err != nil {
			return err
		}
	}
	const n = 30
	// A name of this run's own, so that -after runs again on the same
	// fleet (an earlier run's tenants stay: they are part of the fleet).
	prefix := "late" + strconv.FormatInt(time.Now().Unix(), 36) + "_"
	took := [2][]float64{}
	for k := range n {
		for i, d := range dirs {
			start := time.Now()
			if _, err := d.Onboard(ctx, fmt.Sprintf("%s%03d", prefix, k)); err != nil {
				return fmt.Errorf("onboard %s%03d: %w", prefix, k, err)
			}
			took[i] = append(took[i], ms(time.Since(start)))
		}
	}
	full, fresh := median(took[0]), median(took[1])
	w("Onboarding one tenant at a time, alternately into the database of %d tenants and into a fresh one on the same server (%d each, median): %.0f ms against %.0f ms, **%.2f×**.\n",
		e.o.tenants, n, full, fresh, full/fresh)
	log.Printf("onboarding at scale: %.0f ms, fresh %.0f ms", full, fresh)
	return nil
}

// roleSwitch times a request's role switch (the pin's set_config('role'))
// as the request role, which reaches every tenant role through the
// deployment's group: on a new backend, again on the same backend, and
// after a membership change elsewhere (an onboarding or offboarding makes
// one), which makes every backend compute its memberships afresh.
func (e *env) roleSwitch(ctx context.Context, w func(string, ...any)) error {
	admin, err := pgx.Connect(ctx, e.url())
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	var roles []string
	rows, err := admin.Query(ctx, "SELECT db_role FROM "+migrations.TenantsTable+" WHERE db_role <> '' ORDER BY id LIMIT 3")
	if err == nil {
		roles, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return err
	}
	if len(roles) < 3 {
		return fmt.Errorf("want 3 tenant roles, found %d", len(roles))
	}
	var reach int
	if err := admin.QueryRow(ctx, `WITH RECURSIVE m(r) AS (SELECT oid FROM pg_roles WHERE rolname = $1
		UNION SELECT a.roleid FROM pg_auth_members a JOIN m ON a.member = m.r) SELECT count(*) - 1 FROM m`, requestRole).Scan(&reach); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "DROP ROLE IF EXISTS scale_probe; CREATE ROLE scale_probe"); err != nil {
		return err
	}
	timeSet := func(c *pgx.Conn, role string) (float64, error) {
		start := time.Now()
		if _, err := c.Exec(ctx, "SELECT set_config('role', $1, false)", role); err != nil {
			return 0, err
		}
		d := ms(time.Since(start))
		_, err := c.Exec(ctx, "RESET ROLE")
		return d, err
	}
	var cold, warm, changed []float64
	for range 5 {
		c, err := pgx.Connect(ctx, e.requestURL("scale-probe"))
		if err != nil {
			return err
		}
		if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
			c.Close(ctx)
			return err
		}
		t0, err0 := timeSet(c, roles[0])
		t1, err1 := timeSet(c, roles[1])
		_, err2 := admin.Exec(ctx, "GRANT pg_read_all_stats TO scale_probe; REVOKE pg_read_all_stats FROM scale_probe")
		t2, err3 := timeSet(c, roles[2])
		c.Close(ctx)
		if err := errors.Join(err0, err1, err2, err3); err != nil {
			return err
		}
		cold, warm, changed = append(cold, t0), append(warm, t1), append(changed, t2)
	}
	if _, err := admin.Exec(ctx, "DROP ROLE scale_probe"); err != nil {
		return err
	}
	w("\nA request's role switch as the request role, which reaches %d roles through the group (median of 5, ms): first on a new backend %.1f, again on the same backend %.2f, after a membership change elsewhere %.1f.\n",
		reach, median(cold), median(warm), median(changed))
	log.Printf("role switch: cold %.1f ms, warm %.2f ms, after a change %.1f ms", median(cold), median(warm), median(changed))
	return nil
}
