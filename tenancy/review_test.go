package tenancy_test

import (
	"context"
	"testing"
	"time"

	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// insertRow inserts one item in a WithTx scope whose first statement is an
// INSERT ... RETURNING *, the statement the cache names.
func insertRow(ctx context.Context, r tenancy.Resolved, name string) (map[string]any, error) {
	row := map[string]any{}
	err := tenancy.WithTx(ctx, r, func(tx *gorm.DB) error {
		return tx.Raw("INSERT INTO items (name, description) VALUES ($1, '') RETURNING *", name).Scan(&row).Error
	})
	return row, err
}

func countNamed(t *testing.T, ctx context.Context, r tenancy.Resolved, name string) int64 {
	t.Helper()
	var n int64
	if err := tenancy.ReadOnce(ctx, r, func(tx *gorm.DB) error {
		return tx.Raw("SELECT count(*) FROM items WHERE name = $1", name).Scan(&n).Error
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// A WithTx scope whose cached first statement writes, refused after a
// shape change (0A000) and sent again, writes exactly once.
func TestRetriedCachedWriteRunsOnce(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1, StatementCache: 8})
	e.onboard(t, "acme")
	ctx := context.Background()
	acme, err := e.dir.Active(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if _, err := insertRow(ctx, acme, name); err != nil {
			t.Fatal(err)
		}
	}
	e.admin(t, `ALTER TABLE "`+acme.Row().SchemaName+`".items ADD COLUMN sku text DEFAULT 'x'`)
	row, err := insertRow(ctx, acme, "c")
	if err != nil {
		t.Fatalf("insert after the change: %v", err)
	}
	if row["sku"] != "x" {
		t.Fatalf("insert after the change returned %v, want the new shape", row)
	}
	if n := countNamed(t, ctx, acme, "c"); n != 1 {
		t.Fatalf("%d rows named c, want 1", n)
	}
	if _, err := insertRow(ctx, acme, "d"); err != nil {
		t.Fatal(err)
	}
	if n := countNamed(t, ctx, acme, "d"); n != 1 {
		t.Fatalf("%d rows named d, want 1", n)
	}
}

// A cached statement refused at its Bind for bad input (22P02) is the
// scope's error, and the connection stays in step for the next scopes.
func TestCachedStatementBadInputLeavesTheConnectionInStep(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1, StatementCache: 8})
	e.onboard(t, "acme", "beta")
	createItem(t, e, "acme", "first")
	createItem(t, e, "beta", "second")
	ctx := context.Background()
	acme, err := e.dir.Active(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	beta, err := e.dir.Active(ctx, "beta")
	if err != nil {
		t.Fatal(err)
	}
	read := func(r tenancy.Resolved, arg string) (map[string]any, error) {
		row := map[string]any{}
		err := tenancy.ReadOnce(ctx, r, func(tx *gorm.DB) error {
			return tx.Raw("SELECT * FROM items WHERE id = $1::text::int8", arg).Take(&row).Error
		})
		return row, err
	}
	for range 3 {
		if row, err := read(acme, "1"); err != nil || row["name"] != "first" {
			t.Fatalf("good read: %v %v", row, err)
		}
		if _, err := read(acme, "x"); !isState(err, "22P02") {
			t.Fatalf("bad read: %v, want 22P02", err)
		}
		if row, err := read(beta, "1"); err != nil || row["name"] != "second" {
			t.Fatalf("other tenant's read: %v %v", row, err)
		}
	}
}

// Nested transactions (savepoints) inside a WithTx scope whose first
// statement was cached keep to the tenant and the connection in step.
func TestSavepointsAfterACachedFirstStatement(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1, StatementCache: 8})
	e.onboard(t, "acme", "beta")
	ctx := context.Background()
	acme, err := e.dir.Active(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		err := tenancy.WithTx(ctx, acme, func(tx *gorm.DB) error {
			var sp string
			if err := tx.Raw("SELECT current_setting('search_path') WHERE $1::int >= 0", i).Scan(&sp).Error; err != nil {
				return err
			}
			_ = tx.Transaction(func(tx2 *gorm.DB) error {
				return tx2.Exec("SELECT 1/0").Error
			})
			return tx.Transaction(func(tx2 *gorm.DB) error {
				var sp2 string
				if err := tx2.Raw("SELECT current_setting('search_path') WHERE $1::int >= 0", i).Scan(&sp2).Error; err != nil {
					return err
				}
				if sp2 != sp || sp != `"`+acme.Row().SchemaName+`"` {
					t.Errorf("search_path %q then %q", sp, sp2)
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Scopes cut short by their context in the middle of a cached statement
// (the deadline closes the connection mid-reply, its statement's Parse
// perhaps unanswered) leave no statement of one tenant to be bound for
// another: on a pool of one, alternating tenants read only their own rows.
func TestCancelledCachedStatementsNeverCrossTenants(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1, StatementCache: 8})
	e.onboard(t, "acme", "beta")
	createItem(t, e, "acme", "acme-1")
	createItem(t, e, "beta", "beta-1")
	ctx := context.Background()
	var rs []tenancy.Resolved
	for _, n := range []string{"acme", "beta"} {
		r, err := e.dir.Active(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	const q = "SELECT name, pg_sleep($2) IS NULL AS slept FROM items WHERE id = $1"
	for i := range 12 {
		r := rs[i%2]
		sleep, limit := 0.0, 5*time.Second
		if i%3 == 0 {
			sleep, limit = 0.5, 100*time.Millisecond
		}
		cctx, cancel := context.WithTimeout(ctx, limit)
		start := time.Now()
		var got struct {
			Name  string
			Slept bool
		}
		err := tenancy.ReadOnce(cctx, r, func(tx *gorm.DB) error {
			return tx.Raw(q, 1, sleep).Take(&got).Error
		})
		cancel()
		switch {
		case sleep > 0 && err == nil:
			t.Fatalf("read %d outlived its deadline", i)
		case sleep == 0 && err != nil:
			t.Fatalf("read %d: %v after %v", i, err, time.Since(start))
		case err == nil && got.Name != r.Name()+"-1":
			t.Fatalf("read %d of %s got %q", i, r.Name(), got.Name)
		}
	}
}
