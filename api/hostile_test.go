package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/token"
)

// b64 is a JWS segment.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// forge signs a header and claims given as raw JSON text, so a test can
// send what a JSON encoder never would: repeated keys, keys in odd cases,
// strings where numbers belong.
func forge(header, claims string, key []byte) string {
	unsigned := b64(header) + "." + b64(claims)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(unsigned))
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// state is everything a request could change, read back as the DDL role
// (the request role may not look outside a scope) so that a hostile
// request can be shown to have changed nothing: the registry, the
// row count and a digest of the rows of every table in every
// non-system schema, the schema list, and the roles that own or may use a
// schema of this database (roles are cluster-wide; this keeps other test
// databases' roles out while catching any role onboarding would make).
func (s *stack) state(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	var out strings.Builder
	q := func(sql string, args ...any) [][]any {
		t.Helper()
		var rows [][]any
		r, err := s.ddl.WithContext(ctx).Raw(sql, args...).Rows()
		if err != nil {
			t.Fatalf("snapshot %q: %v", sql, err)
		}
		defer r.Close()
		cols, err := r.Columns()
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				t.Fatalf("snapshot %q: %v", sql, err)
			}
			rows = append(rows, vals)
		}
		if err := r.Err(); err != nil {
			t.Fatalf("snapshot %q: %v", sql, err)
		}
		return rows
	}
	dump := func(label string, rows [][]any) {
		b, err := json.Marshal(rows)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%s %s\n", label, b)
	}
	dump("registry", q(`SELECT id, name, schema_name, status, schema_version, created_at FROM `+migrations.TenantsTable+` ORDER BY id`))
	dump("schemas", q(`SELECT nspname, nspowner::regrole::text FROM pg_namespace ORDER BY 1`))
	dump("roles", q(`SELECT rolname, rolsuper, rolinherit, rolcanlogin, rolbypassrls FROM pg_roles r
		WHERE EXISTS (SELECT 1 FROM pg_namespace n
			WHERE n.nspname NOT IN ('public', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
			AND (n.nspowner = r.oid OR has_schema_privilege(r.oid, n.oid, 'USAGE')))
		ORDER BY 1`))
	tables := q(`SELECT schemaname, tablename FROM pg_tables
		WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`)
	registry := false
	for _, tb := range tables {
		registry = registry || tb[0] == migrations.SharedSchema && tb[1] == "tenants"
		name := pgx.Identifier{tb[0].(string), tb[1].(string)}.Sanitize()
		dump(name, q(`SELECT count(*), coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '') FROM `+name+` x`))
	}
	if !registry {
		t.Fatalf("the snapshot's table list %v lacks the registry: the query is wrong", tables)
	}
	return out.String()
}

// hostileCase is one request of the matrix and the status it must get.
type hostileCase struct {
	name    string
	method  string
	path    string
	headers map[string]string
	ct      string
	body    string
	status  int
}

// TestHostileInputMatrix sends every kind of malformed or hostile request
// the service can meet through the live router and real PostgreSQL. Each
// must get its 4xx as problem+json (no 500, no internals in the body) and
// change nothing at all: registry, every table's rows, schemas and roles
// are compared before and after each case. A few cases expect 200: inputs
// that are accepted on purpose but must stay inert (an ignored kid); they
// are read-only requests and the state check covers them too.
func TestHostileInputMatrix(t *testing.T) {
	// The binary's leeway (config.go), so the leeway cases mean what they say.
	s := newStack(t, tenancy.DefaultPool, func(a *token.Config) { a.Leeway = 30 * time.Second })
	s.onboard(t, "acme", "globex", "frozen", "a_b")
	admin := s.token(t, "", true)
	want(t, s.do(t, "PATCH", "/admin/tenants/frozen", admin, map[string]string{"status": "suspended"}), http.StatusOK)
	acme, globex := s.token(t, "acme", false), s.token(t, "globex", false)
	want(t, s.do(t, "POST", "/items", acme, map[string]string{"name": "acme's"}), http.StatusCreated)
	want(t, s.do(t, "POST", "/items", globex, map[string]string{"name": "globex's"}), http.StatusCreated)
	acmeRow, err := s.dir.Get(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	globexRow, err := s.dir.Get(context.Background(), "globex")
	if err != nil {
		t.Fatal(err)
	}
	var acmeItem int64
	if err := s.ddl.Raw(`SELECT id FROM t_acme.items LIMIT 1`).Scan(&acmeItem).Error; err != nil || acmeItem == 0 {
		t.Fatalf("acme's item: %v", err)
	}

	cases := append(tokenCases(t, acmeRow, globexRow), inputCases(acme, admin, acmeItem)...)
	before := s.state(t)
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("two cases are named %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			for k, v := range tc.headers {
				for _, one := range strings.Split(v, "\n\n") { // "\n\n" separates repeated headers
					req.Header.Add(k, one)
				}
			}
			r := s.serve(t, req)
			want(t, r, tc.status)
			for _, leak := range []string{"goroutine", "SQLSTATE", "panic", migrations.TenantsTable, "pq:", "pgx"} {
				if strings.Contains(string(r.body), leak) {
					t.Fatalf("response leaks %q: %s", leak, r.body)
				}
			}
			if after := s.state(t); after != before {
				t.Fatalf("state changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}

	// Algorithm confusion needs a server configured with a public key.
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	pub, err := token.ParsePublicKeyPEM(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	pk := newStack(t, tenancy.DefaultPool, func(a *token.Config) { a.Secret, a.PublicKey = nil, pub })
	now := time.Now().Unix()
	adminClaims := fmt.Sprintf(`{"role":"admin","iat":%d,"exp":%d}`, now, now+600)
	es := sign(t, jwt.SigningMethodES256, ecKey, jwt.MapClaims{"role": "admin", "iat": now, "exp": now + 600})
	esParts := strings.Split(es, ".")
	pkCases := []hostileCase{
		{name: "HS256 keyed with the public key's PEM", path: "/admin/tenants", status: 401,
			headers: bearer(forge(`{"alg":"HS256","typ":"JWT"}`, adminClaims, pemKey))},
		{name: "HS256 keyed with the public key's DER", path: "/admin/tenants", status: 401,
			headers: bearer(forge(`{"alg":"HS256","typ":"JWT"}`, adminClaims, der))},
		{name: "ES256 with an embedded jwk", path: "/admin/tenants", status: 401,
			headers: bearer(b64(`{"alg":"ES256","jwk":{"kty":"EC"}}`) + "." + esParts[1] + "." + esParts[2])},
		{name: "ES256 signature over another header", path: "/admin/tenants", status: 401,
			headers: bearer(b64(`{"alg":"ES256","typ":"JWT","kid":"k"}`) + "." + esParts[1] + "." + esParts[2])},
		{name: "alg none on a public-key server", path: "/admin/tenants", status: 401,
			headers: bearer(b64(`{"alg":"none"}`) + "." + b64(adminClaims) + ".")},
		{name: "the ES256 token itself", path: "/admin/tenants", status: 200, headers: bearer(es)},
	}
	pkBefore := pk.state(t)
	for _, tc := range pkCases {
		t.Run("public key/"+tc.name, func(t *testing.T) {
			want(t, pk.doRaw(t, "GET", tc.path, "", "", tc.headers), tc.status)
			if after := pk.state(t); after != pkBefore {
				t.Fatalf("state changed:\nbefore %s\nafter  %s", pkBefore, after)
			}
		})
	}
	t.Logf("state compared:\n%s", before)
	t.Logf("hostile-input matrix: %d cases on the HS256 server, %d on the public-key server", len(cases), len(pkCases))
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// tokenCases are the token profile's cases, all on GET /items (or
// /admin/tenants for admin claims).
func tokenCases(t *testing.T, acme, globex models.Tenant) []hostileCase {
	now := time.Now().Unix()
	hs := `{"alg":"HS256","typ":"JWT"}`
	claims := func(extra string) string {
		return fmt.Sprintf(`{"tenant":"acme","iat":%d,"exp":%d%s}`, now, now+600, extra)
	}
	tok := func(header, claims string) map[string]string { return bearer(forge(header, claims, testSecret)) }
	valid := forge(hs, claims(""), testSecret)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cs := []hostileCase{
		// the control: the case's token shape is right, so every 401 below is the variation's
		{name: "control: a valid token", status: 200, headers: bearer(valid)},
		{name: "control: typ at+jwt", status: 200, headers: tok(`{"alg":"HS256","typ":"at+jwt"}`, claims(""))},
		{name: "control: tenant_id of acme", status: 200, headers: tok(hs, claims(fmt.Sprintf(`,"tenant_id":%d`, acme.ID)))},
		{name: "control: exp within the leeway", path: "/admin/tenants", status: 200, headers: tok(hs, fmt.Sprintf(`{"role":"admin","iat":%d,"exp":%d}`, now-60, now-10))},
		{name: "exp before iat", path: "/admin/tenants", status: 401, headers: tok(hs, fmt.Sprintf(`{"role":"admin","iat":%d,"exp":%d}`, now, now-10))},
		{name: "exp equal to iat", path: "/admin/tenants", status: 401, headers: tok(hs, fmt.Sprintf(`{"role":"admin","iat":%d,"exp":%d}`, now-10, now-10))},
		{name: "control: fractional exp", status: 200, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d,"exp":%d.5}`, now, now+600))},
		{name: "inert: kid with path traversal", status: 200, headers: tok(`{"alg":"HS256","kid":"../../../../etc/passwd"}`, claims(""))},
		{name: "inert: kid with SQL", status: 200, headers: tok(`{"alg":"HS256","kid":"' OR '1'='1'; DROP SCHEMA t_acme CASCADE; --"}`, claims(""))},
		{name: "inert: unknown claims", status: 200, headers: tok(hs, claims(`,"scope":"x","realm_access":{"roles":["admin"]}`))},

		// registered claims matched exactly
		{name: "EXP and no exp", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d,"EXP":%d}`, now, now+600))},
		{name: "exp past and Exp future", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d,"exp":%d,"Exp":%d}`, now-3600, now-1800, now+600))},
		{name: "exp future and Exp past", status: 401, headers: tok(hs, claims(fmt.Sprintf(`,"Exp":%d`, now-1800)))},
		{name: "IAT instead of iat", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","IAT":%d,"exp":%d}`, now, now+600))},
		{name: "long-s case variant of sub", status: 401, headers: tok(hs, claims(`,"\u017fub":"x"`))},
		{name: "Tenant beside tenant", status: 401, headers: tok(hs, claims(`,"Tenant":"globex"`))},
		{name: "TENANT instead of tenant", status: 401, headers: tok(hs, fmt.Sprintf(`{"TENANT":"acme","iat":%d,"exp":%d}`, now, now+600))},
		{name: "Role admin on admin", path: "/admin/tenants", status: 401, headers: tok(hs, claims(`,"Role":"admin"`))},
		{name: "Tenant_ID case variant", status: 401, headers: tok(hs, claims(`,"Tenant_ID":1`))},
		{name: "Aud case variant", status: 401, headers: tok(hs, claims(`,"AUD":"x"`))},
		// types
		{name: "exp as a string", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d,"exp":"%d"}`, now, now+600))},
		{name: "iat as a string", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":"%d","exp":%d}`, now, now+600))},
		{name: "nbf as a string", status: 401, headers: tok(hs, claims(fmt.Sprintf(`,"nbf":"%d"`, now)))},
		{name: "exp null", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d,"exp":null}`, now))},
		{name: "exp true", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d,"exp":true}`, now))},
		{name: "exp an array", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d,"exp":[%d]}`, now, now+600))},
		{name: "exp negative", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d,"exp":-1}`, now))},
		{name: "exp 1e300", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d,"exp":1e300}`, now))},
		{name: "exp after year 9999", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d,"exp":253402300800}`, now))},
		{name: "exp zero", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d,"exp":0}`, now))},
		{name: "iss a number", status: 401, headers: tok(hs, claims(`,"iss":1`))},
		{name: "aud an object", status: 401, headers: tok(hs, claims(`,"aud":{"a":1}`))},
		{name: "aud null", status: 401, headers: tok(hs, claims(`,"aud":null`))},
		{name: "aud an array with a number", status: 401, headers: tok(hs, claims(`,"aud":["x",1]`))},
		{name: "role a number", path: "/admin/tenants", status: 401, headers: tok(hs, claims(`,"role":1`))},
		{name: "role null", path: "/admin/tenants", status: 401, headers: tok(hs, claims(`,"role":null`))},
		{name: "tenant_id a string", status: 401, headers: tok(hs, claims(fmt.Sprintf(`,"tenant_id":"%d"`, acme.ID)))},
		{name: "tenant_id zero", status: 401, headers: tok(hs, claims(`,"tenant_id":0`))},
		{name: "tenant_id negative", status: 401, headers: tok(hs, claims(`,"tenant_id":-1`))},
		{name: "tenant_id fractional", status: 401, headers: tok(hs, claims(fmt.Sprintf(`,"tenant_id":%d.5`, acme.ID)))},
		{name: "tenant_id in exponent form", status: 401, headers: tok(hs, claims(`,"tenant_id":1e0`))},
		{name: "tenant_id beyond int64", status: 401, headers: tok(hs, claims(`,"tenant_id":9223372036854775808`))},
		// dates and lifetime
		{name: "expired beyond the leeway", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d,"exp":%d}`, now-600, now-120))},
		{name: "no exp", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d}`, now))},
		{name: "no iat", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","exp":%d}`, now+600))},
		{name: "iat in the future", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d,"exp":%d}`, now+300, now+600))},
		{name: "nbf in the future", status: 401, headers: tok(hs, claims(fmt.Sprintf(`,"nbf":%d`, now+300)))},
		{name: "lifetime one second over a day", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d,"exp":%d}`, now, now+86401))},
		{name: "exp in year 9999", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d,"exp":253402300799}`, now))},
		{name: "iat zero", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":0,"exp":%d}`, now+600))},
		// tenant incarnation
		{name: "issued before acme was created", status: 403,
			headers: tok(hs, fmt.Sprintf(`{"tenant":"acme","iat":%d,"exp":%d}`, acme.CreatedAt.Unix()-int64(token.MaxLeeway/time.Second)-5, now+600))},
		{name: "tenant_id of globex on acme", status: 403, headers: tok(hs, claims(fmt.Sprintf(`,"tenant_id":%d`, globex.ID)))},
		{name: "tenant_id of no tenant", status: 403, headers: tok(hs, claims(`,"tenant_id":999999`))},
		// duplicate keys
		{name: "claims repeat tenant", status: 401, headers: tok(hs, fmt.Sprintf(`{"tenant":"globex","tenant":"acme","iat":%d,"exp":%d}`, now, now+600))},
		{name: "claims repeat exp", status: 401, headers: tok(hs, claims(fmt.Sprintf(`,"exp":%d`, now-600)))},
		{name: "claims repeat exp through an escape", status: 401, headers: tok(hs, claims(fmt.Sprintf(`,"e\u0078p":%d`, now+60)))},
		{name: "claims repeat a key in a nested object", status: 401, headers: tok(hs, claims(`,"x":{"a":1,"a":2}`))},
		{name: "claims repeat role", path: "/admin/tenants", status: 401, headers: tok(hs, claims(`,"role":"admin","role":"user"`))},
		{name: "header repeats alg", status: 401, headers: tok(`{"alg":"none","alg":"HS256"}`, claims(""))},
		{name: "header repeats typ", status: 401, headers: tok(`{"alg":"HS256","typ":"JWT","typ":"JWT"}`, claims(""))},
		// claims text
		{name: "claims with a lone surrogate", status: 401, headers: tok(hs, claims(`,"x":"\ud800"`))},
		{name: "claims with invalid UTF-8", status: 401, headers: tok(hs, claims(",\"x\":\"\xff\""))},
		{name: "claims nested 40 deep", status: 401, headers: tok(hs, claims(`,"x":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)))},
		{name: "claims an array", status: 401, headers: tok(hs, `[1]`)},
		{name: "claims two objects", status: 401, headers: tok(hs, claims("")+"{}")},
		{name: "claims not JSON", status: 401, headers: tok(hs, `tenant=acme`)},
		// header parameters
		{name: "crit header", status: 401, headers: tok(`{"alg":"HS256","crit":["exp"]}`, claims(""))},
		{name: "crit header naming nothing", status: 401, headers: tok(`{"alg":"HS256","crit":[]}`, claims(""))},
		{name: "jku header", status: 401, headers: tok(`{"alg":"HS256","jku":"http://127.0.0.1:1/keys"}`, claims(""))},
		{name: "x5u header", status: 401, headers: tok(`{"alg":"HS256","x5u":"http://127.0.0.1:1/cert"}`, claims(""))},
		{name: "jwk header", status: 401, headers: tok(`{"alg":"HS256","jwk":{"kty":"oct","k":"AAAA"}}`, claims(""))},
		{name: "x5c header", status: 401, headers: tok(`{"alg":"HS256","x5c":["MIIB"]}`, claims(""))},
		{name: "b64 false header", status: 401, headers: tok(`{"alg":"HS256","b64":false}`, claims(""))},
		{name: "cty JWT header (nested token)", status: 401, headers: tok(`{"alg":"HS256","cty":"JWT"}`, claims(""))},
		{name: "zip header", status: 401, headers: tok(`{"alg":"HS256","zip":"DEF"}`, claims(""))},
		{name: "kid a number", status: 401, headers: tok(`{"alg":"HS256","kid":7}`, claims(""))},
		{name: "kid over 256 bytes", status: 401, headers: tok(`{"alg":"HS256","kid":"`+strings.Repeat("k", 257)+`"}`, claims(""))},
		{name: "typ JWE", status: 401, headers: tok(`{"alg":"HS256","typ":"JWE"}`, claims(""))},
		{name: "typ dpop+jwt", status: 401, headers: tok(`{"alg":"HS256","typ":"dpop+jwt"}`, claims(""))},
		{name: "typ a number", status: 401, headers: tok(`{"alg":"HS256","typ":1}`, claims(""))},
		{name: "header an array", status: 401, headers: tok(`["HS256"]`, claims(""))},
		{name: "header without alg", status: 401, headers: tok(`{"typ":"JWT"}`, claims(""))},
		// algorithms
		{name: "alg none", status: 401, headers: bearer(b64(`{"alg":"none"}`) + "." + b64(claims("")) + ".")},
		{name: "alg none with a signature", status: 401, headers: bearer(b64(`{"alg":"none"}`) + "." + b64(claims("")) + ".c2ln")},
		{name: "alg None", status: 401, headers: tok(`{"alg":"None"}`, claims(""))},
		{name: "alg NONE", status: 401, headers: tok(`{"alg":"NONE"}`, claims(""))},
		{name: "alg noNE", status: 401, headers: tok(`{"alg":"noNE"}`, claims(""))},
		{name: "alg hs256", status: 401, headers: tok(`{"alg":"hs256"}`, claims(""))},
		{name: "alg HS512 with the secret", status: 401, headers: bearer(sign(t, jwt.SigningMethodHS512, testSecret, jwt.MapClaims{"tenant": "acme", "iat": now, "exp": now + 600}))},
		{name: "alg RS256 on an HS256 server", status: 401, headers: bearer(sign(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{"tenant": "acme", "iat": now, "exp": now + 600}))},
		{name: "alg a number", status: 401, headers: tok(`{"alg":256}`, claims(""))},
		{name: "signed with another secret", status: 401, headers: bearer(forge(hs, claims(""), []byte("another-secret-another-secret-another")))},
		{name: "one flipped signature character", status: 401, headers: bearer(flip(valid, len(valid)-3))},
		{name: "one flipped claims character", status: 401, headers: bearer(flip(valid, strings.Index(valid, ".")+3))},
		// segments and encoding
		{name: "two segments", status: 401, headers: bearer(valid[:strings.LastIndex(valid, ".")])},
		{name: "four segments", status: 401, headers: bearer(valid + ".e30")},
		{name: "five segments (JWE)", status: 401, headers: bearer("a.b.c.d.e")},
		{name: "only dots", status: 401, headers: bearer("..")},
		{name: "empty signature", status: 401, headers: bearer(valid[:strings.LastIndex(valid, ".")+1])},
		{name: "padded segment", status: 401, headers: bearer(strings.Replace(valid, ".", "=.", 1))},
		{name: "standard base64 alphabet", status: 401, headers: bearer(strings.NewReplacer("-", "+", "_", "/").Replace(valid) + "+/")},
		{name: "a space inside", status: 401, headers: bearer(strings.Replace(valid, ".", ". ", 1))},
		{name: "non-canonical trailing bits", status: 401, headers: bearer(lastBits(valid))},
		{name: "JWS JSON serialization", status: 401, headers: bearer(`{"payload":"e30","signatures":[]}`)},
		{name: "1 MiB of dots", status: 401, headers: bearer(strings.Repeat(".", 1<<20))},
		{name: "token over 8 KiB", status: 401, headers: bearer(forge(hs, claims(`,"pad":"`+strings.Repeat("p", 6200)+`"`), testSecret))},
		// the Authorization header itself
		{name: "no Authorization", status: 401},
		{name: "empty Authorization", status: 401, headers: map[string]string{"Authorization": ""}},
		{name: "Bearer without a token", status: 401, headers: map[string]string{"Authorization": "Bearer"}},
		{name: "Bearer and spaces", status: 401, headers: map[string]string{"Authorization": "Bearer    "}},
		{name: "Basic scheme", status: 401, headers: map[string]string{"Authorization": "Basic YWRtaW46YWRtaW4="}},
		{name: "token without a scheme", status: 401, headers: map[string]string{"Authorization": valid}},
		{name: "Token scheme", status: 401, headers: map[string]string{"Authorization": "Token " + valid}},
		{name: "two Authorization headers", status: 401, headers: map[string]string{"Authorization": "Bearer " + valid + "\n\nBearer " + valid}},
		{name: "token in the query string", path: "/items?access_token=" + valid, status: 401},
		{name: "token in a cookie", status: 401, headers: map[string]string{"Cookie": "access_token=" + valid}},
		// roles
		{name: "tenant token on admin", path: "/admin/tenants", status: 403, headers: bearer(valid)},
		{name: "role ADMIN", path: "/admin/tenants", status: 403, headers: tok(hs, claims(`,"role":"ADMIN"`))},
		{name: "role admin with spaces", path: "/admin/tenants", status: 403, headers: tok(hs, claims(`,"role":" admin"`))},
		{name: "role array", path: "/admin/tenants", status: 401, headers: tok(hs, claims(`,"role":["admin"]`))},
		{name: "admin without a tenant on items", status: 403, headers: tok(hs, fmt.Sprintf(`{"role":"admin","iat":%d,"exp":%d}`, now, now+600))},
	}
	// tenant claims: types are 401 (a malformed token), names that are not
	// an active tenant's are 403 (a valid token for no tenant we serve).
	for _, v := range []string{`42`, `["acme"]`, `{"name":"acme"}`, `null`, `true`} {
		cs = append(cs, hostileCase{name: "tenant claim " + v, status: 401,
			headers: tok(hs, fmt.Sprintf(`{"tenant":%s,"iat":%d,"exp":%d}`, v, now, now+600))})
	}
	for _, v := range []string{``, `acme\"`, `acme'`, `'acme'`, `\"acme\"`, `acme,public`, `acme;`, `acme public`, `acme.items`,
		`acme/globex`, `acme\\`, `acme\u0000`, `acme\n`, ` acme`, `ACME`, `Acme`, `\u0430cme` /* Cyrillic a */, `acm\u00e9`,
		`public`, `pg_catalog`, `information_schema`, `pg_temp`, `pg_toast`, `tenantry`, `t_acme`, `$user`, `\"$user\", public`,
		`frozen`, `a-b`, strings.Repeat("a", 49), strings.Repeat("a", 64), `nobody`, `*`, `%`, `acme%`, `acme_`} {
		cs = append(cs, hostileCase{name: "tenant claim " + strconv.Quote(v), status: 403,
			headers: tok(hs, fmt.Sprintf(`{"tenant":"%s","iat":%d,"exp":%d}`, v, now, now+600))})
	}
	for i := range cs {
		if cs[i].method == "" {
			cs[i].method = "GET"
		}
		if cs[i].path == "" {
			cs[i].path = "/items"
		}
		cs[i].name = "token/" + cs[i].name
	}
	return cs
}

// flip changes one base64url character of tok at i.
func flip(tok string, i int) string {
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

// lastBits rewrites the signature's last character to one that decodes to
// the same bytes under lenient decoding: a second spelling of one token.
func lastBits(tok string) string {
	sig := tok[strings.LastIndex(tok, ".")+1:]
	// A 32-byte HMAC is 43 characters; the last carries 4 bits and 2 spare.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	return tok[:len(tok)-1] + string(alphabet[last|1])
}

// inputCases are ids, pagination, bodies, methods, headers and onboarding
// names, with valid tokens.
func inputCases(acme, admin string, item int64) []hostileCase {
	a := map[string]string{"Authorization": "Bearer " + acme}
	ad := map[string]string{"Authorization": "Bearer " + admin}
	itemPath := "/items/" + strconv.FormatInt(item, 10)
	js := "application/json"
	var cs []hostileCase
	// ids
	for _, id := range []string{"abc", "0", "-1", "+1", "01", "1e3", "0x10", "1.0", "1;drop%20table%20items", "99999999999999999999",
		"9223372036854775808", "%201", "1%20", "%00", "1%00", "%E2%80%8B1", "1,2", "(1)", "1'", "null", "true",
		"00000000-0000-0000-0000-000000000001", "%EF%BC%91" /* fullwidth 1 */, "\u0661" /* Arabic-Indic 1 */} {
		cs = append(cs,
			hostileCase{name: "id/GET " + id, method: "GET", path: "/items/" + id, headers: a, status: 400},
			hostileCase{name: "id/DELETE " + id, method: "DELETE", path: "/items/" + id, headers: a, status: 400},
			hostileCase{name: "id/PUT " + id, method: "PUT", path: "/items/" + id, headers: a, ct: js, body: `{"name":"x"}`, status: 400})
	}
	cs = append(cs,
		hostileCase{name: "id/another tenant's id space is just missing", method: "DELETE", path: "/items/999999", headers: a, status: 404},
		hostileCase{name: "id/max int64 missing", method: "PUT", path: "/items/9223372036854775807", headers: a, ct: js, body: `{"name":"x"}`, status: 404})
	// pagination
	for _, q := range []string{"limit=-1", "limit=1001", "limit=abc", "limit=1e3", "limit=+5", "limit=05", "limit=%205", "limit=5%20",
		"limit=0x10", "limit=5.0", "limit=1&limit=2", "limit=99999999999999999999", "offset=-5", "offset=1000001", "offset=abc",
		"offset=+1", "offset=1e2", "offset=1&offset=2", "offset=99999999999999999999", "limit=%00", "limit=\u0661",
		"after=-1", "after=+5", "after=05", "after=abc", "after=1&after=2", "after=99999999999999999999", "after=1&offset=1"} {
		cs = append(cs, hostileCase{name: "page/" + q, method: "GET", path: "/items?" + q, headers: a, status: 400})
	}
	// bodies, on create and update
	huge := `{"name":"` + strings.Repeat("x", 70<<10) + `"}`
	for _, b := range []struct{ name, ct, body string }{
		{"not JSON", js, `name=x`},
		{"truncated", js, `{"name":"x"`},
		{"trailing garbage", js, `{"name":"x"} x`},
		{"two objects", js, `{"name":"x"}{"name":"y"}`},
		{"array", js, `[{"name":"x"}]`},
		{"string", js, `"x"`},
		{"null", js, `null`},
		{"number", js, `7`},
		{"name a number", js, `{"name":7}`},
		{"name an array", js, `{"name":["x"]}`},
		{"name an object", js, `{"name":{"x":1}}`},
		{"name null", js, `{"name":null}`},
		{"name true", js, `{"name":true}`},
		{"description a number", js, `{"name":"x","description":1}`},
		{"unknown field", js, `{"name":"x","colour":"red"}`},
		{"id field", js, `{"name":"x","id":1}`},
		{"tenant field", js, `{"name":"x","tenant":"globex"}`},
		{"schema field", js, `{"name":"x","schema_name":"t_globex"}`},
		{"created_at field", js, `{"name":"x","created_at":"2020-01-01T00:00:00Z"}`},
		{"NAME in upper case", js, `{"NAME":"x"}`},
		{"Name and name", js, `{"name":"x","Name":"y"}`},
		{"repeated name", js, `{"name":"x","name":"y"}`},
		{"repeated name through an escape", js, `{"name":"x","n\u0061me":"y"}`},
		{"invalid UTF-8", js, "{\"name\":\"\xff\xfe\"}"},
		{"overlong UTF-8 slash", js, "{\"name\":\"\xc0\xaf\"}"},
		{"UTF-16 surrogate bytes", js, "{\"name\":\"\xed\xa0\x80\"}"},
		{"lone high surrogate escape", js, `{"name":"\ud800"}`},
		{"lone low surrogate escape", js, `{"name":"\udc00"}`},
		{"reversed surrogate pair", js, `{"name":"\udc00\ud800"}`},
		{"NUL escape", js, `{"name":"a\u0000b"}`},
		{"NUL in description", js, `{"name":"a","description":"\u0000"}`},
		{"name empty", js, `{"name":""}`},
		{"name 201 characters", js, `{"name":"` + strings.Repeat("é", 201) + `"}`},
		{"description 2001 characters", js, `{"name":"x","description":"` + strings.Repeat("d", 2001) + `"}`},
		{"nested 40 deep", js, `{"name":"x","d":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`},
		{"too large", js, huge},
		{"XML", "application/xml", `<item><name>x</name></item>`},
		{"form with invalid UTF-8", "application/x-www-form-urlencoded", "name=%FF"},
		{"form with NUL", "application/x-www-form-urlencoded", "name=a%00b"},
		{"form without name", "application/x-www-form-urlencoded", "description=x"},
		{"form malformed", "application/x-www-form-urlencoded", "name=%zz"},
		{"text/plain", "text/plain", `name`},
	} {
		st := 400
		if b.name == "too large" {
			st = 413
		}
		cs = append(cs,
			hostileCase{name: "body/POST " + b.name, method: "POST", path: "/items", headers: a, ct: b.ct, body: b.body, status: st},
			hostileCase{name: "body/PUT " + b.name, method: "PUT", path: itemPath, headers: a, ct: b.ct, body: b.body, status: st})
	}
	for _, q := range []string{"name=%FF", "name=a%00b", "description=x", "name=" + strings.Repeat("n", 201), "name=%ED%A0%80"} {
		cs = append(cs, hostileCase{name: "query form/" + q, method: "POST", path: "/items?" + q, headers: a, status: 400})
	}
	// methods
	for _, m := range []struct{ method, path string }{
		{"PATCH", "/items"}, {"PUT", "/items"}, {"DELETE", "/items"}, {"POST", itemPath}, {"PATCH", itemPath},
		{"TRACE", "/items"}, {"PUT", "/admin/tenants"}, {"DELETE", "/admin/tenants"}, {"POST", "/admin/tenants/acme"},
		{"PUT", "/admin/tenants/acme"}, {"POST", "/healthz"}, {"DELETE", "/openapi.json"},
	} {
		cs = append(cs, hostileCase{name: "method/" + m.method + " " + m.path, method: m.method, path: m.path, headers: a, status: 405})
	}
	cs = append(cs,
		hostileCase{name: "method/lower-case get", method: "get", path: "/items", headers: a, status: 405},
		hostileCase{name: "method/made up", method: "FROB", path: "/items", headers: a, status: 405},
		hostileCase{name: "path/unknown", method: "GET", path: "/nothing", headers: a, status: 404},
		hostileCase{name: "path/double slash", method: "GET", path: "//items", headers: a, status: 404},
		hostileCase{name: "path/dot segment", method: "GET", path: "/items/../admin/tenants", headers: a, status: 404},
		hostileCase{name: "path/encoded slash in tenant", method: "DELETE", path: "/admin/tenants/acme%2Fglobex", headers: ad, status: 404},
		hostileCase{name: "path/upper-case items", method: "GET", path: "/ITEMS", headers: a, status: 404},
	)
	// onboarding names and bodies
	for _, n := range []string{`"a"`, `"` + strings.Repeat("a", 49) + `"`, `"Acme"`, `"1acme"`, `"-acme"`, `"_acme"`, `"acme!"`,
		`"acme public"`, `"acme;drop"`, `"acme,public"`, `"acme.x"`, `"acme\"x"`, `"acme'x"`, `"\u0430cme"`, `"acm\u00e9"`,
		`"acme\u0000"`, `"acme\n"`, `" acme"`, `"acme "`, `"ac\tme"`, `""`, `7`, `null`, `["acme"]`, `{"n":1}`, `true`,
		`"acme\u200b"`, `"ｍｅ"`, "\"\xff\xfe\""} {
		cs = append(cs, hostileCase{name: "onboard/name " + n, method: "POST", path: "/admin/tenants", headers: ad, ct: js,
			body: `{"name":` + n + `}`, status: 400})
	}
	cs = append(cs,
		hostileCase{name: "onboard/existing name", method: "POST", path: "/admin/tenants", headers: ad, ct: js, body: `{"name":"acme"}`, status: 409},
		hostileCase{name: "onboard/name deriving an existing schema", method: "POST", path: "/admin/tenants", headers: ad, ct: js, body: `{"name":"a-b"}`, status: 409},
		hostileCase{name: "onboard/schema_name field", method: "POST", path: "/admin/tenants", headers: ad, ct: js, body: `{"name":"newco","schema_name":"public"}`, status: 400},
		hostileCase{name: "onboard/Name field", method: "POST", path: "/admin/tenants", headers: ad, ct: js, body: `{"Name":"newco"}`, status: 400},
		hostileCase{name: "onboard/repeated name", method: "POST", path: "/admin/tenants", headers: ad, ct: js, body: `{"name":"acme","name":"newco"}`, status: 400},
		hostileCase{name: "onboard/no body", method: "POST", path: "/admin/tenants", headers: ad, status: 400},
		hostileCase{name: "onboard/id field", method: "POST", path: "/admin/tenants", headers: ad, ct: js, body: `{"name":"newco","id":1}`, status: 400},
		hostileCase{name: "onboard/status field", method: "POST", path: "/admin/tenants", headers: ad, ct: js, body: `{"name":"newco","status":"suspended"}`, status: 400},
		hostileCase{name: "onboard/query form", method: "POST", path: "/admin/tenants?name=newco", headers: ad, status: 400},
		hostileCase{name: "admin/status unknown", method: "PATCH", path: "/admin/tenants/acme", headers: ad, ct: js, body: `{"status":"deleted"}`, status: 400},
		hostileCase{name: "admin/status upper-case", method: "PATCH", path: "/admin/tenants/acme", headers: ad, ct: js, body: `{"status":"SUSPENDED"}`, status: 400},
		hostileCase{name: "admin/status repeated", method: "PATCH", path: "/admin/tenants/acme", headers: ad, ct: js, body: `{"status":"active","status":"suspended"}`, status: 400},
		hostileCase{name: "admin/Status field", method: "PATCH", path: "/admin/tenants/acme", headers: ad, ct: js, body: `{"Status":"suspended"}`, status: 400},
		hostileCase{name: "admin/name field in patch", method: "PATCH", path: "/admin/tenants/acme", headers: ad, ct: js, body: `{"status":"active","name":"x"}`, status: 400},
		hostileCase{name: "admin/get invalid name", method: "GET", path: "/admin/tenants/Bad%2CName", headers: ad, status: 404},
		hostileCase{name: "admin/get schema name", method: "GET", path: "/admin/tenants/t_acme", headers: ad, status: 404},
		hostileCase{name: "admin/delete public", method: "DELETE", path: "/admin/tenants/public", headers: ad, status: 404},
		hostileCase{name: "admin/delete pg_catalog", method: "DELETE", path: "/admin/tenants/pg_catalog", headers: ad, status: 404},
		hostileCase{name: "admin/delete tenantry", method: "DELETE", path: "/admin/tenants/tenantry", headers: ad, status: 404},
		hostileCase{name: "admin/delete with a quote", method: "DELETE", path: "/admin/tenants/acme%22", headers: ad, status: 404},
		hostileCase{name: "admin/delete with NUL", method: "DELETE", path: "/admin/tenants/acme%00", headers: ad, status: 404},
		hostileCase{name: "admin/delete upper-case", method: "DELETE", path: "/admin/tenants/ACME", headers: ad, status: 404},
		hostileCase{name: "admin/patch missing tenant", method: "PATCH", path: "/admin/tenants/nobody", headers: ad, ct: js, body: `{"status":"suspended"}`, status: 404},
	)
	return cs
}
