// Command benchhttp measures tenantry's whole request path side by side
// with in-run baselines, on one durable PostgreSQL that it starts itself:
//
//	(a) tenantry: the real binary (`tenantry serve`), driven over HTTP only
//	(b) the same Gin + GORM item handlers over one plain table: no tenancy,
//	    no JWT, no transaction of ours
//	(c) a Gin handler doing one plain pgx statement: the floor
//	(d) the approach of the service tenantry replaces: per request a
//	    session-level SET search_path, then the query, through one pooled
//	    GORM handle
//
// Every server is a child process, so its CPU time is read apart from the
// load generator's. Variants run interleaved (a b c d a b c d ...) for
// -rounds rounds, and each figure is reported as the median over rounds of
// its ratio to the same round's baselines, with the range. It is a
// benchmark, not a test: nothing passes or fails on time.
//
//	go run ./cmd/benchhttp                     # make bench-http
//	go run ./cmd/benchhttp -rounds 1 -duration 1s -tenants 1,10   # a smoke run
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
	tenants      []int
	items        int
	rounds       int
	duration     time.Duration
	warmup       time.Duration
	concurrency  int
	loadFraction float64
	endpoints    []string
	pool         int
	account      int
	out          string
	json         bool
	tenantryBin  string
	repo         string
	metricsAddr  bool
	metricsToken string
	env          []string
	issuer       string
	audience     string
	keep         bool
	timeout      time.Duration
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var o options
	serve := flag.String("serve", "", "internal: run baseline server b, c or d (the benchmark starts these itself)")
	tenants := flag.String("tenants", "1,100,1000", "tenant counts to measure, comma-separated")
	large := flag.Bool("large", false, "also measure 10,000 tenants")
	flag.IntVar(&o.items, "items", 50, "items per tenant (at least 20, the list page)")
	flag.IntVar(&o.rounds, "rounds", 5, "interleaved rounds of every variant")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "measured time of each closed-loop and each open-loop run")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured closed-loop run before each measured one")
	flag.IntVar(&o.concurrency, "concurrency", 16, "requests in flight in the closed loop")
	flag.Float64Var(&o.loadFraction, "load", 0.5, "open-loop offered load, as a fraction of the round's slowest closed-loop throughput")
	endpoints := flag.String("endpoints", "get,list,post", "endpoints to measure: get (GET /items/{id}), list (GET /items?limit=20), post (POST /items)")
	flag.IntVar(&o.pool, "pool", 20, "connection pool of the baselines (b, c, d): max open = max idle")
	flag.IntVar(&o.account, "account", 500, "requests per endpoint and tenant count in the round-trip accounting pass (at least the tenant count)")
	flag.StringVar(&o.out, "out", "", "(re)write this markdown file, e.g. docs/PERFORMANCE.md, between its benchhttp markers")
	flag.BoolVar(&o.json, "json", false, "print the results as JSON instead of markdown")
	flag.StringVar(&o.tenantryBin, "tenantry", "", "tenantry binary to run (default: go build the repository at -repo)")
	flag.StringVar(&o.repo, "repo", ".", "repository root to build tenantry from")
	flag.BoolVar(&o.metricsAddr, "metrics-addr", os.Getenv("METRICS_ADDR") != "", "give tenantry a separate METRICS_ADDR and scrape /metrics there")
	flag.StringVar(&o.metricsToken, "metrics-token", os.Getenv("METRICS_TOKEN"), "METRICS_TOKEN for tenantry's /metrics (default: a random one)")
	flag.Var((*listFlag)(&o.env), "env", "extra KEY=VALUE for tenantry's environment (repeatable)")
	flag.StringVar(&o.issuer, "jwt-issuer", "", "JWT_ISSUER for tenantry; tokens carry it as iss")
	flag.StringVar(&o.audience, "jwt-audience", "", "JWT_AUDIENCE for tenantry; tokens carry it as aud")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (database, server logs)")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Hour, "stop everything after this long")
	flag.Parse()
	log.SetFlags(log.Ltime)
	log.SetPrefix("benchhttp: ")
	if *serve != "" {
		if err := serveBaseline(*serve); err != nil {
			log.Fatal(err)
		}
		return
	}
	for _, s := range strings.Split(*tenants, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			log.Fatalf("-tenants: %q is not a positive number", s)
		}
		o.tenants = append(o.tenants, n)
	}
	if *large {
		o.tenants = append(o.tenants, 10_000)
	}
	for _, e := range strings.Split(*endpoints, ",") {
		if _, ok := endpointPaths[strings.TrimSpace(e)]; !ok {
			log.Fatalf("-endpoints: unknown endpoint %q", e)
		}
		o.endpoints = append(o.endpoints, strings.TrimSpace(e))
	}
	switch {
	case o.items < listLimit:
		log.Fatalf("-items must be at least %d, the list page", listLimit)
	case o.rounds < 1 || o.concurrency < 1 || o.pool < 1 || o.duration <= 0:
		log.Fatal("-rounds, -concurrency, -pool and -duration must be positive")
	case o.loadFraction <= 0 || o.loadFraction > 1:
		log.Fatal("-load must be in (0, 1]")
	}
	if o.metricsToken == "" {
		o.metricsToken = randomHex(24)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	rep, err := run(ctx, o)
	if err != nil {
		log.Fatal(err)
	}
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			log.Fatal(err)
		}
	} else {
		fmt.Print(rep.markdown())
	}
	if o.out != "" {
		if err := writeOut(o.out, rep.markdown()); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote %s", o.out)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
