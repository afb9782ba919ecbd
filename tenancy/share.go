package tenancy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"
)

// A tenant's share of the pool: at most PoolConfig.TenantShare of one pool's
// connections serve one tenant's scopes at a time. Without it, 32 clients of
// one tenant hold a pool of 20 and every other tenant queues behind them.
// The same cap bounds a tenant whose scopes wait on a lock or a slow query:
// they can hold its share, never the pool. The cap sits in front of
// database/sql's own queue, so an excess scope waits here, holding no
// connection, and gives up after TenantWait.

// ErrBusy means the tenant already holds its whole share of the pool and no
// slot freed within the wait; the caller may retry shortly. It is not
// models.ErrUnavailable: the database is fine, this tenant is asking for
// more than its share, and the API answers 429, not 503.
var ErrBusy = errors.New("tenant is using its whole share of the database pool")

// sharesPlugin is the GORM plugin name under which Open registers the share
// limiter, so every handle derived from Open's (WithContext, Session) finds
// it and WithTx needs no extra argument.
const sharesPlugin = "tenantry:shares"

// shares counts each tenant's scopes in flight. An entry lives only while a
// scope of its tenant runs or waits, so the map is bounded by the number of
// goroutines in WithTx, never by the number of tenants ever seen.
type shares struct {
	max  int
	wait time.Duration

	mu    sync.Mutex
	slots map[string]*slot
}

type slot struct {
	sem  chan struct{} // a token per scope holding a connection (cap = max)
	refs int           // scopes holding or waiting for a token
}

func newShares(max int, wait time.Duration) *shares {
	return &shares{max: max, wait: wait, slots: map[string]*slot{}}
}

func (*shares) Name() string                 { return sharesPlugin }
func (*shares) Initialize(db *gorm.DB) error { return nil }

// sharesOf returns db's limiter, or nil for a handle not opened by Open
// (or opened with TenantShare < 0): no cap.
func sharesOf(db *gorm.DB) *shares {
	if db == nil || db.Config == nil {
		return nil
	}
	s, _ := db.Config.Plugins[sharesPlugin].(*shares)
	return s
}

// acquire takes one of key's slots, waiting at most s.wait (and never past
// ctx), and returns the function that gives it back.
func (s *shares) acquire(ctx context.Context, key string) (func(), error) {
	s.mu.Lock()
	sl := s.slots[key]
	if sl == nil {
		sl = &slot{sem: make(chan struct{}, s.max)}
		s.slots[key] = sl
	}
	sl.refs++
	s.mu.Unlock()

	select {
	case sl.sem <- struct{}{}:
		return func() { <-sl.sem; s.unref(key, sl) }, nil
	default:
	}
	timer := time.NewTimer(s.wait)
	defer timer.Stop()
	select {
	case sl.sem <- struct{}{}:
		return func() { <-sl.sem; s.unref(key, sl) }, nil
	case <-timer.C:
		s.unref(key, sl)
		return nil, fmt.Errorf("tenancy: %d scopes of %s in flight for %s: %w", s.max, key, s.wait, ErrBusy)
	case <-ctx.Done():
		s.unref(key, sl)
		return nil, classify(fmt.Errorf("tenancy: waiting for a share of the pool: %w", ctx.Err()))
	}
}

func (s *shares) unref(key string, sl *slot) {
	s.mu.Lock()
	if sl.refs--; sl.refs == 0 {
		delete(s.slots, key)
	}
	s.mu.Unlock()
}

// inFlight reports how many scopes of key hold or wait for a slot (tests).
func (s *shares) inFlight(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl := s.slots[key]; sl != nil {
		return sl.refs
	}
	return 0
}

// acquireShare takes a share of db's pool for schema's tenant; the no-op
// release covers handles without a limiter and nested scopes (InSchema
// refuses those with ErrNested, which must not turn into a wait for a
// slot the outer scope holds).
func acquireShare(ctx context.Context, db *gorm.DB, schema string) (func(), error) {
	s := sharesOf(db)
	if s == nil || ctx.Value(scopeKey{}) != nil {
		return func() {}, nil
	}
	return s.acquire(ctx, schema)
}
