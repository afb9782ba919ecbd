package main

import (
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenSpec is what tokens must carry for the tenantry under test.
type tokenSpec struct {
	secret           []byte
	issuer, audience string
}

// mint signs an HS256 token for an onboarded tenant (from its POST
// /admin/tenants answer), or an admin token when tenant is nil. It is the
// one place to adjust when tenantry's token profile grows stricter (say a
// claim binding the token to the tenant's id or creation time: tenant has
// the whole onboarding answer). Tokens are minted after onboarding, so a
// token can never predate its tenant.
func (s tokenSpec) mint(tenant map[string]any) (string, error) {
	now := time.Now()
	claims := jwt.MapClaims{"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if tenant == nil {
		claims["role"] = "admin"
	} else {
		// tenant_id binds the token to this incarnation of the tenant.
		claims["tenant"], claims["tenant_id"] = tenant["name"], tenant["id"]
	}
	if s.issuer != "" {
		claims["iss"] = s.issuer
	}
	if s.audience != "" {
		claims["aud"] = s.audience
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.secret)
}
