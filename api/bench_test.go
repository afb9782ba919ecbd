package api_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"gorm.io/gorm"
)

// BenchmarkRequestPath measures a point read of one item, from the raw
// driver up to the whole HTTP stack, on one database in one run, so the
// sub-benchmarks' ns/op divide into ratios (README, "Request path"):
//
//	pgx-qualified: pgxpool, schema-qualified SELECT, no transaction: the floor
//	gorm-4rt:      the textbook scope: GORM Transaction, then a set_config
//	               statement, then the read, then COMMIT (4 round trips)
//	gorm-scope:    tenancy.WithTx + models.GetItem (BEGIN+pin with the
//	               SELECT, then COMMIT: 2 round trips)
//	read-once:     tenancy.ReadOnce + models.GetItem (the prepared pin and
//	               the SELECT, cached per schema, in one implicit
//	               transaction: 1 round trip)
//	http:          the router: JWT, cached tenant lookup, ReadOnce, JSON
//
// Each iteration picks one of 100 tenants at random, as real traffic would.
// Run: go test ./api -run '^$' -bench RequestPath -cpu 4 -count 5
func BenchmarkRequestPath(b *testing.B) {
	const tenants, items = 100, 100
	s := newStack(b, tenancy.PoolConfig{MaxOpen: 8, MaxIdle: 8, StatementCache: tenancy.DefaultStatementCache}, nil)
	ctx := context.Background()
	ts := make([]models.Tenant, tenants)
	rs := make([]tenancy.Resolved, tenants)
	tokens := make([]string, tenants)
	for i := range ts {
		t, err := s.dir.Onboard(ctx, fmt.Sprintf("bench%03d", i))
		if err != nil {
			b.Fatal(err)
		}
		rs[i] = tenancytest.Resolve(b, s.dir, t.Name)
		err = tenancy.WithTx(ctx, rs[i], func(tx *gorm.DB) error {
			return tx.Exec(`INSERT INTO items (name, description, created_at, updated_at)
				SELECT 'item ' || g, 'd', now(), now() FROM generate_series(1, $1) g`, items).Error
		})
		if err != nil {
			b.Fatal(err)
		}
		ts[i], tokens[i] = t, s.token(b, t.Name, false)
	}
	// The qualified baseline reads as the schemas' owner (the DDL role):
	// the request role reaches a tenant's tables only through its role.
	pool, err := pgxpool.New(ctx, s.te.AdminURL+sep(s.te.AdminURL)+"pool_max_conns=8")
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()

	b.Run("pgx-qualified", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				t := ts[rand.IntN(tenants)]
				var name string
				err := pool.QueryRow(ctx, `SELECT name FROM "`+t.SchemaName+`".items WHERE id = $1`, 1+rand.IntN(items)).Scan(&name)
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("gorm-4rt", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				t := ts[rand.IntN(tenants)]
				err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
					if err := tx.Exec("SELECT set_config('search_path', $1, true), set_config('role', $2, true)", `"`+t.SchemaName+`"`, t.DBRole).Error; err != nil {
						return err
					}
					_, err := models.GetItem(tx, int64(1+rand.IntN(items)))
					return err
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("gorm-scope", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				err := tenancy.WithTx(ctx, rs[rand.IntN(tenants)], func(tx *gorm.DB) error {
					_, err := models.GetItem(tx, int64(1+rand.IntN(items)))
					return err
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("read-once", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				err := tenancy.ReadOnce(ctx, rs[rand.IntN(tenants)], func(tx *gorm.DB) error {
					_, err := models.GetItem(tx, int64(1+rand.IntN(items)))
					return err
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("http", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := rand.IntN(tenants)
				req := httptest.NewRequest("GET", fmt.Sprintf("/items/%d", 1+rand.IntN(items)), nil)
				req.Header.Set("Authorization", "Bearer "+tokens[i])
				rec := httptest.NewRecorder()
				s.srv.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Errorf("status %d: %s", rec.Code, rec.Body)
					return
				}
			}
		})
	})
}

// sep is what joins one more parameter to url's query.
func sep(url string) string {
	if strings.Contains(url, "?") {
		return "&"
	}
	return "?"
}
