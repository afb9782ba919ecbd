package token

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A cached token is served only until its exp (plus the leeway), exactly
// as a full verification would; a refused token is never cached, and a
// token that differs in any byte (another signature) is verified afresh.
func TestTokenCacheServesOnlyValidTokens(t *testing.T) {
	cfg := Config{Secret: fuzzSecret, Leeway: 2 * time.Second}
	a, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := IssueToken(a.cfg, "acme", RoleTenant, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	first, err := a.Verify("Bearer " + tok)
	if err != nil {
		t.Fatal(err)
	}
	second, err := a.Verify("Bearer " + tok)
	if err != nil || second != first {
		t.Fatalf("second verify: %p, %v; want the cached claims %p", second, err, first)
	}
	exp := first.ExpiresAt.Time
	if got := a.cache.get(tok, exp.Add(cfg.Leeway-time.Millisecond), cfg.Leeway); got != first {
		t.Fatalf("just inside exp+leeway: %v, want the cached claims", got)
	}
	if got := a.cache.get(tok, exp.Add(cfg.Leeway), cfg.Leeway); got != nil {
		t.Fatalf("at exp+leeway: %+v, want no claims", got)
	}
	if _, ok := a.cache.entries[tok]; ok {
		t.Fatal("an expired entry stayed in the cache")
	}

	// The same claims under a broken signature: refused, and not cached.
	i := strings.LastIndexByte(tok, '.')
	forged := tok[:i+1] + strings.Repeat("A", len(tok)-i-1)
	for range 2 {
		if _, err := a.Verify("Bearer " + forged); err == nil {
			t.Fatal("a forged signature was accepted")
		}
	}
	if _, ok := a.cache.entries[forged]; ok {
		t.Fatal("a refused token was cached")
	}
}

// The cache holds at most maxTokenCacheBytes of token text.
func TestTokenCacheIsBounded(t *testing.T) {
	c := newTokenCache()
	cl := &Claims{}
	tok := strings.Repeat("x", MaxTokenLen)
	for i := range 2 * maxTokenCacheBytes / MaxTokenLen {
		c.put(fmt.Sprintf("%s%08d", tok[:MaxTokenLen-8], i), cl)
		if c.bytes > maxTokenCacheBytes {
			t.Fatalf("after %d puts the cache holds %d bytes, over %d", i+1, c.bytes, maxTokenCacheBytes)
		}
	}
	if len(c.entries) != maxTokenCacheBytes/MaxTokenLen {
		t.Fatalf("%d entries, want the %d that fit", len(c.entries), maxTokenCacheBytes/MaxTokenLen)
	}
}
