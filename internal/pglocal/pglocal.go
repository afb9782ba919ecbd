// Package pglocal runs a throwaway PostgreSQL server from the machine's
// PostgreSQL binaries: initdb into a directory, then the postmaster as a
// child process on a loopback port. The test suite uses it when neither
// TEST_DATABASE_URL nor a Docker daemon is there, and `tenantry dev` uses it
// for the local development database.
package pglocal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options configure a cluster.
type Options struct {
	// Dir holds the cluster (Dir/data) and its log (Dir/postgres.log). When
	// Dir/data exists already it is started as it is.
	Dir string
	// Port to listen on at 127.0.0.1; 0 picks a free one.
	Port int
	// Durable keeps fsync on. Tests turn it off for speed; benchmarks and
	// the development server keep it.
	Durable bool
	// Logical sets wal_level=logical, which publishing for logical
	// replication (a tenant move's source) needs.
	Logical bool
	// Settings are extra server settings ("name=value"), applied after
	// the defaults here, which they override.
	Settings []string
}

// Cluster is a running server.
type Cluster struct {
	Dir  string
	Port int
	cmd  *exec.Cmd
	// done is closed once the postmaster exited, with exit its status:
	// closed rather than sent on, so Stop may be called twice (a test that
	// stops a server to see it down, then its clean-up).
	done chan struct{}
	exit error
}

// User is the superuser of clusters made here; authentication is trust on
// loopback only.
const User = "postgres"

// BinDir finds the PostgreSQL server binaries: $PG_BINDIR, else the newest
// /usr/lib/postgresql/*/bin (Debian), else the directory of initdb on PATH.
func BinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("pglocal: no PostgreSQL server binaries (initdb) found; install postgresql or set PG_BINDIR")
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start initialises the cluster if needed and starts it, waiting until it
// accepts connections. The postmaster is a child that the kernel stops when
// this process dies, so a crashed test run leaves no server behind.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	data := filepath.Join(o.Dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if err := os.MkdirAll(data, 0o700); err != nil {
			return nil, err
		}
		if err := chown(o.Dir, cred); err != nil {
			return nil, err
		}
		if err := chown(data, cred); err != nil {
			return nil, err
		}
		initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", User,
			"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
		initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := initdb.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("pglocal: initdb in %s: %w\n%s%s", data, err, out, accessHint(cred))
		}
	}
	port := o.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	args := []string{"-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "max_connections=200", "-c", "shared_buffers=128MB"}
	if o.Logical {
		args = append(args, "-c", "wal_level=logical")
	}
	if !o.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	for _, s := range o.Settings {
		args = append(args, "-c", s)
	}
	logf, err := os.OpenFile(filepath.Join(o.Dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("pglocal: start postgres: %w", err)
	}
	c := &Cluster{Dir: o.Dir, Port: port, cmd: cmd, done: make(chan struct{})}
	go func() { c.exit = cmd.Wait(); logf.Close(); close(c.done) }()
	if err := c.wait(ctx, 60*time.Second); err != nil {
		c.Stop()
		return nil, fmt.Errorf("%w (log: %s)", err, filepath.Join(o.Dir, "postgres.log"))
	}
	return c, nil
}

// URL returns a connection URL for database db as the superuser.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", User, c.Port, db)
}

func (c *Cluster) wait(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-c.done:
			return fmt.Errorf("pglocal: postgres exited during start-up: %v", c.exit)
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, c.URL("postgres"))
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("pglocal: postgres not ready after %s: %w", limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down (fast mode: open sessions are ended) and waits
// for it to exit. The wait allows for the shutdown checkpoint, which syncs
// every file the server wrote: 50 s for a cluster of 10,000 tenants (40,000
// files) on a busy machine.
func (c *Cluster) Stop() error {
	if c.cmd.Process == nil {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
		return nil
	case <-time.After(3 * time.Minute):
		_ = c.cmd.Process.Kill()
		<-c.done
		return errors.New("pglocal: postgres did not stop in 3 min; killed")
	}
}

// credential returns the user to run PostgreSQL as: initdb and postgres
// refuse to run as root, so root hands them to the postgres user.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pglocal: running as root needs a postgres user to run the server as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func chown(path string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	return os.Chown(path, int(cred.Uid), int(cred.Gid))
}

func accessHint(cred *syscall.Credential) string {
	if cred == nil {
		return ""
	}
	return "\n(the server runs as the postgres user, which needs to traverse every parent directory)"
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
