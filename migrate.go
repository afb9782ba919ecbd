package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tenantry/tenantry/fleet"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/tenancy"
)

// migrate applies the shared migrations, then brings tenant schemas to the
// target version (fleet.Migrate). The exit status says whether any tenant
// failed. A progress bar goes to stderr when it is a terminal.
func migrate(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "status" {
		return migrateStatus(ctx, cfg, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	concurrency := fs.Int("concurrency", 4, "tenants migrated at once")
	only := fs.String("tenants", "", "comma-separated tenant names (default: every tenant not at the target version)")
	dryRun := fs.Bool("dry-run", false, "show what would run; change nothing")
	to := fs.Int("to", 0, "target version, 1..latest (default: latest); lower undoes steps that have down SQL")
	asJSON := fs.Bool("json", false, "print a JSON summary instead of text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *concurrency < 1 || *concurrency > 64 {
		return fmt.Errorf("--concurrency must be 1..64: %w", errUsage)
	}
	latest := migrations.Items.Latest()
	if *to < 0 || *to > latest {
		return fmt.Errorf("--to must be 1..%d (0 or unset: latest): %w", latest, errUsage)
	}
	openFn := openDB
	if *dryRun {
		openFn = openReadOnly // a dry run changes nothing, the shared schema included
	}
	h, err := openFn(ctx, cfg, tenancy.PoolConfig{MaxOpen: *concurrency + 1, MaxIdle: *concurrency + 1, MaxLifetime: time.Hour})
	if err != nil {
		return err
	}
	defer h.close()
	if *dryRun {
		pending, err := migrations.SharedPending(ctx, h.admin)
		if err != nil {
			return err
		}
		if len(pending) > 0 {
			var vs []int
			for _, s := range pending {
				vs = append(vs, s.Version)
			}
			fmt.Fprintf(stdout, "shared schema: would run steps %v; tenants are listed once it is migrated\n", vs)
			return nil
		}
	}
	o := fleet.Options{To: *to, Concurrency: *concurrency, DryRun: *dryRun}
	if *only != "" {
		o.Tenants = strings.Split(*only, ",")
	}
	if !*asJSON && isTerminal(stderr) {
		o.Progress = progressBar(stderr)
	}
	sum, err := fleet.Migrate(ctx, h.directory(tenancy.WithTTL(0)), o)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return err
		}
	} else {
		for _, r := range sum.Results {
			status := fmt.Sprintf("v%d -> v%d", r.From, r.To)
			if *dryRun {
				status = fmt.Sprintf("v%d, would run steps %v", r.From, r.Steps)
			}
			if r.Err != nil {
				status = fmt.Sprintf("FAILED at v%d: %s", r.From, r.Err)
			}
			fmt.Fprintf(stdout, "%-48s %8.1f ms  %s\n", r.Tenant, float64(r.Duration.Microseconds())/1000, status)
		}
		verb := "migrated"
		if *dryRun {
			verb = "would migrate"
		}
		fmt.Fprintf(stdout, "%d tenants at target v%d: %d current, %d %s, %d failed, %d skipped; %.2fs\n",
			sum.Tenants, sum.Target, sum.Current, sum.Migrated, verb, sum.Failed, sum.Skipped, sum.Seconds)
	}
	if sum.Failed > 0 {
		return fmt.Errorf("%d of %d tenants failed to migrate", sum.Failed, len(sum.Results))
	}
	return nil
}

// migrateStatus reports each tenant schema's version and drift
// (fleet.Inspect); the exit status says whether any schema drifted.
func migrateStatus(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	concurrency := fs.Int("concurrency", 4, "schemas read at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *concurrency < 1 || *concurrency > 64 {
		return fmt.Errorf("--concurrency must be 1..64: %w", errUsage)
	}
	h, err := openReadOnly(ctx, cfg, tenancy.PoolConfig{MaxOpen: *concurrency + 1, MaxIdle: *concurrency + 1, MaxLifetime: time.Hour})
	if err != nil {
		return err
	}
	defer h.close()
	if pending, err := migrations.SharedPending(ctx, h.admin); err != nil || len(pending) > 0 {
		return fmt.Errorf("the shared schema is not migrated (run tenantry migrate): %v pending steps, %v", len(pending), err)
	}
	dir := h.directory(tenancy.WithTTL(0))
	st, err := fleet.Inspect(ctx, dir, *concurrency)
	if err != nil {
		return err
	}
	latest := dir.Plan().Latest()
	drifted := 0
	for _, s := range st {
		if s.Drift != "" {
			drifted++
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"latest": latest, "tenants": st, "drifted": drifted}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "%-48s %7s  %-10s %s\n", "TENANT", "VERSION", "PENDING", "DRIFT")
		for _, s := range st {
			fmt.Fprintf(stdout, "%-48s %7d  %-10s %s\n", s.Tenant, s.Version, fmt.Sprint(s.Pending), s.Drift)
		}
		fmt.Fprintf(stdout, "%d tenants, latest version %d, %d drifted\n", len(st), latest, drifted)
		if advice := backupAdvice(ctx, h.admin); advice != "" {
			fmt.Fprintln(stdout, "warning:", advice)
		}
	}
	if drifted > 0 {
		return fmt.Errorf("%d tenant schemas drifted", drifted)
	}
	return nil
}

// isTerminal reports whether w is a terminal, where a progress bar that
// redraws one line makes sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws done / failed / rate / ETA on one terminal line.
func progressBar(w io.Writer) func(fleet.Progress) {
	return func(p fleet.Progress) {
		const width = 30
		fill := width * p.Done / max(p.Total, 1)
		rate := float64(p.Done) / max(p.Elapsed.Seconds(), 1e-9)
		eta := time.Duration(float64(p.Total-p.Done) / max(rate, 1e-9) * float64(time.Second))
		fmt.Fprintf(w, "\r[%s%s] %d/%d done, %d failed, %.0f tenants/s, ETA %s ",
			strings.Repeat("#", fill), strings.Repeat(" ", width-fill), p.Done, p.Total, p.Failed, rate, eta.Round(time.Second))
		if p.Done == p.Total {
			fmt.Fprintln(w)
		}
	}
}
