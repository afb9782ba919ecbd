// Package pgtest gives tests a real PostgreSQL server and a fresh database
// per test. Run wires it into a package's TestMain; the server comes from,
// in order: TEST_DATABASE_URL; a dockertest container of TEST_POSTGRES_IMAGE
// (default postgres:15) when a Docker daemon answers; a throwaway local
// cluster made with the machine's PostgreSQL binaries (pglocal), removed at
// the end.
//
// Knobs, all read here because they only concern tests:
//   - CI or REQUIRE_DB: no server at all fails the run instead of skipping.
//   - REQUIRE_DOCKER: the server must come from Docker; no fallback.
//   - PGTEST_SERVER_LOG: a file that gets one line per test binary naming
//     the server it used, so CI can show and check it (go test hides the
//     output of passing packages).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
	"github.com/tenantry/tenantry/internal/pglocal"
)

// DefaultImage is the server image when TEST_POSTGRES_IMAGE is unset. Any
// image with the official image's interface will do (.ci/images.sh makes one
// from Debian's packages for machines without a registry).
const DefaultImage = "postgres:15"

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
	cleanup, server, err := provide()
	if err != nil {
		skipWhy = err.Error()
		if os.Getenv("CI") != "" || os.Getenv("REQUIRE_DB") != "" || os.Getenv("REQUIRE_DOCKER") != "" {
			recordServer("none: " + err.Error())
			log.Fatalf("pgtest: no PostgreSQL for the integration tests: %v", err)
		}
		log.Printf("pgtest: database tests and examples will skip: %v", err)
		server = "none (tests skip): " + err.Error()
		skipExamples()
	}
	log.Printf("pgtest: server: %s", server)
	recordServer(server)
	// Return rather than os.Exit: a TestMain may clean up more after Run,
	// and the testing package exits with m.Run's code when TestMain returns.
	defer cleanup()
	defer dropScratch()
	m.Run()
}

// provide returns the server's clean-up and a one-line description of it.
func provide() (func(), string, error) {
	noop := func() {}
	requireDocker := os.Getenv("REQUIRE_DOCKER") != ""
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		if requireDocker {
			return noop, "", errors.New("REQUIRE_DOCKER is set, but so is TEST_DATABASE_URL, which takes precedence; unset one")
		}
		adminURL = u
		return noop, "TEST_DATABASE_URL " + redact(u), nil
	}
	if testing.Short() {
		return noop, "", errors.New("-short")
	}
	image := os.Getenv("TEST_POSTGRES_IMAGE")
	if image == "" {
		image = DefaultImage
	}
	cleanup, server, err := fromDocker(image)
	if err == nil {
		return cleanup, server, nil
	}
	if requireDocker {
		return noop, "", fmt.Errorf("REQUIRE_DOCKER is set and the dockertest server failed: %w", err)
	}
	log.Printf("pgtest: no Docker server (%v); using a local cluster", err)
	return fromLocal()
}

// recordServer appends "<test binary's directory>\t<server>" to
// PGTEST_SERVER_LOG. Test binaries of several packages run at once; one
// short O_APPEND write per binary keeps their lines whole.
func recordServer(server string) {
	path := os.Getenv("PGTEST_SERVER_LOG")
	if path == "" {
		return
	}
	dir, _ := os.Getwd() // go test runs each test binary in its package's directory
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		log.Fatalf("pgtest: PGTEST_SERVER_LOG: %v", err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%s\t%s\n", dir, server); err != nil {
		log.Fatalf("pgtest: PGTEST_SERVER_LOG: %v", err)
	}
}

// Limits of the Docker path. A missing image is pulled at most this long;
// a started container gets startWait to accept connections: initdb plus
// the first start on a shared 2-core machine with Docker's vfs storage
// driver takes 5-15 s, so 90 s only ever runs out on a server that is stuck.
const (
	pullWait  = 5 * time.Minute
	startWait = 90 * time.Second
	// containerLabel marks the suite's containers, so a leftover (a test
	// binary killed before its clean-up) can be found with
	// `docker ps -a --filter label=tenantry.pgtest`.
	containerLabel = "tenantry.pgtest"
)

func fromDocker(image string) (func(), string, error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return nil, "", err
	}
	// NewPool does not contact the daemon; Ping does.
	if err := pool.Client.Ping(); err != nil {
		return nil, "", fmt.Errorf("no Docker daemon answers at %s: %w", pool.Client.Endpoint(), err)
	}
	repo, tag := splitImage(image)
	if err := ensureImage(pool, repo, tag); err != nil {
		return nil, "", err
	}
	const password = "secret" // a throwaway server published on loopback only
	res, err := pool.RunWithOptions(&dockertest.RunOptions{
		Repository: repo, Tag: tag,
		Env: []string{
			"POSTGRES_PASSWORD=" + password, "POSTGRES_USER=postgres", "POSTGRES_DB=postgres",
			"POSTGRES_INITDB_ARGS=--no-sync",
		},
		Cmd:          []string{"postgres", "-c", "fsync=off", "-c", "max_connections=200"},
		ExposedPorts: []string{"5432/tcp"},
		// Loopback only: Docker would otherwise publish on every address
		// of the host.
		PortBindings: map[docker.Port][]docker.PortBinding{"5432/tcp": {{HostIP: "127.0.0.1"}}},
		Labels:       map[string]string{containerLabel: "1"},
	}, func(hc *docker.HostConfig) {
		hc.AutoRemove = true
		hc.RestartPolicy = docker.RestartPolicy{Name: "no"}
	})
	if err != nil {
		return nil, "", fmt.Errorf("start a container of %s: %w", image, err)
	}
	// dockertest stops its containers with SIGWINCH, which PostgreSQL
	// ignores, so this kills the container after 30 minutes even if this
	// process died without its clean-up.
	_ = res.Expire(1800)
	// The container removes itself when it exits (AutoRemove), so follow its
	// log from the start: when it dies during start-up, the log says why.
	logs := &tailBuffer{}
	go func() {
		_ = pool.Client.Logs(docker.LogsOptions{
			Container: res.Container.ID, OutputStream: logs, ErrorStream: logs,
			Stdout: true, Stderr: true, Follow: true,
		})
	}()
	purge := func() { _ = pool.Purge(res) }
	hostPort := res.GetHostPort("5432/tcp")
	if hostPort == "" {
		purge()
		return nil, "", fmt.Errorf("container of %s publishes no 5432/tcp", image)
	}
	u := fmt.Sprintf("postgres://postgres:%s@%s/postgres?sslmode=disable", password, hostPort)
	version, err := waitReady(pool, res.Container.ID, u, logs)
	if err != nil {
		purge()
		return nil, "", fmt.Errorf("%s: %w", image, err)
	}
	adminURL = u
	id := res.Container.ID
	if len(id) > 12 {
		id = id[:12]
	}
	return purge, fmt.Sprintf("dockertest %s (container %s) at %s, PostgreSQL %s", image, id, hostPort, version), nil
}

// ensureImage pulls repo:tag unless the daemon has it, bounded by pullWait,
// so a machine without a registry says so at once instead of inside
// dockertest's unbounded pull.
func ensureImage(pool *dockertest.Pool, repo, tag string) error {
	if _, err := pool.Client.InspectImage(repo + ":" + tag); err == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), pullWait)
	defer cancel()
	log.Printf("pgtest: pulling %s:%s", repo, tag)
	err := pool.Client.PullImage(docker.PullImageOptions{
		Repository: repo, Tag: tag, Context: ctx, InactivityTimeout: time.Minute,
	}, docker.AuthConfiguration{})
	if err != nil {
		return fmt.Errorf("image %s:%s is not on this machine and pulling it failed (without a registry, make one with .ci/images.sh and set TEST_POSTGRES_IMAGE): %w", repo, tag, err)
	}
	return nil
}

// waitReady waits until the server at u answers and returns its version.
// It gives up at once on what waiting cannot cure: the container exited, or
// the server answered with an error that is not "still starting" (a refused
// password or a missing pg_hba.conf line for the bridge network would
// otherwise be retried until startWait ran out).
func waitReady(pool *dockertest.Pool, id, u string, logs *tailBuffer) (string, error) {
	deadline := time.Now().Add(startWait)
	for {
		c, err := pool.Client.InspectContainer(id)
		if err != nil || !c.State.Running {
			time.Sleep(200 * time.Millisecond) // let the log stream drain
			return "", fmt.Errorf("container exited before accepting connections; its log:\n%s", logs)
		}
		version, err := serverVersion(u)
		if err == nil {
			return version, nil
		}
		if !startingUp(err) {
			return "", fmt.Errorf("server refused the suite's connection (not a start-up error, so not retried): %w; its log:\n%s", err, logs)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no connection within %s: %w; its log:\n%s", startWait, err, logs)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// startingUp reports whether err is what a server that is still starting
// gives: no answer on the port yet, a connection cut during the image's
// socket-only init phase, or SQLSTATE 57P03 (cannot_connect_now).
func startingUp(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "57P03"
	}
	return true // network level: refused, reset, EOF, timeout
}

// tailBuffer keeps the last few KiB written to it; the log follower writes
// while waitReady reads.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 4 << 10 // enough for the lines before a failed start

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - tailMax; over > 0 {
		b.buf = b.buf[over:]
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) == 0 {
		return "(empty)"
	}
	return strings.TrimSpace(string(b.buf))
}

// splitImage splits "[registry[:port]/]repo[:tag]" into repo and tag
// (latest when none), as docker does: a colon after the last slash starts
// the tag.
func splitImage(image string) (repo, tag string) {
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i], image[i+1:]
	}
	return image, "latest"
}

// redact drops the password from a URL for the log.
func redact(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return pu.Redacted()
}

func fromLocal() (func(), string, error) {
	dir, err := os.MkdirTemp("", "tenantry-pgtest-")
	if err != nil {
		return func() {}, "", err
	}
	// The server may run as another user (postgres, when tests run as root),
	// which must be able to enter the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return func() {}, "", err
	}
	c, err := pglocal.Start(context.Background(), pglocal.Options{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return func() {}, "", err
	}
	adminURL = c.URL("postgres")
	version, err := serverVersion(adminURL)
	if err != nil {
		c.Stop()
		os.RemoveAll(dir)
		return func() {}, "", err
	}
	return func() { c.Stop(); os.RemoveAll(dir) },
		fmt.Sprintf("local cluster (pglocal) in %s on port %d, PostgreSQL %s", dir, c.Port, version), nil
}

// serverVersion connects to u and returns the server's version.
func serverVersion(u string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "", err
	}
	return v, nil
}

// NewDB creates an empty database for this test, drops it when the test
// ends, and returns its URL. It skips the test when no server is available.
func NewDB(tb testing.TB) string {
	tb.Helper()
	if adminURL == "" {
		tb.Skipf("no PostgreSQL: %s", skipWhy)
	}
	name := randomName("test_")
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

// randomName is prefix and 12 random hex digits: a database or role name
// that no other test, package or run on the same server picks.
func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
