package token

import (
	"sync"
	"time"
)

// tokenCache remembers the claims of tokens that passed verify, by their
// exact text, so a client that sends the same token with every request
// pays for its verification once. The full checks (the token profile, the
// signature, alg, exp, nbf, iat, iss, aud) cost about as much CPU as the
// rest of a point read and over a hundred allocations, and their result
// for a given string can change only with time: the key is fixed for the
// process's life, and an nbf or iat that passed stays passed. So a hit
// checks exp again (with the same leeway golang-jwt applies), and nothing
// else. Only tokens that passed are stored; a refused token is checked in
// full every time. What the tenant middleware decides from the claims (the
// tenant's status, its incarnation) is not cached here.
type tokenCache struct {
	mu      sync.RWMutex
	entries map[string]*Claims
	bytes   int
}

// maxTokenCacheBytes bounds the token text the cache holds: at a typical
// few hundred bytes per token, about ten thousand clients' tokens; at
// MaxTokenLen each, still 512 entries. An entry past the bound evicts
// random ones (Go's map order), so a flood of valid tokens costs hits, not
// memory.
const maxTokenCacheBytes = 4 << 20

func newTokenCache() *tokenCache { return &tokenCache{entries: map[string]*Claims{}} }

// get returns the cached claims of raw if they have not expired at now.
// The claims are shared between requests: read them, never change them.
func (c *tokenCache) get(raw string, now time.Time, leeway time.Duration) *Claims {
	c.mu.RLock()
	cl := c.entries[raw]
	c.mu.RUnlock()
	if cl == nil {
		return nil
	}
	if cl.ExpiresAt == nil || !now.Before(cl.ExpiresAt.Add(leeway)) {
		c.mu.Lock()
		c.remove(raw)
		c.mu.Unlock()
		return nil
	}
	return cl
}

// put stores the claims of a token that verify accepted.
func (c *tokenCache) put(raw string, cl *Claims) {
	if len(raw) > maxTokenCacheBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[raw]; ok {
		return
	}
	for k := range c.entries {
		if c.bytes+len(raw) <= maxTokenCacheBytes {
			break
		}
		c.remove(k)
	}
	c.entries[raw] = cl
	c.bytes += len(raw)
}

func (c *tokenCache) remove(raw string) {
	if _, ok := c.entries[raw]; ok {
		delete(c.entries, raw)
		c.bytes -= len(raw)
	}
}
