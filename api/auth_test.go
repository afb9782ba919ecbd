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
	"github.com/tenantry/tenantry/token"
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
	s := newStack(t, tenancy.DefaultPool, func(a *token.Config) {
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
	pub, err := token.ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, tenancy.DefaultPool, func(a *token.Config) { a.Secret, a.PublicKey = nil, pub })
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
		cfg  token.Config
		ok   bool
	}{
		{"32-byte secret", token.Config{Secret: testSecret}, true},
		{"2048-bit RSA key", token.Config{PublicKey: &big.PublicKey}, true},
		{"P-256 key", token.Config{PublicKey: &p256.PublicKey}, true},
		{"no key", token.Config{}, false},
		{"short secret", token.Config{Secret: []byte("short")}, false},
		{"both", token.Config{Secret: testSecret, PublicKey: &big.PublicKey}, false},
		{"small RSA key", token.Config{PublicKey: &small.PublicKey}, false},
		{"P-224 key", token.Config{PublicKey: &p224.PublicKey}, false},
		{"leeway over a minute", token.Config{Secret: testSecret, Leeway: 5 * time.Minute}, false},
	}
	for _, tt := range tests {
		// No database is needed to judge a config.
		_, err := api.NewServer(tenancy.NewDirectory(nil), api.Config{Auth: tt.cfg})
		if (err == nil) != tt.ok {
			t.Errorf("%s: NewServer err = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestCustomTenantClaim(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, func(a *token.Config) { a.TenantClaim = "org" })
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

// TestDeletedTenantsTokenDoesNotReachItsSuccessor: a
// token for a deleted tenant must not read or change the rows of the next
// tenant onboarded under the same name, on this instance or on another
// one whose directory cached the old incarnation.
func TestDeletedTenantsTokenDoesNotReachItsSuccessor(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, nil)
	// A second instance over the same database, with its own cache.
	other, err := api.NewServer(s.te.Directory(), api.Config{Auth: s.auth})
	if err != nil {
		t.Fatal(err)
	}
	otherStack := &stack{db: s.db, ddl: s.ddl, srv: other, auth: s.auth}
	admin := s.token(t, "", true)
	s.onboard(t, "acme")
	bound := s.token(t, "acme", false) // carries the first incarnation's id
	// A token bound by iat alone, issued a while before the successor.
	byName := sign(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"tenant": "acme", "iat": exp(-2 * time.Second), "exp": exp(time.Hour)})
	for _, st := range []*stack{s, otherStack} {
		want(t, st.do(t, "GET", "/items", bound, nil), http.StatusOK) // both instances now cache the first acme
	}

	want(t, s.do(t, "DELETE", "/admin/tenants/acme", admin, nil), http.StatusNoContent)
	time.Sleep(1100 * time.Millisecond) // the successor is created in a later second than byName's iat
	s.onboard(t, "acme")
	successor := s.token(t, "acme", false)
	want(t, s.do(t, "POST", "/items", successor, map[string]string{"name": "the new customer's"}), http.StatusCreated)

	for _, tok := range []string{bound, byName} {
		want(t, s.do(t, "GET", "/items", tok, nil), http.StatusForbidden)
		want(t, s.do(t, "DELETE", "/items/1", tok, nil), http.StatusForbidden)
	}
	// The other instance still caches the first acme: the successor's token
	// names a newer id, so it reads the registry again and serves it.
	want(t, otherStack.do(t, "GET", "/items", successor, nil), http.StatusOK)
	for _, tok := range []string{bound, byName} {
		want(t, otherStack.do(t, "GET", "/items", tok, nil), http.StatusForbidden)
	}
	var n int64
	if err := s.ddl.Raw(`SELECT count(*) FROM t_acme.items`).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("the successor has %d items, want its 1", n)
	}
}

// TestTokenLifetimeIsCapped: exp - iat beyond the configured maximum is
// refused, and IssueToken will not mint such a token.
func TestTokenLifetimeIsCapped(t *testing.T) {
	s := newStack(t, tenancy.DefaultPool, func(a *token.Config) { a.MaxLifetime = time.Hour })
	now := time.Now().Unix()
	ok := jwt.MapClaims{"role": "admin", "iat": now, "exp": now + 3600}
	long := jwt.MapClaims{"role": "admin", "iat": now, "exp": now + 3601}
	want(t, s.doHeaders(t, "GET", "/admin/tenants", map[string]string{"Authorization": "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, ok)}), 200)
	want(t, s.doHeaders(t, "GET", "/admin/tenants", map[string]string{"Authorization": "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, long)}), 401)
	if _, err := token.IssueToken(s.auth, "", token.RoleAdmin, time.Hour+time.Second); err == nil {
		t.Fatal("IssueToken minted a token longer than MaxLifetime")
	}
	if _, err := token.IssueToken(s.auth, "", token.RoleAdmin, time.Hour); err != nil {
		t.Fatalf("IssueToken at exactly MaxLifetime: %v", err)
	}
}
