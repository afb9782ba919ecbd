// Command scalebench measures tenantry with many tenants on one durable
// PostgreSQL that it starts itself, and (re)writes its section of
// docs/SCALE.md:
//
//   - onboarding rate over the whole run (POST /admin/tenants, concurrent);
//   - per-backend memory after the service touched 100, 1,000 and 10,000
//     tenants through its request path, with connection recycling off
//     (DB_CONN_MAX_SCHEMAS=0) and at its default;
//   - request throughput spread over all tenants as a ratio to 100
//     tenants, and recycling's cost as a ratio to none, in one run;
//   - `tenantry migrate` (no-op), `tenantry migrate status`, a real step;
//   - one tenant's pg_dump -n, and a whole-database pg_dump before and
//     after the max_locks_per_transaction that tenantry advises.
//
// It is a benchmark, not a test: nothing passes or fails on time.
//
//	go run ./cmd/scalebench                      # make bench-scale
//	go run ./cmd/scalebench -tenants 300 -checkpoints 100,300 -out ''   # a smoke run
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the benchmark's flags.
type options struct {
	tenants       int
	checkpoints   []int
	clients       int
	concurrency   int
	duration      time.Duration
	rounds        int
	out           string
	repo          string
	statusTimeout time.Duration
	keep          bool
	after         string
	resume        string
	superuser     bool
}

func main() {
	var o options
	flag.IntVar(&o.tenants, "tenants", 10_000, "tenants to onboard")
	points := flag.String("checkpoints", "100,1000,10000", "tenant counts at which backend memory is read (at most -tenants)")
	flag.IntVar(&o.clients, "clients", 8, "concurrent onboarding clients")
	flag.IntVar(&o.concurrency, "concurrency", 16, "requests in flight in the throughput runs")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured time of each throughput run")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds of the throughput runs")
	flag.StringVar(&o.out, "out", "docs/SCALE.md", "rewrite this file between its scalebench markers ('' prints only)")
	flag.StringVar(&o.repo, "repo", ".", "repository root to build tenantry from")
	flag.DurationVar(&o.statusTimeout, "status-timeout", 15*time.Minute, "give up on `tenantry migrate status` after this long; 0 skips it (time it later with -keep and -status-only)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (cluster, logs) for -status-only")
	flag.StringVar(&o.after, "after", "", "on the cluster a -keep run left in this directory, only: time `tenantry migrate status` (built from -repo), onboarding there against a fresh database, and role switches")
	flag.StringVar(&o.resume, "resume", "", "skip onboarding: measure the fleet a -keep run left in this directory (its onboarding figures are in that run's log)")
	flag.BoolVar(&o.superuser, "superuser-requests", false, "serve's request pool logs in as the superuser, which skips role membership checks (isolates the catalog cache's cost)")
	flag.Parse()
	log.SetFlags(log.Ltime)
	log.SetPrefix("scalebench: ")
	for _, s := range strings.Split(*points, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > o.tenants {
			log.Fatalf("-checkpoints: %q is not a count between 1 and -tenants", s)
		}
		o.checkpoints = append(o.checkpoints, n)
	}
	if o.tenants < 100 || o.clients < 1 || o.concurrency < 1 || o.rounds < 1 || o.duration <= 0 {
		log.Fatal("-tenants must be at least 100; -clients, -concurrency, -rounds and -duration positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.after != "" {
		if err := after(ctx, o); err != nil {
			log.Fatal(err)
		}
		return
	}
	rep, err := run(ctx, o)
	if err != nil {
		log.Fatal(err)
	}
	md := rep.markdown()
	fmt.Print(md)
	if o.out != "" {
		if err := writeOut(o.out, md); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote %s", o.out)
	}
}

// The report goes between these markers, so the rest of the file (other
// sections, prose) stays as written.
const (
	beginMarker = "<!-- scalebench:begin -->"
	endMarker   = "<!-- scalebench:end -->"
)

func writeOut(path, md string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s ... %s block", path, beginMarker, endMarker)
	}
	s = s[:i+len(beginMarker)] + "\n" + md + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}
