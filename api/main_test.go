package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/internal/pgtest"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/problem"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"github.com/tenantry/tenantry/token"
	"gorm.io/gorm"
)

func TestMain(m *testing.M) {
	pgtest.Run(m)
	stopChaosCluster()
}

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

// stack is the real router over a fresh database.
type stack struct {
	db   *gorm.DB // the request role
	ddl  *gorm.DB // the DDL role, for setting up and inspecting
	te   *tenancytest.Env
	dir  *tenancy.Directory
	srv  *api.Server
	auth token.Config
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newStack(t testing.TB, pool tenancy.PoolConfig, tweak func(*token.Config)) *stack {
	t.Helper()
	te := tenancytest.New(t, pool)
	db := te.DB
	auth := token.Config{Secret: testSecret}
	if tweak != nil {
		tweak(&auth)
	}
	logs := &syncBuffer{}
	dir := te.Directory()
	srv, err := api.NewServer(dir, api.Config{Auth: auth, Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return &stack{db: db, ddl: te.Admin, te: te, dir: dir, srv: srv, auth: auth, logs: logs}
}

// token mints a token for tenant (or an admin's). A tenant that exists gets
// a token bound to its registry id, as `tenantry token` mints them.
func (s *stack) token(t testing.TB, tenant string, admin bool) string {
	t.Helper()
	if tenant != "" && !admin && s.dir != nil {
		row, err := s.dir.Get(context.Background(), tenant)
		switch {
		case err == nil:
			tok, err := token.IssueTenantToken(s.auth, row, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		case !errors.Is(err, models.ErrNotFound):
			t.Fatal(err)
		}
	}
	role := token.RoleTenant
	if admin {
		role = token.RoleAdmin
	}
	tok, err := token.IssueToken(s.auth, tenant, role, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends one request through the real router. body may be a string (sent
// as is) or any value (sent as JSON).
func (s *stack) do(t *testing.T, method, path, token string, body any) response {
	t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	default:
		js, _ := json.Marshal(b)
		rd, ct = bytes.NewReader(js), "application/json"
	}
	req := httptest.NewRequest(method, path, rd)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.serve(t, req)
}

// serve runs req through the router and checks the response against
// openapi.json, so every integration test also tests the contract.
func (s *stack) serve(t *testing.T, req *http.Request) response {
	t.Helper()
	rec := httptest.NewRecorder()
	s.srv.ServeHTTP(rec, req)
	r := response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	if err := checkContract(t, req, r.status, r.header, r.body); err != nil {
		t.Error(err)
	}
	return r
}

// want fails unless r has status; problem statuses must be problem+json.
func want(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if status >= 400 {
		if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("Content-Type = %q, want application/problem+json", ct)
		}
		var p problem.Problem
		r.json(t, &p)
		if p.Status != status || p.Type == "" || p.Title == "" {
			t.Fatalf("problem %+v does not match status %d", p, status)
		}
	}
}

func (s *stack) doRaw(t *testing.T, method, path, contentType, body string, headers map[string]string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return s.serve(t, req)
}
