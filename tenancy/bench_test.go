package tenancy_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// BenchmarkRoleSwitch measures what the role switch adds to a scoped point
// read. Both sub-benchmarks run in one process on one pool of one login
// role (the one-URL setup, whose role may both read the tables as their
// owner and switch to tenant roles), over the same tenants and rows; the
// only difference is set_config('role', ...) in the pin. Compare the two
// ns/op as a ratio (benchstat, or by eye): wall-clock numbers on a shared
// machine mean little alone.
//
//	go test -run '^$' -bench RoleSwitch -count 6 ./tenancy/
func BenchmarkRoleSwitch(b *testing.B) {
	const tenants, items = 20, 100
	e := newEnvB(b)
	ctx := context.Background()
	// Both kinds of scope run on the DDL role's handle, so the ratio is
	// the role switch alone.
	ddlDir := tenancy.NewDirectory(e.ddl)
	ts := make([]tenancy.Resolved, tenants)
	for i := range ts {
		row, err := e.dir.Onboard(ctx, fmt.Sprintf("bench%02d", i))
		if err != nil {
			b.Fatal(err)
		}
		t, err := ddlDir.Active(ctx, row.Name)
		if err != nil {
			b.Fatal(err)
		}
		err = tenancy.WithTx(ctx, t, func(tx *gorm.DB) error {
			return tx.Exec(`INSERT INTO items (name, description, created_at, updated_at)
				SELECT 'item ' || g, 'd', now(), now() FROM generate_series(1, $1) g`, items).Error
		})
		if err != nil {
			b.Fatal(err)
		}
		ts[i] = t
	}
	read := func(tx *gorm.DB) error {
		_, err := models.GetItem(tx, int64(1+rand.IntN(items)))
		return err
	}
	plain := func(t tenancy.Resolved) error {
		return tenancy.InSchema(ctx, e.ddl, t.Row().SchemaName, tenancy.RequestLimits, read)
	}
	withRole := func(t tenancy.Resolved) error { return tenancy.WithTx(ctx, t, read) }
	// Interleaved: each iteration runs one scope of each kind back to
	// back, alternating which goes first, so drift in the machine's load
	// hits both alike; the ratio of their totals is the cost of the switch.
	b.Run("interleaved", func(b *testing.B) {
		var dPlain, dRole time.Duration
		i := 0
		for b.Loop() {
			t := ts[rand.IntN(tenants)]
			fns := [2]func(tenancy.Resolved) error{plain, withRole}
			ds := [2]*time.Duration{&dPlain, &dRole}
			for k := range 2 {
				j := (k + i) % 2
				start := time.Now()
				if err := fns[j](t); err != nil {
					b.Fatal(err)
				}
				*ds[j] += time.Since(start)
			}
			i++
		}
		b.ReportMetric(float64(dPlain.Nanoseconds())/float64(b.N), "plain-ns/op")
		b.ReportMetric(float64(dRole.Nanoseconds())/float64(b.N), "role-ns/op")
		b.ReportMetric(float64(dRole)/float64(dPlain), "role/plain")
	})
	b.Run("search_path", func(b *testing.B) {
		for b.Loop() {
			t := ts[rand.IntN(tenants)]
			if err := tenancy.InSchema(ctx, e.ddl, t.Row().SchemaName, tenancy.RequestLimits, read); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("search_path+role", func(b *testing.B) {
		for b.Loop() {
			if err := tenancy.WithTx(ctx, ts[rand.IntN(tenants)], read); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// newEnvB is newEnv for a benchmark whose DDL role also joins the group,
// as in the one-URL setup.
func newEnvB(b *testing.B) *env {
	b.Helper()
	e := newEnvTB(b, tenancy.PoolConfig{MaxOpen: 4, MaxIdle: 4})
	if err := e.dir.EnsureRoles(context.Background(), e.te.Roles.DDLRole); err != nil {
		b.Fatal(err)
	}
	return e
}
