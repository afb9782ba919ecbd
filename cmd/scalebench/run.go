package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/fleet"
	"github.com/tenantry/tenantry/internal/benchkit"
	"github.com/tenantry/tenantry/internal/pglocal"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/migrations/migrationstest"
	"github.com/tenantry/tenantry/tenancy"
)

// variants are the configurations compared: connection recycling off, and
// two schema limits.
var variants = []struct{ name, env string }{
	{"recycling off", "DB_CONN_MAX_SCHEMAS=0"},
	{"DB_CONN_MAX_SCHEMAS=500", "DB_CONN_MAX_SCHEMAS=500"},
	{"DB_CONN_MAX_SCHEMAS=2000", "DB_CONN_MAX_SCHEMAS=2000"},
}

// env is one run's state.
type env struct {
	o       options
	dir     string
	cluster *pglocal.Cluster
	bin     string
	secret  []byte
	tokens  []string
	schemas []string
	rep     *report
}

func run(ctx context.Context, o options) (*report, error) {
	dir, err := o.resume, error(nil)
	if dir == "" {
		dir, err = os.MkdirTemp("", "tenantry-scalebench-")
	} else {
		o.keep = true
	}
	if err != nil {
		return nil, err
	}
	// The server runs as the postgres user when we are root.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	e := &env{o: o, dir: dir, secret: []byte(fmt.Sprintf("scalebench-%x", rand.Uint64()) + strings.Repeat("k", 24)),
		rep: &report{Tenants: o.tenants, Checkpoints: o.checkpoints, Concurrency: o.concurrency, Rounds: o.rounds, Memory: map[string][]memPoint{}, Pool: map[string]memPoint{},
			Throughput: map[string]map[int][]float64{}, Walks: map[string][2]time.Duration{}}}
	ok := false
	defer func() {
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
	if o.resume == "" {
		err = e.onboard(ctx)
	} else {
		err = e.fleetTokens(ctx)
	}
	if err != nil {
		return nil, err
	}
	if err := e.seedItems(ctx); err != nil {
		return nil, err
	}
	if err := e.requests(ctx); err != nil {
		return nil, err
	}
	if err := e.fleet(ctx); err != nil {
		return nil, err
	}
	if err := e.backups(ctx); err != nil {
		return nil, err
	}
	ok = true
	return e.rep, nil
}

func (e *env) url() string { return e.cluster.URL("scale") }

// requestRole is the login of serve's request pool.
const requestRole = "scale_app"

// requestURL is the request role's URL with an application_name.
func (e *env) requestURL(app string) string {
	return strings.Replace(e.urlAs(app), "://"+pglocal.User+"@", "://"+requestRole+"@", 1)
}

// urlAs is the database URL with an application_name, by which the
// benchmark finds one pool's backends in pg_stat_activity.
func (e *env) urlAs(app string) string { return e.url() + "&application_name=" + app }

func (e *env) setup(ctx context.Context) error {
	var err error
	log.Printf("starting a durable PostgreSQL in %s", e.dir)
	if e.cluster, err = pglocal.Start(ctx, pglocal.Options{Dir: filepath.Join(e.dir, "pg"), Durable: true}); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, e.cluster.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	// The request role as in production: a login that owns nothing, is
	// no superuser and inherits nothing (serve's start-up makes it a
	// member of the deployment's group role). Only the DDL role is the
	// superuser here.
	for _, q := range []string{"CREATE DATABASE scale", "CREATE ROLE " + requestRole + " LOGIN NOINHERIT"} {
		if e.o.resume != "" {
			break
		}
		if _, err := conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	e.rep.RequestRole = requestRole + " (NOINHERIT, a member of the deployment's group role)"
	if e.o.superuser {
		e.rep.RequestRole = "the superuser (no role membership checks)"
	}
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&e.rep.PG); err != nil {
		return err
	}
	e.rep.Go, e.rep.CPUs, e.rep.Date = runtime.Version(), runtime.NumCPU(), time.Now().UTC().Format("2006-01-02")
	e.rep.Commit = gitHead(e.o.repo)
	e.bin, err = build(ctx, e.o.repo, e.dir)
	return err
}

// build compiles tenantry from repo into dir.
func build(ctx context.Context, repo, dir string) (string, error) {
	bin := filepath.Join(dir, "tenantry")
	log.Printf("building tenantry from %s", repo)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build tenantry: %w\n%s", err, out)
	}
	return bin, nil
}

func gitHead(repo string) string {
	out, err := exec.Command("git", "-C", repo, "log", "-1", "--format=%h %s").Output()
	if err != nil {
		return "unknown"
	}
	s := strings.TrimSpace(string(out))
	if len(s) > 90 {
		s = s[:90] + "…"
	}
	return s
}

// serve starts `tenantry serve` on the scale database. Its request pool
// connects as application_name app. TENANTRY_ENV=dev keeps the start-up
// role checks to warnings (the benchmark connects as the superuser);
// TENANT_RATE=0 keeps the per-tenant rate limit out of the throughput.
func (e *env) serve(ctx context.Context, app string, extra ...string) (*server, error) {
	addr, err := benchkit.FreeAddr()
	if err != nil {
		return nil, err
	}
	reqURL := e.requestURL(app)
	if e.o.superuser {
		reqURL = e.urlAs(app)
	}
	envv := []string{"DATABASE_URL=" + reqURL, "MIGRATION_DATABASE_URL=" + e.urlAs(app+"-ddl"),
		"JWT_SECRET=" + string(e.secret), "ADDR=" + addr, "TENANTRY_ENV=dev", "TENANT_RATE=0", "SHUTDOWN_DELAY=0s"}
	for _, x := range extra {
		if x != "" {
			envv = append(envv, x)
		}
	}
	return benchkit.StartServer(ctx, e.dir, app, e.bin, []string{"serve"}, envv, addr)
}

func (e *env) mint(claims jwt.MapClaims) (string, error) {
	now := time.Now()
	claims["iat"], claims["exp"] = now.Unix(), now.Add(6*time.Hour).Unix()
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(e.secret)
}

// onboard creates every tenant through POST /admin/tenants on o.clients
// workers, noting when each thousand completed, then gives each tenant one
// item (GET /items/1 reads it).
func (e *env) onboard(ctx context.Context) error {
	s, err := e.serve(ctx, "scale-onboard")
	if err != nil {
		return err
	}
	defer s.Stop()
	admin, err := e.mint(jwt.MapClaims{"role": "admin"})
	if err != nil {
		return err
	}
	n := e.o.tenants
	client := newClient(64)
	e.tokens, e.schemas = make([]string, n), make([]string, n)
	var done atomic.Int64
	var mu sync.Mutex
	var marks []time.Duration
	start := time.Now()
	err = benchkit.Parallel(ctx, e.o.clients, n, func(i int) error {
		var t struct {
			ID         int64  `json:"id"`
			Name       string `json:"name"`
			SchemaName string `json:"schema_name"`
		}
		name := fmt.Sprintf("t%05d", i)
		if err := benchkit.PostJSON(ctx, client, s.Base+"/admin/tenants", admin, `{"name":"`+name+`"}`, http.StatusCreated, &t); err != nil {
			return fmt.Errorf("onboard %s: %w", name, err)
		}
		tok, err := e.mint(jwt.MapClaims{"tenant": t.Name, "tenant_id": t.ID})
		if err != nil {
			return err
		}
		e.tokens[i], e.schemas[i] = tok, t.SchemaName
		if k := done.Add(1); k%1000 == 0 || int(k) == n {
			mu.Lock()
			marks = append(marks, time.Since(start))
			mu.Unlock()
			log.Printf("onboarded %d/%d", k, n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.rep.Onboard = time.Since(start)
	slices.Sort(marks)
	for i, m := range marks {
		prev := time.Duration(0)
		if i > 0 {
			prev = marks[i-1]
		}
		if i < len(marks)-1 || n%1000 == 0 {
			e.rep.OnboardBlocks = append(e.rep.OnboardBlocks, 1000/(m-prev).Seconds())
		}
	}
	log.Printf("onboarded %d tenants in %s", n, e.rep.Onboard.Round(time.Millisecond))
	return nil
}

// fleetTokens mints the tokens of a fleet onboarded by an earlier run.
func (e *env) fleetTokens(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, e.url())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT id, name, schema_name FROM "+migrations.TenantsTable+" WHERE name LIKE 't%' ORDER BY id LIMIT $1", e.o.tenants)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var name, schema string
		if err := rows.Scan(&id, &name, &schema); err != nil {
			return err
		}
		tok, err := e.mint(jwt.MapClaims{"tenant": name, "tenant_id": id})
		if err != nil {
			return err
		}
		e.tokens, e.schemas = append(e.tokens, tok), append(e.schemas, schema)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(e.tokens) != e.o.tenants {
		return fmt.Errorf("the kept fleet has %d tenants, want -tenants %d", len(e.tokens), e.o.tenants)
	}
	return nil
}

// seedItems gives every tenant an item (GET /items/1 reads it).
func (e *env) seedItems(ctx context.Context) error {
	s, err := e.serve(ctx, "scale-seed")
	if err != nil {
		return err
	}
	defer s.Stop()
	client := newClient(16)
	start := time.Now()
	err = benchkit.Parallel(ctx, 16, len(e.tokens), func(i int) error {
		var it map[string]any
		return benchkit.PostJSON(ctx, client, s.Base+"/items", e.tokens[i], `{"name":"first","description":"scalebench"}`, http.StatusCreated, &it)
	})
	log.Printf("one item for each tenant in %s", time.Since(start).Round(time.Millisecond))
	return err
}

// requests runs both variants: the memory walk (one client touching the
// tenants in order, memory read at each checkpoint), then interleaved
// throughput rounds at 100 tenants and at all of them.
func (e *env) requests(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, e.cluster.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	servers := make([]*server, len(variants))
	defer func() {
		for _, s := range servers {
			if s != nil {
				s.Stop()
			}
		}
	}()
	for vi, v := range variants {
		app := fmt.Sprintf("scale-v%d", vi)
		s, err := e.serve(ctx, app, v.env)
		if err != nil {
			return err
		}
		servers[vi] = s
		client := newClient(4)
		touched := 0
		start := time.Now()
		// The largest backend so far, sampled every 50 tenants: a renewed
		// connection's backend is gone, so a reading taken only at the
		// checkpoint could fall just after a renewal.
		var peak memPoint
		for _, k := range e.o.checkpoints {
			for ; touched < k; touched++ {
				if err := get(ctx, client, s.Base+"/items?limit=20", e.tokens[touched]); err != nil {
					return fmt.Errorf("%s, tenant %d: %w", v.name, touched, err)
				}
				if (touched+1)%50 == 0 || touched+1 == k {
					m, err := backendMemory(ctx, conn, app)
					if err != nil && !errors.Is(err, errNoBackends) {
						return err
					}
					if m.MaxMB > peak.MaxMB {
						peak = m
					}
				}
			}
			m := peak
			e.rep.Memory[v.name] = append(e.rep.Memory[v.name], m)
			log.Printf("%s: after %d tenants, %d backends, largest %.1f MB", v.name, k, m.Backends, m.MaxMB)
		}
		first := time.Since(start)
		// A second walk over the same tenants: without recycling its
		// backend has every tenant's catalog cached by now; with it, the
		// backend holds at most the last few hundred. This is the steady
		// state of traffic spread evenly over every tenant.
		start = time.Now()
		for i := range touched {
			if err := get(ctx, client, s.Base+"/items?limit=20", e.tokens[i]); err != nil {
				return fmt.Errorf("%s, second walk, tenant %d: %w", v.name, i, err)
			}
		}
		e.rep.Walks[v.name] = [2]time.Duration{first, time.Since(start)}
		log.Printf("%s: walks over %d tenants: %s, then %s", v.name, touched, first.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
	sizes := []int{100, e.o.tenants}
	for r := range e.o.rounds {
		for _, k := range sizes {
			for j := range variants {
				// ABBA order: neither variant always runs first.
				vi := (j + r) % len(variants)
				v := variants[vi]
				client := newClient(e.o.concurrency)
				closedLoop(ctx, client, servers[vi].Base, e.tokens[:k], e.o.concurrency, time.Second) // warm-up
				t := closedLoop(ctx, client, servers[vi].Base, e.tokens[:k], e.o.concurrency, e.o.duration)
				if t.failed > 0 {
					return fmt.Errorf("%s at %d tenants: %d of %d requests failed (first: %v)", v.name, k, t.failed, t.failed+t.ok, t.firstErr)
				}
				rps := float64(t.ok) / e.o.duration.Seconds()
				if e.rep.Throughput[v.name] == nil {
					e.rep.Throughput[v.name] = map[int][]float64{}
				}
				e.rep.Throughput[v.name][k] = append(e.rep.Throughput[v.name][k], rps)
				log.Printf("round %d, %s, %d tenants: %.0f req/s", r+1, v.name, k, rps)
			}
		}
	}
	for vi, v := range variants {
		m, err := backendMemory(ctx, conn, fmt.Sprintf("scale-v%d", vi))
		if err != nil {
			return err
		}
		e.rep.Pool[v.name] = m
	}
	return nil
}

// fleet times tenantry's fleet commands: migrate with nothing to do and
// migrate status through the binary, then a real step (SKUStep, which the
// binary does not ship) through the library, as the same runner.
func (e *env) fleet(ctx context.Context) error {
	envv := []string{"DATABASE_URL=" + e.urlAs("scale-migrate")}
	d, out, err := runBin(ctx, e.bin, envv, 0, "migrate")
	if err != nil {
		return fmt.Errorf("migrate (no-op): %w\n%s", err, lastLines(out, 5))
	}
	e.rep.MigrateNoop = d
	log.Printf("migrate (no-op): %s: %s", d.Round(time.Millisecond), lastLines(out, 1))
	if e.o.statusTimeout > 0 {
		e.rep.Status, e.rep.StatusOut, e.rep.StatusErr = e.status(ctx, e.bin)
	}

	db, err := tenancy.Open(ctx, e.urlAs("scale-step"), tenancy.PoolConfig{MaxOpen: 5, MaxIdle: 5, ConnMaxSchemas: tenancy.DefaultConnMaxSchemas})
	if err != nil {
		return err
	}
	defer closeDB(db)
	dir := tenancy.NewDirectory(db, tenancy.WithTTL(0), tenancy.WithPlan(migrationstest.PlanWith(migrationstest.SKUStep)))
	start := time.Now()
	sum, err := fleet.Migrate(ctx, dir, fleet.Options{Concurrency: 4})
	rs := sum.Results
	if err != nil {
		return fmt.Errorf("migrate (a real step): %w", err)
	}
	e.rep.MigrateStep = time.Since(start)
	for _, r := range rs {
		if r.Err != nil {
			return fmt.Errorf("migrate (a real step), tenant %s: %w", r.Tenant, r.Err)
		}
	}
	if len(rs) != e.o.tenants {
		return fmt.Errorf("migrate (a real step) touched %d tenants, want %d", len(rs), e.o.tenants)
	}
	log.Printf("migrate (a real step, concurrency 4): %s", e.rep.MigrateStep.Round(time.Millisecond))
	return nil
}

// status times `tenantry migrate status`, which exits 0 on a fleet without
// drift; its summary and any warning are its last lines.
func (e *env) status(ctx context.Context, bin string) (time.Duration, string, string) {
	log.Printf("migrate status (up to %s)", e.o.statusTimeout)
	d, out, err := runBin(ctx, bin, []string{"DATABASE_URL=" + e.urlAs("scale-status")}, e.o.statusTimeout, "migrate", "status")
	tailOut := lastLines(out, 2)
	log.Printf("migrate status: %s, %v: %s", d.Round(time.Millisecond), err, tailOut)
	if err != nil {
		return d, tailOut, err.Error()
	}
	return d, tailOut, ""
}

// backups times one tenant's pg_dump -n, then a whole-database pg_dump
// under the cluster's lock table and under the one BackupLocks advises.
func (e *env) backups(ctx context.Context) error {
	bin, err := pglocal.BinDir()
	if err != nil {
		return err
	}
	pgDump := filepath.Join(bin, "pg_dump")
	for _, i := range []int{0, len(e.schemas) / 2, len(e.schemas) - 1} {
		d, out, err := runBin(ctx, pgDump, nil, 0, "-d", e.url(), "-n", e.schemas[i], "-f", os.DevNull)
		if err != nil {
			return fmt.Errorf("pg_dump -n %s: %w\n%s", e.schemas[i], err, out)
		}
		e.rep.DumpOne = append(e.rep.DumpOne, d)
	}
	log.Printf("pg_dump -n: %v", e.rep.DumpOne)

	db, err := tenancy.Open(ctx, e.url(), tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1})
	if err != nil {
		return err
	}
	e.rep.Before, err = tenancy.BackupLocks(ctx, db)
	closeDB(db)
	if err != nil {
		return err
	}
	d, out, err := runBin(ctx, pgDump, nil, 0, "-d", e.url(), "-f", os.DevNull)
	e.rep.DumpAllBefore = d
	if err != nil {
		e.rep.DumpAllBeforeErr = firstLine(out, "error")
	}
	log.Printf("whole pg_dump at max_locks_per_transaction %d: %s, %v %s", e.rep.Before.MaxLocks, d.Round(time.Millisecond), err, e.rep.DumpAllBeforeErr)

	err = e.cluster.Stop()
	e.cluster = nil
	if err != nil {
		return err
	}
	if e.cluster, err = pglocal.Start(ctx, pglocal.Options{Dir: filepath.Join(e.dir, "pg"), Durable: true,
		Settings: []string{fmt.Sprintf("max_locks_per_transaction=%d", e.rep.Before.Needed())}}); err != nil {
		return err
	}
	if db, err = tenancy.Open(ctx, e.url(), tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1}); err != nil {
		return err
	}
	e.rep.After, err = tenancy.BackupLocks(ctx, db)
	closeDB(db)
	if err != nil {
		return err
	}
	d, out, err = runBin(ctx, pgDump, nil, 0, "-d", e.url(), "-f", os.DevNull)
	e.rep.DumpAllAfter = d
	if err != nil {
		e.rep.DumpAllAfterErr = firstLine(out, "error")
	}
	log.Printf("whole pg_dump at max_locks_per_transaction %d: %s, %v", e.rep.After.MaxLocks, d.Round(time.Millisecond), err)
	return nil
}

// runBin runs a program with env (plus PATH and HOME) and an optional
// time limit, and returns how long it took and its combined output.
func runBin(ctx context.Context, bin string, env []string, limit time.Duration, args ...string) (time.Duration, string, error) {
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if ctx.Err() != nil {
		err = fmt.Errorf("stopped after %s: %w", limit, ctx.Err())
	}
	return d, string(out), err
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func firstLine(s, containing string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, containing) {
			return strings.TrimSpace(l)
		}
	}
	return lastLines(s, 1)
}

// get asks for url with token and wants 200.
func get(ctx context.Context, c *http.Client, url, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	var body json.RawMessage
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %.200s", url, resp.StatusCode, body)
	}
	return err
}

// tally counts a closed loop's outcomes.
type tally struct {
	ok, failed int64
	firstErr   error
}

// closedLoop keeps conc requests in flight for d, each a GET /items/1 of a
// tenant drawn uniformly from tokens.
func closedLoop(ctx context.Context, c *http.Client, base string, tokens []string, conc int, d time.Duration) tally {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var ok, failed atomic.Int64
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				err := get(ctx, c, base+"/items/1", tokens[rand.IntN(len(tokens))])
				switch {
				case ctx.Err() != nil:
					return // cut by the end of the run: not counted
				case err != nil:
					failed.Add(1)
					once.Do(func() { firstErr = err })
				default:
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return tally{ok: ok.Load(), failed: failed.Load(), firstErr: firstErr}
}

func newClient(maxConns int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: maxConns, MaxIdleConnsPerHost: maxConns, MaxConnsPerHost: maxConns, IdleConnTimeout: time.Minute}}
}

var errNoBackends = errors.New("no backends found")
