package api_test

import (
	"net/http"
	"testing"

	"github.com/tenantry/tenantry/problem"
	"github.com/tenantry/tenantry/tenancy"
)

// A tenant moves through active, read-only and suspended over the admin
// API. Read-only serves reads and answers every write 409 with its own
// problem type, changing nothing; suspended answers everything 403; active
// again serves writes.
func TestTenantLifecycleOverTheAdminAPI(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil)
	s.onboard(t, "acme")
	admin, acme := s.token(t, "", true), s.token(t, "acme", false)
	want(t, s.do(t, "POST", "/items", acme, map[string]string{"name": "anvil"}), http.StatusCreated)

	r := s.do(t, "PATCH", "/admin/tenants/acme", admin, map[string]string{"status": "read-only"})
	want(t, r, http.StatusOK)
	var ten struct{ Status string }
	r.json(t, &ten)
	if ten.Status != "read-only" {
		t.Fatalf("status after PATCH = %q", ten.Status)
	}
	var list []map[string]any
	r = s.do(t, "GET", "/items", acme, nil)
	want(t, r, http.StatusOK)
	r.json(t, &list)
	if len(list) != 1 {
		t.Fatalf("read-only tenant lists %d items, want 1", len(list))
	}
	for _, w := range []struct{ method, path string }{
		{"POST", "/items"}, {"POST", "/items/"}, {"PUT", "/items/1"}, {"DELETE", "/items/1"},
	} {
		r := s.do(t, w.method, w.path, acme, map[string]string{"name": "changed"})
		want(t, r, http.StatusConflict)
		var p problem.Problem
		r.json(t, &p)
		if p.Type != "urn:tenantry:problem:read-only" {
			t.Errorf("%s %s on a read-only tenant: problem type %q", w.method, w.path, p.Type)
		}
	}
	r = s.do(t, "GET", "/items/1", acme, nil)
	want(t, r, http.StatusOK)
	var item struct{ Name string }
	r.json(t, &item)
	if item.Name != "anvil" {
		t.Fatalf("the refused writes changed the item: %q", item.Name)
	}

	want(t, s.do(t, "PATCH", "/admin/tenants/acme", admin, map[string]string{"status": "suspended"}), http.StatusOK)
	want(t, s.do(t, "GET", "/items", acme, nil), http.StatusForbidden)
	want(t, s.do(t, "PATCH", "/admin/tenants/acme", admin, map[string]string{"status": "frozen"}), http.StatusBadRequest)
	want(t, s.do(t, "PATCH", "/admin/tenants/acme", admin, map[string]string{"status": "active"}), http.StatusOK)
	want(t, s.do(t, "POST", "/items", acme, map[string]string{"name": "hammer"}), http.StatusCreated)
}
