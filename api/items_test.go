package api_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/fleet"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
)

func (s *stack) onboard(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		want(t, s.do(t, "POST", "/admin/tenants", s.token(t, "", true), map[string]string{"name": n}), http.StatusCreated)
	}
}

func TestItemsCRUDStaysInsideTheTenant(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil)
	s.onboard(t, "acme", "globex")
	acme, globex := s.token(t, "acme", false), s.token(t, "globex", false)

	r := s.do(t, "POST", "/items", acme, map[string]string{"name": "anvil", "description": "heavy"})
	want(t, r, http.StatusCreated)
	var created models.Item
	r.json(t, &created)
	if created.ID == 0 || created.Name != "anvil" || created.Description != "heavy" {
		t.Fatalf("created %+v", created)
	}
	if loc := r.header.Get("Location"); loc != fmt.Sprintf("/items/%d", created.ID) {
		t.Fatalf("Location = %q", loc)
	}
	// The query form older clients send, on the trailing-slash path.
	want(t, s.do(t, "POST", "/items/?name=rope&description=long", acme, nil), http.StatusCreated)

	for _, path := range []string{"/items", "/items/"} {
		r = s.do(t, "GET", path, acme, nil)
		want(t, r, http.StatusOK)
		var items []models.Item
		r.json(t, &items)
		got := []string{}
		for _, it := range items {
			got = append(got, it.Name)
		}
		if diff := cmp.Diff([]string{"anvil", "rope"}, got); diff != "" {
			t.Fatalf("GET %s (-want +got):\n%s", path, diff)
		}
		r = s.do(t, "GET", path, globex, nil)
		want(t, r, http.StatusOK)
		if strings.TrimSpace(string(r.body)) != "[]" {
			t.Fatalf("globex sees %s, want []", r.body)
		}
	}

	id := fmt.Sprintf("/items/%d", created.ID)
	// globex can neither read, change nor delete acme's item.
	want(t, s.do(t, "GET", id, globex, nil), http.StatusNotFound)
	want(t, s.do(t, "PUT", id, globex, map[string]string{"name": "stolen"}), http.StatusNotFound)
	want(t, s.do(t, "DELETE", id, globex, nil), http.StatusNotFound)

	r = s.do(t, "PUT", id, acme, map[string]string{"name": "anvil2", "description": "heavier"})
	want(t, r, http.StatusOK)
	var updated models.Item
	r.json(t, &updated)
	if updated.ID != created.ID || updated.Name != "anvil2" || updated.Description != "heavier" {
		t.Fatalf("updated %+v", updated)
	}
	r = s.do(t, "GET", id, acme, nil)
	want(t, r, http.StatusOK)
	var got models.Item
	r.json(t, &got)
	if got.Name != "anvil2" {
		t.Fatalf("after PUT, GET gives %+v", got)
	}
	want(t, s.do(t, "DELETE", id, acme, nil), http.StatusNoContent)
	want(t, s.do(t, "GET", id, acme, nil), http.StatusNotFound)
	want(t, s.do(t, "DELETE", id, acme, nil), http.StatusNotFound)
	want(t, s.do(t, "PUT", id, acme, map[string]string{"name": "x"}), http.StatusNotFound)
}

func TestDecoyPublicItemsStayInvisible(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil)
	if err := s.ddl.Exec(`CREATE TABLE public.items (id bigint, name text, description text, created_at timestamptz, updated_at timestamptz);
		INSERT INTO public.items VALUES (1, 'CANARY', 'CANARY', now(), now())`).Error; err != nil {
		t.Fatal(err)
	}
	s.onboard(t, "acme", "hollow")
	acme, hollow := s.token(t, "acme", false), s.token(t, "hollow", false)
	want(t, s.do(t, "POST", "/items", acme, map[string]string{"name": "real"}), http.StatusCreated)
	if err := s.ddl.Exec(`DROP TABLE t_hollow.items`).Error; err != nil {
		t.Fatal(err)
	}

	for _, tok := range []string{acme, hollow} {
		for _, path := range []string{"/items", "/items/1"} {
			r := s.do(t, "GET", path, tok, nil)
			if strings.Contains(string(r.body), "CANARY") {
				t.Fatalf("GET %s leaked the public decoy: %s", path, r.body)
			}
			if r.status >= 500 && r.status != http.StatusServiceUnavailable {
				t.Fatalf("GET %s = %d", path, r.status)
			}
		}
	}
	r := s.do(t, "GET", "/items", hollow, nil)
	want(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	if strings.Contains(string(r.body), "relation") || strings.Contains(string(r.body), "t_hollow") {
		t.Fatalf("503 body leaks database details: %s", r.body)
	}
	// Writes must not land in public either.
	r = s.do(t, "POST", "/items", hollow, map[string]string{"name": "lost"})
	want(t, r, http.StatusServiceUnavailable)
	var n int
	if err := s.ddl.Raw("SELECT count(*) FROM public.items").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("public.items has %d rows, want the 1 decoy", n)
	}
}

func TestPaginationLimits(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil)
	s.onboard(t, "acme")
	acme := s.token(t, "acme", false)
	if err := s.ddl.Exec(`INSERT INTO t_acme.items (name, description, created_at, updated_at)
		SELECT 'i' || g, '', now(), now() FROM generate_series(1, 1100) g`).Error; err != nil {
		t.Fatal(err)
	}
	count := func(path string) int {
		r := s.do(t, "GET", path, acme, nil)
		want(t, r, http.StatusOK)
		var items []models.Item
		r.json(t, &items)
		return len(items)
	}
	tests := []struct {
		path string
		want int
	}{
		{"/items", models.DefaultPageSize},
		{"/items?limit=1000", 1000},
		{"/items?limit=10&offset=1095", 5},
		{"/items?limit=0", 0},
	}
	for _, tt := range tests {
		if got := count(tt.path); got != tt.want {
			t.Errorf("GET %s gave %d items, want %d", tt.path, got, tt.want)
		}
	}
	for _, bad := range []string{"/items?limit=1001", "/items?limit=-1", "/items?limit=abc", "/items?offset=-5", "/items?offset=99999999999999999999"} {
		want(t, s.do(t, "GET", bad, acme, nil), http.StatusBadRequest)
	}
}

// A tenant whose schema is behind an incompatible step answers 503 with
// Retry-After, never 500, until it is migrated.
func TestTenantBehindTheBinaryGets503(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil)
	s.onboard(t, "lagging")
	breaking := migrations.Step{Version: 2, Name: "breaking", Up: `ALTER TABLE items ADD COLUMN price integer`}
	plan := migrations.Plan{Models: migrations.Items.Models, Steps: append(slices.Clone(migrations.Items.Steps), breaking)}
	dir := s.te.Directory(tenancy.WithPlan(plan))
	srv, err := api.NewServer(dir, api.Config{Auth: s.auth})
	if err != nil {
		t.Fatal(err)
	}
	newer := &stack{db: s.db, ddl: s.ddl, te: s.te, srv: srv, auth: s.auth}
	tok := newer.token(t, "lagging", false)
	r := newer.do(t, "GET", "/items", tok, nil)
	want(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	if _, err := fleet.Migrate(context.Background(), dir, fleet.Options{}); err != nil {
		t.Fatal(err)
	}
	want(t, newer.do(t, "GET", "/items", tok, nil), http.StatusOK)
}
