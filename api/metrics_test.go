package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"github.com/tenantry/tenantry/token"
)

func TestMetricsUseRouteTemplatesAndNoTenantLabel(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil)
	s.onboard(t, "acme")
	acme := s.token(t, "acme", false)
	want(t, s.do(t, "POST", "/items", acme, map[string]string{"name": "x"}), http.StatusCreated)
	want(t, s.do(t, "GET", "/items/4242", acme, nil), http.StatusNotFound)
	r := s.do(t, "GET", "/metrics", "", nil)
	if r.status != 200 {
		t.Fatalf("/metrics = %d", r.status)
	}
	body := string(r.body)
	for _, series := range []string{
		`tenantry_http_requests_total{method="GET",route="/items/:id",status="404"} 1`,
		`tenantry_http_requests_total{method="POST",route="/admin/tenants",status="201"} 1`,
		`tenantry_http_request_duration_seconds_count{method="POST",route="/items",status="201"} 1`,
		`tenantry_onboarding_duration_seconds_count{outcome="ok"} 1`,
		`tenantry_tenant_scope_duration_seconds_count{outcome="ok"} 1`,
		`tenantry_tenant_scope_duration_seconds_count{outcome="error"} 1`,
		`tenantry_http_requests_in_flight 1`, // the /metrics request itself
		`go_sql_max_open_connections{db_name="tenantry"} 20`,
		`tenantry_tenants{schema_version="1"} 1`,
		`tenantry_tenants_behind 0`,
	} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	if strings.Contains(body, "acme") || strings.Contains(body, "/items/4242") {
		t.Errorf("/metrics carries a tenant name or a raw path id:\n%s", body)
	}
	// Made-up methods share one label value.
	for _, m := range []string{"JUNK1", "JUNK2", "BREW"} {
		s.doRaw(t, m, "/healthz", "", "", nil)
	}
	body = string(s.do(t, "GET", "/metrics", "", nil).body)
	if strings.Contains(body, "JUNK") || strings.Contains(body, "BREW") ||
		!strings.Contains(body, `tenantry_http_requests_total{method="other",route="unmatched",status="405"} 3`) {
		t.Errorf("made-up methods were not folded into method=\"other\":\n%s", body)
	}
}

func TestTenantLabelIsCapped(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil)
	s.onboard(t, "acme", "globex", "initech")
	srv, err := api.NewServer(s.te.Directory(tenancy.WithTTL(0)), api.Config{Auth: s.auth, TenantLabelCap: 2,
		MetricsToken: metricsToken, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	capped := &stack{db: s.db, ddl: s.ddl, te: s.te, srv: srv, auth: s.auth}
	// Tokens of tenants that do not exist take no label slot.
	for _, n := range []string{"ghost1", "ghost2"} {
		want(t, capped.do(t, "GET", "/items", capped.token(t, n, false), nil), http.StatusForbidden)
	}
	for _, n := range []string{"acme", "globex", "initech", "acme"} {
		want(t, capped.do(t, "GET", "/items", capped.token(t, n, false), nil), http.StatusOK)
	}
	body := string(capped.do(t, "GET", "/metrics", metricsToken, nil).body)
	for _, series := range []string{
		`tenantry_tenant_requests_total{status="200",tenant="acme"} 2`,
		`tenantry_tenant_requests_total{status="200",tenant="globex"} 1`,
		`tenantry_tenant_requests_total{status="200",tenant="_other"} 1`,
	} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	if strings.Contains(body, `tenant="initech"`) || strings.Contains(body, "ghost") {
		t.Error("a tenant past the cap got its own series")
	}
}

const metricsToken = "a-metrics-scraper-token"

// Tenant names reach only a caller with the metrics token (or the internal
// metrics address): anonymous scrapes get 401 when a token is configured,
// and without one they get the series that name no tenant.
func TestMetricsNeverNameTenantsToAnAnonymousCaller(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil)
	s.onboard(t, "acme")
	newSrv := func(cfg api.Config) *stack {
		cfg.Auth, cfg.TenantLabelCap, cfg.Logger = s.auth, 10, slog.New(slog.DiscardHandler)
		srv, err := api.NewServer(tenancy.NewDirectory(s.db), cfg)
		if err != nil {
			t.Fatal(err)
		}
		st := &stack{db: s.db, srv: srv, auth: s.auth}
		want(t, st.do(t, "GET", "/items", st.token(t, "acme", false), nil), http.StatusOK)
		return st
	}
	const series = `tenantry_tenant_requests_total{status="200",tenant="acme"} 1`

	open := newSrv(api.Config{})
	r := open.do(t, "GET", "/metrics", "", nil)
	if r.status != 200 || strings.Contains(string(r.body), "acme") || !strings.Contains(string(r.body), "tenantry_http_requests_total") {
		t.Fatalf("anonymous /metrics without a token: %d, names a tenant or lacks the HTTP series:\n%s", r.status, r.body)
	}

	guarded := newSrv(api.Config{MetricsToken: metricsToken})
	for _, tok := range []string{"", "wrong-token", metricsToken + "x"} {
		r := guarded.do(t, "GET", "/metrics", tok, nil)
		want(t, r, http.StatusUnauthorized)
		if strings.Contains(string(r.body), "acme") {
			t.Fatal("a refused scrape names a tenant")
		}
	}
	if r := guarded.do(t, "GET", "/metrics", metricsToken, nil); r.status != 200 || !strings.Contains(string(r.body), series) {
		t.Fatalf("/metrics with the token: %d, lacks %s", r.status, series)
	}

	elsewhere := newSrv(api.Config{MetricsElsewhere: true})
	want(t, elsewhere.do(t, "GET", "/metrics", "", nil), http.StatusNotFound)
	rec := httptest.NewRecorder()
	elsewhere.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), series) {
		t.Fatalf("internal metrics handler: %d, lacks %s", rec.Code, series)
	}
}

// While the database is unreachable a scrape still succeeds and says so
// with tenantry_collector_up, and /readyz answers 503 with Retry-After.
func TestMetricsAndReadinessDuringAnOutage(t *testing.T) {
	db, dbURL := tenancytest.Open(t, tenancy.DefaultPool)
	p := newHoldProxy(t, hostOf(t, dbURL))
	mon, err := tenancy.OpenMonitor(context.Background(), p.url(t, dbURL))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mon.Close() })
	srv, err := api.NewServer(tenancy.NewDirectory(db), api.Config{Auth: token.Config{Secret: testSecret}, Monitor: mon,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{db: db, srv: srv, auth: token.Config{Secret: testSecret}}
	want(t, s.do(t, "GET", "/readyz", "", nil), http.StatusOK)
	if body := string(s.do(t, "GET", "/metrics", "", nil).body); !strings.Contains(body, `tenantry_collector_up{collector="fleet"} 1`) {
		t.Fatalf("healthy scrape lacks collector_up 1:\n%s", body)
	}
	p.close() // the database goes away: connections reset, new ones refused
	r := s.do(t, "GET", "/readyz", "", nil)
	want(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Error("/readyz 503 without Retry-After")
	}
	r = s.do(t, "GET", "/metrics", "", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `tenantry_collector_up{collector="fleet"} 0`) ||
		!strings.Contains(string(r.body), "tenantry_http_requests_total") {
		t.Fatalf("scrape during the outage: %d\n%s", r.status, r.body)
	}
}

// /readyz has its own connection budget: with every tenant-pool slot taken
// it still answers 200, where a probe through the tenant pool fails.
func TestReadinessDoesNotQueueBehindTenantWork(t *testing.T) {
	db, dbURL := tenancytest.Open(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1})
	mon, err := tenancy.OpenMonitor(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mon.Close() })
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	held, err := sqlDB.Conn(context.Background()) // the pool's only slot
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for _, tc := range []struct {
		name string
		mon  *tenancy.Monitor
		want int
	}{{"own budget", mon, http.StatusOK}, {"shared pool", nil, http.StatusServiceUnavailable}} {
		srv, err := api.NewServer(tenancy.NewDirectory(db), api.Config{Auth: token.Config{Secret: testSecret}, Monitor: tc.mon,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		s := &stack{db: db, srv: srv}
		if r := s.do(t, "GET", "/readyz", "", nil); r.status != tc.want {
			t.Errorf("%s: /readyz = %d, want %d", tc.name, r.status, tc.want)
		}
	}
}
