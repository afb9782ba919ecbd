package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// readWithPID reads item id as the scope's first statement (the one that
// carries the BEGIN and pin), then asks which backend served it.
func readWithPID(ctx context.Context, e *env, tenant string, id int64) (models.Item, int, error) {
	ten, err := e.dir.Active(ctx, tenant)
	if err != nil {
		return models.Item{}, 0, err
	}
	var it models.Item
	var pid int
	err = tenancy.WithTx(ctx, ten, func(tx *gorm.DB) error {
		if it, err = models.GetItem(tx, id); err != nil {
			return err
		}
		return tx.Raw("SELECT pg_backend_pid()").Scan(&pid).Error
	})
	return it, pid, err
}

// A fleet migration may change a tenant's table shape between two requests
// that one pooled connection serves. The second request reads the new
// shape without "cached plan must not change result type" (0A000) or any
// other error: each shape change below alters the result type of the same
// SELECT. Without the statement cache nothing is prepared across scopes;
// with it, the statement the first scope prepared for the schema is
// refused, and the scope goes again unprepared, its explicit transaction
// rolled back and begun anew.
func TestShapeChangeBetweenRequestsOnOneConnection(t *testing.T) {
	for _, cache := range []int{0, 8} {
		t.Run(fmt.Sprint("cache ", cache), func(t *testing.T) {
			e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1, StatementCache: cache})
			e.onboard(t, "acme")
			createItem(t, e, "acme", "first")
			ctx := context.Background()
			ten, err := e.dir.Active(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			it, pid, err := readWithPID(ctx, e, "acme", 1)
			if err != nil || it.Name != "first" {
				t.Fatalf("read before the change: %+v, %v", it, err)
			}
			for _, change := range []string{
				"ALTER TABLE %s.items ADD COLUMN sku text DEFAULT 'x'",
				"ALTER TABLE %s.items ALTER COLUMN description TYPE varchar(2000)",
				"ALTER TABLE %s.items DROP COLUMN sku",
			} {
				e.admin(t, fmt.Sprintf(change, `"`+ten.Row().SchemaName+`"`))
				for read := range 2 {
					got, again, err := readWithPID(ctx, e, "acme", 1)
					if err != nil {
						t.Fatalf("after %q, read %d: %v", change, read, err)
					}
					if again != pid {
						t.Fatalf("after %q: served by backend %d, not %d: the test needs one connection", change, again, pid)
					}
					if got.Name != "first" {
						t.Fatalf("after %q, read %d: %+v", change, read, got)
					}
				}
			}
		})
	}
}

func isState(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// A pin that fails with the first statement (a dropped schema) fails that
// statement with the pin's own error, not "current transaction is
// aborted", and leaves the connection in step: on a pool of one, the next
// scopes, another tenant's and a scope that runs no statement, are served
// correctly on the same backend.
func TestFailedPinLeavesTheConnectionInStep(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1})
	e.onboard(t, "acme", "globex")
	createItem(t, e, "globex", "globex's")
	ctx := context.Background()
	gone, err := e.dir.Active(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	_, pid, err := readWithPID(ctx, e, "globex", 1)
	if err != nil {
		t.Fatal(err)
	}
	e.admin(t, `DROP SCHEMA "`+gone.Row().SchemaName+`" CASCADE`)
	for round := range 3 {
		var stmtErr error
		err = tenancy.WithTx(ctx, gone, func(tx *gorm.DB) error {
			_, stmtErr = models.GetItem(tx, 1)
			return stmtErr
		})
		if !errors.Is(err, models.ErrUnavailable) || !isState(stmtErr, "3F000") {
			t.Fatalf("round %d, scope on the dropped schema: %v (statement: %v), want 3F000, unavailable", round, err, stmtErr)
		}
		// No statement: the pin goes out with the COMMIT, and fails it.
		err = tenancy.WithTx(ctx, gone, func(*gorm.DB) error { return nil })
		if !errors.Is(err, models.ErrUnavailable) || !isState(err, "3F000") {
			t.Fatalf("round %d, empty scope on the dropped schema: %v, want 3F000, unavailable", round, err)
		}
		it, again, err := readWithPID(ctx, e, "globex", 1)
		if err != nil || it.Name != "globex's" {
			t.Fatalf("round %d, the next tenant's read: %+v, %v", round, it, err)
		}
		if again != pid {
			t.Fatalf("round %d: backend %d, then %d: the connection was replaced, not kept in step", round, pid, again)
		}
	}
}

// Concurrent writing scopes on a busy pool never stall: each finishes
// within its deadline, or the test's own timeout reports the stall with
// every goroutine's stack. (pgconn's background reader may hold a socket's
// read lock between uses; the BEGIN's liveness peek must not wait for it.)
func TestConcurrentScopesNeverStall(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	var names []string
	for i := range 20 {
		n := fmt.Sprintf("s%02d", i)
		e.onboard(t, n)
		names = append(names, n)
	}
	var tens []tenancy.Resolved
	for _, n := range names {
		ten, err := e.dir.Active(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		tens = append(tens, ten)
	}
	var wg sync.WaitGroup
	stop := time.Now().Add(4 * time.Second)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				ten := tens[(g*7+i)%len(tens)]
				err := tenancy.WithTx(ctx, ten, func(tx *gorm.DB) error {
					_, err := models.CreateItem(tx, models.ItemInput{Name: "x"})
					return err
				})
				cancel()
				if err != nil {
					t.Errorf("g%d i%d: %v", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// A ReadOnce scope reads its tenant's rows in one write. A second
// statement is refused unsent, a write is refused by PostgreSQL, and on a
// pool of one the connection goes back with no search_path and serves the
// next scope.
func TestReadOnceRunsOneReadOnly(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1})
	e.onboard(t, "acme", "globex")
	createItem(t, e, "acme", "acme's")
	createItem(t, e, "globex", "globex's")
	ctx := context.Background()
	acme, err := e.dir.Active(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		var it models.Item
		err := tenancy.ReadOnce(ctx, acme, func(tx *gorm.DB) error {
			it, err = models.GetItem(tx, 1)
			return err
		})
		if err != nil || it.Name != "acme's" {
			t.Fatalf("read: %+v, %v", it, err)
		}
		if sp := rawSearchPath(t, e.db); sp != `""` && sp != "" {
			t.Fatalf("search_path %q after a ReadOnce scope", sp)
		}
	}
	var second error
	err = tenancy.ReadOnce(ctx, acme, func(tx *gorm.DB) error {
		if _, err := models.GetItem(tx, 1); err != nil {
			return err
		}
		second = tx.Exec("SELECT 1").Error
		return second
	})
	if !errors.Is(second, tenancy.ErrReadOnce) || !errors.Is(err, tenancy.ErrReadOnce) {
		t.Fatalf("second statement: %v, scope: %v; want ErrReadOnce", second, err)
	}
	err = tenancy.ReadOnce(ctx, acme, func(tx *gorm.DB) error {
		_, err := models.CreateItem(tx, models.ItemInput{Name: "written"})
		return err
	})
	if !isState(err, "25006") {
		t.Fatalf("write in a ReadOnce scope: %v, want 25006 (read-only transaction)", err)
	}
	items, err := listItems(ctx, e, "acme")
	if err != nil || len(items) != 1 {
		t.Fatalf("acme's items after the refused write: %+v, %v", items, err)
	}
	// No statement at all: the pin still runs, and still fails closed.
	if err := tenancy.ReadOnce(ctx, acme, func(*gorm.DB) error { return nil }); err != nil {
		t.Fatalf("empty ReadOnce scope: %v", err)
	}
	globex, err := e.dir.Active(ctx, "globex")
	if err != nil {
		t.Fatal(err)
	}
	var it models.Item
	err = tenancy.ReadOnce(ctx, globex, func(tx *gorm.DB) error {
		it, err = models.GetItem(tx, 1)
		return err
	})
	if err != nil || it.Name != "globex's" {
		t.Fatalf("the next tenant's read on the same pool: %+v, %v", it, err)
	}
}

// ReadOnce's transaction is READ ONLY on a handle not made by Open too,
// where the scope pins with a statement of its own: a write is refused.
func TestReadOnceIsReadOnlyOnAForeignHandle(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	e.onboard(t, "acme")
	foreign, err := gorm.Open(postgres.Open(e.url), &gorm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := foreign.DB(); err == nil {
			s.Close()
		}
	})
	ctx := context.Background()
	acme, err := tenancy.NewDirectory(foreign).Active(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	err = tenancy.ReadOnce(ctx, acme, func(tx *gorm.DB) error {
		_, err := models.CreateItem(tx, models.ItemInput{Name: "written"})
		return err
	})
	if !isState(err, "25006") {
		t.Fatalf("write in a ReadOnce scope on a foreign handle: %v, want 25006 (read-only transaction)", err)
	}
	items, err := listItems(ctx, e, "acme")
	if err != nil || len(items) != 0 {
		t.Fatalf("acme's items after the refused write: %+v, %v", items, err)
	}
}

// A ReadOnce scope's one statement runs inside the pin: in the tenant's
// schema alone, as the tenant's read-write role (the pin, not the login
// role, decides), read-only, and within the directory's limits. On a pool
// of one, every read after the first binds the pin prepared by the first.
func TestReadOnceStatementRunsInsideThePin(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1})
	e.onboard(t, "acme")
	ctx := context.Background()
	dir := tenancy.NewDirectory(e.db, tenancy.WithLimits(tenancy.Limits{Statement: 300 * time.Millisecond, Lock: time.Second, Idle: time.Second}))
	acme, err := dir.Active(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		var got struct {
			Path, Role, ReadOnly, Timeout string
		}
		err := tenancy.ReadOnce(ctx, acme, func(tx *gorm.DB) error {
			return tx.Raw(`SELECT current_setting('search_path') AS path, current_user AS role,
				current_setting('transaction_read_only') AS read_only,
				current_setting('statement_timeout') AS timeout WHERE $1 = 1`, 1).Scan(&got).Error
		})
		if err != nil {
			t.Fatal(err)
		}
		want := `"` + acme.Row().SchemaName + `"`
		if got.Path != want || got.Role != acme.Row().DBRole || got.ReadOnly != "on" || got.Timeout != "300ms" {
			t.Fatalf("inside a ReadOnce scope: %+v; want path %s, role %s, read-only, 300ms", got, want, acme.Row().DBRole)
		}
	}
	// The limit holds for the statement, not only for the pin.
	err = tenancy.ReadOnce(ctx, acme, func(tx *gorm.DB) error {
		return tx.Raw("SELECT pg_sleep($1)", 5).Scan(new(string)).Error
	})
	if !isState(err, "57014") {
		t.Fatalf("a ReadOnce statement past its statement timeout: %v, want 57014", err)
	}
	if sp := rawSearchPath(t, e.db); sp != `""` && sp != "" {
		t.Fatalf("search_path %q after the scopes", sp)
	}
}

// A scope's own SQL may drop every prepared statement of its connection
// (DEALLOCATE ALL). The next scope on that connection finds its prepared
// pin (and BEGIN, and cached statement) gone; it is sent again with
// everything parsed, and succeeds: a ReadOnce read, and a write, which
// lands exactly once. The scope after it prepares the pin again.
func TestScopesSurviveADroppedPreparedPin(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1, StatementCache: 8})
	acme := e.tenantWithItem(t, "acme", "acme's")
	ctx := context.Background()
	read := func() (models.Item, error) {
		var it models.Item
		err := tenancy.ReadOnce(ctx, acme, func(tx *gorm.DB) error {
			var err error
			it, err = models.GetItem(tx, 1)
			return err
		})
		return it, err
	}
	for round := range 3 {
		for range 2 {
			if it, err := read(); err != nil || it.Name != "acme's" {
				t.Fatalf("round %d, read: %+v, %v", round, it, err)
			}
		}
		var prepared int
		err := tenancy.WithTx(ctx, acme, func(tx *gorm.DB) error {
			if err := tx.Raw("SELECT count(*) FROM pg_prepared_statements WHERE name = 'tenantry_read_pin_v1'").Scan(&prepared).Error; err != nil {
				return err
			}
			return tx.Exec("DEALLOCATE ALL").Error
		})
		if err != nil {
			t.Fatal(err)
		}
		if prepared != 1 {
			t.Fatalf("round %d: %d prepared pins on the connection, want 1", round, prepared)
		}
	}
	for round := range 3 {
		err := tenancy.WithTx(ctx, acme, func(tx *gorm.DB) error {
			_, err := models.CreateItem(tx, models.ItemInput{Name: fmt.Sprint("write ", round)})
			return err
		})
		if err != nil {
			t.Fatalf("write %d after DEALLOCATE ALL: %v", round, err)
		}
		if err := tenancy.WithTx(ctx, acme, func(tx *gorm.DB) error { return tx.Exec("DEALLOCATE ALL").Error }); err != nil {
			t.Fatal(err)
		}
	}
	items, err := listItems(ctx, e, "acme")
	if err != nil || len(items) != 4 {
		t.Fatalf("acme's items after 3 writes: %+v, %v; want each write once", items, err)
	}
}
