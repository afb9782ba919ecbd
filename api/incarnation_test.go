package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
)

// TestStaleCacheOnAnotherInstanceCannotReachTheSuccessor is the window the
// token checks alone leave open: instance B cached acme's registry row, then
// acme was deleted and onboarded again through instance A. B's stale row
// carries the old id and created_at, so the old token passes B's
// incarnation check; only the database can refuse it now. Each B below is
// a separate instance (its own directory, with a TTL that cannot run out
// during the test), so each operation meets the stale row first.
func TestStaleCacheOnAnotherInstanceCannotReachTheSuccessor(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil) // instance A
	ctx := context.Background()
	s.onboard(t, "acme")
	old := s.token(t, "acme", false) // bound to the first incarnation's id
	oldRow, err := s.dir.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	want(t, s.do(t, "POST", "/items", old, map[string]string{"name": "the old customer's"}), http.StatusCreated)

	ops := []struct {
		name, method, path string
		body               any
	}{
		{"read", "GET", "/items", nil},
		{"write", "POST", "/items", map[string]string{"name": "planted by the old token"}},
		{"delete", "DELETE", "/items/1", nil},
	}
	bs := make([]*stack, len(ops))
	for i := range ops {
		dir := s.te.Directory(tenancy.WithTTL(time.Hour))
		srv, err := api.NewServer(dir, api.Config{Auth: s.auth})
		if err != nil {
			t.Fatal(err)
		}
		bs[i] = &stack{db: s.db, ddl: s.ddl, te: s.te, dir: dir, srv: srv, auth: s.auth}
		want(t, bs[i].do(t, "GET", "/items", old, nil), http.StatusOK) // B caches the first acme
	}

	want(t, s.do(t, "DELETE", "/admin/tenants/acme", s.token(t, "", true), nil), http.StatusNoContent)
	s.onboard(t, "acme")
	newRow, err := s.dir.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if newRow.ID == oldRow.ID || newRow.SchemaName != oldRow.SchemaName {
		t.Fatalf("successor %+v vs first %+v: want a new id on the same schema", newRow, oldRow)
	}
	successor := s.token(t, "acme", false)
	want(t, s.do(t, "POST", "/items", successor, map[string]string{"name": "the new customer's"}), http.StatusCreated)

	for i, op := range ops {
		b := bs[i]
		// The stale row is what B would serve the old token from.
		if cached, err := b.dir.Active(ctx, "acme"); err != nil || cached.ID() != oldRow.ID {
			t.Fatalf("%s: B's cache holds %+v (%v), want the first incarnation %d", op.name, cached.Row(), err, oldRow.ID)
		}
		r := b.do(t, op.method, op.path, old, op.body)
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("%s with the old token on B: %d %s, want 503 (the stale row's role is gone)", op.name, r.status, r.body)
		}
		want(t, r, http.StatusServiceUnavailable)
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", op.name)
		}
		// The failure evicted the name: B reads the registry again.
		if fresh, err := b.dir.Active(ctx, "acme"); err != nil || fresh.ID() != newRow.ID {
			t.Fatalf("%s: after the failure B resolves acme to %+v (%v), want the successor %d", op.name, fresh.Row(), err, newRow.ID)
		}
		// Now the old token meets the successor's row and is refused as
		// the token of a tenant that no longer exists.
		want(t, b.do(t, op.method, op.path, old, op.body), http.StatusForbidden)
		// And the successor is served normally by B.
		var items []models.Item
		r = b.do(t, "GET", "/items", successor, nil)
		want(t, r, http.StatusOK)
		r.json(t, &items)
		if len(items) != 1 || items[0].Name != "the new customer's" {
			t.Fatalf("%s: B serves the successor %+v, want its one item", op.name, items)
		}
	}

	var names []string
	if err := s.ddl.Raw(`SELECT name FROM t_acme.items ORDER BY id`).Scan(&names).Error; err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "the new customer's" {
		t.Fatalf("the successor's items are %q, want only its own", names)
	}
}
