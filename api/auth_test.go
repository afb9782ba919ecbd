package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
)

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func exp(d time.Duration) int64 { return time.Now().Add(d).Unix() }

func TestTokenRules(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, func(a *api.AuthConfig) {
		a.Issuer, a.Audience = "https://idp.example", "tenantry"
	})
	good := jwt.MapClaims{"tenant": "acme", "iat": exp(0), "exp": exp(time.Hour), "iss": "https://idp.example", "aud": "tenantry"}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	// onboard acme and suspend a second tenant with an admin token.
	admin := sign(t, jwt.SigningMethodHS256, testSecret, with("role", "admin"))
	for _, n := range []string{"acme", "frozen"} {
		want(t, s.do(t, "POST", "/admin/tenants", admin, map[string]string{"name": n}), http.StatusCreated)
	}
	want(t, s.do(t, "PATCH", "/admin/tenants/frozen", admin, map[string]string{"status": "suspended"}), http.StatusOK)
	good["iat"] = exp(0) // after onboarding: a tenant token must not predate its tenant

	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	unsigned, _ := jwt.NewWithClaims(jwt.SigningMethodNone, good).SignedString(jwt.UnsafeAllowNoneSignatureType)
	valid := sign(t, jwt.SigningMethodHS256, testSecret, good)

	tests := []struct {
		name   string
		path   string
		header string
		status int
	}{
		{"valid", "/items", "Bearer " + valid, 200},
		{"lower-case scheme", "/items", "bearer " + valid, 200},
		{"no token", "/items", "", 401},
		{"not bearer", "/items", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", 401},
		{"malformed", "/items", "Bearer not.a.jwt", 401},
		{"bad signature", "/items", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), good), 401},
		{"expired", "/items", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with("exp", exp(-2*time.Minute))), 401},
		{"no exp", "/items", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with("exp", nil)), 401},
		{"issued in the future", "/items", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with("iat", exp(time.Hour))), 401},
		{"alg none", "/items", "Bearer " + unsigned, 401},
		{"other HMAC alg", "/items", "Bearer " + sign(t, jwt.SigningMethodHS512, testSecret, good), 401},
		{"RS256 when HS256 is configured", "/items", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, good), 401},
		{"wrong issuer", "/items", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with("iss", "https://evil.example")), 401},
		{"no issuer", "/items", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with("iss", nil)), 401},
		{"wrong audience", "/items", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with("aud", "other")), 401},
		{"tenant claim not a string", "/items", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with("tenant", 42)), 401},
		{"token over 8 KiB", "/items", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with("pad", strings.Repeat("x", 9000))), 401},
		{"unknown tenant", "/items", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with("tenant", "nobody")), 403},
		{"tenant that is not a name", "/items", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with("tenant", "acme,public")), 403},
		{"suspended tenant", "/items", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, with("tenant", "frozen")), 403},
		{"admin without tenant on items", "/items", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, asAdmin(with("tenant", nil))), 403},
		{"tenant token on admin", "/admin/tenants", "Bearer " + valid, 403},
		{"admin on admin", "/admin/tenants", "Bearer " + admin, 200},
		{"bad token on admin", "/admin/tenants", "Bearer x", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := map[string]string{}
			if tt.header != "" {
				req["Authorization"] = tt.header
			}
			r := s.doHeaders(t, "GET", tt.path, req)
			want(t, r, tt.status)
			if tt.status == 401 {
				if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
					t.Fatalf("WWW-Authenticate = %q", got)
				}
			}
		})
	}
	// Nothing above created or changed a tenant.
	var ts []models.Tenant
	r := s.do(t, "GET", "/admin/tenants", admin, nil)
	r.json(t, &ts)
	if len(ts) != 2 {
		t.Fatalf("tenants after the token matrix: %+v", ts)
	}
}

// asAdmin turns claims into an admin's.
func asAdmin(c jwt.MapClaims) jwt.MapClaims { c["role"] = "admin"; return c }

func (s *stack) doHeaders(t *testing.T, method, path string, headers map[string]string) response {
	t.Helper()
	return s.doRaw(t, method, path, "", "", headers)
}

func TestPublicKeyConfigRefusesHS256(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	pub, err := api.ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, tenancy.DefaultPool, func(a *api.AuthConfig) { a.Secret, a.PublicKey = nil, pub })
	c := jwt.MapClaims{"role": "admin", "iat": exp(0), "exp": exp(time.Hour)}
	want(t, s.doHeaders(t, "GET", "/admin/tenants", map[string]string{"Authorization": "Bearer " + sign(t, jwt.SigningMethodES256, ecKey, c)}), 200)
	// An HS256 token "signed" with the public key's bytes: algorithm confusion.
	want(t, s.doHeaders(t, "GET", "/admin/tenants", map[string]string{"Authorization": "Bearer " + sign(t, jwt.SigningMethodHS256, der, c)}), 401)
	want(t, s.doHeaders(t, "GET", "/admin/tenants", map[string]string{"Authorization": "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, c)}), 401)
}

func TestAuthConfigIsStrict(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	big, _ := rsa.GenerateKey(rand.Reader, 2048)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tests := []struct {
		name string
		cfg  api.AuthConfig
		ok   bool
	}{
		{"32-byte secret", api.AuthConfig{Secret: testSecret}, true},
		{"2048-bit RSA key", api.AuthConfig{PublicKey: &big.PublicKey}, true},
		{"P-256 key", api.AuthConfig{PublicKey: &p256.PublicKey}, true},
		{"no key", api.AuthConfig{}, false},
		{"short secret", api.AuthConfig{Secret: []byte("short")}, false},
		{"both", api.AuthConfig{Secret: testSecret, PublicKey: &big.PublicKey}, false},
		{"small RSA key", api.AuthConfig{PublicKey: &small.PublicKey}, false},
		{"P-224 key", api.AuthConfig{PublicKey: &p224.PublicKey}, false},
		{"leeway over a minute", api.AuthConfig{Secret: testSecret, Leeway: 5 * time.Minute}, false},
	}
	for _, tt := range tests {
		// No database is needed to judge a config.
		_, err := api.NewServer(nil, tenancy.NewDirectory(nil), api.Config{Auth: tt.cfg})
		if (err == nil) != tt.ok {
			t.Errorf("%s: NewServer err = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestCustomTenantClaim(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, func(a *api.AuthConfig) { a.TenantClaim = "org" })
	s.onboard(t, "acme")
	h := func(c jwt.MapClaims) map[string]string {
		return map[string]string{"Authorization": "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, c)}
	}
	want(t, s.doHeaders(t, "GET", "/items", h(jwt.MapClaims{"org": "acme", "iat": exp(0), "exp": exp(time.Hour)})), 200)
	want(t, s.doHeaders(t, "GET", "/items", h(jwt.MapClaims{"tenant": "acme", "iat": exp(0), "exp": exp(time.Hour)})), 403)
}

func TestOnboardingRaceOverHTTP(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil)
	admin := s.token(t, "", true)
	const n = 12
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = s.do(t, "POST", "/admin/tenants", admin, map[string]string{"name": "racer"}).status
		}()
	}
	wg.Wait()
	created, conflicts := 0, 0
	for _, st := range statuses {
		switch st {
		case 201:
			created++
		case 409:
			conflicts++
		default:
			t.Errorf("status %d in the race", st)
		}
	}
	if created != 1 || conflicts != n-1 {
		t.Fatalf("%d created, %d conflicts; want 1 and %d", created, conflicts, n-1)
	}
}
