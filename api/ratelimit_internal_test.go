package api

import (
	"fmt"
	"testing"
	"time"
)

// However many tenants send requests, the limiter keeps at most MaxTenants
// buckets, and a busy tenant's bucket survives the churn of one-off ones.
func TestRateLimiterMapIsBounded(t *testing.T) {
	r := newRateLimiter(RateLimit{PerSecond: 1, Burst: 2, MaxTenants: 100})
	now := time.Now()
	r.allow("busy", now)
	r.allow("busy", now)
	for i := range 10_000 {
		r.allow(fmt.Sprintf("t_%d", i), now)
		if i%50 == 0 {
			if ok, _, _ := r.allow("busy", now); ok {
				t.Fatal("busy tenant's empty bucket was replaced by a fresh one")
			}
		}
	}
	if n := r.len(); n != 100 {
		t.Fatalf("limiters kept = %d, want the cap 100", n)
	}
	if ok, wait, _ := r.allow("busy", now.Add(500*time.Millisecond)); ok || wait <= 0 || wait > time.Second {
		t.Fatalf("busy tenant half a token later: ok %v, wait %s; want refused with a wait up to 1s", ok, wait)
	}
	if ok, _, _ := r.allow("busy", now.Add(1100*time.Millisecond)); !ok {
		t.Fatal("busy tenant refused after its bucket refilled a token")
	}
}

func TestRateLimitOffWithoutARate(t *testing.T) {
	if r := newRateLimiter(RateLimit{Burst: 10}); r != nil {
		t.Fatal("a zero rate must turn the limiter off")
	}
}

func TestRetryAfterIsAWholeSecondAtLeastOne(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {90 * time.Second, 90}} {
		if got := (&limitError{retryAfter: tc.d}).retryAfterSeconds(); got != tc.want {
			t.Errorf("retry after %s = %d, want %d", tc.d, got, tc.want)
		}
	}
}
