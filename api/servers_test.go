package api_test

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/internal/faultproxy"
	"github.com/tenantry/tenantry/internal/pglocal"
	"github.com/tenantry/tenantry/internal/pgtest"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"github.com/tenantry/tenantry/token"
)

// TestServerDownAnswers503ForItsTenantsOnly places one tenant on the home
// server and one on a second server, stops the second, and checks through
// the real router that only its tenant gets 503 with Retry-After while the
// other is served and the instance stays ready.
func TestServerDownAnswers503ForItsTenantsOnly(t *testing.T) {
	te := tenancytest.New(t, tenancy.DefaultPool)
	b := pgtest.NewServer(t, pglocal.Options{})
	dir := te.Directory(tenancy.WithServers([]tenancy.Server{{Name: "b", URL: b.Roles.AppURL, AdminURL: b.Roles.DDLURL}}, tenancy.DefaultPool))
	t.Cleanup(func() {
		if err := dir.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	auth := token.Config{Secret: testSecret}
	srv, err := api.NewServer(dir, api.Config{Auth: auth, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{db: te.DB, ddl: te.Admin, te: te, dir: dir, srv: srv, auth: auth, logs: &syncBuffer{}}
	admin := s.token(t, "", true)
	placed := map[string]string{}
	for _, n := range []string{"on-home", "on-b"} {
		r := s.do(t, http.MethodPost, "/admin/tenants", admin, map[string]string{"name": n})
		want(t, r, http.StatusCreated)
		var tn models.Tenant
		r.json(t, &tn)
		placed[n] = tn.Server
		want(t, s.do(t, http.MethodPost, "/items", s.token(t, n, false), map[string]string{"name": "before"}), http.StatusCreated)
	}
	if placed["on-home"] != tenancy.HomeServer || placed["on-b"] != "b" {
		t.Fatalf("placed %v, want on-home on home and on-b on b", placed)
	}
	if err := b.Cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	r := s.do(t, http.MethodPost, "/items", s.token(t, "on-b", false), map[string]string{"name": "during"})
	want(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	want(t, s.do(t, http.MethodPost, "/items", s.token(t, "on-home", false), map[string]string{"name": "during"}), http.StatusCreated)
	want(t, s.do(t, http.MethodGet, "/items", s.token(t, "on-home", false), nil), http.StatusOK)
	r = s.do(t, http.MethodGet, "/readyz", "", nil)
	want(t, r, http.StatusOK)
	var ready struct {
		Servers map[string]string `json:"servers"`
	}
	r.json(t, &ready)
	if ready.Servers[tenancy.HomeServer] != "up" || ready.Servers["b"] != "down" {
		t.Fatalf("readyz servers %v, want home up and b down", ready.Servers)
	}
}

// TestReadyzIsNotHeldBySilentServer: server b accepts connections and
// never answers (a blackholed network path), server c is healthy. /readyz
// must stay ready, say b is down and c up, and answer within kubelet's
// one-second probe timeout. Before, the servers were pinged one after
// another with the probe's one-second context: b used all of it, so every
// probe took the whole second and c, pinged after it, was reported down.
func TestReadyzIsNotHeldBySilentServer(t *testing.T) {
	te := tenancytest.New(t, tenancy.DefaultPool)
	u, err := url.Parse(te.URL)
	if err != nil {
		t.Fatal(err)
	}
	px, err := faultproxy.New(net.JoinHostPort("127.0.0.1", u.Port()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	px.SetMode(faultproxy.BlackHole)
	silent := fmt.Sprintf("postgres://app:pw@%s/db?sslmode=disable&connect_timeout=10", px.Addr())
	// c is the home database again, reached as another server: healthy.
	dir := te.Directory(tenancy.WithServers([]tenancy.Server{{Name: "b", URL: silent}, {Name: "c", URL: te.URL}}, tenancy.DefaultPool))
	t.Cleanup(func() {
		if err := dir.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	srv, err := api.NewServer(dir, api.Config{Auth: token.Config{Secret: testSecret}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{db: te.DB, ddl: te.Admin, te: te, dir: dir, srv: srv, logs: &syncBuffer{}}
	// Three probes: the first opens b's pool, the later ones retry it
	// (its down mark lasts a second) or wait behind the open.
	for i := 0; i < 3; i++ {
		start := time.Now()
		r := s.do(t, http.MethodGet, "/readyz", "", nil)
		took := time.Since(start)
		want(t, r, http.StatusOK)
		var ready struct {
			Servers map[string]string `json:"servers"`
		}
		r.json(t, &ready)
		if ready.Servers[tenancy.HomeServer] != "up" || ready.Servers["b"] != "down" || ready.Servers["c"] != "up" {
			t.Fatalf("probe %d: readyz servers %v, want home up, b down, c up", i, ready.Servers)
		}
		// The old code took the whole second every time; the bound here is
		// that second, 4x the per-server wait, for a noisy machine.
		if took >= time.Second {
			t.Errorf("probe %d took %v with a silent server: past kubelet's one-second probe timeout", i, took)
		}
		time.Sleep(400 * time.Millisecond)
	}
}
