package tenancy_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/internal/pglocal"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

func TestLockBudgetArithmetic(t *testing.T) {
	for _, c := range []struct {
		name   string
		b      tenancy.LockBudget
		slots  int
		needed int
		fits   bool
	}{
		// 10,000 tenants of 3 relations on a server with the defaults.
		{"10k tenants, defaults", tenancy.LockBudget{Relations: 30_012, MaxLocks: 64, MaxConnections: 100}, 6_400, 320, false},
		// (30,012 + 16 × 200) / 200 = 166.06 → 167 → 192.
		{"10k tenants, 200 connections", tenancy.LockBudget{Relations: 30_012, MaxLocks: 64, MaxConnections: 200}, 12_800, 192, false},
		{"a small fleet", tenancy.LockBudget{Relations: 3_000, MaxLocks: 64, MaxConnections: 100}, 6_400, 64, true},
		// Prepared transactions have lock table entries of their own.
		{"prepared transactions count", tenancy.LockBudget{Relations: 9_000, MaxLocks: 64, MaxConnections: 100, MaxPrepared: 100}, 12_800, 64, true},
		{"a setting already raised stays", tenancy.LockBudget{Relations: 100, MaxLocks: 1024, MaxConnections: 100}, 102_400, 1024, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.b.Slots(); got != c.slots {
				t.Errorf("Slots() = %d, want %d", got, c.slots)
			}
			if got := c.b.Needed(); got != c.needed {
				t.Errorf("Needed() = %d, want %d", got, c.needed)
			}
			if got := c.b.Fits(); got != c.fits {
				t.Errorf("Fits() = %v, want %v", got, c.fits)
			}
			advice := c.b.Advice()
			if want := fmt.Sprintf("max_locks_per_transaction = %d", c.needed); c.fits != (advice == "") || (!c.fits && !strings.Contains(advice, want)) {
				t.Errorf("Advice() = %q, want it empty exactly when it fits, else naming %q", advice, want)
			}
		})
	}
}

// TestBackupLocksAdviceIsWhatPgDumpNeeds checks the advice against pg_dump
// itself, on a cluster of its own with a lock table of 200 entries: where
// BackupLocks says the dump does not fit, pg_dump fails with "out of
// shared memory", and with the setting it names, pg_dump succeeds.
func TestBackupLocksAdviceIsWhatPgDumpNeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster of its own")
	}
	bin, err := pglocal.BinDir()
	if err != nil {
		t.Skipf("no PostgreSQL binaries: %v", err)
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tenantry-locks-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The server runs as postgres when the test runs as root.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	start := func(maxLocks int) (*pglocal.Cluster, *gorm.DB) {
		t.Helper()
		c, err := pglocal.Start(ctx, pglocal.Options{Dir: dir, Settings: []string{
			"max_connections=20", "max_prepared_transactions=0", fmt.Sprintf("max_locks_per_transaction=%d", maxLocks)}})
		if err != nil {
			t.Fatal(err)
		}
		db, err := tenancy.Open(ctx, c.URL("postgres"), tenancy.PoolConfig{MaxOpen: 2, MaxIdle: 2})
		if err != nil {
			c.Stop()
			t.Fatal(err)
		}
		return c, db
	}
	stop := func(c *pglocal.Cluster, db *gorm.DB) {
		t.Helper()
		if s, err := db.DB(); err == nil {
			s.Close()
		}
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	dump := func(c *pglocal.Cluster) (string, error) {
		out, err := exec.CommandContext(ctx, filepath.Join(bin, "pg_dump"), "-d", c.URL("postgres"), "-f", os.DevNull).CombinedOutput()
		return string(out), err
	}

	c, db := start(10)
	// 2,000 empty tables, 100 per transaction: creating a table locks it
	// to the end of its transaction too.
	if err := db.Exec("CREATE SCHEMA bulk").Error; err != nil {
		stop(c, db)
		t.Fatal(err)
	}
	for i := 0; i < 2000; i += 100 {
		err := db.Exec(fmt.Sprintf(`DO $$ BEGIN FOR i IN %d..%d LOOP EXECUTE format('CREATE TABLE bulk.t%%s ()', i); END LOOP; END $$`, i, i+99)).Error
		if err != nil {
			stop(c, db)
			t.Fatal(err)
		}
	}
	b, err := tenancy.BackupLocks(ctx, db)
	if err != nil {
		stop(c, db)
		t.Fatal(err)
	}
	if b.Relations < 2000 || b.MaxLocks != 10 || b.MaxConnections != 20 || b.MaxPrepared != 0 {
		stop(c, db)
		t.Fatalf("BackupLocks = %+v, want at least 2000 relations and the settings 10, 20, 0", b)
	}
	if b.Fits() || b.Advice() == "" {
		stop(c, db)
		t.Fatalf("BackupLocks = %+v fits a lock table of %d entries", b, b.Slots())
	}
	out, err := dump(c)
	if err == nil || !strings.Contains(out, "out of shared memory") {
		stop(c, db)
		t.Fatalf("pg_dump with max_locks_per_transaction 10: err %v, output %q; want it to fail with out of shared memory", err, out)
	}
	stop(c, db)

	c, db = start(b.Needed())
	defer stop(c, db)
	after, err := tenancy.BackupLocks(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if !after.Fits() || after.Advice() != "" {
		t.Errorf("with max_locks_per_transaction = %d, BackupLocks = %+v still advises %q", b.Needed(), after, after.Advice())
	}
	if out, err := dump(c); err != nil {
		t.Errorf("pg_dump with the advised max_locks_per_transaction = %d: %v\n%s", b.Needed(), err, out)
	}
}
