package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tenantry/tenantry/tenancy"
)

// report is one run's figures.
type report struct {
	Tenants     int
	Checkpoints []int
	Concurrency int
	Rounds      int
	PG, Go      string
	CPUs        int
	Date        string
	Commit      string
	RequestRole string

	Onboard       time.Duration
	OnboardBlocks []float64 // tenants/s of each thousand in turn

	Memory     map[string][]memPoint        // variant → one per checkpoint
	Pool       map[string]memPoint          // variant → after the throughput rounds
	Throughput map[string]map[int][]float64 // variant → tenants → req/s per round
	Walks      map[string][2]time.Duration  // variant → one client's first and second walk over every tenant

	MigrateNoop, MigrateStep time.Duration
	Status                   time.Duration
	StatusOut, StatusErr     string

	DumpOne                           []time.Duration
	Before, After                     tenancy.LockBudget
	DumpAllBefore, DumpAllAfter       time.Duration
	DumpAllBeforeErr, DumpAllAfterErr string
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratios returns a[i]/b[i] for each round, with their median, min and max.
func ratios(a, b []float64) (med, lo, hi float64) {
	var r []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			r = append(r, a[i]/b[i])
		}
	}
	if len(r) == 0 {
		return 0, 0, 0
	}
	return median(r), slices.Min(r), slices.Max(r)
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	off := variants[0].name
	w("Measured by `make bench-scale` (`go run ./cmd/scalebench`) on %s: %d tenants on one PostgreSQL %s (fsync on, max_connections 200), %s, %d CPUs shared with other work; tenantry at `%s`.\n\n",
		r.Date, r.Tenants, r.PG, r.Go, r.CPUs, r.Commit)

	w("Serve's request pool logged in as %s.\n\n", r.RequestRole)
	if r.Onboard > 0 {
		w("**Onboarding** (`POST /admin/tenants`, concurrent clients): %d tenants in %.1f s, **%.0f tenants/s over the whole run**",
			r.Tenants, r.Onboard.Seconds(), float64(r.Tenants)/r.Onboard.Seconds())
		if n := len(r.OnboardBlocks); n > 1 {
			w("; first thousand %.0f/s, last thousand %.0f/s, slowest thousand %.0f/s", r.OnboardBlocks[0], r.OnboardBlocks[n-1], slices.Min(r.OnboardBlocks))
		}
		w(".\n\n")
	}

	w("**Backend memory**: private resident memory (RssAnon) of the request pool's backends after one client touched the first N tenants in turn (`GET /items`), so one backend serves them all: the worst case of a pool whose every connection meets every tenant. Each figure is the largest backend seen so far (sampled every 50 tenants).\n\n")
	w("| tenants touched |")
	for _, v := range variants {
		w(" %s: largest backend |", v.name)
	}
	w("\n|---|%s\n", strings.Repeat("---|", len(variants)))
	for i, k := range r.Checkpoints {
		w("| %d |", k)
		for _, v := range variants {
			w(" %.1f MB |", at(r.Memory[v.name], i).MaxMB)
		}
		w("\n")
	}
	w("\nAfter the throughput runs below (all %d tenants, %d requests in flight, the default 20-connection pool), the request pool's backends (two of them the monitor's, which touch no tenant):\n\n", r.Tenants, r.Concurrency)
	w("| configuration | backends | MB in all | largest |\n|---|---|---|---|\n")
	for _, v := range variants {
		p := r.Pool[v.name]
		w("| %s | %d | %.0f | %.1f MB |\n", v.name, p.Backends, p.SumMB, p.MaxMB)
	}

	perReq := func(d time.Duration) float64 { return ms(d) / float64(r.Tenants) }
	w("\n**One client walking every tenant in turn**, twice (ms per request). The second walk is the steady state of traffic spread evenly over all tenants: without recycling the backend has every tenant cached; with it, only the tenants since its last renewal, and each renewal is a new backend whose first request also checks its membership of every tenant role (see below).\n\n")
	w("| configuration | first walk | second walk | second walk / %s |\n|---|---|---|---|\n", off)
	for _, v := range variants {
		wv := r.Walks[v.name]
		w("| %s | %.2f | %.2f | %.2f× |\n", v.name, perReq(wv[0]), perReq(wv[1]), float64(wv[1])/float64(max(1, r.Walks[off][1])))
	}

	w("\n**Throughput** (`GET /items/{id}` of a tenant drawn at random, closed loop, %d in flight; median req/s over %d interleaved rounds, ratios per round with their range):\n\n", r.Concurrency, r.Rounds)
	w("| configuration | 100 tenants | %d tenants | %d / 100 | vs %s at %d |\n|---|---|---|---|---|\n", r.Tenants, r.Tenants, off, r.Tenants)
	for _, v := range variants {
		t := r.Throughput[v.name]
		m, lo, hi := ratios(t[r.Tenants], t[100])
		c, clo, chi := ratios(t[r.Tenants], r.Throughput[off][r.Tenants])
		w("| %s | %.0f | %.0f | **%.2f×** (%.2f–%.2f) | %.2f× (%.2f–%.2f) |\n", v.name, median(t[100]), median(t[r.Tenants]), m, lo, hi, c, clo, chi)
	}
	w("\nAt 100 tenants no connection reaches a schema limit, so the configurations differ only by noise there.")
	w("\n\n**Fleet commands** over %d tenants:\n\n| command | seconds | ms per tenant |\n|---|---|---|\n", r.Tenants)
	w("| `tenantry migrate`, nothing to do | %.2f | %.3f |\n", r.MigrateNoop.Seconds(), ms(r.MigrateNoop)/float64(r.Tenants))
	if r.Status > 0 {
		status := fmt.Sprintf("%.1f", r.Status.Seconds())
		if r.StatusErr != "" {
			status += " (" + r.StatusErr + ")"
		}
		w("| `tenantry migrate status` | %s | %.2f |\n", status, ms(r.Status)/float64(r.Tenants))
	}
	w("| `tenantry migrate`, a real step (add a column, backfill, index; concurrency 4) | %.1f | %.2f |\n", r.MigrateStep.Seconds(), ms(r.MigrateStep)/float64(r.Tenants))
	if r.StatusOut != "" {
		w("\n`migrate status` ended with:\n\n```\n%s\n```\n", r.StatusOut)
	}

	w("\n**Backups**: `pg_dump -n` of one tenant (the first, middle and last onboarded): ")
	for i, d := range r.DumpOne {
		if i > 0 {
			w(", ")
		}
		w("%.2f s", d.Seconds())
	}
	w(". A whole-database `pg_dump` must lock %d tables and sequences:\n\n", r.Before.Relations)
	w("| max_locks_per_transaction | lock table | pg_dump | seconds |\n|---|---|---|---|\n")
	for _, x := range []struct {
		b   tenancy.LockBudget
		d   time.Duration
		err string
	}{{r.Before, r.DumpAllBefore, r.DumpAllBeforeErr}, {r.After, r.DumpAllAfter, r.DumpAllAfterErr}} {
		res := "succeeded"
		if x.err != "" {
			res = "failed: `" + x.err + "`"
		}
		w("| %d | %d | %s | %.1f |\n", x.b.MaxLocks, x.b.Slots(), res, x.d.Seconds())
	}
	w("\nAt the first setting tenantry warned (serve's log, `migrate status`): %q. The second row is that advice applied.\n", r.Before.Advice())
	return b.String()
}

func at(ms []memPoint, i int) memPoint {
	if i < len(ms) {
		return ms[i]
	}
	return memPoint{}
}
