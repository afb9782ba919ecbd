package tenancy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// backendIn returns the pid of the backend that served a scope of tenant.
func backendIn(t *testing.T, e *env, tenant string) int {
	t.Helper()
	ctx := context.Background()
	ten, err := e.dir.Active(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	err = tenancy.WithTx(ctx, ten, func(tx *gorm.DB) error {
		return tx.Raw("SELECT pg_backend_pid()").Scan(&pid).Error
	})
	if err != nil {
		t.Fatalf("scope of %s: %v", tenant, err)
	}
	if pid == 0 {
		t.Fatalf("scope of %s: no backend pid", tenant)
	}
	return pid
}

// waitBackendGone waits until the server no longer lists pid: a recycled
// connection must end its backend, not merely leave the pool.
func waitBackendGone(t *testing.T, e *env, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int64
		if err := e.ddl.Raw("SELECT count(*) FROM pg_stat_activity WHERE pid = ?", pid).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend %d still runs after its connection was recycled", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConnectionRecycledAfterItsSchemaBudget(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1, ConnMaxSchemas: 3})
	e.onboard(t, "acme", "globex", "initech", "umbrella")
	first := backendIn(t, e, "acme")
	// Repeats of a schema already counted cost nothing: two distinct so far.
	for _, name := range []string{"acme", "globex", "acme", "globex"} {
		if got := backendIn(t, e, name); got != first {
			t.Fatalf("%s served by backend %d, want %d (only 2 distinct schemas so far)", name, got, first)
		}
	}
	// The third distinct schema is still served by the same backend, which
	// is then closed as it returns to the pool.
	if got := backendIn(t, e, "initech"); got != first {
		t.Fatalf("initech served by backend %d, want %d (the third schema is within the budget)", got, first)
	}
	next := backendIn(t, e, "acme")
	if next == first {
		t.Fatalf("backend %d kept serving after it pinned 3 distinct schemas (budget 3)", first)
	}
	waitBackendGone(t, e, first)
	if got := backendIn(t, e, "umbrella"); got != next {
		t.Fatalf("the fresh connection (backend %d) was replaced after one schema by %d", next, got)
	}
}

func TestConnectionRecycledAfterItsTransactionBudget(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1, ConnMaxTransactions: 3})
	e.onboard(t, "acme")
	var pids []int
	for range 6 {
		pids = append(pids, backendIn(t, e, "acme"))
	}
	want := fmt.Sprint([]int{pids[0], pids[0], pids[0], pids[3], pids[3], pids[3]})
	if got := fmt.Sprint(pids); got != want || pids[0] == pids[3] {
		t.Fatalf("backends of 6 transactions with a budget of 3 = %s, want three of one then three of another", got)
	}
	waitBackendGone(t, e, pids[0])
}

func TestConnectionKeptWithoutLimits(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1})
	names := []string{"acme", "globex", "initech", "umbrella", "hooli", "stark"}
	e.onboard(t, names...)
	first := backendIn(t, e, names[0])
	for range 3 {
		for _, name := range names {
			if got := backendIn(t, e, name); got != first {
				t.Fatalf("%s served by backend %d, want %d: no limit was set", name, got, first)
			}
		}
	}
}
