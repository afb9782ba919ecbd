package api_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantry/tenantry/fleet"
	"github.com/tenantry/tenantry/internal/faultproxy"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/migrations/migrationstest"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/token"
)

// A backend killed inside a transaction between its two writes leaves
// neither row; a backend killed while idle in the pool between two
// requests costs the second request nothing (nothing was sent on it).
func TestChaosBackendKilledBetweenTwoWrites(t *testing.T) {
	e := newChaosEnv(t, envOptions{pool: tenancy.PoolConfig{MaxOpen: 4, MaxIdle: 4}})
	e.onboard(t, "kilo")
	ctx := context.Background()

	t.Run("in one transaction", func(t *testing.T) {
		name := itemName("kilo", 1)
		done := make(chan answer, 1)
		go func() { done <- e.call(ctx, "POST", "/_test/pair?s=5&name="+name, e.tokens["kilo"], nil) }()
		e.waitForQuery(t, "pg_sleep", 10*time.Second)
		killedAt := time.Now()
		if n := e.kill(t, "pg_sleep"); n != 1 {
			t.Fatalf("terminated %d backends, want 1", n)
		}
		a := <-done
		t.Logf("kill -> answer %d in %s", a.status, a.end.Sub(killedAt).Round(time.Millisecond))
		e.ledger.addWrite(write{tenant: "kilo", names: []string{name + "#1", name + "#2"}, status: a.status, out: e.ledger.record(a)})
		if a.status != http.StatusServiceUnavailable {
			t.Errorf("killed between two writes: %s, want 503", statusOf(a))
		}
		// The transaction never committed: both rows must be absent, not
		// merely consistent.
		if n := e.countRows(t, "kilo", name+"#%"); n != 0 {
			t.Errorf("%d rows of the killed transaction are present", n)
		}
		name = itemName("kilo", 2)
		a = e.call(ctx, "POST", "/_test/pair?name="+name, e.tokens["kilo"], nil)
		e.ledger.addWrite(write{tenant: "kilo", names: []string{name + "#1", name + "#2"}, status: a.status, out: e.ledger.record(a)})
		if a.status != http.StatusOK && a.status != http.StatusNoContent && a.status != http.StatusCreated {
			t.Errorf("the pair after the kill: %s", statusOf(a))
		}
	})

	t.Run("idle in the pool between two requests", func(t *testing.T) {
		if a := e.create(ctx, "kilo", 3); a.status != http.StatusCreated {
			t.Fatalf("first write: %s", statusOf(a))
		}
		if n := e.kill(t, ""); n < 1 {
			t.Fatalf("terminated %d idle backends, want at least 1", n)
		}
		// Let the terminations land before the next BEGIN.
		time.Sleep(100 * time.Millisecond)
		if a := e.create(ctx, "kilo", 4); a.status != http.StatusCreated {
			t.Errorf("write after its pooled connection was killed: %s, want 201 (a BEGIN that failed before anything was sent is retried)", statusOf(a))
		}
	})
	t.Logf("recovery %s; %s", e.settle(t), e.ledger.summary())
}

// countRows counts tenant's items whose name is LIKE pattern.
func (e *chaosEnv) countRows(t testing.TB, tenant, pattern string) int {
	t.Helper()
	conn, ctx, done := e.adminConn(t, e.name)
	defer done()
	schema, err := tenancy.SchemaFor(tenant)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.items WHERE name LIKE $1`, pattern).Scan(&n); err != nil {
		t.Fatalf("count rows: %v", err)
	}
	return n
}

// A client that leaves during a slow query frees its backend and its pooled
// connection at once, and its write is rolled back.
func TestChaosClientCancelDuringSlowQuery(t *testing.T) {
	e := newChaosEnv(t, envOptions{pool: tenancy.PoolConfig{MaxOpen: 2, MaxIdle: 2}})
	e.onboard(t, "cancel")
	var worst time.Duration
	for round := 0; round < 3; round++ {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		a := e.call(ctx, "GET", "/_test/sleep?s=10", e.tokens["cancel"], nil)
		cancel()
		e.ledger.record(a)
		if a.status != 0 {
			t.Fatalf("the client left, yet it got %s", statusOf(a))
		}
		left := time.Now()
		sqlDB, err := e.db.DB()
		if err != nil {
			t.Fatal(err)
		}
		for {
			b := e.backends(t)
			if b["active"] == 0 && sqlDB.Stats().InUse == 0 {
				break
			}
			if time.Since(left) > 5*time.Second {
				t.Fatalf("5 s after the client left: backends %v, %d connections in use", b, sqlDB.Stats().InUse)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if d := time.Since(left); d > worst {
			worst = d
		}
		if a := e.create(context.Background(), "cancel", round); a.status != http.StatusCreated {
			t.Errorf("write after a cancelled request: %s", statusOf(a))
		}
	}
	t.Logf("client left -> backend and connection free: worst %s", worst.Round(time.Millisecond))
	t.Logf("recovery %s; %s", e.settle(t), e.ledger.summary())
}

// Each limit of a request's transaction ends it with 503 and Retry-After,
// rolls it back, and leaves the pool serving.
func TestChaosTimeouts(t *testing.T) {
	// A request deadline above the database's own limits, so that each
	// limit, not the Go-side deadline, is what ends its request.
	e := newChaosEnv(t, envOptions{pool: tenancy.PoolConfig{MaxOpen: 2, MaxIdle: 2}, requestTimeout: 3 * tenancy.RequestLimits.Idle / 2})
	e.onboard(t, "tempo")
	ctx := context.Background()
	expect503 := func(t *testing.T, what string, a answer, atLeast time.Duration) {
		t.Helper()
		e.ledger.record(a)
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
			t.Errorf("%s: %s, want 503 with Retry-After", what, statusOf(a))
		}
		if el := a.end.Sub(a.start); el < atLeast {
			t.Errorf("%s answered after %s, before the limit of %s could fire", what, el, atLeast)
		}
		t.Logf("%s: %d after %s", what, a.status, a.end.Sub(a.start).Round(time.Millisecond))
	}

	t.Run("statement", func(t *testing.T) {
		a := e.call(ctx, "GET", "/_test/sleep?s=8", e.tokens["tempo"], nil)
		expect503(t, "statement_timeout", a, tenancy.RequestLimits.Statement)
	})
	t.Run("lock", func(t *testing.T) {
		a := e.create(ctx, "tempo", 1)
		if a.status != http.StatusCreated {
			t.Fatalf("create: %s", statusOf(a))
		}
		id := e.lastID("tempo")
		conn, cctx, done := e.adminConn(t, e.name)
		defer done()
		tx, err := conn.Begin(cctx)
		if err != nil {
			t.Fatal(err)
		}
		schema, err := tenancy.SchemaFor("tempo")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(cctx, `SELECT 1 FROM `+schema+`.items WHERE id = $1 FOR UPDATE`, id); err != nil {
			t.Fatal(err)
		}
		name := itemName("tempo", 1)
		body := map[string]string{"name": name, "description": itemDesc(name)}
		a = e.call(ctx, "PUT", fmt.Sprintf("/items/%d", id), e.tokens["tempo"], body)
		expect503(t, "lock_timeout", a, tenancy.RequestLimits.Lock)
		if err := tx.Rollback(cctx); err != nil {
			t.Fatal(err)
		}
		a = e.call(ctx, "PUT", fmt.Sprintf("/items/%d", id), e.tokens["tempo"], body)
		e.ledger.record(a)
		if a.status != http.StatusOK {
			t.Errorf("update once the lock is gone: %s", statusOf(a))
		}
	})
	t.Run("idle in transaction", func(t *testing.T) {
		secs := tenancy.RequestLimits.Idle.Seconds() + 2
		a := e.call(ctx, "GET", fmt.Sprintf("/_test/idle?s=%g", secs), e.tokens["tempo"], nil)
		expect503(t, "idle_in_transaction_session_timeout", a, tenancy.RequestLimits.Idle)
	})
	t.Logf("recovery %s; %s", e.settle(t), e.ledger.summary())
}

// The database restarts under constant load: errors during the outage are
// 503 with Retry-After, and the pool serves again right after.
func TestChaosDatabaseRestartUnderLoad(t *testing.T) {
	e := newChaosEnv(t, envOptions{pool: tenancy.PoolConfig{MaxOpen: 10, MaxIdle: 10}})
	e.onboard(t, "rs-a", "rs-b", "rs-c", "rs-d")
	stop := make(chan struct{})
	wg := e.load(4, stop)
	time.Sleep(time.Second)
	fault := time.Now()
	stopCluster(t)
	time.Sleep(2 * time.Second)
	startCluster(t)
	back := time.Now()
	t.Logf("database down for %s (stop, 2 s, start)", back.Sub(fault).Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	toErr, toOK := e.timings(t, fault, back)
	e.checkDeadline(t)
	if toErr < 0 {
		t.Errorf("no error answer while the database was down")
	}
	if toOK < 0 {
		t.Errorf("no success after the database came back")
	}
	t.Logf("recovery %s; %s", e.settle(t), e.ledger.summary())
}

// blackHoleFor is how long the path to the database stays black-holed: long
// enough that only a Go-side deadline can answer within it.
func blackHoleFor() time.Duration {
	if chaosLong() {
		return 25 * time.Second
	}
	return 12 * time.Second
}

// A black-holed path (packets stop, sockets stay open) is answered with
// 503 before it heals, not hung, and the pool serves again after.
func TestChaosBlackHoleAndReturn(t *testing.T) {
	e := newChaosEnv(t, envOptions{pool: tenancy.PoolConfig{MaxOpen: 10, MaxIdle: 10}})
	e.onboard(t, "bh-a", "bh-b", "bh-c")
	stop := make(chan struct{})
	wg := e.load(4, stop)
	time.Sleep(time.Second)
	fault := time.Now()
	e.proxy.SetMode(faultproxy.BlackHole)
	time.Sleep(blackHoleFor())
	e.proxy.SetMode(faultproxy.Pass)
	back := time.Now()
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	toErr, toOK := e.timings(t, fault, back)
	e.checkDeadline(t)
	if toErr < 0 || toErr > blackHoleFor() {
		t.Errorf("no error answer within the %s black hole: nothing on the Go side bounds a wait on a dead path", blackHoleFor())
	}
	if toOK < 0 {
		t.Errorf("no success after the path returned")
	}
	e.ledger.mu.Lock()
	hung := 0
	for _, a := range e.ledger.answers {
		if a.status == 0 && a.end.Sub(a.start) >= clientTimeout {
			hung++
		}
	}
	e.ledger.mu.Unlock()
	if hung > 0 {
		t.Errorf("%d requests got no answer within %s", hung, clientTimeout)
	}
	t.Logf("recovery %s; %s", e.settle(t), e.ledger.summary())
}

// Onboarding cut at each of its statements leaves the tenant wholly absent
// or wholly present, and a retry ends with one complete tenant.
func TestChaosOnboardingCutAtEachStep(t *testing.T) {
	e := newChaosEnv(t, envOptions{pool: tenancy.PoolConfig{MaxOpen: 4, MaxIdle: 4}})
	// The first onboarding captures the blueprint; the cuts aim at the
	// onboarding transaction itself.
	e.onboard(t, "warm")
	steps := []struct {
		match string
		when  faultproxy.When
	}{
		{"begin", faultproxy.Before},
		{"pg_advisory_xact_lock", faultproxy.Before},
		{"count(*)", faultproxy.Before},
		{"create schema", faultproxy.Before},
		{"create schema", faultproxy.After},
		{`insert into "` + migrations.SharedSchema + `"."tenants"`, faultproxy.Before},
		{`insert into "` + migrations.SharedSchema + `"."tenants"`, faultproxy.After},
		{"commit", faultproxy.Before},
		{"commit", faultproxy.After},
	}
	for i, s := range steps {
		when := map[faultproxy.When]string{faultproxy.Before: "before", faultproxy.After: "after"}[s.when]
		name := fmt.Sprintf("onb%d", i)
		t.Run(when+" "+s.match, func(t *testing.T) {
			fired := e.proxy.CutOn(s.match, s.when)
			a := e.call(context.Background(), "POST", "/admin/tenants", e.admin, map[string]string{"name": name})
			e.ledger.record(a)
			select {
			case <-fired:
			case <-time.After(time.Second):
				e.proxy.Disarm()
				t.Fatalf("the onboarding never sent %q (answer %s)", s.match, statusOf(a))
			}
			e.quiesce(t)
			present := e.tenantState(t, name)
			t.Logf("cut %s %q: answer %d, tenant present=%v", when, s.match, a.status, present)
			if a.status == http.StatusCreated && !present {
				t.Errorf("201 for a tenant that is absent")
			}
			if s.when == faultproxy.Before && a.status != http.StatusCreated && present {
				t.Errorf("the statement never reached the server, yet the tenant is present")
			}
			if a.status != http.StatusCreated {
				// Retry: 201 if the first attempt left nothing, 409 if it
				// had committed; either way one complete tenant after.
				r := e.call(context.Background(), "POST", "/admin/tenants", e.admin, map[string]string{"name": name})
				e.ledger.record(r)
				wantStatus := http.StatusCreated
				if present {
					wantStatus = http.StatusConflict
				}
				if r.status != wantStatus {
					t.Errorf("retry: %s, want %d", statusOf(r), wantStatus)
				}
				if !e.tenantState(t, name) {
					t.Fatalf("after the retry the tenant is absent")
				}
			}
			tok, err := apiToken(e, name)
			if err != nil {
				t.Fatal(err)
			}
			e.tokens[name] = tok
			e.tenants = append(e.tenants, name)
			if a := e.create(context.Background(), name, 1); a.status != http.StatusCreated {
				t.Errorf("write to the onboarded tenant: %s", statusOf(a))
			}
		})
	}
	t.Logf("recovery %s; %s", e.settle(t), e.ledger.summary())
}

// tenantState reports whether tenant name is wholly present (registry row,
// schema and its items table) and fails the test if it is partly there.
func (e *chaosEnv) tenantState(t testing.TB, name string) bool {
	t.Helper()
	conn, ctx, done := e.adminConn(t, e.name)
	defer done()
	schema, err := tenancy.SchemaFor(name)
	if err != nil {
		t.Fatal(err)
	}
	var row, sch, tab bool
	err = conn.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM `+migrations.TenantsTable+` WHERE name = $1),
		to_regnamespace($2) IS NOT NULL,
		to_regclass($2 || '.items') IS NOT NULL`, name, schema).Scan(&row, &sch, &tab)
	if err != nil {
		t.Fatalf("tenant state: %v", err)
	}
	if row != sch || sch != tab {
		t.Errorf("tenant %s is half made: registry row %v, schema %v, items table %v", name, row, sch, tab)
	}
	return row && sch && tab
}

// Two tenants on different schema versions (one migrated to a step that
// adds a column) alternate on a pool of one connection, through backend
// kills and resets: each sees only its rows, and no request fails on the
// other's result shape.
func TestChaosSchemaVersionsOnPoolOfOne(t *testing.T) {
	plan := migrationstest.PlanWith(migrationstest.SKUStep)
	e := newChaosEnv(t, envOptions{pool: tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1}, plan: plan})
	// Both are onboarded at the shipped plan's version (onboarding captures
	// its blueprint from the models, which lack the new column); vnew is then
	// migrated to the newer one, as a fleet migration would.
	base := tenancy.NewDirectory(e.db)
	for _, n := range []string{"vold", "vnew"} {
		if _, err := base.Onboard(context.Background(), n); err != nil {
			t.Fatal(err)
		}
		tok, err := apiToken(e, n)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[n] = tok
		e.tenants = append(e.tenants, n)
	}
	sum, err := fleet.Migrate(context.Background(), e.dir, fleet.Options{Tenants: []string{"vnew"}})
	if rs := sum.Results; err != nil || len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("migrate vnew: %v %+v", err, sum)
	}
	conn, ctx, done := e.adminConn(t, e.name)
	var vOld, vNew int
	err = conn.QueryRow(ctx, `SELECT (SELECT schema_version FROM `+migrations.TenantsTable+` WHERE name = 'vold'),
		(SELECT schema_version FROM `+migrations.TenantsTable+` WHERE name = 'vnew')`).Scan(&vOld, &vNew)
	done()
	if err != nil {
		t.Fatal(err)
	}
	if vOld >= vNew {
		t.Fatalf("schema versions old=%d new=%d: the scenario needs two versions", vOld, vNew)
	}
	rounds := 150
	if chaosLong() {
		rounds = 2000
	}
	var failedOnFault int
	for i := 0; i < rounds; i++ {
		for _, n := range []string{"vold", "vnew"} {
			if a := e.create(context.Background(), n, i); a.status != http.StatusCreated {
				failedOnFault++
			}
			// The page holds the newest rows of both shapes.
			if a := e.list(context.Background(), n, max(0, i-50)); a.status != http.StatusOK {
				failedOnFault++
			}
		}
		switch i % 25 {
		case 10:
			e.kill(t, "")
		case 20:
			e.proxy.Reset()
		}
	}
	t.Logf("schema versions %d and %d, %d rounds; %d requests failed around kills and resets", vOld, vNew, rounds, failedOnFault)
	t.Logf("recovery %s; %s", e.settle(t), e.ledger.summary())
}

func apiToken(e *chaosEnv, tenant string) (string, error) {
	return token.IssueToken(e.auth, tenant, token.RoleTenant, time.Hour)
}

// soakSize is the soak's request budget per pool size, and its time cap.
func soakSize() (int, time.Duration) {
	if chaosLong() {
		// Three pool sizes: at least 100,000 requests in all.
		return 34_000, 30 * time.Minute
	}
	return 1_000, 90 * time.Second
}

// The soak: tenants tagged in every row, workers creating, listing and
// reading, a fault every few dozen milliseconds (a backend killed, all
// killed, the proxy's connections reset or cut) and clients that give up
// early, on pools of 1, 2 and 10 connections.
func TestChaosSoak(t *testing.T) {
	for _, size := range []int{1, 2, 10} {
		t.Run(fmt.Sprintf("pool=%d", size), func(t *testing.T) {
			e := newChaosEnv(t, envOptions{pool: tenancy.PoolConfig{MaxOpen: size, MaxIdle: size}})
			var names []string
			for i := 0; i < 10; i++ {
				names = append(names, fmt.Sprintf("soak%d", i))
			}
			e.onboard(t, names...)
			budget, limit := soakSize()
			var issued, seq atomic.Int64
			maxID := map[string]*atomic.Int64{}
			for _, n := range names {
				maxID[n] = &atomic.Int64{}
			}
			began := time.Now()
			deadline := began.Add(limit)
			stop := make(chan struct{})
			var faults sync.WaitGroup
			kinds := map[string]int{}
			var faultTimes []time.Time
			faults.Add(1)
			go func() {
				defer faults.Done()
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					var err error
					faultTimes = append(faultTimes, time.Now())
					switch rand.IntN(4) {
					case 0:
						_, err = e.killOneErr()
						kinds["kill one"]++
					case 1:
						_, err = e.killErr("")
						kinds["kill all"]++
					case 2:
						e.proxy.Reset()
						kinds["reset"]++
					case 3:
						e.proxy.Cut()
						kinds["cut"]++
					}
					if err != nil {
						t.Errorf("fault injection: %v", err)
						return
					}
				}
			}()
			var workers sync.WaitGroup
			for w := 0; w < 8; w++ {
				workers.Add(1)
				go func() {
					defer workers.Done()
					for issued.Add(1) <= int64(budget) && time.Now().Before(deadline) {
						n := names[rand.IntN(len(names))]
						ctx, cancel := context.Background(), context.CancelFunc(func() {})
						if rand.IntN(20) == 0 {
							// A client that gives up early: its write is unknown.
							ctx, cancel = context.WithTimeout(ctx, time.Duration(1+rand.IntN(30))*time.Millisecond)
						}
						switch r := rand.IntN(100); {
						case r < 45:
							a := e.create(ctx, n, int(seq.Add(1)))
							if a.status == http.StatusCreated {
								id := e.lastID(n)
								for {
									cur := maxID[n].Load()
									if id <= cur || maxID[n].CompareAndSwap(cur, id) {
										break
									}
								}
							}
						case r < 70:
							e.list(ctx, n, rand.IntN(int(maxID[n].Load())+1))
						default:
							e.get(ctx, n, 1+rand.Int64N(maxID[n].Load()+1))
						}
						cancel()
					}
				}()
			}
			workers.Wait()
			close(stop)
			faults.Wait()
			el := time.Since(began)
			t.Logf("pool of %d: %d requests in %s (%.0f/s); faults injected: %v", size, e.ledger.requests, el.Round(time.Millisecond),
				float64(e.ledger.requests)/el.Seconds(), kinds)
			// The worst time from a fault to the next success (kills and
			// resets are instant: the fault is also when recovery can begin).
			var worst time.Duration
			for _, ft := range faultTimes {
				if d := e.ledger.firstAfter(ft, isSuccess); d > worst {
					worst = d
				}
			}
			t.Logf("pool of %d: fault -> next success: worst %s over %d faults", size, worst.Round(time.Millisecond), len(faultTimes))
			e.checkDeadline(t)
			t.Logf("recovery %s; %s", e.settle(t), e.ledger.summary())
		})
	}
}

// lastID is the id of tenant's most recent acknowledged create.
func (e *chaosEnv) lastID(tenant string) int64 {
	e.ledger.mu.Lock()
	defer e.ledger.mu.Unlock()
	for i := len(e.ledger.writes) - 1; i >= 0; i-- {
		if w := e.ledger.writes[i]; w.tenant == tenant && w.out == opOK {
			return w.id
		}
	}
	return 0
}

// A request that runs to its deadline must not poison the keep-alive
// connection it came on. The black-hole scenario found this: the deadline
// middleware sets the connection's read deadline to the request's, and when
// it expires while the handler still runs, net/http's background read fails
// and cancels the connection's base context, so every later request on that
// connection starts cancelled and is answered 503 in under a millisecond
// ("client went away") until the client closes it.
func TestChaosKeepAliveSurvivesARequestAtItsDeadline(t *testing.T) {
	e := newChaosEnv(t, envOptions{pool: tenancy.PoolConfig{MaxOpen: 2, MaxIdle: 2}, requestTimeout: time.Second})
	e.onboard(t, "keep")
	// Sequential requests reuse the client's one idle keep-alive connection.
	ctx := context.Background()
	a := e.call(ctx, "GET", "/_test/sleep?s=3", e.tokens["keep"], nil)
	e.ledger.record(a)
	if a.status != http.StatusServiceUnavailable {
		t.Fatalf("a request past its deadline: %s, want 503", statusOf(a))
	}
	for i := 0; i < 3; i++ {
		if a := e.list(ctx, "keep", 0); a.status != http.StatusOK {
			t.Errorf("request %d on the same connection after a deadline: %s", i, statusOf(a))
		}
	}
	t.Logf("recovery %s; %s", e.settle(t), e.ledger.summary())
}
