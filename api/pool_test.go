package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
)

// raw sends a request without the contract check (the fault routes are not
// part of the API).
func (s *stack) raw(ctx context.Context, method, path, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	s.srv.ServeHTTP(rec, req)
	return rec
}

func itemNames(t *testing.T, body []byte) []string {
	t.Helper()
	var items []models.Item
	if err := json.Unmarshal(body, &items); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	var names []string
	for _, it := range items {
		names = append(names, it.Name)
	}
	return names
}

// Invariant 2 at the HTTP level: with one pooled connection, requests of
// two tenants alternate with a panicking request and a cancelled one, and
// no request sees the other tenant's rows, a ghost write, or a leftover
// search_path.
func TestNoRequestLeavesItsScopeOnAPoolOfOne(t *testing.T) {
	s := newStack(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1}, nil)
	api.AddFaultRoutes(s.srv)
	s.onboard(t, "alpha", "beta")
	alpha, beta := s.token(t, "alpha", false), s.token(t, "beta", false)
	want(t, s.do(t, "POST", "/items", alpha, map[string]string{"name": "alpha-item"}), http.StatusCreated)
	want(t, s.do(t, "POST", "/items", beta, map[string]string{"name": "beta-item"}), http.StatusCreated)
	ctx := context.Background()
	for round := 0; round < 3; round++ {
		rec := s.raw(ctx, "GET", "/_test/panic", alpha)
		if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("panic route: %d %s", rec.Code, rec.Body)
		}
		if b := rec.Body.String(); strings.Contains(b, "boom") || strings.Contains(b, "goroutine") || strings.Contains(b, ".go:") {
			t.Fatalf("500 body leaks the panic: %s", b)
		}
		cctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
		start := time.Now()
		rec = s.raw(cctx, "GET", "/_test/sleep", beta)
		cancel()
		if rec.Code < 500 || time.Since(start) > 3*time.Second {
			t.Fatalf("cancelled request: %d after %s", rec.Code, time.Since(start))
		}
		for _, tc := range []struct{ token, want string }{{beta, "beta-item"}, {alpha, "alpha-item"}} {
			rec := s.raw(ctx, "GET", "/items", tc.token)
			if got := itemNames(t, rec.Body.Bytes()); rec.Code != 200 || len(got) != 1 || got[0] != tc.want {
				t.Fatalf("round %d: %d %v, want [%s]", round, rec.Code, got, tc.want)
			}
		}
		var sp string
		if err := s.db.Raw("SHOW search_path").Scan(&sp).Error; err != nil || sp != "" {
			t.Fatalf("pooled connection after the round: search_path %q, %v", sp, err)
		}
	}
	if !strings.Contains(s.logs.String(), `"msg":"panic"`) || !strings.Contains(s.logs.String(), "boom: a handler bug") {
		t.Fatal("the panic and its stack are not in the log")
	}
}

// Many tenants at once through the router: every response holds only its
// own tenant's items.
func TestConcurrentRequestsAcrossTenantsNeverCross(t *testing.T) {
	// Ten requests of a tenant at once on a pool of 4 is past a tenant's
	// share (1), and a slow run would see 429s; this test is about
	// isolation under contention, so the cap is off.
	s := newStack(t, tenancy.PoolConfig{MaxOpen: 4, MaxIdle: 4, TenantShare: -1}, nil)
	const tenants, each = 8, 10
	tokens := map[string]string{}
	for i := range tenants {
		n := fmt.Sprintf("crowd%d", i)
		s.onboard(t, n)
		tokens[n] = s.token(t, n, false)
	}
	var wg sync.WaitGroup
	errs := make(chan string, tenants*each*2)
	for n, tok := range tokens {
		for range each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := httptest.NewRequest("POST", "/items", strings.NewReader(`{"name":"`+n+`"}`))
				req.Header.Set("Authorization", "Bearer "+tok)
				rec := httptest.NewRecorder()
				s.srv.ServeHTTP(rec, req)
				if rec.Code != 201 {
					errs <- fmt.Sprintf("%s create: %d %s", n, rec.Code, rec.Body)
				}
				rec = s.raw(context.Background(), "GET", "/items?limit=1000", tok)
				var items []models.Item
				_ = json.Unmarshal(rec.Body.Bytes(), &items)
				for _, it := range items {
					if it.Name != n {
						errs <- fmt.Sprintf("%s saw %s's item", n, it.Name)
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
