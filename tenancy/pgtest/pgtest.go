// Package pgtest gives tests a real PostgreSQL server and a fresh database
// per test. Run wires it into a package's TestMain; the server comes from,
// in order: TEST_DATABASE_URL; a dockertest postgres container when a Docker
// daemon answers; a throwaway local cluster made with the machine's
// PostgreSQL binaries (pglocal), removed at the end.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
	"github.com/tenantry/tenantry/tenancy/pglocal"
)

var (
	adminURL string // a database URL with CREATEDB rights
	skipWhy  string // why DB tests skip, when no server could be had
)

// Run provides the server, runs the package's tests and tears the server
// down. Call it from TestMain. Without any server, DB tests skip locally but
// fail when CI or REQUIRE_DB is set, so a CI run can never pass vacuously.
func Run(m *testing.M) {
	if !flag.Parsed() {
		flag.Parse()
	}
	cleanup, err := provide()
	if err != nil {
		skipWhy = err.Error()
		if os.Getenv("CI") != "" || os.Getenv("REQUIRE_DB") != "" {
			log.Fatalf("pgtest: no PostgreSQL for the integration tests: %v", err)
		}
		log.Printf("pgtest: database tests will skip: %v", err)
	}
	defer cleanup()
	m.Run()
}

func provide() (func(), error) {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		adminURL = u
		return func() {}, nil
	}
	if testing.Short() {
		return func() {}, fmt.Errorf("-short")
	}
	if cleanup, err := fromDocker(); err == nil {
		return cleanup, nil
	} else {
		log.Printf("pgtest: no Docker (%v); using a local cluster", err)
	}
	return fromLocal()
}

func fromDocker() (func(), error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return nil, err
	}
	// NewPool does not contact the daemon; Ping does.
	if err := pool.Client.Ping(); err != nil {
		return nil, err
	}
	res, err := pool.RunWithOptions(&dockertest.RunOptions{
		Repository: "postgres", Tag: "15",
		Env: []string{"POSTGRES_PASSWORD=secret", "POSTGRES_USER=postgres", "POSTGRES_DB=postgres"},
		Cmd: []string{"postgres", "-c", "fsync=off", "-c", "max_connections=200"},
	}, func(hc *docker.HostConfig) {
		hc.AutoRemove = true
		hc.RestartPolicy = docker.RestartPolicy{Name: "no"}
	})
	if err != nil {
		return nil, err
	}
	_ = res.Expire(1800) // the daemon kills it even if this process dies
	u := fmt.Sprintf("postgres://postgres:secret@%s/postgres?sslmode=disable", res.GetHostPort("5432/tcp"))
	pool.MaxWait = 2 * time.Minute
	if err := pool.Retry(func() error { return ping(u) }); err != nil {
		_ = pool.Purge(res)
		return nil, err
	}
	adminURL = u
	return func() { _ = pool.Purge(res) }, nil
}

func fromLocal() (func(), error) {
	dir, err := os.MkdirTemp("", "tenantry-pgtest-")
	if err != nil {
		return func() {}, err
	}
	// The server may run as another user (postgres, when tests run as root),
	// which must be able to enter the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return func() {}, err
	}
	c, err := pglocal.Start(context.Background(), pglocal.Options{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return func() {}, err
	}
	adminURL = c.URL("postgres")
	return func() { c.Stop(); os.RemoveAll(dir) }, nil
}

func ping(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx)
}

// NewDB creates an empty database for this test, drops it when the test
// ends, and returns its URL. It skips the test when no server is available.
func NewDB(tb testing.TB) string {
	tb.Helper()
	if adminURL == "" {
		tb.Skipf("no PostgreSQL: %s", skipWhy)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	exec(tb, ctx, `CREATE DATABASE "`+name+`"`)
	tb.Cleanup(func() { exec(tb, ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`) })
	return WithDatabase(adminURL, name)
}

// WithDatabase returns u pointed at database name.
func WithDatabase(u, name string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return u
	}
	pu.Path = "/" + name
	return pu.String()
}

func exec(tb testing.TB, ctx context.Context, sql string) {
	tb.Helper()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		tb.Fatalf("connect to test server: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil && !strings.Contains(err.Error(), "does not exist") {
		tb.Fatalf("%s: %v", sql, err)
	}
}
