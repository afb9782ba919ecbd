package tenancy_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// backendPID runs a scope for tenant and returns the server process that
// served it.
func backendPID(ctx context.Context, e *env, tenant string) (int, error) {
	ten, err := e.dir.Active(ctx, tenant)
	if err != nil {
		return 0, err
	}
	var pid int
	err = tenancy.WithTx(ctx, ten, func(tx *gorm.DB) error {
		return tx.Raw("SELECT pg_backend_pid()").Scan(&pid).Error
	})
	return pid, err
}

// terminate ends backend pid from another connection and waits until it
// is gone.
func terminate(t *testing.T, url string, pid int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate %d: %v %v", pid, ok, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend %d still there 10 s after pg_terminate_backend", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A pooled connection whose backend was killed while idle (a restart, an
// operator's pg_terminate_backend) must not cost the next request an
// error: its BEGIN fails before the transaction exists, and the scope is
// retried on a fresh connection.
func TestScopeSurvivesAKilledIdleConnection(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1})
	e.onboard(t, "acme")
	ctx := context.Background()
	for round := range 3 {
		before, err := backendPID(ctx, e, "acme")
		if err != nil {
			t.Fatalf("round %d, first scope: %v", round, err)
		}
		terminate(t, e.url, before)
		after, err := backendPID(ctx, e, "acme")
		if err != nil {
			t.Fatalf("round %d: scope after its idle connection was killed: %v", round, err)
		}
		if after == before {
			t.Fatalf("round %d: served by the terminated backend %d", round, before)
		}
	}
	// The plain (unscoped) path retries too: a registry read.
	var pid int
	if err := e.db.Raw("SELECT pg_backend_pid()").Scan(&pid).Error; err != nil {
		t.Fatal(err)
	}
	terminate(t, e.url, pid)
	if err := e.db.Transaction(func(tx *gorm.DB) error { return tx.Exec("SELECT 1").Error }); err != nil {
		t.Fatalf("plain transaction after its idle connection was killed: %v", err)
	}
}

// A failed pin is not a dead connection: a scope on a dropped schema
// fails closed and is not retried into success.
func TestBeginRetryDoesNotHideAFailedPin(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1})
	e.onboard(t, "acme")
	ten, err := e.dir.Active(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	e.admin(t, "DROP SCHEMA "+ten.Row().SchemaName+" CASCADE")
	err = tenancy.WithTx(context.Background(), ten, func(tx *gorm.DB) error { return nil })
	if !errors.Is(err, models.ErrUnavailable) {
		t.Fatalf("scope on a dropped schema: %v, want unavailable", err)
	}
}

// silentListener accepts TCP connections on loopback and never answers:
// the far end of a black-holed path as a client sees it.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// A server that accepts and never answers must not hang Open: the connect
// timeout ends the startup exchange, and the error says "unavailable".
func TestConnectTimeoutEndsASilentServer(t *testing.T) {
	addr := silentListener(t)
	start := time.Now()
	_, err := tenancy.Open(context.Background(), "postgres://nobody@"+addr+"/none?sslmode=disable",
		tenancy.PoolConfig{MaxOpen: 1, ConnectTimeout: 200 * time.Millisecond})
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Open against a silent server succeeded")
	}
	if !errors.Is(tenancy.Classify(err), models.ErrUnavailable) {
		t.Fatalf("Open error %v is not classified unavailable", err)
	}
	// Open's own ping allows 10 s; finishing well before that proves the
	// connect timeout, not the ping's deadline, ended the wait.
	if elapsed >= 9*time.Second {
		t.Fatalf("Open took %s: the connect timeout did not fire", elapsed)
	}
}
