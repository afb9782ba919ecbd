package tenancy_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

func inUse(t *testing.T, db *gorm.DB) int {
	t.Helper()
	s, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	return s.Stats().InUse
}

// holdScopes opens n scopes of ten that stay open until the returned
// function is called, and waits until all of them hold a connection.
func holdScopes(t *testing.T, e *env, ten tenancy.Resolved, n int) (release func()) {
	t.Helper()
	gate := make(chan struct{})
	started := make(chan struct{}, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- tenancy.WithTx(context.Background(), ten, func(tx *gorm.DB) error {
				if err := tx.Exec("SELECT 1").Error; err != nil {
					return err
				}
				started <- struct{}{}
				<-gate
				return nil
			})
		}()
	}
	for range n {
		select {
		case <-started:
		case err := <-errs:
			t.Fatalf("holding scope failed: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("holding scopes did not start")
		}
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(gate)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("holding scope: %v", err)
				}
			}
		})
	}
	t.Cleanup(release)
	return release
}

// A tenant that holds its whole share gets ErrBusy for one more scope,
// without that scope taking a connection, while another tenant's scope
// runs at once; when a slot frees, the tenant is served again.
func TestTenantHoldsAtMostItsShareOfThePool(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 4, MaxIdle: 4, TenantShare: 2, TenantWait: 200 * time.Millisecond})
	e.onboard(t, "hog", "quiet")
	ctx := context.Background()
	hog, err := e.dir.Active(ctx, "hog")
	if err != nil {
		t.Fatal(err)
	}
	quiet, err := e.dir.Active(ctx, "quiet")
	if err != nil {
		t.Fatal(err)
	}
	release := holdScopes(t, e, hog, 2)
	if got := inUse(t, e.db); got != 2 {
		t.Fatalf("connections in use with two scopes open = %d, want 2", got)
	}

	ran := false
	start := time.Now()
	err = tenancy.WithTx(ctx, hog, func(tx *gorm.DB) error { ran = true; return nil })
	waited := time.Since(start)
	if !errors.Is(err, tenancy.ErrBusy) || ran {
		t.Fatalf("third scope of hog: err %v, ran %v; want ErrBusy without running", err, ran)
	}
	if errors.Is(err, models.ErrUnavailable) {
		t.Fatalf("ErrBusy must not read as unavailable (503): %v", err)
	}
	if waited < 150*time.Millisecond {
		t.Fatalf("gave up after %s, want about the 200ms TenantWait", waited)
	}
	if got := inUse(t, e.db); got != 2 {
		t.Fatalf("connections in use after the refused scope = %d, want 2", got)
	}

	if err := tenancy.WithTx(ctx, quiet, func(tx *gorm.DB) error {
		return tx.Exec("SELECT 1").Error
	}); err != nil {
		t.Fatalf("quiet tenant while hog is at its share: %v", err)
	}

	release()
	if err := tenancy.WithTx(ctx, hog, func(tx *gorm.DB) error {
		return tx.Exec("SELECT 1").Error
	}); err != nil {
		t.Fatalf("hog after its scopes ended: %v", err)
	}
}

// A scope waiting for a slot gives up when its context ends, well before
// TenantWait, and the answer is retryable, not ErrBusy's 429.
func TestShareWaitEndsWithTheContext(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 2, MaxIdle: 2, TenantShare: 1, TenantWait: time.Minute})
	e.onboard(t, "hog")
	hog, err := e.dir.Active(context.Background(), "hog")
	if err != nil {
		t.Fatal(err)
	}
	holdScopes(t, e, hog, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = tenancy.WithTx(ctx, hog, func(tx *gorm.DB) error { return nil })
	if !errors.Is(err, models.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want unavailable wrapping the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("waited %s past a 100ms deadline", d)
	}
}

// A negative TenantShare turns the cap off: a tenant may hold the whole pool.
func TestNegativeTenantShareTurnsTheCapOff(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 3, MaxIdle: 3, TenantShare: -1, TenantWait: 50 * time.Millisecond})
	e.onboard(t, "hog")
	hog, err := e.dir.Active(context.Background(), "hog")
	if err != nil {
		t.Fatal(err)
	}
	holdScopes(t, e, hog, 3)
	if got := inUse(t, e.db); got != 3 {
		t.Fatalf("connections in use = %d, want all 3", got)
	}
}
