package tenancy_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// rowSQL is readRow's statement.
const rowSQL = "SELECT * FROM items WHERE id = $1"

// cachedStatements counts the statements of readRow's SQL that the
// connection of a pool of one holds prepared from the statement cache
// (which caches the first statement of a WithTx scope too, such as this
// count's own and a createItem's INSERT).
func cachedStatements(t *testing.T, ctx context.Context, r tenancy.Resolved) int {
	t.Helper()
	var n int
	err := tenancy.WithTx(ctx, r, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT count(*) FROM pg_prepared_statements
			WHERE starts_with(name, 'tenantry_s') AND statement = $1`, rowSQL).Scan(&n).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// readRow reads item 1 of r's tenant with SELECT *, as a column map.
func readRow(ctx context.Context, r tenancy.Resolved) (map[string]any, error) {
	row := map[string]any{}
	err := tenancy.ReadOnce(ctx, r, func(tx *gorm.DB) error {
		return tx.Raw(rowSQL, 1).Take(&row).Error
	})
	return row, err
}

// A migration may change a tenant's table under a statement the cache
// holds prepared for it. The next ReadOnce read of the same SQL on the same
// connection is neither refused (0A000, "cached plan must not change result
// type") nor served the old shape: it reads the new one, unprepared, and
// the read after it prepares the statement again.
func TestShapeChangeUnderACachedStatement(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1, StatementCache: 8})
	acme := e.tenantWithItem(t, "acme", "first")
	ctx := context.Background()
	for range 2 {
		if row, err := readRow(ctx, acme); err != nil || row["name"] != "first" {
			t.Fatalf("read before the change: %v, %v", row, err)
		}
	}
	if n := cachedStatements(t, ctx, acme); n != 1 {
		t.Fatalf("%d cached statements after two reads of one SQL, want 1", n)
	}
	for _, c := range []struct {
		change string
		sku    bool
	}{
		{"ALTER TABLE %s.items ADD COLUMN sku text DEFAULT 'x'", true},
		{"ALTER TABLE %s.items ALTER COLUMN description TYPE varchar(2000)", true},
		{"ALTER TABLE %s.items DROP COLUMN sku", false},
	} {
		e.admin(t, fmt.Sprintf(c.change, `"`+acme.Row().SchemaName+`"`))
		for read := range 2 {
			row, err := readRow(ctx, acme)
			if err != nil {
				t.Fatalf("after %q, read %d: %v", c.change, read, err)
			}
			if _, has := row["sku"]; has != c.sku || row["name"] != "first" {
				t.Fatalf("after %q, read %d: %v, want sku present: %v", c.change, read, row, c.sku)
			}
		}
		if n := cachedStatements(t, ctx, acme); n != 1 {
			t.Fatalf("after %q: %d cached statements, want the one prepared again", c.change, n)
		}
	}
}

// The cache holds at most its size per connection: older statements are
// closed on the server, not only forgotten. Setting up five tenants
// already filled it (their INSERTs); from then on the connection holds
// exactly size statements of the cache, whatever it runs.
func TestStatementCacheIsBounded(t *testing.T) {
	const size = 3
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1, StatementCache: size})
	var rs []tenancy.Resolved
	ctx := context.Background()
	for i := range 5 {
		name := fmt.Sprintf("t%d", i)
		e.onboard(t, name)
		createItem(t, e, name, name+"'s")
		r, err := e.dir.Active(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	for round := range 2 {
		for i, r := range rs {
			row, err := readRow(ctx, r)
			if err != nil || row["name"] != fmt.Sprintf("t%d's", i) {
				t.Fatalf("round %d, tenant %d: %v, %v", round, i, row, err)
			}
			var n int
			err = tenancy.WithTx(ctx, r, func(tx *gorm.DB) error {
				return tx.Raw("SELECT count(*) FROM pg_prepared_statements WHERE starts_with(name, 'tenantry_s')").Scan(&n).Error
			})
			if err != nil {
				t.Fatal(err)
			}
			if n != size {
				t.Fatalf("round %d, after tenant %d: %d cached statements on the connection, want %d", round, i, n, size)
			}
		}
	}
}

// A statement that fails (a missing table) is the scope's error, and
// leaves nothing behind: the connection serves the next read, and a later
// read of the same SQL, once the table exists, succeeds.
func TestFailedCachedStatementLeavesTheConnectionInStep(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1, StatementCache: 8})
	acme := e.tenantWithItem(t, "acme", "first")
	ctx := context.Background()
	missing := func() error {
		return tenancy.ReadOnce(ctx, acme, func(tx *gorm.DB) error {
			return tx.Raw("SELECT * FROM notes WHERE id = $1", 1).Scan(&map[string]any{}).Error
		})
	}
	for range 2 {
		if err := missing(); !isState(err, "42P01") {
			t.Fatalf("read of a missing table: %v, want 42P01", err)
		}
		if row, err := readRow(ctx, acme); err != nil || row["name"] != "first" {
			t.Fatalf("the next read: %v, %v", row, err)
		}
	}
	e.admin(t, `CREATE TABLE "`+acme.Row().SchemaName+`".notes (id int); GRANT SELECT ON "`+
		acme.Row().SchemaName+`".notes TO `+acme.Row().DBRole)
	if err := missing(); err != nil {
		t.Fatalf("read once the table exists: %v", err)
	}
}

// Concurrent ReadOnce scopes of many tenants over a small pool and a cache
// too small for them all (statements evicted and prepared again all the
// time) each read their own tenant's rows, never another's.
func TestCachedStatementsNeverCrossTenants(t *testing.T) {
	e := newEnv(t, tenancy.PoolConfig{MaxOpen: 4, MaxIdle: 4, StatementCache: 3})
	ctx := context.Background()
	var rs []tenancy.Resolved
	for i := range 8 {
		name := fmt.Sprintf("c%d", i)
		e.onboard(t, name)
		createItem(t, e, name, name+"-1")
		createItem(t, e, name, name+"-2")
		r, err := e.dir.Active(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				r := rs[rand.IntN(len(rs))]
				var items []models.Item
				var one models.Item
				err := tenancy.ReadOnce(ctx, r, func(tx *gorm.DB) error {
					if i%2 == 0 {
						var err error
						items, err = models.ListItems(tx, 20, 0)
						return err
					}
					var err error
					one, err = models.GetItem(tx, int64(1+i%2))
					items = []models.Item{one}
					return err
				})
				if err == nil && len(items) == 0 {
					err = fmt.Errorf("no items")
				}
				for _, it := range items {
					if !strings.HasPrefix(it.Name, r.Name()+"-") {
						err = fmt.Errorf("tenant %s read %q", r.Name(), it.Name)
					}
				}
				if err != nil {
					errs <- fmt.Errorf("goroutine %d, read %d: %w", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
