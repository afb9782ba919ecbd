package api

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
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
	// times the token's size (security anchors D4), so an attacker's
	// megabyte token must cost nothing.
	MaxTokenLen = 8 << 10
	// MaxLeeway caps the clock-skew allowance (RFC 7519 §4.1.4: "no more
	// than a few minutes"; we allow one).
	MaxLeeway = 60 * time.Second
	// RoleAdmin marks a platform-admin token.
	RoleAdmin = "admin"
)

// AuthConfig says which tokens the service accepts. Exactly one of Secret
// (HS256) and PublicKey (RS*/PS*, ES* or EdDSA, by key type) is set; only
// that algorithm family is accepted, never "none".
type AuthConfig struct {
	Secret      []byte
	PublicKey   crypto.PublicKey
	Issuer      string // required iss, when set
	Audience    string // required aud, when set
	TenantClaim string // default "tenant"
	Leeway      time.Duration
}

func (c *AuthConfig) check() error {
	if c.TenantClaim == "" {
		c.TenantClaim = "tenant"
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
func (c *AuthConfig) methods() []string {
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

	tenantClaim string
}

// UnmarshalJSON reads the registered claims, "role", and the tenant from
// the configured claim name. A role or tenant that is not a string makes
// the token malformed.
func (c *Claims) UnmarshalJSON(b []byte) error {
	type registered jwt.RegisteredClaims
	var r registered
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	c.RegisteredClaims = jwt.RegisteredClaims(r)
	for name, dst := range map[string]*string{"role": &c.Role, c.tenantClaim: &c.Tenant} {
		if raw, ok := all[name]; ok {
			if err := json.Unmarshal(raw, dst); err != nil {
				return fmt.Errorf("claim %q must be a string", name)
			}
		}
	}
	return nil
}

type authenticator struct {
	cfg    AuthConfig
	parser *jwt.Parser
}

func newAuthenticator(cfg AuthConfig) (*authenticator, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(cfg.methods()),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), // an iat in the future is refused too
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &authenticator{cfg: cfg, parser: jwt.NewParser(opts...)}, nil
}

func (a *authenticator) key(*jwt.Token) (any, error) {
	if a.cfg.PublicKey != nil {
		return a.cfg.PublicKey, nil
	}
	return a.cfg.Secret, nil
}

// verify checks an Authorization header value and returns its claims.
func (a *authenticator) verify(header string) (*Claims, error) {
	if len(header) > MaxTokenLen+len("Bearer ") {
		return nil, errors.New("token too large")
	}
	scheme, raw, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return nil, errors.New("missing bearer token")
	}
	claims := &Claims{tenantClaim: a.cfg.TenantClaim}
	if _, err := a.parser.ParseWithClaims(strings.TrimSpace(raw), claims, a.key); err != nil {
		return nil, err
	}
	return claims, nil
}

// IssueToken signs an HS256 token for tenant (or an admin token when admin
// is set) that expires after ttl. It serves the CLI's dev tokens and the
// tests; production tokens come from the identity provider.
func IssueToken(cfg AuthConfig, tenant string, admin bool, ttl time.Duration) (string, error) {
	if err := cfg.check(); err != nil {
		return "", err
	}
	if cfg.PublicKey != nil {
		return "", errors.New("tokens can only be issued with JWT_SECRET")
	}
	now := time.Now()
	claims := jwt.MapClaims{"iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	if tenant != "" {
		claims[cfg.TenantClaim] = tenant
	}
	if admin {
		claims["role"] = RoleAdmin
	}
	if cfg.Issuer != "" {
		claims["iss"] = cfg.Issuer
	}
	if cfg.Audience != "" {
		claims["aud"] = cfg.Audience
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(cfg.Secret)
}

const claimsKey = "tenantry.claims"

// authenticate verifies the bearer token; any failure is a 401.
func (s *Server) authenticate(c *gin.Context) {
	claims, err := s.auth.verify(c.GetHeader("Authorization"))
	if err != nil {
		s.fail(c, unauthorized(err))
		return
	}
	c.Set(claimsKey, claims)
	c.Next()
}

func claimsOf(c *gin.Context) *Claims {
	v, _ := c.Get(claimsKey)
	cl, _ := v.(*Claims)
	return cl
}

// requireAdmin lets only platform-admin tokens through.
func (s *Server) requireAdmin(c *gin.Context) {
	if cl := claimsOf(c); cl == nil || cl.Role != RoleAdmin {
		s.fail(c, forbidden("an admin token is required"))
		return
	}
	c.Next()
}
