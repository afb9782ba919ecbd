package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one HTTP server under test, a child process of the benchmark.
type server struct {
	name         string // "a", "b", ... ("a-acct" for an accounting instance)
	base         string // http://127.0.0.1:port
	metricsURL   string
	metricsToken string
	logPath      string
	cmd          *exec.Cmd
	done         chan error
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
// HOME, so the caller's shell cannot change what is measured), its output
// in dir/<name>.log, and waits until GET /healthz answers 200. The kernel
// kills the child if the benchmark dies.
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
	s.metricsURL = s.base + "/metrics"
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
		resp, err := probe.Get(s.base + "/healthz")
		if err == nil {
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

func (s *server) pid() int { return s.cmd.Process.Pid }

// exited reports, with its log's tail, a server that stopped by itself.
func (s *server) exited() error {
	select {
	case err := <-s.done:
		s.done <- err
		return fmt.Errorf("server %s exited (%v); log:\n%s", s.name, err, tail(s.logPath))
	default:
		return nil
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

// poolCloseSeries are database/sql's counts of connections its pool closed
// by itself (prometheus' DBStatsCollector, which tenantry and baselines (b)
// and (d) export): under steady load each such close is followed by a new
// PostgreSQL session, a fork and a cold catalog cache.
var poolCloseSeries = []string{"go_sql_max_idle_closed_total", "go_sql_max_idle_time_closed_total", "go_sql_max_lifetime_closed_total"}

// scrapeResult holds the counters read from a server's metrics.
type scrapeResult struct {
	mallocs    float64 // go_memstats_mallocs_total: heap objects allocated since start
	poolCloses float64 // sum of poolCloseSeries; NaN when the server exports none
}

// scrape reads the server's metrics.
func (s *server) scrape(ctx context.Context) (scrapeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.metricsURL, nil)
	if err != nil {
		return scrapeResult{}, err
	}
	if s.metricsToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.metricsToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return scrapeResult{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return scrapeResult{}, fmt.Errorf("%s: status %d (set -metrics-token or -metrics-addr?)", s.metricsURL, resp.StatusCode)
	}
	m, err := parseMetrics(bufio.NewScanner(resp.Body))
	if err != nil {
		return scrapeResult{}, err
	}
	r := scrapeResult{poolCloses: math.NaN()}
	var ok bool
	if r.mallocs, ok = m["go_memstats_mallocs_total"]; !ok {
		return scrapeResult{}, errors.New("go_memstats_mallocs_total not found in " + s.metricsURL)
	}
	for _, name := range poolCloseSeries {
		if v, ok := m[name]; ok {
			if math.IsNaN(r.poolCloses) {
				r.poolCloses = 0
			}
			r.poolCloses += v
		}
	}
	return r, nil
}

// parseMetrics reads Prometheus text format into the sum of each metric's
// samples over their labels.
func parseMetrics(sc *bufio.Scanner) (map[string]float64, error) {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	m := map[string]float64{}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '{'); i >= 0 && i < len(name) {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("malformed sample %q", line)
			}
			name, rest = line[:i], line[j+1:]
		}
		f := strings.Fields(rest) // value, then an optional timestamp
		if len(f) == 0 {
			return nil, fmt.Errorf("sample without a value %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("sample %q: %w", line, err)
		}
		m[name] += v
	}
	return m, sc.Err()
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
