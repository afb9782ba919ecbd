package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/problem"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"github.com/tenantry/tenantry/token"
	"gorm.io/gorm"
)

// newStackWith is newStack with the server's rate limit set.
func newStackWith(t testing.TB, pool tenancy.PoolConfig, rl api.RateLimit) *stack {
	t.Helper()
	db, _ := tenancytest.Open(t, pool)
	auth := token.Config{Secret: testSecret}
	logs := &syncBuffer{}
	dir := tenancy.NewDirectory(db)
	srv, err := api.NewServer(dir, api.Config{Auth: auth, RateLimit: rl,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return &stack{db: db, dir: dir, srv: srv, auth: auth, logs: logs}
}

// seedItems inserts n items into tenant name's schema in one statement.
func (s *stack) seedItems(t testing.TB, name string, n int) {
	t.Helper()
	ten, err := s.dir.Active(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	err = tenancy.WithTx(context.Background(), ten, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO items (name, description, created_at, updated_at)
			SELECT 'item ' || g, 'd', now(), now() FROM generate_series(1, $1) g`, n).Error
	})
	if err != nil {
		t.Fatal(err)
	}
}

var (
	policyField = regexp.MustCompile(`^"tenant";q=(\d+);w=(\d+)$`)
	limitField  = regexp.MustCompile(`^"tenant";r=(\d+);t=(\d+)$`)
)

// A tenant past its burst gets 429 problem+json with Retry-After and the
// RateLimit fields, before any database work; another tenant's bucket is
// its own.
func TestRateLimitAnswers429PerTenant(t *testing.T) {
	s := newStackWith(t, tenancy.DefaultPool, api.RateLimit{PerSecond: 0.5, Burst: 3})
	s.onboard(t, "chatty", "calm")
	chatty, calm := s.token(t, "chatty", false), s.token(t, "calm", false)
	for i := range 3 {
		r := s.do(t, "GET", "/items", chatty, nil)
		want(t, r, http.StatusOK)
		if got := r.header.Get("RateLimit-Policy"); !policyField.MatchString(got) || got != `"tenant";q=3;w=6` {
			t.Fatalf("RateLimit-Policy = %q, want \"tenant\";q=3;w=6", got)
		}
		m := limitField.FindStringSubmatch(r.header.Get("RateLimit"))
		if m == nil || m[1] != strconv.Itoa(2-i) {
			t.Fatalf("request %d: RateLimit = %q, want r=%d", i, r.header.Get("RateLimit"), 2-i)
		}
	}
	r := s.do(t, "POST", "/items", chatty, map[string]string{"name": "one too many"})
	want(t, r, http.StatusTooManyRequests)
	// An empty bucket refills one token in 2 s at 0.5/s.
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After = %q, want 1 or 2 seconds", r.header.Get("Retry-After"))
	}
	if m := limitField.FindStringSubmatch(r.header.Get("RateLimit")); m == nil || m[1] != "0" {
		t.Fatalf("RateLimit on the 429 = %q, want r=0", r.header.Get("RateLimit"))
	}
	want(t, s.do(t, "GET", "/items", calm, nil), http.StatusOK)

	// The refused write changed nothing.
	if n := s.itemCount(t, "chatty"); n != 0 {
		t.Fatalf("items after a refused create = %d, want 0", n)
	}
}

// Without a rate limit configured no RateLimit fields are sent.
func TestNoRateLimitByDefault(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil)
	s.onboard(t, "acme")
	r := s.do(t, "GET", "/items", s.token(t, "acme", false), nil)
	want(t, r, http.StatusOK)
	if h := r.header.Get("RateLimit"); h != "" {
		t.Fatalf("RateLimit = %q with no limit configured", h)
	}
}

// ?after= walks every item exactly once in id order, and refuses to be
// mixed with offset or to be anything but a non-negative id.
func TestKeysetPaginationWalksEveryItemOnce(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil)
	s.onboard(t, "acme")
	s.seedItems(t, "acme", 25)
	tok := s.token(t, "acme", false)
	var seen []int64
	after := int64(0)
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("pagination does not end")
		}
		r := s.do(t, "GET", fmt.Sprintf("/items?limit=10&after=%d", after), tok, nil)
		want(t, r, http.StatusOK)
		var items []models.Item
		r.json(t, &items)
		if len(items) == 0 {
			break
		}
		for _, it := range items {
			if it.ID <= after {
				t.Fatalf("page after %d holds id %d", after, it.ID)
			}
			seen = append(seen, it.ID)
			after = it.ID
		}
	}
	if len(seen) != 25 {
		t.Fatalf("walked %d items, want 25: %v", len(seen), seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Fatalf("ids not increasing: %v", seen)
		}
	}
	for _, q := range []string{"after=-1", "after=x", "after=1.5", "after=99999999999999999999", "after=3&offset=2"} {
		want(t, s.do(t, "GET", "/items?"+q, tok, nil), http.StatusBadRequest)
	}
	// after=0 is the first page; offset=0 beside after is no offset at all.
	want(t, s.do(t, "GET", "/items?after=0&offset=0", tok, nil), http.StatusOK)
}

// flood is one run of the fairness scenario: tenant "trickle" sends a
// steady trickle of point reads, first alone, then while tenant "flooder"
// sends 1000-row pages from 32 clients without pause.
type flood struct {
	unloaded, loaded        []time.Duration // the trickle's latencies
	trickle, flooder, ready statusCounts
}

const (
	floodClients    = 32
	trickleInterval = 20 * time.Millisecond
	// floodRefusedPause stands for a remote client's round trip after a 429.
	floodRefusedPause = 10 * time.Millisecond
)

// setupFlood onboards the two tenants of the scenario and returns their tokens.
func setupFlood(tb testing.TB, s *stack) (trickle, flooder string) {
	tb.Helper()
	admin := s.token(tb, "", true)
	for _, n := range []string{"trickle", "flooder"} {
		req := httptest.NewRequest("POST", "/admin/tenants", strings.NewReader(`{"name":"`+n+`"}`))
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		s.srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			tb.Fatalf("onboard %s: %d %s", n, rec.Code, rec.Body)
		}
	}
	s.seedItems(tb, "trickle", 100)
	s.seedItems(tb, "flooder", 1000)
	return s.token(tb, "trickle", false), s.token(tb, "flooder", false)
}

func (s *stack) get(path, token string) (int, time.Duration) {
	req := httptest.NewRequest("GET", path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	start := time.Now()
	s.srv.ServeHTTP(rec, req)
	return rec.Code, time.Since(start)
}

// runFlood runs the scenario with n trickle requests in each phase.
func runFlood(s *stack, trickle, flooder string, n int) *flood {
	f := &flood{}
	sample := func(into *[]time.Duration) {
		for i := range n {
			code, d := s.get(fmt.Sprintf("/items/%d", 1+i%100), trickle)
			f.trickle.add(code)
			*into = append(*into, d)
			if i%10 == 0 {
				code, _ := s.get("/readyz", "")
				f.ready.add(code)
			}
			time.Sleep(trickleInterval)
		}
	}
	// Warm up: the first reads on fresh connections load the catalog.
	var warm []time.Duration
	sample(&warm)
	f.trickle = statusCounts{}
	f.ready = statusCounts{}
	sample(&f.unloaded)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range floodClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				code, _ := s.get("/items?limit=1000", flooder)
				f.flooder.add(code)
				if code == http.StatusTooManyRequests {
					// The flooders share this process's CPU with the
					// server; a refused client that spun at once would
					// measure the load generator, not the server. A
					// client across a network pays a round trip anyway.
					time.Sleep(floodRefusedPause)
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // the flood fills the pool first
	sample(&f.loaded)
	stop()
	wg.Wait()
	return f
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)]
}

// burst sends each of clients' n point reads as the last one is answered,
// with tenant's token, and counts the answers into into.
func burst(s *stack, token string, clients, n int, into *statusCounts) {
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := range n {
				code, _ := s.get(fmt.Sprintf("/items/%d", 1+i%100), token)
				into.add(code)
			}
		})
	}
	wg.Wait()
}

// One tenant floods with 32 clients while another sends a steady trickle:
// the trickle gets no 429 and no 503, and neither does /readyz; the
// flooder is answered 429, never a 5xx. How the trickle's latency holds up
// is measured, not asserted (BenchmarkTrickleUnderFlood).
func TestFloodingTenantCannotStarveAnother(t *testing.T) {
	s := newStackWith(t, tenancy.DefaultPool, api.DefaultRateLimit)
	trickle, flooder := setupFlood(t, s)
	f := runFlood(s, trickle, flooder, 50)
	tr, fl, rd := f.trickle.get(), f.flooder.get(), f.ready.get()
	t.Logf("trickle %v, readyz %v, flooder %v; trickle p99 %s alone, %s under the flood",
		tr, rd, fl, percentile(f.unloaded, 0.99), percentile(f.loaded, 0.99))
	if len(tr) != 1 || tr[http.StatusOK] != 100 {
		t.Errorf("trickle statuses %v, want 200 OKs only", tr)
	}
	if len(rd) != 1 || rd[http.StatusOK] == 0 {
		t.Errorf("readyz statuses %v, want 200 only", rd)
	}
	if fl[http.StatusTooManyRequests] == 0 {
		// 32 clients of 1000-row pages under the race detector on two
		// cores send about 40-80 pages a second: below DefaultRateLimit,
		// and once those pages stopped taking long enough for the share's
		// wait to run out, no 429 at all. So the flooder also sends point
		// reads as fast as it can, far above its rate, which must be
		// refused.
		burst(s, flooder, 8, 60, &f.flooder)
		fl = f.flooder.get()
		t.Logf("flooder after a burst of point reads: %v", fl)
	}
	if fl[http.StatusTooManyRequests] == 0 {
		t.Errorf("flooder statuses %v, want some 429", fl)
	}
	for code, n := range fl {
		if code != http.StatusOK && code != http.StatusTooManyRequests {
			t.Errorf("flooder: %d answers %d", n, code)
		}
	}
}

// BenchmarkTrickleUnderFlood measures the trickle's latency alone and
// under the flood, in one run, with the fairness defaults (a quarter of the
// pool per tenant, DefaultRateLimit) and with both turned off, and reports
// p99 loaded / p99 unloaded for each. Run:
//
//	go test ./api -run '^$' -bench TrickleUnderFlood -benchtime 1x -count 3
func BenchmarkTrickleUnderFlood(b *testing.B) {
	for _, tc := range []struct {
		name string
		pool tenancy.PoolConfig
		rl   api.RateLimit
	}{
		{"fair", tenancy.DefaultPool, api.DefaultRateLimit},
		{"share-only", tenancy.DefaultPool, api.RateLimit{}},
		{"unfair", tenancy.PoolConfig{MaxOpen: 20, MaxIdle: 10, TenantShare: -1}, api.RateLimit{}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := newStackWith(b, tc.pool, tc.rl)
			trickle, flooder := setupFlood(b, s)
			var unloaded, loaded []time.Duration
			errs, flood429, floodOK := 0, 0, 0
			for b.Loop() {
				f := runFlood(s, trickle, flooder, 200)
				unloaded, loaded = append(unloaded, f.unloaded...), append(loaded, f.loaded...)
				for code, n := range f.trickle.get() {
					if code != http.StatusOK {
						errs += n
					}
				}
				flood429 += f.flooder.get()[http.StatusTooManyRequests]
				floodOK += f.flooder.get()[http.StatusOK]
			}
			p99u, p99l := percentile(unloaded, 0.99), percentile(loaded, 0.99)
			b.ReportMetric(float64(p99u.Microseconds())/1000, "p99-alone-ms")
			b.ReportMetric(float64(p99l.Microseconds())/1000, "p99-flood-ms")
			b.ReportMetric(float64(p99l)/float64(p99u), "p99-ratio")
			b.ReportMetric(float64(errs), "trickle-errors")
			b.ReportMetric(float64(flood429), "flood-429s")
			b.ReportMetric(float64(floodOK), "flood-200s")
		})
	}
}

func newStackQuota(t *testing.T, q api.Quota) *stack {
	t.Helper()
	db, _ := tenancytest.Open(t, tenancy.DefaultPool)
	auth := token.Config{Secret: testSecret}
	dir := tenancy.NewDirectory(db)
	srv, err := api.NewServer(dir, api.Config{Auth: auth, Quota: q})
	if err != nil {
		t.Fatal(err)
	}
	return &stack{db: db, dir: dir, srv: srv, auth: auth, logs: &syncBuffer{}}
}

func (s *stack) itemCount(t *testing.T, name string) int64 {
	t.Helper()
	ten, err := s.dir.Active(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := tenancy.WithTx(context.Background(), ten, func(tx *gorm.DB) error {
		return tx.Model(&models.Item{}).Count(&n).Error
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func problemType(t *testing.T, r response) string {
	t.Helper()
	var p problem.Problem
	r.json(t, &p)
	return p.Type
}

// With an item quota of 3, the fourth create is refused with 403
// quota-exceeded and writes nothing; after a delete there is room again.
// Other tenants have quotas of their own.
func TestItemQuotaRefusesTheWriteOverIt(t *testing.T) {
	s := newStackQuota(t, api.Quota{Items: 3})
	s.onboard(t, "small", "other")
	tok := s.token(t, "small", false)
	for i := range 3 {
		want(t, s.do(t, "POST", "/items", tok, map[string]string{"name": fmt.Sprint("n", i)}), http.StatusCreated)
	}
	r := s.do(t, "POST", "/items", tok, map[string]string{"name": "over"})
	want(t, r, http.StatusForbidden)
	if got := problemType(t, r); got != "urn:tenantry:problem:quota-exceeded" {
		t.Fatalf("problem type = %q, want quota-exceeded", got)
	}
	if n := s.itemCount(t, "small"); n != 3 {
		t.Fatalf("items after the refused create = %d, want 3", n)
	}
	want(t, s.do(t, "POST", "/items", s.token(t, "other", false), map[string]string{"name": "x"}), http.StatusCreated)
	want(t, s.do(t, "DELETE", "/items/1", tok, nil), http.StatusNoContent)
	want(t, s.do(t, "POST", "/items", tok, map[string]string{"name": "room again"}), http.StatusCreated)
}

// A byte quota smaller than the tenant's empty tables refuses creates and
// updates alike, and the item stays as it was.
func TestByteQuotaRefusesCreatesAndUpdates(t *testing.T) {
	s := newStackQuota(t, api.Quota{})
	s.onboard(t, "tiny")
	tok := s.token(t, "tiny", false)
	want(t, s.do(t, "POST", "/items", tok, map[string]string{"name": "before"}), http.StatusCreated)

	s2 := &stack{db: s.db, dir: s.dir, auth: s.auth, logs: s.logs}
	srv, err := api.NewServer(s.dir, api.Config{Auth: s.auth, Quota: api.Quota{Bytes: 1}})
	if err != nil {
		t.Fatal(err)
	}
	s2.srv = srv
	r := s2.do(t, "POST", "/items", tok, map[string]string{"name": "more"})
	want(t, r, http.StatusForbidden)
	if got := problemType(t, r); got != "urn:tenantry:problem:quota-exceeded" {
		t.Fatalf("problem type = %q, want quota-exceeded", got)
	}
	want(t, s2.do(t, "PUT", "/items/1", tok, map[string]string{"name": "bigger"}), http.StatusForbidden)
	r = s2.do(t, "GET", "/items/1", tok, nil)
	want(t, r, http.StatusOK)
	var it models.Item
	r.json(t, &it)
	if it.Name != "before" {
		t.Fatalf("item after a refused update = %q, want before", it.Name)
	}
	if n := s.itemCount(t, "tiny"); n != 1 {
		t.Fatalf("items = %d, want 1", n)
	}
}

// A tenant whose scopes hold its whole share of the pool gets 429 problem+
// json with Retry-After for one more, while another tenant is served.
func TestTenantOverItsPoolShareGets429(t *testing.T) {
	s := newStack(t, tenancy.PoolConfig{MaxOpen: 4, MaxIdle: 4, TenantShare: 1, TenantWait: 50 * time.Millisecond}, nil)
	api.AddFaultRoutes(s.srv)
	s.onboard(t, "hog", "other")
	hog, other := s.token(t, "hog", false), s.token(t, "other", false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- s.raw(ctx, "GET", "/_test/sleep", hog).Code }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := s.db.Raw("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(%' AND datname = current_database() AND pid <> pg_backend_pid()").Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the holding request never reached the database")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := s.do(t, "GET", "/items", hog, nil)
	want(t, r, http.StatusTooManyRequests)
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	if got := problemType(t, r); got != "urn:tenantry:problem:too-many-requests" {
		t.Errorf("problem type = %q", got)
	}
	want(t, s.do(t, "GET", "/items", other, nil), http.StatusOK)
	cancel()
	if code := <-done; code < 500 {
		t.Fatalf("cancelled holding request answered %d", code)
	}
	want(t, s.do(t, "GET", "/items", hog, nil), http.StatusOK)
}
