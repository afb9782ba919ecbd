package api_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"github.com/tenantry/tenantry/token"
)

// holdProxy forwards loopback TCP to upstream until hold is set; then it
// forwards nothing and answers nothing, on old connections and new ones,
// while keeping every socket open: a black-holed path.
type holdProxy struct {
	ln       net.Listener
	addr     string
	upstream string
	hold     atomic.Bool
	mu       sync.Mutex
	conns    []net.Conn
}

func newHoldProxy(t *testing.T, upstream string) *holdProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{ln: ln, addr: ln.Addr().String(), upstream: upstream}
	go p.serve(ln)
	t.Cleanup(p.close)
	return p
}

// up listens again on the proxy's address after close: the database is
// back.
func (p *holdProxy) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.serve(ln)
}

func (p *holdProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

// close resets every connection and refuses new ones: the database is
// down.
func (p *holdProxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *holdProxy) serve(ln net.Listener) {
	for {
		down, err := ln.Accept()
		if err != nil {
			return
		}
		p.track(down)
		go func() {
			for p.hold.Load() { // a new connection into the hole: silence
				time.Sleep(5 * time.Millisecond)
			}
			up, err := net.Dial("tcp", p.upstream)
			if err != nil {
				down.Close()
				return
			}
			p.track(up)
			go p.pipe(up, down)
			p.pipe(down, up)
		}()
	}
}

// pipe copies src to dst, stalling (not dropping) while the hole is on.
func (p *holdProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for p.hold.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// proxied returns dbURL with its host replaced by the proxy's address.
func (p *holdProxy) url(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.addr
	return u.String()
}

func hostOf(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// A black-holed database path: every request, whether it waits in the
// tenant lookup, in the scope's BEGIN or for a new connection, is answered
// 503 with Retry-After by its deadline, instead of hanging for as long as
// the fault lasts; when the path returns, the pool recovers by itself.
func TestBlackHoledDatabaseIsAnswered503ByTheDeadline(t *testing.T) {
	te := tenancytest.New(t, tenancy.PoolConfig{MaxOpen: 2, MaxIdle: 2})
	direct, dbURL := te.Admin, te.URL // direct: the schemas' owner, to inspect them
	dirDirect := te.Directory()
	for _, n := range []string{"acme", "globex"} {
		if _, err := dirDirect.Onboard(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	p := newHoldProxy(t, hostOf(t, dbURL))
	db := tenancytest.Connect(t, p.url(t, dbURL), tenancy.PoolConfig{MaxOpen: 3, MaxIdle: 3})
	logs := &syncBuffer{}
	const deadline = 300 * time.Millisecond
	srv, err := api.NewServer(tenancy.NewDirectory(db), api.Config{Auth: token.Config{Secret: testSecret},
		RequestTimeout: deadline, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{db: db, srv: srv, auth: token.Config{Secret: testSecret}, logs: logs}
	acme, globex := s.token(t, "acme", false), s.token(t, "globex", false)
	want(t, s.do(t, "GET", "/items", acme, nil), http.StatusOK) // acme is cached now; globex is not

	p.hold.Store(true)
	for _, tc := range []struct {
		name, method, token string
		body                any
	}{
		{"scope of a cached tenant", "GET", acme, nil},
		{"tenant lookup", "GET", globex, nil},
		{"write", "POST", acme, map[string]string{"name": "lost"}},
		{"write again, pool slots held by the hole", "POST", acme, map[string]string{"name": "lost"}},
	} {
		start := time.Now()
		r := s.do(t, tc.method, "/items", tc.token, tc.body)
		elapsed := time.Since(start)
		want(t, r, http.StatusServiceUnavailable)
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", tc.name)
		}
		// A bound, not a speed claim: without the deadline the request
		// waits as long as the hole lasts (forever here).
		t.Logf("%s: %d after %s (deadline %s)", tc.name, r.status, elapsed.Round(time.Millisecond), deadline)
		if elapsed > deadline+5*time.Second {
			t.Errorf("%s: answered after %s; the deadline is %s", tc.name, elapsed, deadline)
		}
	}
	if !strings.Contains(logs.String(), `"ended":"deadline exceeded"`) {
		t.Error("the access log does not say the requests hit their deadline")
	}
	p.hold.Store(false)
	back := time.Now()
	waitUntil(t, 15*time.Second, func() bool { return s.do(t, "GET", "/items", globex, nil).status == http.StatusOK })
	t.Logf("first 200 %s after the path returned", time.Since(back).Round(time.Millisecond))
	var n int64
	if err := direct.Raw("SELECT count(*) FROM t_acme.items WHERE name = 'lost'").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d writes answered 503 were committed", n)
	}
}

func waitUntil(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// activeSleeps counts backends of this database running pg_sleep.
func activeSleeps(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	var n int
	err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state = 'active' AND query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A client that leaves mid-request cancels the request's context, and that
// ends the statement in PostgreSQL too, not only the Go side (pgx closes the
// connection and sends a cancel request): the backend stops sleeping long
// before its one-minute statement would end, and the write is rolled back.
func TestClientThatLeavesCancelsItsDatabaseWork(t *testing.T) {
	te := tenancytest.New(t, tenancy.PoolConfig{MaxOpen: 2, MaxIdle: 2})
	db, dbURL := te.DB, te.URL
	logs := &syncBuffer{}
	srv, err := api.NewServer(tenancy.NewDirectory(db), api.Config{Auth: token.Config{Secret: testSecret},
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	api.AddSlowRoute(srv)
	s := &stack{db: db, srv: srv, auth: token.Config{Secret: testSecret}, logs: logs}
	s.onboard(t, "acme")
	hs := httptest.NewServer(srv)
	defer hs.Close()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	ctx, leave := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", hs.URL+"/_test/slow", nil)
	req.Header.Set("Authorization", "Bearer "+s.token(t, "acme", false))
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitUntil(t, 10*time.Second, func() bool { return activeSleeps(t, conn) == 1 })
	leave()
	if err := <-done; err == nil {
		t.Fatal("the client's request completed although it left")
	}
	waitUntil(t, 20*time.Second, func() bool { return activeSleeps(t, conn) == 0 })
	waitUntil(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), `"ended":"client went away"`) })
	var n int64
	if err := te.Admin.Raw("SELECT count(*) FROM t_acme.items").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("the abandoned request's write was committed (%d items)", n)
	}
}

// A body that does not arrive by the request's deadline gets 408 and
// changes nothing; the connection is not held past the deadline.
func TestStalledBodyGets408(t *testing.T) {
	te := tenancytest.New(t, tenancy.PoolConfig{MaxOpen: 2, MaxIdle: 2})
	db := te.DB
	srv, err := api.NewServer(tenancy.NewDirectory(db), api.Config{Auth: token.Config{Secret: testSecret},
		RequestTimeout: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{db: db, srv: srv, auth: token.Config{Secret: testSecret}, logs: &syncBuffer{}}
	// Onboarding through the API could outlast this server's short deadline
	// on a busy machine; the directory has none.
	if _, err := tenancy.NewDirectory(db).Onboard(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	c, err := net.Dial("tcp", strings.TrimPrefix(hs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// Promise 40 bytes, send 10, then stall.
	_, err = io.WriteString(c, "POST /items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
		"Authorization: Bearer "+s.token(t, "acme", false)+"\r\nContent-Length: 40\r\n\r\n{\"name\":\"")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("stalled body: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var n int64
	if err := te.Admin.Raw("SELECT count(*) FROM t_acme.items").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d items after a stalled body", n)
	}
}

// While the database is down (every connection reset, new ones refused)
// and as it comes back, constant load gets only 200s and 503s with
// Retry-After: never a 500. The pool recovers without a restart.
func TestDatabaseOutageIsAnswered503Never500(t *testing.T) {
	direct, dbURL := tenancytest.Open(t, tenancy.PoolConfig{MaxOpen: 2, MaxIdle: 2})
	for _, n := range []string{"acme", "globex"} {
		if _, err := tenancy.NewDirectory(direct).Onboard(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	p := newHoldProxy(t, hostOf(t, dbURL))
	db := tenancytest.Connect(t, p.url(t, dbURL), tenancy.PoolConfig{MaxOpen: 4, MaxIdle: 4})
	// A directory without a cache, so lookups meet the outage too.
	srv, err := api.NewServer(tenancy.NewDirectory(db, tenancy.WithTTL(0)), api.Config{Auth: token.Config{Secret: testSecret},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{db: db, srv: srv, auth: token.Config{Secret: testSecret}}
	tokens := []string{s.token(t, "acme", false), s.token(t, "globex", false)}

	var mu sync.Mutex
	counts := map[string]int{}
	var bad []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req := httptest.NewRequest("GET", "/items", nil)
				if i%2 == 1 {
					req = httptest.NewRequest("POST", "/items", strings.NewReader(`{"name":"x"}`))
				}
				req.Header.Set("Authorization", "Bearer "+tokens[(w+i)%2])
				rec := httptest.NewRecorder()
				s.srv.ServeHTTP(rec, req)
				key := req.Method + " " + http.StatusText(rec.Code)
				mu.Lock()
				counts[key]++
				if rec.Code >= 500 && (rec.Code != 503 || rec.Header().Get("Retry-After") == "") {
					if len(bad) < 5 {
						bad = append(bad, rec.Body.String())
					}
					counts["bad"]++
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	p.close()
	time.Sleep(time.Second)
	p.up(t)
	waitUntil(t, 15*time.Second, func() bool {
		return s.do(t, "GET", "/items", tokens[0], nil).status == http.StatusOK
	})
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("responses during a 1 s outage under 4 clients: %v", counts)
	if counts["bad"] > 0 {
		t.Fatalf("%d answers were 5xx other than 503 with Retry-After; first: %v", counts["bad"], bad)
	}
	if counts["GET Service Unavailable"]+counts["POST Service Unavailable"] == 0 {
		t.Fatal("no request met the outage: the test proved nothing")
	}
}
