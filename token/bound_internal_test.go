package token

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenantry/tenantry/models"
)

// A token reaches only the tenant incarnation it was issued for: by its
// tenant id claim alone when it has one, else by iat against created_at
// within the clock leeway, so an issuer whose clock runs a little behind
// this service's does not mint tokens that are refused for their life.
func TestTokenBoundToItsIncarnation(t *testing.T) {
	created := time.Date(2026, 11, 25, 12, 0, 0, 500e6, time.UTC)
	tenant := models.Tenant{ID: 7, CreatedAt: created}
	at := func(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(created.Add(d)) }
	const leeway = 30 * time.Second
	for _, tc := range []struct {
		name string
		c    Claims
		want bool
	}{
		{"id matches, iat before creation (issuer clock behind)", Claims{TenantID: 7, RegisteredClaims: jwt.RegisteredClaims{IssuedAt: at(-2 * time.Minute)}}, true},
		{"id of another incarnation, iat after creation", Claims{TenantID: 6, RegisteredClaims: jwt.RegisteredClaims{IssuedAt: at(time.Minute)}}, false},
		{"no id, iat after creation", Claims{RegisteredClaims: jwt.RegisteredClaims{IssuedAt: at(time.Second)}}, true},
		{"no id, iat a few seconds before creation, within the leeway", Claims{RegisteredClaims: jwt.RegisteredClaims{IssuedAt: at(-5 * time.Second)}}, true},
		{"no id, iat before creation past the leeway", Claims{RegisteredClaims: jwt.RegisteredClaims{IssuedAt: at(-leeway - 2*time.Second)}}, false},
		{"no id, no iat", Claims{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.boundTo(tenant, leeway); got != tc.want {
				t.Errorf("boundTo = %v, want %v", got, tc.want)
			}
		})
	}
}
