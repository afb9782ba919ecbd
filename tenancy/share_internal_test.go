package tenancy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// The limiter keeps an entry only while a scope of its tenant holds or
// waits for a slot, so its memory follows the scopes in flight, not the
// number of tenants ever served.
func TestSharesForgetIdleTenants(t *testing.T) {
	s := newShares(2, 20*time.Millisecond)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("t_%d", i%100)
			release, err := s.acquire(ctx, key)
			if errors.Is(err, ErrBusy) {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
			release()
		}()
	}
	wg.Wait()
	s.mu.Lock()
	n := len(s.slots)
	s.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d entries left after every scope ended, want 0", n)
	}
}

// Never more than max holders of one key at once.
func TestSharesNeverAdmitMoreThanTheCap(t *testing.T) {
	const limit = 3
	s := newShares(limit, time.Second)
	var mu sync.Mutex
	cur, peak := 0, 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := s.acquire(context.Background(), "t_x")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			cur++
			peak = max(peak, cur)
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
			mu.Lock()
			cur--
			mu.Unlock()
			release()
		}()
	}
	wg.Wait()
	if peak != limit {
		t.Fatalf("peak holders = %d, want %d", peak, limit)
	}
	if got := s.inFlight("t_x"); got != 0 {
		t.Fatalf("in flight after all ended = %d", got)
	}
}
