// Command fleetbench measures onboarding and fleet migration on a real,
// durable (fsync on) PostgreSQL that it starts itself, and prints markdown
// tables of ratios against baselines measured in the same run. It is a
// benchmark, not a test: nothing here passes or fails on time.
//
//	go run ./cmd/fleetbench -tenants 1000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/fleet"
	"github.com/tenantry/tenantry/internal/pglocal"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/migrations/migrationstest"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

func main() {
	n := flag.Int("tenants", 1000, "tenants to onboard and migrate")
	rows := flag.Int("rows", 20, "items per tenant (what the backfill rewrites)")
	sample := flag.Int("automigrate-sample", 25, "tenants timed for an AutoMigrate no-op run")
	out := flag.String("out", "", "also write the report to this file")
	statusOnly := flag.Bool("status-only", false, "onboard the tenants and time only `migrate status`")
	statusGrow := flag.Int("status-grow", 0, "with -status-only: then onboard up to this many tenants and time fleet.Inspect again")
	flag.Parse()
	if err := run(context.Background(), *n, *rows, *sample, *out, *statusOnly, *statusGrow); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, n, rows, sample int, outPath string, statusOnly bool, statusGrow int) error {
	dir, err := os.MkdirTemp("", "tenantry-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	cluster, err := pglocal.Start(ctx, pglocal.Options{Dir: dir, Durable: true})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	fast, err := database(ctx, cluster, "bench_fast")
	if err != nil {
		return err
	}
	slow, err := database(ctx, cluster, "bench_automigrate")
	if err != nil {
		return err
	}
	var report strings.Builder
	w := io.MultiWriter(os.Stdout, &report)
	pgVersion := ""
	fast.Raw("SHOW server_version").Scan(&pgVersion)
	fmt.Fprintf(w, "fleetbench: %d tenants, %d items each; PostgreSQL %s (fsync on), %s, %d CPUs, %s\n\n",
		n, rows, pgVersion, runtime.Version(), runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"))

	// Onboarding, interleaved so that machine noise hits both paths alike.
	fastDir := tenancy.NewDirectory(fast, tenancy.WithTTL(0))
	slowDir := tenancy.NewDirectory(slow, tenancy.WithTTL(0), tenancy.WithAutoMigrate())
	if statusOnly {
		onboard := func(from, to int) error {
			for i := from; i < to; i++ {
				if _, err := fastDir.Onboard(ctx, fmt.Sprintf("tenant%05d", i)); err != nil {
					return err
				}
			}
			return nil
		}
		if err := onboard(0, n); err != nil {
			return err
		}
		if err := benchStatus(ctx, w, fast, fastDir, 3, true); err != nil {
			return err
		}
		if statusGrow > n {
			if err := onboard(n, statusGrow); err != nil {
				return err
			}
			if err := benchStatus(ctx, w, fast, fastDir, 3, false); err != nil {
				return err
			}
		}
		return writeReport(outPath, report.String())
	}
	fastT, slowT := make([]time.Duration, n), make([]time.Duration, n)
	for i := range n {
		name := fmt.Sprintf("tenant%05d", i)
		for _, p := range []struct {
			d   *tenancy.Directory
			out []time.Duration
		}{{fastDir, fastT}, {slowDir, slowT}} {
			start := time.Now()
			if _, err := p.d.Onboard(ctx, name); err != nil {
				return fmt.Errorf("onboard %s: %w", name, err)
			}
			p.out[i] = time.Since(start)
		}
		if (i+1)%100 == 0 {
			log.Printf("onboarded %d/%d", i+1, n)
		}
	}
	fmt.Fprintf(w, "## Onboarding %d tenants, one after another (ms per tenant)\n\n", n)
	fmt.Fprintln(w, "| path | median | p99 | median, 1st hundred | median, last hundred | last / 1st hundred |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, p := range []struct {
		name string
		t    []time.Duration
	}{{"AutoMigrate (reference)", slowT}, {"blueprint replay (shipped)", fastT}} {
		first, last := p.t[:min(100, n)], p.t[max(0, n-100):]
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %.1f | %.1f | %.2f× |\n", p.name, ms(pct(p.t, 50)), ms(pct(p.t, 99)),
			ms(pct(first, 50)), ms(pct(last, 50)), float64(pct(last, 50))/float64(pct(first, 50)))
	}
	fmt.Fprintf(w, "\nblueprint median is %.2f× AutoMigrate's (lower is faster)\n\n", float64(pct(fastT, 50))/float64(pct(slowT, 50)))

	// Fill every tenant with rows for the backfill to rewrite.
	ts, err := fastDir.List(ctx)
	if err != nil {
		return err
	}
	for _, t := range ts {
		r, err := fastDir.Active(ctx, t.Name)
		if err != nil {
			return err
		}
		err = tenancy.WithTx(ctx, r, func(tx *gorm.DB) error {
			return tx.Exec(`INSERT INTO items (name, description, created_at, updated_at)
				SELECT 'item ' || g, 'bench', now(), now() FROM generate_series(1, $1) g`, rows).Error
		})
		if err != nil {
			return err
		}
	}

	plan := migrationstest.PlanWith(migrationstest.SKUStep)
	mig := tenancy.NewDirectory(fast, tenancy.WithTTL(0), tenancy.WithPlan(plan))
	fmt.Fprintf(w, "## Migrating %d tenants: add column + backfill + index\n\n", n)
	fmt.Fprintln(w, "| concurrency | seconds | tenants/s | × concurrency 1 | undo (down) seconds |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	var base float64
	for _, c := range []int{1, 2, 4, 8} {
		up, err := timeRun(ctx, mig, fleet.Options{Concurrency: c}, n)
		if err != nil {
			return err
		}
		down, err := timeRun(ctx, mig, fleet.Options{Concurrency: c, To: 1}, n)
		if err != nil {
			return err
		}
		rate := float64(n) / up.Seconds()
		if c == 1 {
			base = rate
		}
		fmt.Fprintf(w, "| %d | %.2f | %.0f | %.2f× | %.2f |\n", c, up.Seconds(), rate, rate/base, down.Seconds())
	}
	if _, err := timeRun(ctx, mig, fleet.Options{Concurrency: 4}, n); err != nil {
		return err
	}

	// No-op runs over an up-to-date fleet.
	fmt.Fprintf(w, "\n## No-op runs over %d up-to-date tenants\n\n", n)
	fmt.Fprintln(w, "| run | seconds | ms per tenant |")
	fmt.Fprintln(w, "|---|---|---|")
	noop, err := timeRun(ctx, mig, fleet.Options{Concurrency: 4}, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "| `tenantry migrate` (registry says all current; no schema touched) | %.3f | %.4f |\n", noop.Seconds(), ms(noop)/float64(n))
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	visit, err := timeRun(ctx, mig, fleet.Options{Tenants: names, Concurrency: 4}, n)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "| `--tenants <all>`: lock and read every ledger, apply nothing | %.3f | %.3f |\n", visit.Seconds(), ms(visit)/float64(n))
	k := min(sample, n)
	start := time.Now()
	for _, t := range ts[:k] {
		err := tenancy.InSchema(ctx, fast, t.SchemaName, tenancy.DDLLimits, func(tx *gorm.DB) error {
			return tx.AutoMigrate(skuModels()...)
		})
		if err != nil {
			return fmt.Errorf("automigrate no-op: %w", err)
		}
	}
	am := time.Since(start)
	fmt.Fprintf(w, "| GORM AutoMigrate no-op, %d tenants sampled, sequential | %.3f | %.1f |\n", k, am.Seconds(), ms(am)/float64(k))
	fmt.Fprintf(w, "\nper tenant, AutoMigrate's no-op costs %.0f× a ledger visit\n", (ms(am)/float64(k))/(ms(visit)/float64(n)))
	if err := benchStatus(ctx, w, fast, mig, 3, true); err != nil {
		return err
	}
	return writeReport(outPath, report.String())
}

func writeReport(path, text string) error {
	if path == "" {
		return nil
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// skuModels is the item model as it looks after SKUStep, so AutoMigrate's
// no-op finds nothing to change.
func skuModels() []any {
	type Item struct {
		ID          int64  `gorm:"primaryKey"`
		Name        string `gorm:"size:200;not null;index"`
		Description string `gorm:"size:2000;not null;default:''"`
		SKU         string `gorm:"column:sku;size:32;index:idx_items_sku"`
		CreatedAt   time.Time
		UpdatedAt   time.Time
	}
	return []any{&Item{}}
}

func timeRun(ctx context.Context, d *tenancy.Directory, o fleet.Options, want int) (time.Duration, error) {
	start := time.Now()
	sum, err := fleet.Migrate(ctx, d, o)
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	rs := sum.Results
	if len(rs) != want {
		return 0, fmt.Errorf("run touched %d tenants, want %d", len(rs), want)
	}
	for _, r := range rs {
		if r.Err != nil {
			return 0, fmt.Errorf("tenant %s: %w", r.Tenant, r.Err)
		}
	}
	return elapsed, nil
}

func database(ctx context.Context, c *pglocal.Cluster, name string) (*gorm.DB, error) {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return nil, err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	db, err := tenancy.Open(ctx, c.URL(name), tenancy.DefaultPool)
	if err != nil {
		return nil, err
	}
	return db, migrations.ApplyShared(ctx, db)
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
