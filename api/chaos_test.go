package api_test

// The chaos suite: the real HTTP stack (api.Server
// behind a loopback listener, real tokens) talks to PostgreSQL through a
// fault proxy, on a throwaway cluster of its own that the tests may kill
// and restart. Every scenario records each operation as ok, failed or
// unknown and ends with the same checks (settle): no response carried
// another tenant's row, no acknowledged write is missing, no write is
// partial, the pool serves again without a restart, no connection is in use
// at rest, no backend is idle in transaction, and (at teardown) no
// goroutine leaked.
//
// Short mode (the default, inside `make test`) runs each scenario once with
// small counts; CHAOS=long (`make chaos`) runs the soak to 100,000 requests.
// `go test -short` skips the suite.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/internal/faultproxy"
	"github.com/tenantry/tenantry/internal/pglocal"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"github.com/tenantry/tenantry/token"
	"gorm.io/gorm"
)

// chaosLong reports whether the long mode was asked for.
func chaosLong() bool { return os.Getenv("CHAOS") == "long" }

// Bounds of the suite. clientTimeout is what a patient client waits for an
// answer: past it the request counts as hung, a defect whatever the fault
// (no request may hang past its deadline; the server's write timeout is
// 30 s, so a deadline must answer well before that).
const (
	clientTimeout  = 20 * time.Second
	recoveryBudget = 30 * time.Second
)

// The cluster of the suite: one per test binary, started on first use, so
// that restarting it touches nothing of the other api tests.
var chaosDB struct {
	mu      sync.Mutex
	dir     string
	cluster *pglocal.Cluster
	err     error
}

func chaosCluster(t testing.TB) *pglocal.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("chaos suite skipped in -short mode")
	}
	chaosDB.mu.Lock()
	defer chaosDB.mu.Unlock()
	if chaosDB.cluster == nil && chaosDB.err == nil {
		chaosDB.err = startChaosCluster()
	}
	if chaosDB.err != nil {
		if os.Getenv("CI") != "" || os.Getenv("REQUIRE_DB") != "" {
			t.Fatalf("chaos: no local PostgreSQL: %v", chaosDB.err)
		}
		t.Skipf("chaos: no local PostgreSQL: %v", chaosDB.err)
	}
	return chaosDB.cluster
}

func startChaosCluster() error {
	dir, err := os.MkdirTemp("", "tenantry-chaos-")
	if err != nil {
		return err
	}
	// The server may run as the postgres user, which must enter it.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	c, err := pglocal.Start(context.Background(), pglocal.Options{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	chaosDB.dir, chaosDB.cluster = dir, c
	return nil
}

// stopChaosCluster ends the suite's cluster; TestMain calls it.
func stopChaosCluster() {
	chaosDB.mu.Lock()
	defer chaosDB.mu.Unlock()
	if chaosDB.cluster != nil {
		_ = chaosDB.cluster.Stop()
		os.RemoveAll(chaosDB.dir)
		chaosDB.cluster = nil
	}
}

// stopCluster shuts the server down (fast mode, sessions ended); startCluster
// starts it again on the same port and data, returning once it accepts.
func stopCluster(t testing.TB) {
	t.Helper()
	chaosDB.mu.Lock()
	defer chaosDB.mu.Unlock()
	if err := chaosDB.cluster.Stop(); err != nil {
		t.Errorf("stop cluster: %v", err)
	}
}

func startCluster(t testing.TB) {
	t.Helper()
	chaosDB.mu.Lock()
	defer chaosDB.mu.Unlock()
	port := chaosDB.cluster.Port
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := pglocal.Start(ctx, pglocal.Options{Dir: chaosDB.dir, Port: port})
	if err != nil {
		// Nothing else can run on a dead cluster.
		chaosDB.err = err
		t.Fatalf("restart cluster: %v (log %s)", err, filepath.Join(chaosDB.dir, "postgres.log"))
	}
	chaosDB.cluster = c
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// chaosEnv is one scenario's world: a fresh database on the suite's
// cluster, the service connected to it through a fault proxy, its HTTP
// server on 127.0.0.1, tenants and their tokens, and the ledger.
type chaosEnv struct {
	name    string // database name
	app     string // application_name of the service's connections
	proxy   *faultproxy.Proxy
	db      *gorm.DB // the request role's handle
	ddl     *gorm.DB // the DDL role's handle
	ddlRole string
	appRole string
	dir     *tenancy.Directory
	srv     *api.Server
	http    *httptest.Server
	client  *http.Client
	auth    token.Config
	tokens  map[string]string
	admin   string
	ledger  *ledger
	tenants []string
	logs    *syncBuffer
}

type envOptions struct {
	pool tenancy.PoolConfig
	plan migrations.Plan // zero: the shipped plan
	// requestTimeout is the server's request deadline; zero: its default.
	requestTimeout time.Duration
}

func newChaosEnv(t *testing.T, o envOptions) *chaosEnv {
	t.Helper()
	c := chaosCluster(t)
	base := runtime.NumGoroutine()
	e := &chaosEnv{name: "chaos_" + randHex(5), app: "chaos_" + randHex(5),
		auth: token.Config{Secret: testSecret}, tokens: map[string]string{}, ledger: newLedger()}
	// Registered first, so it runs last: every other cleanup has closed
	// what it owns by then.
	t.Cleanup(func() { checkGoroutines(t, base) })
	// The strict setup of SECURITY.md, as the rest of the suite runs it: a
	// DDL role that owns the database, and a request role that owns nothing
	// and switches to tenant roles inside scopes. Both reach the server
	// through the proxy, under one application_name, so every fault hits
	// requests and onboarding alike.
	e.ddlRole, e.appRole = e.name+"_ddl", e.name+"_app"
	ddl, app := pgx.Identifier{e.ddlRole}.Sanitize(), pgx.Identifier{e.appRole}.Sanitize()
	e.adminExec(t, "postgres", "CREATE ROLE "+ddl+" LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS")
	e.adminExec(t, "postgres", "CREATE ROLE "+app+" LOGIN NOINHERIT NOSUPERUSER NOCREATEROLE NOBYPASSRLS")
	t.Cleanup(func() { e.dropAll(t) })
	e.adminExec(t, "postgres", "CREATE DATABASE "+pgx.Identifier{e.name}.Sanitize()+" OWNER "+ddl)

	p, err := faultproxy.New(fmt.Sprintf("127.0.0.1:%d", c.Port))
	if err != nil {
		t.Fatal(err)
	}
	e.proxy = p
	t.Cleanup(func() { p.Close() })
	ctx := context.Background()
	open := func(role string, pool tenancy.PoolConfig) *gorm.DB {
		url := fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable&application_name=%s", role, p.Port(), e.name, e.app)
		return tenancytest.Connect(t, url, pool)
	}
	e.ddl = open(e.ddlRole, tenancy.PoolConfig{MaxOpen: 4, MaxIdle: 2})
	if err := migrations.ApplyShared(ctx, e.ddl); err != nil {
		t.Fatalf("shared migrations: %v", err)
	}
	db := open(e.appRole, o.pool)
	e.db = db
	if err := tenancy.AttachAdmin(db, e.ddl); err != nil {
		t.Fatal(err)
	}
	var opts []tenancy.Option
	if o.plan.Steps != nil {
		opts = append(opts, tenancy.WithPlan(o.plan))
	}
	e.dir = tenancy.NewDirectory(db, opts...)
	if err := e.dir.EnsureRoles(ctx, e.appRole); err != nil {
		t.Fatalf("ready the request role: %v", err)
	}
	e.logs = &syncBuffer{}
	srv, err := api.NewServer(e.dir, api.Config{Auth: e.auth, RequestTimeout: o.requestTimeout,
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	api.AddFaultRoutes(srv)
	e.srv = srv
	hs := httptest.NewUnstartedServer(srv)
	// As serve's server (serve.go in package main).
	hs.Config.ReadHeaderTimeout = 5 * time.Second
	hs.Config.ReadTimeout = 15 * time.Second
	hs.Config.WriteTimeout = 30 * time.Second
	hs.Start()
	e.http = hs
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	e.client = &http.Client{Timeout: clientTimeout, Transport: tr}
	t.Cleanup(func() {
		// A hung handler must not hang the teardown: let the path heal
		// first, then close.
		p.SetMode(faultproxy.Pass)
		p.Disarm()
		tr.CloseIdleConnections()
		hs.Close()
	})
	e.admin, err = token.IssueToken(e.auth, "", token.RoleAdmin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// dropAll drops the scenario's database, then its login roles and every
// role the service derived for it (named after the deployment id the
// shared migration stored): roles are server-wide and would outlive it.
func (e *chaosEnv) dropAll(t testing.TB) {
	t.Helper()
	conn, ctx, done := e.adminConn(t, "postgres")
	defer done()
	var roles []string
	dconn, err := pgx.Connect(ctx, chaosURL(e.name))
	if err == nil {
		var dep string
		if err := dconn.QueryRow(ctx, `SELECT CASE WHEN to_regclass('`+migrations.DeploymentTable+`') IS NULL THEN ''
			ELSE (SELECT id::text FROM `+migrations.DeploymentTable+`) END`).Scan(&dep); err != nil {
			t.Errorf("read the deployment of %s: %v", e.name, err)
		}
		dconn.Close(ctx)
		if dep != "" {
			rows, err := conn.Query(ctx, `SELECT rolname FROM pg_roles WHERE starts_with(rolname, 'tr' || $1 || '_')`, dep)
			if err != nil {
				t.Fatalf("list derived roles: %v", err)
			}
			if roles, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				t.Fatalf("list derived roles: %v", err)
			}
		}
	}
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{e.name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Errorf("drop %s: %v", e.name, err)
	}
	for _, r := range append(roles, e.appRole, e.ddlRole) {
		if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize()); err != nil {
			t.Errorf("drop role %s: %v", r, err)
		}
	}
}

// chaosURL is the superuser's URL of database db on the suite's cluster.
func chaosURL(db string) string {
	chaosDB.mu.Lock()
	defer chaosDB.mu.Unlock()
	return chaosDB.cluster.URL(db)
}

// checkGoroutines waits for the goroutine count to come back to what it was
// before the environment was built.
func checkGoroutines(t testing.TB, base int) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("goroutines leaked: %d at rest after teardown, %d before the scenario\n%s", n, base, buf)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// adminConn connects straight to the cluster (not through the proxy) as
// the superuser, to inspect and to inject faults.
func (e *chaosEnv) adminConn(t testing.TB, db string) (*pgx.Conn, context.Context, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	conn, err := pgx.Connect(ctx, chaosURL(db))
	if err != nil {
		cancel()
		t.Fatalf("admin connection: %v", err)
	}
	return conn, ctx, func() { conn.Close(context.Background()); cancel() }
}

func (e *chaosEnv) adminExec(t testing.TB, db, sql string, args ...any) {
	t.Helper()
	conn, ctx, done := e.adminConn(t, db)
	defer done()
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// kill terminates the service's backends whose current query contains
// like (all of them when like is ""), and returns how many it ended.
func (e *chaosEnv) kill(t testing.TB, like string) int {
	t.Helper()
	n, err := e.killErr(like)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// killErr is kill for goroutines other than the test's.
func (e *chaosEnv) killErr(like string) (int, error) {
	return e.terminate(`SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()
		AND ($2 = '' OR query ILIKE '%' || $2 || '%')`, e.app, like)
}

// killOneErr terminates one random backend of the service, if there is one.
func (e *chaosEnv) killOneErr() (int, error) {
	return e.terminate(`SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM (
		SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY random() LIMIT 1) s`, e.app)
}

func (e *chaosEnv) terminate(sql string, args ...any) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	chaosDB.mu.Lock()
	u := chaosDB.cluster.URL(e.name)
	chaosDB.mu.Unlock()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return 0, fmt.Errorf("admin connection: %w", err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("terminate backends: %w", err)
	}
	return n, nil
}

// waitForQuery waits until one of the service's backends runs a query
// containing like; it fails the test after limit.
func (e *chaosEnv) waitForQuery(t testing.TB, like string, limit time.Duration) {
	t.Helper()
	conn, ctx, done := e.adminConn(t, e.name)
	defer done()
	deadline := time.Now().Add(limit)
	for {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1
			AND state = 'active' AND query ILIKE '%' || $2 || '%'`, e.app, like).Scan(&n)
		if err != nil {
			t.Fatalf("pg_stat_activity: %v", err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no backend ran %q within %s", like, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// backends counts the service's backends by state.
func (e *chaosEnv) backends(t testing.TB) map[string]int {
	t.Helper()
	conn, ctx, done := e.adminConn(t, e.name)
	defer done()
	rows, err := conn.Query(ctx, `SELECT coalesce(state, ''), count(*) FROM pg_stat_activity
		WHERE application_name = $1 GROUP BY 1`, e.app)
	if err != nil {
		t.Fatalf("pg_stat_activity: %v", err)
	}
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatalf("pg_stat_activity: %v", err)
		}
		out[s] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("pg_stat_activity: %v", err)
	}
	return out
}

// answer is one HTTP exchange: a status, or err when no answer came.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
	start  time.Time
	end    time.Time
}

// call sends one request to the service over loopback.
func (e *chaosEnv) call(ctx context.Context, method, path, token string, body any) answer {
	var rd io.Reader
	if body != nil {
		js, _ := json.Marshal(body)
		rd = strings.NewReader(string(js))
	}
	a := answer{start: time.Now()}
	req, err := http.NewRequestWithContext(ctx, method, e.http.URL+path, rd)
	if err != nil {
		a.err, a.end = err, time.Now()
		return a
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		a.err, a.end = err, time.Now()
		return a
	}
	defer resp.Body.Close()
	a.body, a.err = io.ReadAll(resp.Body)
	a.status, a.header, a.end = resp.StatusCode, resp.Header, time.Now()
	if a.err != nil {
		// The body did not arrive: the client cannot trust the status.
		a.status = 0
	}
	e.ledger.see(a)
	return a
}

// onboard creates tenants over HTTP and issues their tokens.
func (e *chaosEnv) onboard(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		a := e.call(context.Background(), "POST", "/admin/tenants", e.admin, map[string]string{"name": n})
		if a.err != nil || a.status != http.StatusCreated {
			t.Fatalf("onboard %s: %d %v %s", n, a.status, a.err, a.body)
		}
		tok, err := token.IssueToken(e.auth, n, token.RoleTenant, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[n] = tok
		e.tenants = append(e.tenants, n)
	}
}

// Outcome of an operation as its client knows it.
type outcome int

const (
	opOK      outcome = iota // a 2xx answer
	opFailed                 // a non-2xx answer
	opUnknown                // no answer (cancelled, reset, timed out)
)

// write is an attempted item write: the rows it would create (one, or two
// for a pair) and what the client learnt.
type write struct {
	tenant string
	names  []string
	status int
	out    outcome
	id     int64 // of an acknowledged single create
}

// ledger records every operation and every defect seen in answers.
type ledger struct {
	mu         sync.Mutex
	requests   int
	byStatus   map[int]int
	unknown    int
	writes     []write
	mismatches []string // a row of another tenant in an answer
	defects    []string // 500s, 503s without Retry-After, non-problem errors, leaked stacks
	answers    []answer // start/end/status of every answer, for the timings
}

func newLedger() *ledger { return &ledger{byStatus: map[int]int{}} }

// see checks an answer's form and counts it.
func (l *ledger) see(a answer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answers = append(l.answers, answer{status: a.status, start: a.start, end: a.end})
	if a.status == 0 {
		return
	}
	var d string
	switch {
	case a.status >= 500 && a.status != http.StatusServiceUnavailable:
		d = fmt.Sprintf("status %d: %s", a.status, a.body)
	case a.status == http.StatusServiceUnavailable && a.header.Get("Retry-After") == "":
		d = fmt.Sprintf("503 without Retry-After: %s", a.body)
	case a.status >= 400 && a.header.Get("Content-Type") != "application/problem+json":
		d = fmt.Sprintf("status %d is not problem+json: %s", a.status, a.body)
	case strings.Contains(string(a.body), "goroutine ") || strings.Contains(string(a.body), ".go:"):
		d = fmt.Sprintf("status %d leaks a stack: %s", a.status, a.body)
	}
	if d != "" && len(l.defects) < 1000 {
		l.defects = append(l.defects, d)
	}
}

// record counts an operation's outcome.
func (l *ledger) record(a answer) outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
	switch {
	case a.status == 0:
		l.unknown++
		return opUnknown
	case a.status < 300:
		l.byStatus[a.status]++
		return opOK
	default:
		l.byStatus[a.status]++
		return opFailed
	}
}

func (l *ledger) addWrite(w write) {
	l.mu.Lock()
	l.writes = append(l.writes, w)
	l.mu.Unlock()
}

func (l *ledger) mismatch(format string, args ...any) {
	l.mu.Lock()
	if len(l.mismatches) < 1000 {
		l.mismatches = append(l.mismatches, fmt.Sprintf(format, args...))
	}
	l.mu.Unlock()
}

// summary is the closing line of a scenario.
func (l *ledger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ok, failed int
	var codes []int
	for s, n := range l.byStatus {
		if s < 300 {
			ok += n
		} else {
			failed += n
			codes = append(codes, s)
		}
	}
	sort.Ints(codes)
	var fs []string
	for _, c := range codes {
		fs = append(fs, fmt.Sprintf("%d:%d", c, l.byStatus[c]))
	}
	return fmt.Sprintf("requests=%d ok=%d failed=%d {%s} unknown=%d mismatches=%d defects=%d",
		l.requests, ok, failed, strings.Join(fs, " "), l.unknown, len(l.mismatches), len(l.defects))
}

// firstAfter returns how long after t the first answer that satisfies pred
// ended, or -1 when none did.
func (l *ledger) firstAfter(t time.Time, pred func(answer) bool) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	best := time.Duration(-1)
	for _, a := range l.answers {
		if a.end.After(t) && pred(a) && (best < 0 || a.end.Sub(t) < best) {
			best = a.end.Sub(t)
		}
	}
	return best
}

// slowest returns the longest time any answered request took.
func (l *ledger) slowest() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var worst time.Duration
	for _, a := range l.answers {
		if d := a.end.Sub(a.start); a.status > 0 && d > worst {
			worst = d
		}
	}
	return worst
}

// deadlineSlack is what the slowest answer may take past the server's
// request deadline: the time to roll back (bounded in the driver) and to
// write the answer, on a shared and noisy machine.
const deadlineSlack = 5 * time.Second

// checkDeadline fails the test if an answer came later than the request
// deadline allows.
func (e *chaosEnv) checkDeadline(t *testing.T) {
	t.Helper()
	worst := e.ledger.slowest()
	t.Logf("slowest answer: %s (request deadline %s)", worst.Round(time.Millisecond), api.DefaultRequestTimeout)
	if worst > api.DefaultRequestTimeout+deadlineSlack {
		t.Errorf("an answer took %s, past the request deadline of %s", worst, api.DefaultRequestTimeout)
	}
}

func isError(a answer) bool   { return a.status >= 400 }
func isSuccess(a answer) bool { return a.status > 0 && a.status < 300 }

// itemName tags a row with its tenant, so any row in any answer or table
// says whose it is; the description repeats it, so a torn row shows.
func itemName(tenant string, seq int) string { return fmt.Sprintf("%s:%d", tenant, seq) }
func itemDesc(name string) string            { return "desc-" + name }

func ownedBy(tenant, name string) bool { return strings.HasPrefix(name, tenant+":") }

// create posts one tagged item and records the write.
func (e *chaosEnv) create(ctx context.Context, tenant string, seq int) answer {
	name := itemName(tenant, seq)
	a := e.call(ctx, "POST", "/items", e.tokens[tenant], map[string]string{"name": name, "description": itemDesc(name)})
	w := write{tenant: tenant, names: []string{name}, status: a.status, out: e.ledger.record(a)}
	if w.out == opOK {
		var it models.Item
		if err := json.Unmarshal(a.body, &it); err != nil || it.Name != name || it.Description != itemDesc(name) {
			e.ledger.mismatch("%s: create %s answered %s (%v)", tenant, name, a.body, err)
		}
		w.id = it.ID
	}
	e.ledger.addWrite(w)
	return a
}

// list reads a page of the tenant's items from offset and checks every row
// is its own. A page of 100, not the largest: decoding 1000 rows per request
// made the long soak measure JSON speed instead of faults.
func (e *chaosEnv) list(ctx context.Context, tenant string, offset int) answer {
	a := e.call(ctx, "GET", fmt.Sprintf("/items?limit=100&offset=%d", offset), e.tokens[tenant], nil)
	if e.ledger.record(a) == opOK {
		var items []models.Item
		if err := json.Unmarshal(a.body, &items); err != nil {
			e.ledger.mismatch("%s: list answered %s: %v", tenant, a.body, err)
		}
		for _, it := range items {
			if !ownedBy(tenant, it.Name) {
				e.ledger.mismatch("%s: list returned %q", tenant, it.Name)
			}
		}
	}
	return a
}

// get reads item id: ids overlap between tenants (each schema has its own
// sequence), so any id tests that the answer is the caller's own row.
func (e *chaosEnv) get(ctx context.Context, tenant string, id int64) answer {
	a := e.call(ctx, "GET", fmt.Sprintf("/items/%d", id), e.tokens[tenant], nil)
	if e.ledger.record(a) == opOK {
		var it models.Item
		if err := json.Unmarshal(a.body, &it); err != nil || !ownedBy(tenant, it.Name) || it.ID != id {
			e.ledger.mismatch("%s: get %d answered %s (%v)", tenant, id, a.body, err)
		}
	}
	return a
}

// settle ends every scenario: the pool must serve every tenant again
// without a restart, then the tables must hold exactly what the ledger
// allows, with no connection in use and no backend idle in transaction.
// It returns the time from the call to the first success of each tenant.
func (e *chaosEnv) settle(t *testing.T) time.Duration {
	t.Helper()
	e.proxy.SetMode(faultproxy.Pass)
	e.proxy.Disarm()
	start := time.Now()
	for _, n := range e.tenants {
		for {
			a := e.call(context.Background(), "GET", "/items?limit=1", e.tokens[n], nil)
			if a.status == http.StatusOK {
				break
			}
			if time.Since(start) > recoveryBudget {
				sqlDB, _ := e.db.DB()
				t.Fatalf("the pool did not recover within %s: %s got %s\npool %+v, proxy open=%d, backends %v\nlast server log lines:\n%s",
					recoveryBudget, n, statusOf(a), sqlDB.Stats(), e.proxy.Open(), e.backends(t), tail(e.logs.String(), 5))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	recovered := time.Since(start)
	e.checkRows(t)
	e.checkAtRest(t)
	l := e.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.mismatches {
		t.Errorf("mismatch: %s", m)
	}
	if len(l.defects) > 0 {
		t.Logf("server log of the 500s (first lines):\n%s", head(grepLines(e.logs.String(), `"status":500`), 5))
	}
	for i, d := range l.defects {
		if i == 5 {
			t.Errorf("... and %d more defects", len(l.defects)-5)
			break
		}
		t.Errorf("defect: %s", d)
	}
	return recovered
}

// checkRows compares every tenant's table, read straight from the
// cluster, with the ledger.
func (e *chaosEnv) checkRows(t *testing.T) {
	t.Helper()
	conn, ctx, done := e.adminConn(t, e.name)
	defer done()
	type row struct {
		id   int64
		desc string
	}
	tables := map[string]map[string]row{}
	for _, n := range e.tenants {
		schema, err := tenancy.SchemaFor(n)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := conn.Query(ctx, `SELECT id, name, description FROM `+pgx.Identifier{schema, "items"}.Sanitize())
		if err != nil {
			t.Fatalf("read %s: %v", schema, err)
		}
		tab := map[string]row{}
		for rows.Next() {
			var r row
			var name string
			if err := rows.Scan(&r.id, &name, &r.desc); err != nil {
				t.Fatalf("read %s: %v", schema, err)
			}
			if _, dup := tab[name]; dup {
				t.Errorf("%s: row %q written twice", n, name)
			}
			tab[name] = r
			if !ownedBy(n, name) {
				t.Errorf("%s: table holds %q, not a row of this tenant (a ghost or a crossed write)", n, name)
			} else if r.desc != itemDesc(name) {
				t.Errorf("%s: row %q is torn: description %q", n, name, r.desc)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("read %s: %v", schema, err)
		}
		tables[n] = tab
	}
	attempted := map[string]bool{}
	e.ledger.mu.Lock()
	writes := append([]write(nil), e.ledger.writes...)
	e.ledger.mu.Unlock()
	var lost, partial, phantom int
	for _, w := range writes {
		present := 0
		for _, name := range w.names {
			attempted[name] = true
			if r, ok := tables[w.tenant][name]; ok {
				present++
				if w.out == opOK && len(w.names) == 1 && r.id != w.id {
					t.Errorf("%s: %q acknowledged as id %d, stored as %d", w.tenant, name, w.id, r.id)
				}
			}
		}
		switch {
		case w.out == opOK && present != len(w.names):
			lost++
			t.Errorf("%s: acknowledged write %v (status %d) lost: %d of %d rows", w.tenant, w.names, w.status, present, len(w.names))
		case w.out != opOK && present != 0 && present != len(w.names):
			partial++
			t.Errorf("%s: write %v (status %d) is partial: %d of %d rows", w.tenant, w.names, w.status, present, len(w.names))
		case w.status >= 400 && w.status < 500 && present != 0:
			phantom++
			t.Errorf("%s: rejected write %v (status %d) is present", w.tenant, w.names, w.status)
		}
	}
	for n, tab := range tables {
		for name := range tab {
			if ownedBy(n, name) && !attempted[name] {
				t.Errorf("%s: row %q was never written by this scenario", n, name)
			}
		}
	}
	t.Logf("rows: %d writes checked; lost=%d partial=%d phantom=%d", len(writes), lost, partial, phantom)
}

// quiesce waits (bounded) until no backend of the service is active or in
// a transaction: a session whose client was cut may still be finishing the
// statement it received (a COMMIT, say), and its outcome is only final
// once it ended.
func (e *chaosEnv) quiesce(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b := e.backends(t)
		if b["active"] == 0 && b["idle in transaction"] == 0 && b["idle in transaction (aborted)"] == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service's backends did not settle: %v", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkAtRest waits (bounded) for the pool and the server to be idle: no
// connection in use, no backend active or idle in transaction.
func (e *chaosEnv) checkAtRest(t *testing.T) {
	t.Helper()
	sqlDB, err := e.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	ddlDB, err := e.ddl.DB()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		inUse := sqlDB.Stats().InUse + ddlDB.Stats().InUse
		b := e.backends(t)
		if inUse == 0 && b["idle in transaction"] == 0 && b["idle in transaction (aborted)"] == 0 && b["active"] == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("not at rest: %d connections in use, backends by state %v", inUse, b)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// load runs workers that create, list and get items of random tenants
// until stop closes, recording everything in the ledger.
func (e *chaosEnv) load(workers int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	var mu sync.Mutex
	seq := 0
	next := func() int { mu.Lock(); defer mu.Unlock(); seq++; return seq }
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := e.tenants[(w+i)%len(e.tenants)]
				if i%2 == 0 {
					e.create(context.Background(), n, next())
				} else {
					e.list(context.Background(), n, 0)
				}
			}
		}()
	}
	return &wg
}

// timings logs and returns the time from fault to the first error answer
// and from recovery to the first success.
func (e *chaosEnv) timings(t *testing.T, fault, recovered time.Time) (toError, toSuccess time.Duration) {
	toError = e.ledger.firstAfter(fault, isError)
	toSuccess = e.ledger.firstAfter(recovered, isSuccess)
	t.Logf("fault -> first error answer: %s; recovery -> first success: %s", fmtDur(toError), fmtDur(toSuccess))
	return toError, toSuccess
}

func fmtDur(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return d.Round(time.Millisecond).String()
}

var errNoAnswer = errors.New("no answer")

// statusOf words an answer for messages.
func statusOf(a answer) string {
	if a.status == 0 {
		return fmt.Sprintf("%v (%v)", errNoAnswer, a.err)
	}
	return fmt.Sprintf("%d %s", a.status, a.body)
}

// head returns the first n lines of s.
func head(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
