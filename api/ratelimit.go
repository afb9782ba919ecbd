package api

import (
	"container/list"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// RateLimit is the per-tenant request rate: a token bucket per tenant
// (golang.org/x/time/rate), keyed by the verified tenant claim after the
// tenant is resolved, so an unknown or forged tenant cannot fill the map.
type RateLimit struct {
	// PerSecond refills a tenant's bucket; 0 turns rate limiting off.
	PerSecond float64
	// Burst is the bucket's size: requests a tenant may send at once after
	// a quiet spell. 0 means one second's worth (at least 1).
	Burst int
	// MaxTenants bounds the limiters kept in memory; 0 means
	// DefaultRateLimitTenants.
	MaxTenants int
}

// DefaultRateLimit is what serve uses unless configured: 100 requests a
// second per tenant, in bursts of up to 200. A whole HTTP point read costs
// about 109 us of the 2-core benchmark machine (README, "Request path"),
// so an instance serves some 9,000 a second: one tenant at its limit takes
// about a ninetieth of that, and a burst of 200 still lets a client fetch
// a couple hundred pages at once.
var DefaultRateLimit = RateLimit{PerSecond: 100, Burst: 200}

// DefaultRateLimitTenants bounds the limiter map: ten thousand tenants is
// the upper end of schema-per-tenant on one node (Citus' sizing of
// schema-based sharding, 1-10k tenants), and an entry is about 200 bytes,
// so the map stays near 2 MB however many tenants an instance meets.
const DefaultRateLimitTenants = 10_000

// rateLimiter holds the tenants' buckets in least-recently-used order.
// Dropping the least recently used bucket when the map is full costs that
// tenant at most one fresh burst; most dropped buckets are full already
// (a bucket idle for Burst/PerSecond seconds is as good as new).
type rateLimiter struct {
	limit rate.Limit
	burst int
	max   int
	// policy is the RateLimit-Policy field value, the same for every tenant.
	policy string

	mu    sync.Mutex
	order *list.List // of *bucket, most recent first
	byKey map[string]*list.Element
}

type bucket struct {
	key string
	lim *rate.Limiter
}

func newRateLimiter(cfg RateLimit) *rateLimiter {
	if cfg.PerSecond <= 0 {
		return nil
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(math.Ceil(cfg.PerSecond)))
	}
	if cfg.MaxTenants <= 0 {
		cfg.MaxTenants = DefaultRateLimitTenants
	}
	// The token bucket as a quota policy: Burst requests (q) per the time
	// an empty bucket takes to fill (w, whole seconds, at least 1).
	window := max(1, int(math.Ceil(float64(cfg.Burst)/cfg.PerSecond)))
	return &rateLimiter{limit: rate.Limit(cfg.PerSecond), burst: cfg.Burst, max: cfg.MaxTenants,
		policy: `"tenant";q=` + strconv.Itoa(cfg.Burst) + ";w=" + strconv.Itoa(window),
		order:  list.New(), byKey: map[string]*list.Element{}}
}

// limiter returns key's bucket, making it (and evicting the least recently
// used one past max) when needed.
func (r *rateLimiter) limiter(key string) *rate.Limiter {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.byKey[key]; ok {
		r.order.MoveToFront(e)
		return e.Value.(*bucket).lim
	}
	b := &bucket{key: key, lim: rate.NewLimiter(r.limit, r.burst)}
	r.byKey[key] = r.order.PushFront(b)
	for r.order.Len() > r.max {
		old := r.order.Remove(r.order.Back()).(*bucket)
		delete(r.byKey, old.key)
	}
	return b.lim
}

func (r *rateLimiter) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.order.Len()
}

// allow takes a token from key's bucket. It returns the headers to send
// (the RateLimit fields of draft-ietf-httpapi-ratelimit-headers-10, the
// structured-field form: RateLimit-Policy `"tenant";q=..;w=..` and
// RateLimit `"tenant";r=..;t=..`), and, when the bucket is empty, how long
// until it holds a token again.
func (r *rateLimiter) allow(key string, now time.Time) (ok bool, wait time.Duration, fields [2]string) {
	lim := r.limiter(key)
	ok = lim.AllowN(now, 1)
	tokens := max(0, lim.TokensAt(now))
	if !ok {
		wait = time.Duration((1 - tokens) / float64(r.limit) * float64(time.Second))
	}
	// t: seconds until the bucket is full again, when the quota has reset.
	reset := int(math.Ceil((float64(r.burst) - tokens) / float64(r.limit)))
	fields = [2]string{r.policy, `"tenant";r=` + strconv.Itoa(int(tokens)) + ";t=" + strconv.Itoa(reset)}
	return ok, wait, fields
}

// rateLimit answers 429 when the request's tenant has sent more than its
// rate, before any database work. It runs after requireTenant.
func (s *Server) rateLimit(c *gin.Context) {
	if s.limiter == nil {
		c.Next()
		return
	}
	ok, wait, fields := s.limiter.allow(tenantOf(c).Row().SchemaName, time.Now())
	// The RateLimit-Policy and RateLimit fields, spelled as net/http stores
	// them (canonical keys are not copied on Set); names are case-insensitive.
	c.Header("Ratelimit-Policy", fields[0])
	c.Header("Ratelimit", fields[1])
	if !ok {
		s.fail(c, &limitError{detail: "the tenant sent more requests than its rate allows; retry after the Retry-After seconds", retryAfter: wait})
		return
	}
	c.Next()
}

// limitError is a 429 with the delay after which a retry can succeed.
type limitError struct {
	detail     string
	retryAfter time.Duration
	cause      error
}

func (e *limitError) Error() string {
	if e.cause != nil {
		return e.detail + ": " + e.cause.Error()
	}
	return e.detail
}
func (e *limitError) Unwrap() []error { return []error{errTooMany, e.cause} }

// retryAfterSeconds rounds the wait up to whole seconds, at least 1:
// Retry-After takes an integer, and 0 would invite an immediate retry that
// fails too.
func (e *limitError) retryAfterSeconds() int {
	return max(1, int(math.Ceil(e.retryAfter.Seconds())))
}
