package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/internal/benchkit"
	"github.com/tenantry/tenantry/internal/pglocal"
	"github.com/tenantry/tenantry/models"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// variants in the order each round runs them.
var variants = []string{"a", "b", "c", "d"}

var variantNames = map[string]string{
	"a": "(a) tenantry, full stack",
	"b": "(b) Gin + GORM, plain table",
	"c": "(c) Gin + one pgx statement (floor)",
	"d": "(d) seed: session-level search_path switch",
}

// env is the run's fixed setup: the database, the servers and the
// tenants they serve.
type env struct {
	o          options
	dir        string
	cluster    *pglocal.Cluster
	postmaster int
	tenantURL  string // database of tenantry's schemas: (a) and (d)
	plainURL   string // database of the plain table: (b) and (c)
	bin        string // tenantry binary
	self       string // this program, for the baselines
	spec       tokenSpec
	tenants    []map[string]any // onboarding answers, in order
	names      []string
	tokens     []string
	servers    map[string]*server
	clients    map[string]*http.Client
	noAllocs   map[string]string // why a server's allocations cannot be read
}

func run(ctx context.Context, o options) (*report, error) {
	dir, err := os.MkdirTemp("", "tenantry-benchhttp-")
	if err != nil {
		return nil, err
	}
	// The server runs as the postgres user when we are root; it must be
	// able to enter the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	e := &env{o: o, dir: dir, servers: map[string]*server{}, clients: map[string]*http.Client{}, noAllocs: map[string]string{}}
	ok := false
	defer func() {
		for _, s := range e.servers {
			s.Stop()
		}
		if e.cluster != nil {
			e.cluster.Stop()
		}
		if o.keep || !ok {
			log.Printf("work directory kept: %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()
	if err := e.setup(ctx); err != nil {
		return nil, err
	}
	rep, err := e.measure(ctx)
	if err != nil {
		return nil, err
	}
	ok = true
	return rep, nil
}

func (e *env) setup(ctx context.Context) error {
	o := e.o
	maxT := 0
	for _, n := range o.tenants {
		maxT = max(maxT, n)
	}
	var err error
	log.Printf("starting a durable PostgreSQL in %s", e.dir)
	e.cluster, err = pglocal.Start(ctx, pglocal.Options{Dir: filepath.Join(e.dir, "pg"), Durable: true})
	if err != nil {
		return err
	}
	if e.postmaster, err = postmasterPID(filepath.Join(e.dir, "pg", "data")); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, e.cluster.URL("postgres"))
	if err != nil {
		return err
	}
	for _, db := range []string{"bench", "bench_plain"} {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			conn.Close(ctx)
			return err
		}
	}
	conn.Close(ctx)
	e.tenantURL, e.plainURL = e.cluster.URL("bench"), e.cluster.URL("bench_plain")
	if err := e.fillPlain(ctx, maxT*o.items); err != nil {
		return fmt.Errorf("plain table: %w", err)
	}

	if e.bin = o.tenantryBin; e.bin == "" {
		e.bin = filepath.Join(e.dir, "tenantry")
		log.Printf("building tenantry from %s", o.repo)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", e.bin, ".")
		cmd.Dir = o.repo
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build tenantry: %w\n%s", err, out)
		}
	}
	if e.self, err = os.Executable(); err != nil {
		return err
	}
	e.spec = tokenSpec{secret: []byte(randomHex(32)), issuer: o.issuer, audience: o.audience}

	a, err := e.startTenantry(ctx, "a", e.tenantURL)
	if err != nil {
		return err
	}
	e.servers["a"] = a
	if err := e.onboard(ctx, a, maxT); err != nil {
		return err
	}
	// (d) reads the registry at start-up, so it starts after onboarding.
	for _, v := range []string{"b", "c", "d"} {
		url := e.plainURL
		if v == "d" {
			url = e.tenantURL
		}
		s, err := e.startBaseline(ctx, v, v, url)
		if err != nil {
			return err
		}
		e.servers[v] = s
	}
	for _, v := range variants {
		e.clients[v] = newClient(1024)
		if _, err := e.servers[v].scrape(ctx); err != nil {
			e.noAllocs[v] = err.Error()
			log.Printf("variant %s: allocations not measured: %v", v, err)
		}
	}
	return nil
}

// fillPlain makes the baselines' one plain table with the model tenantry's
// tenants use, and as many rows as all tenants together hold.
func (e *env) fillPlain(ctx context.Context, rows int) error {
	db, err := gorm.Open(postgres.Open(e.plainURL), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return err
	}
	defer func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	}()
	if err := db.WithContext(ctx).AutoMigrate(&models.Item{}); err != nil {
		return err
	}
	return db.WithContext(ctx).Exec(`INSERT INTO items (name, description, created_at, updated_at)
		SELECT 'plain-seed-' || g, 'benchhttp', now(), now() FROM generate_series(1, ?) g`, rows).Error
}

// startTenantry runs `tenantry serve` with the environment the binary's
// loadConfig reads. TENANTRY_ENV=dev keeps start-up role checks to
// warnings: the benchmark connects as the cluster's superuser.
func (e *env) startTenantry(ctx context.Context, name, dbURL string) (*server, error) {
	addr, err := benchkit.FreeAddr()
	if err != nil {
		return nil, err
	}
	env := []string{"DATABASE_URL=" + dbURL, "JWT_SECRET=" + string(e.spec.secret), "ADDR=" + addr,
		"TENANTRY_ENV=dev", "METRICS_TOKEN=" + e.o.metricsToken,
		// No load balancer watches this server: stop without the
		// readiness delay a real deployment needs.
		"SHUTDOWN_DELAY=0s",
		// The closed loop sends one tenant far more than the default
		// per-tenant rate (100/s, burst 200) allows, and the baselines have
		// no limiter: the bench measures the request path, not the limiter.
		// -env TENANT_RATE=N (appended below, so it wins) measures it too.
		"TENANT_RATE=0"}
	if e.o.issuer != "" {
		env = append(env, "JWT_ISSUER="+e.o.issuer)
	}
	if e.o.audience != "" {
		env = append(env, "JWT_AUDIENCE="+e.o.audience)
	}
	maddr := ""
	if e.o.metricsAddr {
		if maddr, err = benchkit.FreeAddr(); err != nil {
			return nil, err
		}
		env = append(env, "METRICS_ADDR="+maddr)
	}
	env = append(env, e.o.env...)
	s, err := startServer(ctx, e.dir, name, e.bin, []string{"serve"}, env, addr)
	if err != nil {
		return nil, err
	}
	s.metricsToken = e.o.metricsToken
	if maddr != "" {
		s.metricsURL = "http://" + maddr + "/metrics"
	}
	return s, nil
}

func (e *env) startBaseline(ctx context.Context, name, kind, dbURL string) (*server, error) {
	addr, err := benchkit.FreeAddr()
	if err != nil {
		return nil, err
	}
	env := []string{envDatabaseURL + "=" + dbURL, envAddr + "=" + addr, envPool + "=" + fmt.Sprint(e.o.pool),
		envSecret + "=" + string(e.spec.secret)}
	return startServer(ctx, e.dir, name, e.self, []string{"-serve", kind}, env, addr)
}

// onboard creates n tenants through POST /admin/tenants, mints their
// tokens, and gives each o.items items through POST /items, named
// "<tenant>-seed-<n>".
func (e *env) onboard(ctx context.Context, a *server, n int) error {
	admin, err := e.spec.mint(nil)
	if err != nil {
		return err
	}
	client := newClient(64)
	e.tenants = make([]map[string]any, n)
	e.names = make([]string, n)
	e.tokens = make([]string, n)
	start := time.Now()
	err = benchkit.Parallel(ctx, 4, n, func(i int) error {
		name := fmt.Sprintf("bt%05d", i)
		body := `{"name":"` + name + `"}`
		var t map[string]any
		if err := benchkit.PostJSON(ctx, client, a.Base+"/admin/tenants", admin, body, http.StatusCreated, &t); err != nil {
			return fmt.Errorf("onboard %s: %w", name, err)
		}
		if t["name"] != name {
			return fmt.Errorf("onboard %s: answered %v", name, t)
		}
		tok, err := e.spec.mint(t)
		if err != nil {
			return err
		}
		e.tenants[i], e.names[i], e.tokens[i] = t, name, tok
		return nil
	})
	if err != nil {
		return err
	}
	log.Printf("onboarded %d tenants in %s", n, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	err = benchkit.Parallel(ctx, 16, n*e.o.items, func(j int) error {
		i, k := j%n, j/n
		body, _ := json.Marshal(map[string]string{"name": fmt.Sprintf("%s-seed-%d", e.names[i], k+1), "description": "benchhttp"})
		var it map[string]any
		return benchkit.PostJSON(ctx, client, a.Base+"/items", e.tokens[i], string(body), http.StatusCreated, &it)
	})
	if err != nil {
		return fmt.Errorf("seed items: %w", err)
	}
	log.Printf("created %d items through POST /items in %s", n*e.o.items, time.Since(start).Round(time.Millisecond))
	return nil
}

// workload for variant v at t tenants on endpoint ep.
func (e *env) workload(v string, base string, t int, ep string) *workload {
	w := &workload{base: base, variant: v, endpoint: ep, items: e.o.items, plainN: t * e.o.items}
	if v == "a" || v == "d" {
		w.tenants, w.tokens = e.names[:t], e.tokens[:t]
	}
	return w
}

// measure runs the interleaved rounds, the accounting pass and the
// isolation check, and builds the report.
func (e *env) measure(ctx context.Context) (*report, error) {
	o := e.o
	rep := newReport(e, o)
	for r := range o.rounds {
		for _, t := range o.tenants {
			for _, ep := range o.endpoints {
				closedRPS := map[string]float64{}
				for _, v := range variants {
					res, err := e.closed(ctx, v, t, ep)
					if err != nil {
						return nil, err
					}
					rep.cell(t, ep, v).addClosed(r, res)
					closedRPS[v] = res.rps
				}
				slowest := math.Inf(1)
				for _, v := range variants {
					slowest = math.Min(slowest, closedRPS[v])
				}
				rate := math.Max(1, o.loadFraction*slowest)
				for _, v := range variants {
					w := e.workload(v, e.servers[v].Base, t, ep)
					m0, err := e.scrape(ctx, v)
					if err != nil {
						return nil, err
					}
					tal, lat := openLoop(ctx, e.clients[v], w, rate, min(o.warmup, 500*time.Millisecond), o.duration, 4096)
					m1, err := e.scrape(ctx, v)
					if err != nil {
						return nil, err
					}
					// The window holds the warm-up's requests too.
					closes := 1000 * (m1.poolCloses - m0.poolCloses) / float64(max(1, w.seq.Load()))
					rep.cell(t, ep, v).addOpen(r, rate, tal, lat, closes)
				}
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				log.Printf("round %d/%d, %d tenants, %s: req/s a %.0f b %.0f c %.0f d %.0f; open loop at %.0f/s",
					r+1, o.rounds, t, endpointPaths[ep], closedRPS["a"], closedRPS["b"], closedRPS["c"], closedRPS["d"], rate)
			}
		}
	}
	// The timed servers are done; the accounting instances replace them.
	for _, v := range variants {
		e.servers[v].Stop()
		delete(e.servers, v)
	}
	for _, v := range variants {
		if err := e.account(ctx, v, rep); err != nil {
			return nil, fmt.Errorf("accounting pass of %s: %w", v, err)
		}
	}
	if err := e.misplaced(ctx, rep); err != nil {
		return nil, err
	}
	rep.finish()
	return rep, nil
}

type closedResult struct {
	rps, serverCPU, pgCPU, allocs float64 // per request; CPU in µs
	closes                        float64 // connections the server's pool closed itself, per 1,000 requests
	tally                         *tally
}

// scrape reads variant v's metrics, or NaNs when they cannot be read.
func (e *env) scrape(ctx context.Context, v string) (scrapeResult, error) {
	if e.noAllocs[v] != "" {
		return scrapeResult{mallocs: math.NaN(), poolCloses: math.NaN()}, nil
	}
	return e.servers[v].scrape(ctx)
}

// closed warms variant v up, then measures a closed loop at the fixed
// concurrency, with the server's and PostgreSQL's CPU time and the
// server's allocations across exactly the measured window.
func (e *env) closed(ctx context.Context, v string, t int, ep string) (closedResult, error) {
	s, c := e.servers[v], e.clients[v]
	closedLoop(ctx, c, e.workload(v, s.Base, t, ep), e.o.concurrency, e.o.warmup)
	w := e.workload(v, s.Base, t, ep)
	m0, err := e.scrape(ctx, v)
	if err != nil {
		return closedResult{}, err
	}
	s0, err := processCPU(s.PID())
	if err != nil {
		return closedResult{}, err
	}
	p0, err := clusterCPU(e.postmaster)
	if err != nil {
		return closedResult{}, err
	}
	tal, elapsed := closedLoop(ctx, c, w, e.o.concurrency, e.o.duration)
	s1, err := processCPU(s.PID())
	if err != nil {
		return closedResult{}, err
	}
	p1, err := clusterCPU(e.postmaster)
	if err != nil {
		return closedResult{}, err
	}
	m1, err := e.scrape(ctx, v)
	if err != nil {
		return closedResult{}, err
	}
	if err := s.Exited(); err != nil {
		return closedResult{}, err
	}
	n := float64(tal.done())
	if n == 0 {
		return closedResult{}, fmt.Errorf("variant %s answered no request in %s", v, e.o.duration)
	}
	return closedResult{
		rps:       float64(tal.ok.Load()) / elapsed.Seconds(),
		serverCPU: float64((s1 - s0).Microseconds()) / n,
		pgCPU:     float64((p1 - p0).Microseconds()) / n,
		allocs:    (m1.mallocs - m0.mallocs) / n,
		closes:    1000 * (m1.poolCloses - m0.poolCloses) / n,
		tally:     tal,
	}, nil
}

// account starts a second instance of variant v whose database traffic
// goes through a counting proxy, and counts round trips, statements and
// new sessions per request for each tenant count and endpoint. Each
// measured batch follows a warm-up that touches every tenant, so caches
// are as warm as in the timed rounds.
func (e *env) account(ctx context.Context, v string, rep *report) error {
	proxy, err := startProxy(fmt.Sprintf("127.0.0.1:%d", e.cluster.Port))
	if err != nil {
		return err
	}
	defer proxy.Close()
	url := e.plainURL
	if v == "a" || v == "d" {
		url = e.tenantURL
	}
	url = strings.Replace(url, fmt.Sprintf("127.0.0.1:%d", e.cluster.Port), proxy.Addr(), 1)
	var s *server
	if v == "a" {
		s, err = e.startTenantry(ctx, "a-acct", url)
	} else {
		s, err = e.startBaseline(ctx, v+"-acct", v, url)
	}
	if err != nil {
		return err
	}
	defer s.Stop()
	c := newClient(256)
	for _, t := range e.o.tenants {
		for _, ep := range e.o.endpoints {
			warm := e.workload(v, s.Base, t, ep)
			// The seed's approach (d) fails some requests by design: a
			// query that lands on a connection whose search_path it never
			// set finds no items table. Its timed rounds count those;
			// only the other variants must warm up cleanly.
			if tal := countedLoop(ctx, c, warm, e.o.concurrency, t+50); tal.failed.Load() > 0 && v != "d" {
				return fmt.Errorf("%d tenants, %s: warm-up failed: %v", t, ep, tal.firstErrs)
			}
			n := max(e.o.account, t)
			before := proxy.Counts()
			tal := countedLoop(ctx, c, e.workload(v, s.Base, t, ep), e.o.concurrency, n)
			rep.cell(t, ep, v).setAccount(proxy.Counts().sub(before), n, tal)
		}
	}
	log.Printf("accounting pass of %s done", v)
	return nil
}

// countedLoop sends exactly n requests from conc workers.
func countedLoop(ctx context.Context, client *http.Client, w *workload, conc, n int) *tally {
	var t tally
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for left.Add(-1) >= 0 && ctx.Err() == nil {
				o, err := w.do(ctx, client)
				t.add(o, err)
			}
		})
	}
	wg.Wait()
	return &t
}

// misplaced counts, in every tenant's schema, rows named for another
// tenant, by the variant that wrote them: writes that went to the wrong
// schema, which no response shows.
func (e *env) misplaced(ctx context.Context, rep *report) error {
	conn, err := pgx.Connect(ctx, e.tenantURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for i, t := range e.tenants {
		schema, _ := t["schema_name"].(string)
		if schema == "" {
			return fmt.Errorf("tenant %s: onboarding answer has no schema_name", e.names[i])
		}
		rows, err := conn.Query(ctx, `SELECT split_part(name, '-', 2), count(*) FROM `+pgx.Identifier{schema, "items"}.Sanitize()+
			` WHERE split_part(name, '-', 1) <> $1 GROUP BY 1`, e.names[i])
		if err != nil {
			return fmt.Errorf("misplaced rows in %s: %w", schema, err)
		}
		for rows.Next() {
			var v string
			var n int64
			if err := rows.Scan(&v, &n); err != nil {
				rows.Close()
				return err
			}
			rep.Misplaced[v] += n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// machine describes where the run happened.
func machine(ctx context.Context, e *env) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Format(time.RFC3339)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if conn, err := pgx.Connect(ctx, e.tenantURL); err == nil {
		_ = conn.QueryRow(ctx, "SHOW server_version").Scan(&m.PostgreSQL)
		conn.Close(ctx)
	}
	if out, err := exec.Command("git", "-C", e.o.repo, "describe", "--always", "--dirty").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}
