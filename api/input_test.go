package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/tenancy"
)

// snapshot is everything a request could change: the registry and every
// tenant's items.
func (s *stack) snapshot(t *testing.T) string {
	t.Helper()
	var rows []map[string]any
	if err := s.ddl.Raw(`SELECT name, schema_name, status FROM ` + migrations.TenantsTable + ` ORDER BY name`).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	var items []map[string]any
	if err := s.ddl.Raw(`SELECT id, name, description FROM t_acme.items ORDER BY id`).Scan(&items).Error; err != nil {
		t.Fatal(err)
	}
	var schemas []string
	if err := s.ddl.Raw(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\_%' ORDER BY 1`).Scan(&schemas).Error; err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal([]any{rows, items, schemas})
	return string(b)
}

func TestBadInputGets4xxAndChangesNothing(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil)
	s.onboard(t, "acme")
	acme, admin := s.token(t, "acme", false), s.token(t, "", true)
	want(t, s.do(t, "POST", "/items", acme, map[string]string{"name": "keep"}), http.StatusCreated)
	before := s.snapshot(t)

	huge := `{"name":"` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name, method, path, token, ct, body string
		status                              int
	}{
		{"tenant name too short", "POST", "/admin/tenants", admin, "application/json", `{"name":"a"}`, 400},
		{"tenant name too long", "POST", "/admin/tenants", admin, "application/json", `{"name":"` + strings.Repeat("a", 49) + `"}`, 400},
		{"tenant name upper-case", "POST", "/admin/tenants", admin, "application/json", `{"name":"Acme"}`, 400},
		{"tenant name with comma", "POST", "/admin/tenants", admin, "application/json", `{"name":"x,public"}`, 400},
		{"tenant name with quote", "POST", "/admin/tenants", admin, "application/json", `{"name":"x\"; DROP SCHEMA tenantry CASCADE; --"}`, 400},
		{"tenant name not a string", "POST", "/admin/tenants", admin, "application/json", `{"name":7}`, 400},
		{"tenant name missing", "POST", "/admin/tenants", admin, "application/json", `{}`, 400},
		{"tenant body not JSON", "POST", "/admin/tenants", admin, "application/json", `name=acme`, 400},
		{"tenant body array", "POST", "/admin/tenants", admin, "application/json", `[]`, 400},
		{"tenant body two objects", "POST", "/admin/tenants", admin, "application/json", `{"name":"ab"}{"name":"cd"}`, 400},
		{"tenant body empty", "POST", "/admin/tenants", admin, "application/json", ``, 400},
		{"tenant exists", "POST", "/admin/tenants", admin, "application/json", `{"name":"acme"}`, 409},
		{"bad status", "PATCH", "/admin/tenants/acme", admin, "application/json", `{"status":"deleted"}`, 400},
		{"unknown tenant get", "GET", "/admin/tenants/nobody", admin, "", ``, 404},
		{"invalid tenant get", "GET", "/admin/tenants/Bad%2CName", admin, "", ``, 404},
		{"unknown tenant delete", "DELETE", "/admin/tenants/nobody", admin, "", ``, 404},
		{"item without name", "POST", "/items", acme, "application/json", `{"description":"d"}`, 400},
		{"item name too long", "POST", "/items", acme, "application/json", `{"name":"` + strings.Repeat("n", 201) + `"}`, 400},
		{"item description too long", "POST", "/items", acme, "application/json", `{"name":"n","description":"` + strings.Repeat("d", 2001) + `"}`, 400},
		{"item name with NUL", "POST", "/items", acme, "application/json", `{"name":"a\u0000b"}`, 400},
		{"item name wrong type", "POST", "/items", acme, "application/json", `{"name":["x"]}`, 400},
		{"item body truncated", "POST", "/items", acme, "application/json", `{"name":"x"`, 400},
		{"item body too large", "POST", "/items", acme, "application/json", huge, 413},
		{"item body XML", "POST", "/items", acme, "application/xml", `<item/>`, 400},
		{"item query without name", "POST", "/items?description=x", acme, "", ``, 400},
		{"update bad id", "PUT", "/items/abc", acme, "application/json", `{"name":"x"}`, 400},
		{"update zero id", "PUT", "/items/0", acme, "application/json", `{"name":"x"}`, 400},
		{"update id overflow", "PUT", "/items/99999999999999999999", acme, "application/json", `{"name":"x"}`, 400},
		{"update without name", "PUT", "/items/1", acme, "application/json", `{"name":""}`, 400},
		{"update missing item", "PUT", "/items/424242", acme, "application/json", `{"name":"x"}`, 404},
		{"delete negative id", "DELETE", "/items/-1", acme, "", ``, 400},
		{"unknown route", "GET", "/nothing", acme, "", ``, 404},
		{"wrong method", "PATCH", "/items", acme, "", ``, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.doRaw(t, tt.method, tt.path, tt.ct, tt.body, map[string]string{"Authorization": "Bearer " + tt.token})
			want(t, r, tt.status)
			if strings.Contains(string(r.body), "goroutine") || strings.Contains(string(r.body), "SQLSTATE") {
				t.Fatalf("response leaks internals: %s", r.body)
			}
			if after := s.snapshot(t); after != before {
				t.Fatalf("state changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestAccessLogNamesRouteAndTenantButNoToken(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil)
	s.onboard(t, "acme")
	acme := s.token(t, "acme", false)
	r := s.doRaw(t, "GET", "/items/77", "", "", map[string]string{"Authorization": "Bearer " + acme, "X-Request-ID": "req-123"})
	want(t, r, http.StatusNotFound)
	if r.header.Get("X-Request-ID") != "req-123" {
		t.Fatalf("X-Request-ID = %q, want it echoed", r.header.Get("X-Request-ID"))
	}
	var line map[string]any
	for _, l := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(l, `"msg":"request"`) && strings.Contains(l, "req-123") {
			_ = json.Unmarshal([]byte(l), &line)
		}
	}
	if line == nil {
		t.Fatalf("no access log line for the request in:\n%s", s.logs.String())
	}
	if line["route"] != "/items/:id" || line["tenant"] != "acme" || line["status"] != float64(404) || line["method"] != "GET" {
		t.Fatalf("access log line %v", line)
	}
	if _, ok := line["latency_ms"]; !ok {
		t.Fatal("access log has no latency")
	}
	if strings.Contains(s.logs.String(), acme) {
		t.Fatal("the log contains the bearer token")
	}
}
