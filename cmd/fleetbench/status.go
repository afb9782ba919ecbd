package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/tenantry/tenantry/fleet"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/migrations/migrationstest"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// benchStatus times `migrate status`'s work over the fleet: the former
// per-schema check (one scope per tenant reading its ledger and its
// fingerprint, one tenant after another) against fleet.Inspect, in the
// same run and on the same fleet. Rounds alternate so machine noise hits
// every variant alike.
// Without baseline only fleet.Inspect and its catalog query are timed (the
// per-schema check grows with the square of the fleet).
func benchStatus(ctx context.Context, w io.Writer, db *gorm.DB, dir *tenancy.Directory, rounds int, baseline bool) error {
	ts, err := dir.List(ctx)
	if err != nil {
		return err
	}
	n := len(ts)
	perSchema := func() error {
		for _, t := range ts {
			err := tenancy.InSchema(ctx, db, t.SchemaName, tenancy.DDLLimits, func(tx *gorm.DB) error {
				if _, err := migrations.Version(tx, dir.Plan()); err != nil {
					return err
				}
				var fp *string
				return tx.Raw(migrationstest.FormerFingerprintSQL, `"`+t.SchemaName+`"`, t.SchemaName).Scan(&fp).Error
			})
			if err != nil {
				return fmt.Errorf("per-schema check of %s: %w", t.SchemaName, err)
			}
		}
		return nil
	}
	inspect := func(c int) func() error {
		return func() error {
			st, err := fleet.Inspect(ctx, dir, c)
			if err != nil {
				return err
			}
			for _, s := range st {
				if s.Drift != "" {
					return fmt.Errorf("inspect: %s drifted: %s", s.Tenant, s.Drift)
				}
			}
			if len(st) != n {
				return fmt.Errorf("inspect reported %d of %d tenants", len(st), n)
			}
			return nil
		}
	}
	catalog := func() error {
		fps, unreadable, err := dir.Fingerprints(ctx, ts)
		if err == nil && (len(fps) != n || len(unreadable) != 0) {
			err = fmt.Errorf("fingerprints of %d of %d schemas (unreadable: %v)", len(fps), n, unreadable)
		}
		return err
	}
	type variant struct {
		name string
		fn   func() error
		best time.Duration
	}
	var variants []variant
	if baseline {
		variants = append(variants, variant{"per-schema queries, one tenant at a time (before)", perSchema, 0})
	}
	variants = append(variants,
		variant{"fleet.Inspect, concurrency 1", inspect(1), 0},
		variant{"fleet.Inspect, concurrency 4 (the default)", inspect(4), 0},
		variant{"its one catalog query for the whole fleet", catalog, 0})
	for range rounds {
		for i := range variants {
			start := time.Now()
			if err := variants[i].fn(); err != nil {
				return err
			}
			if d := time.Since(start); variants[i].best == 0 || d < variants[i].best {
				variants[i].best = d
			}
		}
	}
	fmt.Fprintf(w, "\n## `migrate status` over %d tenants (best of %d rounds)\n\n", n, rounds)
	fmt.Fprintf(w, "| check | seconds | ms per tenant | × %s |\n", variants[0].name)
	fmt.Fprintln(w, "|---|---|---|---|")
	base := variants[0].best
	for _, v := range variants {
		fmt.Fprintf(w, "| %s | %.3f | %.3f | %.3f× |\n", v.name, v.best.Seconds(), ms(v.best)/float64(n), float64(v.best)/float64(base))
	}
	return nil
}
