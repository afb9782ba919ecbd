package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// server is a `tenantry serve` child process.
type server struct {
	name, base, logPath string
	cmd                 *exec.Cmd
	done                chan error
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startServer starts bin with args and env (nothing inherited but PATH and
// HOME), its output in dir/<name>.log, and waits until GET /healthz
// answers 200. The kernel kills the child if the benchmark dies.
func startServer(ctx context.Context, dir, name, bin string, args, env []string, addr string) (*server, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, base: "http://" + addr, logPath: logPath, cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(90 * time.Second)
	probe := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case err := <-s.done:
			s.done <- err
			return nil, fmt.Errorf("server %s exited during start-up (%v); log:\n%s", name, err, tail(logPath))
		default:
		}
		if resp, err := probe.Get(s.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.stop()
			return nil, fmt.Errorf("server %s not healthy after 90s; log:\n%s", name, tail(logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop asks for a graceful stop (SIGTERM) and kills after 30 s.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// memPoint is the private memory of one pool's backends.
type memPoint struct {
	Backends int     `json:"backends"`
	MaxMB    float64 `json:"max_mb"`
	MedianMB float64 `json:"median_mb"`
	SumMB    float64 `json:"sum_mb"`
}

// backendMemory reads RssAnon, the private resident memory (palloc'd
// catalog caches live there; shared buffers do not), of every backend
// whose application_name is app, from /proc/<pid>/status.
func backendMemory(ctx context.Context, conn *pgx.Conn, app string) (memPoint, error) {
	rows, err := conn.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1", app)
	if err != nil {
		return memPoint{}, err
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return memPoint{}, err
	}
	var mbs []float64
	for _, pid := range pids {
		kb, err := rssAnon(int(pid))
		if err != nil {
			continue // ended meanwhile (recycled)
		}
		mbs = append(mbs, float64(kb)/1024)
	}
	if len(mbs) == 0 {
		return memPoint{}, fmt.Errorf("%s: %w", app, errNoBackends)
	}
	slices.Sort(mbs)
	m := memPoint{Backends: len(mbs), MaxMB: mbs[len(mbs)-1], MedianMB: mbs[len(mbs)/2]}
	for _, v := range mbs {
		m.SumMB += v
	}
	return m, nil
}

func rssAnon(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("pid %d: no RssAnon", pid)
}

func closeDB(db *gorm.DB) {
	if s, err := db.DB(); err == nil {
		s.Close()
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
