package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"github.com/tenantry/tenantry/token"
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

// BenchmarkMiddlewareChain measures everything a tenant read passes through
// except its scope: request id, metrics, access log (JSON, Info, as serve
// logs), recovery, deadline, body limit, the token (a cache hit after the
// first round), the tenant lookup (a directory cache hit), the rate limit
// (counted, never refusing) and the JSON answer, on a route that answers a fixed item. Its ns/op and
// allocs/op are the server's per-request overhead above the database work.
// Run: go test ./api -run '^$' -bench MiddlewareChain -benchmem
func BenchmarkMiddlewareChain(b *testing.B) {
	const tenants = 10
	te := tenancytest.New(b, tenancy.PoolConfig{MaxOpen: 4, MaxIdle: 4})
	dir := te.Directory()
	auth := token.Config{Secret: testSecret}
	srv, err := api.NewServer(dir, api.Config{Auth: auth, RateLimit: api.RateLimit{PerSecond: 1e9, Burst: 1e9},
		Logger: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		b.Fatal(err)
	}
	api.AddBenchRoute(srv)
	ctx := context.Background()
	reqs := make([]*http.Request, tenants)
	for i := range reqs {
		t, err := dir.Onboard(ctx, fmt.Sprintf("chain%02d", i))
		if err != nil {
			b.Fatal(err)
		}
		tok, err := token.IssueTenantToken(auth, t, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = httptest.NewRequest("GET", "/_bench/item", nil)
		reqs[i].Header.Set("Authorization", "Bearer "+tok)
	}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	for i := range b.N {
		clear(w.h)
		w.status = 0
		srv.ServeHTTP(w, reqs[i%tenants])
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the process's user and system CPU time so far. On a shared
// machine wall time per operation swings with the neighbours' load; CPU
// time (garbage collection included) swings much less, and it is what the
// HTTP benchmark reports per request too.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// discardWriter is a ResponseWriter that keeps the status and headers and
// drops the body, so the benchmark counts the server's allocations, not a
// recorder's.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}
func (w *discardWriter) WriteHeader(code int) { w.status = code }
