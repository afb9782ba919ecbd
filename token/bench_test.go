package token

import (
	"testing"
	"time"
)

// BenchmarkTokenVerify measures what the strict profile costs per request:
// "library" is golang-jwt's parse alone (the check before this profile),
// "strict" is every check (checkProfile, then the library), "cached" is
// verify on a token it has seen (tokencache.go). Compare the two as a
// ratio from one run; absolute numbers depend on the machine.
func BenchmarkTokenVerify(b *testing.B) {
	cfg := Config{Secret: fuzzSecret, Leeway: 30 * time.Second}
	a, err := NewVerifier(cfg)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := IssueToken(a.cfg, "acme", RoleTenant, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c := &Claims{tenantClaim: a.cfg.TenantClaim, tenantIDClaim: a.cfg.TenantIDClaim}
			if _, err := a.parser.ParseWithClaims(tok, c, a.key); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.verifyToken(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	header := "Bearer " + tok
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Verify(header); err != nil {
				b.Fatal(err)
			}
		}
	})
}
