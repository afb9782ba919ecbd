package tenancy_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// BenchmarkReadProtocol measures what PostgreSQL spends on one scoped point
// read sent each way tenancy has sent it, by speaking the protocol directly
// on one connection (no pgx, GORM or database/sql above it), so only the
// server's work differs. It reports the backend's CPU per read
// (backend-µs/op, from /proc: utime+stime, 10 ms ticks, so run long
// enough) beside ns/op. Each read picks one of 100 tenants at random.
//
//	plain-prepared:   one prepared SELECT on one table, no scope (the
//	                  baseline's shape)
//	begin-pin-commit: BEGIN READ ONLY and the pin as simple-protocol text,
//	                  the read as an unnamed statement, COMMIT
//	implicit-text:    the pin as an unnamed statement, then the read, in
//	                  the extended protocol's implicit transaction
//	prepared-pin:     the pin prepared once and bound, then the read
//	                  unnamed (what ReadOnce sends on a cache miss)
//	cached:           the prepared pin, then the read prepared once per
//	                  tenant schema and bound (a cache hit)
//
//	go test ./tenancy -run '^$' -bench ReadProtocol -benchtime 20000x -count 3
func BenchmarkReadProtocol(b *testing.B) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		b.Skip("needs /proc for the backend's CPU")
	}
	const tenants, items = 100, 20
	e := newEnvTB(b, tenancy.PoolConfig{MaxOpen: 2, MaxIdle: 2})
	ctx := context.Background()
	type tenant struct{ schema, role string }
	var ts []tenant
	for i := range tenants {
		row, err := e.dir.Onboard(ctx, fmt.Sprintf("proto%03d", i))
		if err != nil {
			b.Fatal(err)
		}
		r, err := e.dir.Active(ctx, row.Name)
		if err != nil {
			b.Fatal(err)
		}
		err = tenancy.WithTx(ctx, r, func(tx *gorm.DB) error {
			return tx.Exec(`INSERT INTO items (name, description, created_at, updated_at)
				SELECT 'item ' || g, 'd', now(), now() FROM generate_series(1, $1) g`, items).Error
		})
		if err != nil {
			b.Fatal(err)
		}
		ts = append(ts, tenant{row.SchemaName, r.Row().DBRole})
	}
	const read = `SELECT * FROM "items" WHERE "items"."id" = $1 LIMIT 1`
	plain := `SELECT * FROM "` + ts[0].schema + `"."items" WHERE "items"."id" = $1 LIMIT 1`
	pinText := func(t tenant) string {
		sql, err := tenancy.PinText(t.schema, t.role)
		if err != nil {
			b.Fatal(err)
		}
		return sql
	}
	const pinParam = tenancy.ReadPinSQL
	pinArgs := func(t tenant) [][]byte {
		return [][]byte{[]byte(`"` + t.schema + `"`), []byte(t.role), []byte("5000"), []byte("2000"), []byte("10000")}
	}
	id := func(n int) [][]byte { return [][]byte{[]byte(strconv.Itoa(n))} }
	// Each variant sends one read for tenant t and returns how many
	// ReadyForQuery messages answer it.
	type send func(f *pgproto3.Frontend, prepared map[string]bool, t tenant, n int) int
	prepare := func(f *pgproto3.Frontend, prepared map[string]bool, name, sql string) {
		if !prepared[name] {
			f.Send(&pgproto3.Parse{Name: name, Query: sql})
			prepared[name] = true
		}
	}
	bindPin := func(f *pgproto3.Frontend, prepared map[string]bool, t tenant) {
		prepare(f, prepared, "pin", pinParam)
		f.Send(&pgproto3.Bind{PreparedStatement: "pin", Parameters: pinArgs(t)})
		f.Send(&pgproto3.Execute{})
	}
	variants := []struct {
		name  string
		owner bool // reads as the tables' owner: no scope, no role
		send  send
	}{
		{"plain-prepared", true, func(f *pgproto3.Frontend, p map[string]bool, _ tenant, n int) int {
			prepare(f, p, "plain", plain)
			f.Send(&pgproto3.Bind{PreparedStatement: "plain", Parameters: id(n)})
			f.Send(&pgproto3.Execute{})
			f.Send(&pgproto3.Sync{})
			return 1
		}},
		{"begin-pin-commit", false, func(f *pgproto3.Frontend, _ map[string]bool, t tenant, n int) int {
			f.Send(&pgproto3.Query{String: "BEGIN READ ONLY; " + pinText(t)})
			f.Send(&pgproto3.Parse{Query: read})
			f.Send(&pgproto3.Bind{Parameters: id(n)})
			f.Send(&pgproto3.Describe{ObjectType: 'P'})
			f.Send(&pgproto3.Execute{})
			f.Send(&pgproto3.Sync{})
			f.Send(&pgproto3.Query{String: "COMMIT"})
			return 3
		}},
		{"implicit-text", false, func(f *pgproto3.Frontend, _ map[string]bool, t tenant, n int) int {
			f.Send(&pgproto3.Parse{Query: pinText(t) + ", set_config('transaction_read_only', 'on', true)"})
			f.Send(&pgproto3.Bind{})
			f.Send(&pgproto3.Execute{})
			f.Send(&pgproto3.Parse{Query: read})
			f.Send(&pgproto3.Bind{Parameters: id(n)})
			f.Send(&pgproto3.Describe{ObjectType: 'P'})
			f.Send(&pgproto3.Execute{})
			f.Send(&pgproto3.Sync{})
			return 1
		}},
		{"prepared-pin", false, func(f *pgproto3.Frontend, p map[string]bool, t tenant, n int) int {
			bindPin(f, p, t)
			f.Send(&pgproto3.Parse{Query: read})
			f.Send(&pgproto3.Bind{Parameters: id(n)})
			f.Send(&pgproto3.Describe{ObjectType: 'P'})
			f.Send(&pgproto3.Execute{})
			f.Send(&pgproto3.Sync{})
			return 1
		}},
		{"cached", false, func(f *pgproto3.Frontend, p map[string]bool, t tenant, n int) int {
			// The read is prepared once per schema, under the tenant's
			// search_path (set by the pin), as the statement cache does.
			bindPin(f, p, t)
			name := "read_" + t.schema
			prepare(f, p, name, read)
			f.Send(&pgproto3.Bind{PreparedStatement: name, Parameters: id(n)})
			f.Send(&pgproto3.Describe{ObjectType: 'P'})
			f.Send(&pgproto3.Execute{})
			f.Send(&pgproto3.Sync{})
			return 1
		}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			url := e.url
			if v.owner {
				url = e.te.AdminURL
			}
			c, err := pgconn.Connect(ctx, url)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close(ctx)
			f, prepared := c.Frontend(), map[string]bool{}
			one := func() {
				want := v.send(f, prepared, ts[rand.IntN(len(ts))], 1+rand.IntN(items))
				if err := f.Flush(); err != nil {
					b.Fatal(err)
				}
				rows := 0
				for want > 0 {
					m, err := c.ReceiveMessage(ctx)
					if err != nil {
						b.Fatal(err)
					}
					switch m := m.(type) {
					case *pgproto3.ReadyForQuery:
						want--
					case *pgproto3.ErrorResponse:
						b.Fatalf("%s: %s (%s)", v.name, m.Message, m.Code)
					case *pgproto3.DataRow:
						if len(m.Values) == 5 {
							rows++
						}
					}
				}
				if rows != 1 {
					b.Fatalf("%s: %d item rows, want 1", v.name, rows)
				}
			}
			for range 2 * tenants { // every tenant's catalog entries and statements warm
				one()
			}
			cpu0 := backendTicks(b, c.PID())
			b.ResetTimer()
			for range b.N {
				one()
			}
			b.StopTimer()
			ticks := backendTicks(b, c.PID()) - cpu0
			b.ReportMetric(float64(ticks)*10000/float64(b.N), "backend-µs/op")
		})
	}
}

// backendTicks returns a process's utime+stime in clock ticks (10 ms).
func backendTicks(tb testing.TB, pid uint32) int64 {
	tb.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("/proc/%d/stat: %v %v", pid, err1, err2)
	}
	return utime + stime
}
