// Package token verifies bearer JWTs under a strict profile and binds each
// to one incarnation of its tenant.
package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenantry/tenantry/models"
)

// Token limits.
const (
	// MinSecretLen is the HS256 key floor: a key as long as the hash output,
	// 256 bits (RFC 7518 §3.2).
	MinSecretLen = 32
	// minRSABits is RFC 7518 §3.3's floor for RS256 keys.
	minRSABits = 2048
	// MaxTokenLen caps a bearer token before it is parsed: golang-jwt
	// decodes the claims before it checks the signature, allocating a few
	// times the token's size, so an attacker's
	// megabyte token must cost nothing.
	MaxTokenLen = 8 << 10
	// MaxLeeway caps the clock-skew allowance (RFC 7519 §4.1.4: "no more
	// than a few minutes"; we allow one).
	MaxLeeway = 60 * time.Second
	// DefaultMaxLifetime caps exp - iat when JWT_MAX_LIFETIME is unset. A
	// day is the longest default access-token lifetime among the common
	// identity providers (Auth0 issues 86400 s; Entra ID and Google about
	// an hour), so IdP tokens pass unchanged while a token can no longer
	// live for years: the flaw that let a deleted tenant's token reach its
	// successor of the same name. The CLI's tokens last an hour by default
	// and `tenantry dev`'s 12 hours.
	DefaultMaxLifetime = 24 * time.Hour
	// maxNumericDate is 9999-12-31T23:59:59Z: larger "dates" are not dates
	// and would overflow time arithmetic.
	maxNumericDate = 253402300799
	// maxKeyID bounds the ignored kid and x5t header parameters.
	maxKeyID = 256
)

// Config says which tokens the service accepts. Exactly one of Secret
// (HS256) and PublicKey (RS*/PS*, ES* or EdDSA, by key type) is set; only
// that algorithm family is accepted, never "none".
type Config struct {
	Secret      []byte
	PublicKey   crypto.PublicKey
	Issuer      string // required iss, when set
	Audience    string // required aud, when set
	TenantClaim string // default "tenant"
	// TenantIDClaim names the optional claim that binds a token to one
	// incarnation of its tenant: the registry id (default "tenant_id";
	// not "tid", which Entra ID fills with its own directory id).
	TenantIDClaim string
	// MaxLifetime caps exp - iat; 0 means DefaultMaxLifetime.
	MaxLifetime time.Duration
	Leeway      time.Duration
}

// registeredClaims are RFC 7519's names. A claim spelled like one of these
// (or like the role and tenant claims) in another case is refused:
// encoding/json folds case, and a gateway that reads "Exp" while we read
// "exp" would judge another token than we do.
var registeredClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}

func (c *Config) check() error {
	if c.TenantClaim == "" {
		c.TenantClaim = "tenant"
	}
	if c.TenantIDClaim == "" {
		c.TenantIDClaim = "tenant_id"
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = DefaultMaxLifetime
	}
	if c.MaxLifetime < 0 {
		return fmt.Errorf("jwt max lifetime %s must be positive", c.MaxLifetime)
	}
	for _, n := range append(registeredClaims, "role", c.TenantIDClaim) {
		if strings.EqualFold(c.TenantClaim, n) {
			return fmt.Errorf("JWT_TENANT_CLAIM %q collides with the %q claim", c.TenantClaim, n)
		}
	}
	for _, n := range append(registeredClaims, "role") {
		if strings.EqualFold(c.TenantIDClaim, n) {
			return fmt.Errorf("JWT_TENANT_ID_CLAIM %q collides with the %q claim", c.TenantIDClaim, n)
		}
	}
	if c.Leeway < 0 || c.Leeway > MaxLeeway {
		return fmt.Errorf("jwt leeway %s is outside 0..%s", c.Leeway, MaxLeeway)
	}
	switch {
	case c.PublicKey != nil && c.Secret != nil:
		return errors.New("set either JWT_SECRET or JWT_PUBLIC_KEY_FILE, not both")
	case c.PublicKey == nil && len(c.Secret) < MinSecretLen:
		return fmt.Errorf("JWT_SECRET must be at least %d bytes", MinSecretLen)
	}
	if k, ok := c.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() < minRSABits {
		return fmt.Errorf("RSA public key has %d bits, want at least %d", k.N.BitLen(), minRSABits)
	}
	if c.PublicKey != nil && c.methods()[0] == "" {
		return errors.New("public key: only RSA, ECDSA on P-256/P-384/P-521 and Ed25519 keys are supported")
	}
	return nil
}

// methods lists the algorithms accepted for the configured key.
func (c *Config) methods() []string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case *ecdsa.PublicKey:
		return []string{map[int]string{256: "ES256", 384: "ES384", 521: "ES512"}[k.Curve.Params().BitSize]}
	case ed25519.PublicKey:
		return []string{"EdDSA"}
	case nil:
		return []string{"HS256"}
	}
	return []string{""}
}

// ParsePublicKeyPEM reads an RSA, ECDSA or Ed25519 public key in PEM.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	if blk, _ := pem.Decode(data); blk == nil {
		return nil, errors.New("no PEM block in public key file")
	}
	if k, err := jwt.ParseRSAPublicKeyFromPEM(data); err == nil {
		return k, nil
	}
	if k, err := jwt.ParseECPublicKeyFromPEM(data); err == nil {
		return k, nil
	}
	if k, err := jwt.ParseEdPublicKeyFromPEM(data); err == nil {
		return k, nil
	}
	return nil, errors.New("public key is not an RSA, ECDSA or Ed25519 key in PEM")
}

// Claims are the claims tenantry reads from a token.
type Claims struct {
	jwt.RegisteredClaims
	Role   string
	Tenant string
	// TenantID is the registry id of the tenant incarnation the token was
	// issued for; 0 when the token does not say.
	TenantID int64

	tenantClaim, tenantIDClaim string
}

// UnmarshalJSON reads the claims by their exact names (encoding/json's
// struct matching would fold case). Types are strict: iss, sub, jti, role
// and the tenant are JSON strings, exp, nbf and iat JSON numbers, the
// tenant id a positive JSON integer; anything else makes the token
// malformed. The caller has already refused repeated keys (CheckJSON).
func (c *Claims) UnmarshalJSON(b []byte) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	if all == nil {
		return errors.New("the claims are not a JSON object")
	}
	for name, dst := range map[string]*string{"iss": &c.Issuer, "sub": &c.Subject, "jti": &c.ID,
		"role": &c.Role, c.tenantClaim: &c.Tenant} {
		if raw, ok := all[name]; ok {
			if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, dst) != nil {
				return fmt.Errorf("claim %q must be a string", name)
			}
		}
	}
	for name, dst := range map[string]**jwt.NumericDate{"exp": &c.ExpiresAt, "nbf": &c.NotBefore, "iat": &c.IssuedAt} {
		if raw, ok := all[name]; ok {
			t, err := numericDate(raw)
			if err != nil {
				return fmt.Errorf("claim %q: %w", name, err)
			}
			*dst = jwt.NewNumericDate(t)
		}
	}
	if raw, ok := all["aud"]; ok {
		if len(raw) == 0 || raw[0] != '"' && raw[0] != '[' || json.Unmarshal(raw, &c.Audience) != nil {
			return errors.New(`claim "aud" must be a string or an array of strings`)
		}
	}
	if raw, ok := all[c.tenantIDClaim]; ok {
		id, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || id < 1 {
			return fmt.Errorf("claim %q must be a positive integer", c.tenantIDClaim)
		}
		c.TenantID = id
	}
	return nil
}

// numericDate reads an RFC 7519 NumericDate: a JSON number (never a
// string, which encoding/json would convert) of seconds from 0 to the end
// of year 9999.
func numericDate(raw json.RawMessage) (time.Time, error) {
	bad := errors.New("must be a JSON number of seconds since 1970 before year 10000")
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' {
		return time.Time{}, bad
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < 0 || f > maxNumericDate {
		return time.Time{}, bad
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// boundTo reports whether the token may act for t, the tenant's current
// incarnation: a token issued before t was created, or naming another
// registry id, was issued for a tenant of the same name that has since
// been deleted (or not yet created), and must not reach this one's data.
// A tenant id claim names one incarnation on its own, so it alone decides.
// Without one, iat is compared with created_at in whole seconds (iat's
// resolution) with the clock leeway: created_at comes from this service's
// clock and iat from the issuer's, and a token minted just after onboarding
// by an issuer whose clock runs a little behind must not be refused for its
// whole life.
func (c *Claims) boundTo(t models.Tenant, leeway time.Duration) bool {
	if c.TenantID != 0 {
		return c.TenantID == t.ID
	}
	return c.IssuedAt != nil && c.IssuedAt.Add(leeway).Unix() >= t.CreatedAt.Unix()
}

// Verifier checks bearer tokens against one Config. It is safe for
// concurrent use.
type Verifier struct {
	cfg    Config
	parser *jwt.Parser
	cache  *tokenCache
}

// NewVerifier checks cfg and returns a Verifier for it.
func NewVerifier(cfg Config) (*Verifier, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(cfg.methods()),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), // an iat in the future is refused too
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithStrictDecoding(), // one base64 spelling per token
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &Verifier{cfg: cfg, parser: jwt.NewParser(opts...), cache: newTokenCache()}, nil
}

func (a *Verifier) key(*jwt.Token) (any, error) {
	if a.cfg.PublicKey != nil {
		return a.cfg.PublicKey, nil
	}
	return a.cfg.Secret, nil
}

// Verify checks an Authorization header value and returns its claims.
// Before golang-jwt sees the token, checkProfile refuses what the library
// would accept but a stricter reader might judge differently (see
// README's token profile): the library then checks the signature, the
// algorithm, exp, nbf, iat, iss and aud.
func (a *Verifier) Verify(header string) (*Claims, error) {
	if len(header) > MaxTokenLen+len("Bearer ") {
		return nil, errors.New("token too large")
	}
	scheme, raw, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return nil, errors.New("missing bearer token")
	}
	raw = strings.TrimSpace(raw)
	if cl := a.cache.get(raw, time.Now(), a.cfg.Leeway); cl != nil {
		return cl, nil
	}
	claims, err := a.verifyToken(raw)
	if err != nil {
		return nil, err
	}
	a.cache.put(raw, claims)
	return claims, nil
}

// verifyToken runs every check on a raw token, without the cache.
func (a *Verifier) verifyToken(raw string) (*Claims, error) {
	if err := a.checkProfile(raw); err != nil {
		return nil, err
	}
	claims := &Claims{tenantClaim: a.cfg.TenantClaim, tenantIDClaim: a.cfg.TenantIDClaim}
	if _, err := a.parser.ParseWithClaims(raw, claims, a.key); err != nil {
		return nil, err
	}
	return claims, nil
}

// headerParams are the JWS header parameters a token may carry. kid and
// x5t are accepted (identity providers set them) and ignored: one key is
// configured, so they never choose a key, and they reach no file, URL or
// SQL. jku, x5u, jwk and x5c name or embed a key; a verifier that used them
// would let the token pick the key that verifies it, and we never fetch
// keys, so they are refused rather than ignored, as is crit (RFC 7515
// §4.1.11: an extension the recipient does not understand must make the
// token invalid) and every other parameter (b64, zip, cty's nested tokens).
var headerParams = map[string]bool{"alg": true, "typ": true, "kid": true, "x5t": true, "x5t#S256": true}

// checkProfile enforces the token profile on the raw compact JWS: three
// base64url segments without padding, a header of known parameters and
// claims with no repeated key, no case-variant of a claim we read, JSON
// numbers for exp, nbf and iat, an iat, and exp - iat within MaxLifetime.
func (a *Verifier) checkProfile(raw string) error {
	segs := strings.Split(raw, ".")
	if len(segs) != 3 {
		return fmt.Errorf("a compact JWS has 3 segments, not %d", len(segs))
	}
	for i, seg := range segs {
		if !isBase64URL(seg) {
			return fmt.Errorf("segment %d is not unpadded base64url", i+1)
		}
	}
	enc := base64.RawURLEncoding.Strict()
	hdr, err := enc.DecodeString(segs[0])
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	if err := checkHeader(hdr); err != nil {
		return err
	}
	body, err := enc.DecodeString(segs[1])
	if err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	return a.checkClaims(body)
}

// isBase64URL reports whether seg is non-empty and only base64url's
// alphabet: no padding, and none of the line breaks that Go's decoder
// would skip.
func isBase64URL(seg string) bool {
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return seg != ""
}

func checkHeader(b []byte) error {
	if err := CheckJSON(b); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(b, &h); err != nil || h == nil {
		return errors.New("header: not a JSON object")
	}
	for k, v := range h {
		if !headerParams[k] {
			return fmt.Errorf("header parameter %q is not accepted", k)
		}
		var s string
		if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
			return fmt.Errorf("header parameter %q must be a string", k)
		}
		switch {
		case (k == "kid" || k == "x5t" || k == "x5t#S256") && len(s) > maxKeyID:
			return fmt.Errorf("header parameter %q is longer than %d bytes", k, maxKeyID)
		case k == "typ" && !validTyp(s):
			return fmt.Errorf("typ %q is not a JWT access token type", s)
		}
	}
	return nil
}

// validTyp accepts the JWT types an access token carries (RFC 7519 §5.1
// "JWT", RFC 9068 "at+jwt", with or without the media-type prefix; media
// types are case-insensitive). Other types mark other kinds of JWT, which
// must not pass for access tokens (RFC 8725 §3.11).
func validTyp(typ string) bool {
	typ = strings.TrimPrefix(strings.ToLower(typ), "application/")
	return typ == "jwt" || typ == "at+jwt"
}

func (a *Verifier) checkClaims(b []byte) error {
	if err := CheckJSON(b); err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil || all == nil {
		return errors.New("claims: not a JSON object")
	}
	names := append(registeredClaims[:len(registeredClaims):len(registeredClaims)], "role", a.cfg.TenantClaim, a.cfg.TenantIDClaim)
	for k := range all {
		for _, n := range names {
			if k != n && strings.EqualFold(k, n) {
				return fmt.Errorf("claim %q differs from %q only in case", k, n)
			}
		}
	}
	times := map[string]time.Time{}
	for _, n := range []string{"exp", "nbf", "iat"} {
		if raw, ok := all[n]; ok {
			t, err := numericDate(raw)
			if err != nil {
				return fmt.Errorf("claim %q %w", n, err)
			}
			times[n] = t
		}
	}
	exp, hasExp := times["exp"]
	iat, hasIat := times["iat"]
	switch {
	case !hasExp:
		return errors.New(`claim "exp" is required`)
	case !hasIat:
		return errors.New(`claim "iat" is required: the token's age and tenant incarnation are judged by it`)
	case !exp.After(iat):
		return errors.New("the token expires before it was issued")
	case exp.Sub(iat) > a.cfg.MaxLifetime:
		return fmt.Errorf("the token lives %s (exp - iat), longer than the %s allowed", exp.Sub(iat), a.cfg.MaxLifetime)
	}
	return nil
}

// Role is what a token may do besides acting for its tenant.
type Role string

// Token roles. A RoleTenant token (no role claim) acts for the tenant it
// names only; a RoleAdmin token manages the tenant registry.
const (
	RoleTenant Role = ""
	RoleAdmin  Role = "admin"
)

// IsAdmin reports whether the token carries the platform-admin role.
func (c *Claims) IsAdmin() bool { return Role(c.Role) == RoleAdmin }

// Bound reports whether the verified claims c may act for t, the current
// incarnation of their tenant, within the configured clock leeway.
func (a *Verifier) Bound(c *Claims, t models.Tenant) bool { return c.boundTo(t, a.cfg.Leeway) }

// IssueToken signs an HS256 token for tenant (empty for none) with role,
// that expires after ttl. It serves the CLI's dev tokens and the
// tests; production tokens come from the identity provider. Prefer
// IssueTenantToken when the tenant's registry row is at hand: it binds the
// token to that incarnation by id.
func IssueToken(cfg Config, tenant string, role Role, ttl time.Duration) (string, error) {
	if err := cfg.check(); err != nil {
		return "", err
	}
	claims := jwt.MapClaims{}
	if tenant != "" {
		claims[cfg.TenantClaim] = tenant
	}
	if role != RoleTenant {
		claims["role"] = string(role)
	}
	return issue(cfg, claims, ttl)
}

// IssueTenantToken signs an HS256 token for tenant t that carries its
// registry id, so the token dies with this incarnation of the tenant even
// if another of the same name is onboarded later.
func IssueTenantToken(cfg Config, t models.Tenant, ttl time.Duration) (string, error) {
	if t.ID < 1 {
		return "", errors.New("the tenant has no registry id")
	}
	if err := cfg.check(); err != nil {
		return "", err
	}
	return issue(cfg, jwt.MapClaims{cfg.TenantClaim: t.Name, cfg.TenantIDClaim: t.ID}, ttl)
}

// issue signs claims with a checked cfg, adding iat, exp, iss and aud.
func issue(cfg Config, claims jwt.MapClaims, ttl time.Duration) (string, error) {
	if cfg.PublicKey != nil {
		return "", errors.New("tokens can only be issued with JWT_SECRET")
	}
	if ttl <= 0 || ttl > cfg.MaxLifetime {
		return "", fmt.Errorf("token lifetime %s is outside (0, %s] (JWT_MAX_LIFETIME)", ttl, cfg.MaxLifetime)
	}
	now := time.Now()
	claims["iat"], claims["exp"] = now.Unix(), now.Add(ttl).Unix()
	if cfg.Issuer != "" {
		claims["iss"] = cfg.Issuer
	}
	if cfg.Audience != "" {
		claims["aud"] = cfg.Audience
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(cfg.Secret)
}
