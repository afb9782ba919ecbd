package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/ginmw"
	"github.com/tenantry/tenantry/internal/pgtest"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"github.com/tenantry/tenantry/token"
	"gorm.io/gorm"
)

func TestMain(m *testing.M) { pgtest.Run(m) }

var secret = []byte("orders-test-secret-orders-test-secret")

// service is the orders service on a fresh database in the strict setup:
// the request role reaches tenant tables only inside scopes.
type service struct {
	te     *tenancytest.Env
	dir    *tenancy.Directory
	router http.Handler
	auth   token.Config
}

func newService(t *testing.T) *service {
	t.Helper()
	te := tenancytest.New(t, tenancy.DefaultPool)
	dir := te.Directory(tenancy.WithApp(app))
	auth := token.Config{Secret: secret}
	v, err := token.NewVerifier(auth)
	if err != nil {
		t.Fatal(err)
	}
	mw, err := ginmw.New(ginmw.Config{Verifier: v, Directory: dir})
	if err != nil {
		t.Fatal(err)
	}
	return &service{te: te, dir: dir, router: newRouter(dir, mw), auth: auth}
}

// onboard creates tenant name through the admin route and returns a token
// bound to it.
func (s *service) onboard(t *testing.T, name string) string {
	t.Helper()
	admin, err := token.IssueToken(s.auth, "", token.RoleAdmin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.do(t, "POST", "/admin/tenants", admin, `{"name":"`+name+`"}`); r.Code != http.StatusCreated {
		t.Fatalf("onboard %s: %d %s", name, r.Code, r.Body)
	}
	row, err := s.dir.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := token.IssueTenantToken(s.auth, row, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s *service) do(t *testing.T, method, path, tok, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	rec := httptest.NewRecorder()
	s.router.ServeHTTP(rec, req)
	return rec
}

func decode[T any](t *testing.T, r *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
	return v
}

const twoLines = `{"customer":"Ada","lines":[{"sku":"A-1","quantity":2,"unit_cents":150},{"sku":"B-2","quantity":1,"unit_cents":990}]}`

// An order and its lines are stored in the tenant's schema and read back
// whole; another tenant sees none of them.
func TestOrdersStayInTheirTenant(t *testing.T) {
	s := newService(t)
	acme, globex := s.onboard(t, "acme"), s.onboard(t, "globex")
	r := s.do(t, "POST", "/orders", acme, twoLines)
	if r.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Code, r.Body)
	}
	created := decode[Order](t, r)
	if created.ID == 0 || len(created.Lines) != 2 {
		t.Fatalf("created %+v, want an id and two lines", created)
	}
	got := decode[Order](t, s.do(t, "GET", "/orders/"+itoa(created.ID), acme, ""))
	if got.Customer != "Ada" || len(got.Lines) != 2 || got.Lines[0].SKU != "A-1" || got.Lines[1].UnitCents != 990 {
		t.Fatalf("read back %+v", got)
	}
	if r := s.do(t, "GET", "/orders/"+itoa(created.ID), globex, ""); r.Code != http.StatusNotFound {
		t.Fatalf("globex reading acme's order: %d %s, want 404", r.Code, r.Body)
	}
	if list := decode[[]Order](t, s.do(t, "GET", "/orders", globex, "")); len(list) != 0 {
		t.Fatalf("globex lists %+v, want nothing", list)
	}
	if list := decode[[]Order](t, s.do(t, "GET", "/orders", acme, "")); len(list) != 1 || len(list[0].Lines) != 2 {
		t.Fatalf("acme lists %+v, want its one order with two lines", list)
	}
	// The rows are in acme's schema, read as the DDL role outside any scope.
	var lines int64
	if err := s.te.Admin.Raw(`SELECT count(*) FROM t_acme.order_lines`).Scan(&lines).Error; err != nil || lines != 2 {
		t.Fatalf("t_acme.order_lines holds %d rows (%v), want 2", lines, err)
	}
}

// Deleting an order deletes its lines with it.
func TestDeletingAnOrderDeletesItsLines(t *testing.T) {
	s := newService(t)
	acme := s.onboard(t, "acme")
	created := decode[Order](t, s.do(t, "POST", "/orders", acme, twoLines))
	if r := s.do(t, "DELETE", "/orders/"+itoa(created.ID), acme, ""); r.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Code, r.Body)
	}
	if r := s.do(t, "DELETE", "/orders/"+itoa(created.ID), acme, ""); r.Code != http.StatusNotFound {
		t.Fatalf("second delete: %d %s, want 404", r.Code, r.Body)
	}
	var lines int64
	if err := s.te.Admin.Raw(`SELECT count(*) FROM t_acme.order_lines`).Scan(&lines).Error; err != nil || lines != 0 {
		t.Fatalf("after the delete t_acme.order_lines holds %d rows (%v), want 0", lines, err)
	}
}

// Bad input and bad tokens get a problem+json 4xx and change nothing.
func TestBadRequestsAreRefusedAndChangeNothing(t *testing.T) {
	s := newService(t)
	acme := s.onboard(t, "acme")
	ghost, err := token.IssueToken(s.auth, "ghost", token.RoleTenant, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := token.IssueToken(token.Config{Secret: bytes.Repeat([]byte("x"), 32)}, "acme", token.RoleTenant, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, path, tok, body string
		want                          int
	}{
		{"no token", "GET", "/orders", "", "", http.StatusUnauthorized},
		{"forged token", "GET", "/orders", forged, "", http.StatusUnauthorized},
		{"unknown tenant", "GET", "/orders", ghost, "", http.StatusForbidden},
		{"tenant token on admin", "POST", "/admin/tenants", acme, `{"name":"evil"}`, http.StatusForbidden},
		{"no lines", "POST", "/orders", acme, `{"customer":"Ada","lines":[]}`, http.StatusBadRequest},
		{"zero quantity", "POST", "/orders", acme, `{"customer":"Ada","lines":[{"sku":"A","quantity":0,"unit_cents":1}]}`, http.StatusBadRequest},
		{"unknown field", "POST", "/orders", acme, `{"customer":"Ada","tenant":"globex","lines":[{"sku":"A","quantity":1,"unit_cents":1}]}`, http.StatusBadRequest},
		{"not JSON", "POST", "/orders", acme, `{"customer":`, http.StatusBadRequest},
		{"too large", "POST", "/orders", acme, `{"customer":"` + strings.Repeat("a", maxBody) + `"}`, http.StatusRequestEntityTooLarge},
		{"odd id", "GET", "/orders/01", acme, "", http.StatusNotFound},
		{"invalid tenant name", "POST", "/admin/tenants", "admin", `{"name":"Bad Name"}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.tok
			if tok == "admin" {
				if tok, err = token.IssueToken(s.auth, "", token.RoleAdmin, time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			r := s.do(t, tc.method, tc.path, tok, tc.body)
			if r.Code != tc.want || r.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %q %s, want %d problem+json", r.Code, r.Header().Get("Content-Type"), r.Body, tc.want)
			}
		})
	}
	r, err := s.dir.Active(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := tenancy.WithTx(context.Background(), r, func(tx *gorm.DB) error { return tx.Model(&Order{}).Count(&n).Error }); err != nil || n != 0 {
		t.Fatalf("acme has %d orders (%v) after refused requests, want 0", n, err)
	}
	if _, err := s.dir.Get(context.Background(), "evil"); err == nil {
		t.Fatal("a tenant token onboarded a tenant")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
