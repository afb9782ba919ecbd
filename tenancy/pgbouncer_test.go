package tenancy_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/internal/pgtest"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"gorm.io/gorm"
)

// startPgBouncer runs PgBouncer in transaction mode with one server
// connection in front of the database at dbURL and returns a URL through
// it. It skips without a pgbouncer binary, except in CI.
func startPgBouncer(t *testing.T, dbURL string) string {
	t.Helper()
	return startPgBouncerPool(t, dbURL, 1)
}

// startPgBouncerPool is startPgBouncer with servers server connections.
func startPgBouncerPool(t *testing.T, dbURL string, servers int) string {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		bin = "/usr/sbin/pgbouncer"
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("pgbouncer is not installed (.ci/run installs it)")
		}
		t.Skip("pgbouncer is not installed")
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "tenantry-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777) // PgBouncer refuses root, so it runs as postgres
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	pass, _ := u.User.Password()
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%s
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = 50
; pgx sends search_path (tenancy.Open) and PgBouncer 1.18 refuses it
ignore_startup_parameters = search_path
logfile = %s
`, u.Hostname(), u.Port(), port, filepath.Join(dir, "users.txt"), servers, filepath.Join(dir, "pgbouncer.log"))
	for name, body := range map[string]string{
		"pgbouncer.ini": ini,
		"users.txt":     fmt.Sprintf("%q %q\n", u.User.Username(), pass),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("no postgres user to run pgbouncer as")
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	through := *u
	through.Host = fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		c, err := pgx.Connect(context.Background(), through.String())
		if err == nil {
			c.Close(context.Background())
			return through.String()
		}
		if i > 100 {
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			t.Fatalf("pgbouncer did not come up: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Through a transaction-mode PgBouncer with a single server connection,
// every client transaction of every tenant lands on the same backend; the
// scope must still keep tenants apart and leave nothing behind, and the
// start-up check must notice that the pooler dropped the empty search_path
// until the database default restores it.
func TestIsolationThroughATransactionPooler(t *testing.T) {
	te := tenancytest.New(t, tenancy.DefaultPool)
	setup, direct := te.Admin, te.URL
	ctx := context.Background()
	dir := te.Directory()
	for _, n := range []string{"alpha", "beta"} {
		if _, err := dir.Onboard(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := setup.Exec(`SET LOCAL search_path = public; CREATE TABLE public.items (id bigint, name text, description text, created_at timestamptz, updated_at timestamptz);
		INSERT INTO public.items VALUES (1, 'CANARY', '', now(), now())`).Error; err != nil {
		t.Fatal(err)
	}
	// The remedy README gives: an empty default path in the database,
	// since the pooler drops the connection's own.
	var dbName string
	if err := setup.Raw("SELECT current_database()").Scan(&dbName).Error; err != nil {
		t.Fatal(err)
	}
	if err := setup.Exec(`ALTER DATABASE "` + dbName + `" SET search_path = ''`).Error; err != nil {
		t.Fatal(err)
	}
	bouncer := startPgBouncer(t, direct)

	// Without that remedy (another database), the start-up check notices.
	bare, err := tenancy.Open(ctx, pgtest.WithDatabase(bouncer, pgtestDBName(t, pgtest.NewDB(t))), tenancy.DefaultPool)
	if err != nil {
		t.Fatal(err)
	}
	warnings, err := tenancy.RoleWarnings(ctx, bare)
	if s, err := bare.DB(); err == nil {
		s.Close()
	}
	if err != nil || !containsText(warnings, "connections start with search_path") {
		t.Fatalf("through the pooler the empty search_path is lost, but RoleWarnings said %q (%v)", warnings, err)
	}

	// The statement cache on, as DefaultPool has it: its names meet the
	// pooler's shared server connection too.
	db, err := tenancy.Open(ctx, bouncer, tenancy.PoolConfig{MaxOpen: 6, MaxIdle: 6, StatementCache: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	}()
	if w, err := tenancy.RoleWarnings(ctx, db); err != nil || containsText(w, "search_path") {
		t.Fatalf("with the database default, RoleWarnings said %q (%v)", w, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				name := []string{"alpha", "beta"}[(w+i)%2]
				ten, err := tenancy.NewDirectory(db, tenancy.WithTTL(0)).Active(ctx, name)
				if err != nil {
					errs <- err
					return
				}
				err = tenancy.WithTx(ctx, ten, func(tx *gorm.DB) error {
					if _, err := models.CreateItem(tx, models.ItemInput{Name: name}); err != nil {
						return err
					}
					items, err := models.ListItems(tx, 1000, 0)
					for _, it := range items {
						if it.Name != name {
							return fmt.Errorf("%s saw %q", name, it.Name)
						}
					}
					return err
				})
				if err != nil {
					errs <- err
				}
				// A ReadOnce scope's prepared pin meets server
				// connections that lack it or already hold it: it is
				// sent again unnamed, never refused.
				err = tenancy.ReadOnce(ctx, ten, func(tx *gorm.DB) error {
					items, err := models.ListItems(tx, 1000, 0)
					if err == nil && len(items) == 0 {
						err = fmt.Errorf("%s: ReadOnce saw no items", name)
					}
					for _, it := range items {
						if it.Name != name {
							return fmt.Errorf("%s saw %q in a ReadOnce scope", name, it.Name)
						}
					}
					return err
				})
				if err != nil {
					errs <- err
				}
				if i%5 == 0 { // a failing scope on the shared backend
					err := tenancy.WithTx(ctx, ten, func(tx *gorm.DB) error { return tx.Exec("SELECT * FROM nope").Error })
					if err == nil {
						errs <- fmt.Errorf("%s: a query of a missing table succeeded", name)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var sp string
	if err := db.Raw("SHOW search_path").Scan(&sp).Error; err != nil || sp != `""` {
		t.Fatalf("outside a scope, through the pooler: search_path %q, %v", sp, err)
	}
	if err := db.Raw("SELECT count(*) FROM items").Scan(new(int)).Error; err == nil {
		t.Fatal("an unscoped query through the pooler found an items table")
	}
}

func pgtestDBName(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(pu.Path, "/")
}

func containsText(ss []string, sub string) bool {
	for _, s := range ss {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// Behind a transaction-mode pooler, one client connection's transactions
// land on several server connections, and several client connections share
// each. A statement the cache named on one client connection must never be
// bound to another statement of the same name that another client
// connection prepared on the server: here a WithTx scope's cached SELECT,
// sent again on the server where another pool had named its DELETE alike,
// must still read, and delete nothing.
func TestCachedStatementsThroughAPoolerRunTheirOwnSQL(t *testing.T) {
	te := tenancytest.New(t, tenancy.DefaultPool)
	ctx := context.Background()
	if _, err := te.Directory().Onboard(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	tenancytest.CreateItem(t, te.Directory(), "alpha", "keep")
	tenancytest.CreateItem(t, te.Directory(), "alpha", "fodder")
	var dbName string
	if err := te.Admin.Raw("SELECT current_database()").Scan(&dbName).Error; err != nil {
		t.Fatal(err)
	}
	if err := te.Admin.Exec(`ALTER DATABASE "` + dbName + `" SET search_path = ''`).Error; err != nil {
		t.Fatal(err)
	}
	bouncer := startPgBouncerPool(t, te.URL, 2)
	resolve := func() tenancy.Resolved {
		db, err := tenancy.Open(ctx, bouncer, tenancy.PoolConfig{MaxOpen: 1, MaxIdle: 1, StatementCache: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if s, err := db.DB(); err == nil {
				s.Close()
			}
		})
		r, err := tenancy.NewDirectory(db, tenancy.WithTTL(0)).Active(ctx, "alpha")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r1, r2 := resolve(), resolve()
	// hold keeps one server connection busy in a transaction of its own,
	// so the pooler hands the next transaction the other one.
	hold := func() (release func()) {
		c, err := pgx.Connect(ctx, bouncer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		return func() {
			if _, err := c.Exec(ctx, "COMMIT"); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	scan := func(r tenancy.Resolved, sql string, id int64) string {
		var name string
		if err := tenancy.WithTx(ctx, r, func(tx *gorm.DB) error {
			return tx.Raw(sql, id).Scan(&name).Error
		}); err != nil {
			t.Fatal(err)
		}
		return name
	}
	const (
		read = "SELECT name FROM items WHERE id = $1"
		del  = "DELETE FROM items WHERE id = $1 RETURNING name"
	)
	releaseA := hold()                            // server A busy
	if got := scan(r2, del, 2); got != "fodder" { // on server B: the DELETE, named
		t.Fatalf("delete returned %q", got)
	}
	releaseB := hold() // server B busy
	releaseA()
	if got := scan(r1, read, 1); got != "keep" { // on server A: the SELECT, named
		t.Fatalf("first read returned %q", got)
	}
	releaseA = hold() // server A busy
	releaseB()
	got := scan(r1, read, 1) // on server B
	releaseA()
	var left int64
	if err := te.Admin.Raw(`SELECT count(*) FROM "` + r1.Row().SchemaName + `".items WHERE id = 1`).Scan(&left).Error; err != nil {
		t.Fatal(err)
	}
	if left != 1 || got != "keep" {
		t.Fatalf("the second read returned %q and left %d rows of id 1: it ran another connection's statement", got, left)
	}
}
