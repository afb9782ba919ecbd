package api_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/tenancy"
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
	if strings.Contains(body, "acme") || strings.Contains(body, "4242") {
		t.Error("/metrics carries a tenant name or a raw path id")
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
	srv, err := api.NewServer(s.db, tenancy.NewDirectory(s.db, tenancy.WithTTL(0)), api.Config{Auth: s.auth, TenantLabelCap: 2, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	capped := &stack{db: s.db, srv: srv, auth: s.auth}
	// Tokens of tenants that do not exist take no label slot.
	for _, n := range []string{"ghost1", "ghost2"} {
		want(t, capped.do(t, "GET", "/items", capped.token(t, n, false), nil), http.StatusForbidden)
	}
	for _, n := range []string{"acme", "globex", "initech", "acme"} {
		want(t, capped.do(t, "GET", "/items", capped.token(t, n, false), nil), http.StatusOK)
	}
	body := string(capped.do(t, "GET", "/metrics", "", nil).body)
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
