package tenancy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tenantry/tenantry/internal/faultproxy"
	"github.com/tenantry/tenantry/tenancy"
)

// TestOpenOfASilentServerEndsAtItsContext: Open of a server that accepts
// and never answers must end at the caller's deadline (300 ms), not after
// the URL's 10 s connect_timeout: GORM's own ping, which takes no context,
// waited that out. The 5 s bound is far above the deadline and half the
// connect timeout, so it tests which of the two ended the wait.
func TestOpenOfASilentServerEndsAtItsContext(t *testing.T) {
	px, err := faultproxy.New("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	px.SetMode(faultproxy.BlackHole)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	db, err := tenancy.Open(ctx, fmt.Sprintf("postgres://app:pw@%s/db?sslmode=disable&connect_timeout=10", px.Addr()), fleetPool)
	if err == nil {
		if s, e := db.DB(); e == nil {
			s.Close()
		}
		t.Fatal("Open of a silent server succeeded")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Open with a 300ms deadline returned after %v (%v)", took, err)
	}
}
