package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"testing"
	"time"

	"github.com/tenantry/tenantry/internal/faultproxy"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
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

// TestAnOpenGivenUpByItsCallerDoesNotMarkTheServerDown: a caller whose
// deadline ends while a slow server's pool opens (a /readyz probe's
// 250 ms) learned nothing about the server; the next caller with time to
// spare must get the server, not the one-second "down" mark a real
// failure sets.
func TestAnOpenGivenUpByItsCallerDoesNotMarkTheServerDown(t *testing.T) {
	db, url := tenancytest.Open(t, fleetPool)
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	px, err := faultproxy.New(net.JoinHostPort("127.0.0.1", u.Port()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	px.SetLatency(200 * time.Millisecond) // each chunk, each way: a startup takes well over 100 ms
	u.Host = px.Addr()
	dir := tenancy.NewDirectory(db, tenancy.WithServers([]tenancy.Server{{Name: "b", URL: u.String()}}, fleetPool))
	t.Cleanup(func() { _ = dir.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := dir.PingServer(ctx, "b"); !errors.Is(err, models.ErrUnavailable) {
		t.Fatalf("ping with 100 ms through 200 ms latency: got %v, want ErrUnavailable", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if err := dir.PingServer(ctx2, "b"); err != nil {
		t.Fatalf("ping right after an open its caller gave up: %v", err)
	}
}
