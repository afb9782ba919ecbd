package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
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

// mallocs reads go_memstats_mallocs_total (heap objects allocated since
// start) from the server's metrics.
func (s *server) mallocs(ctx context.Context) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.metricsURL, nil)
	if err != nil {
		return 0, err
	}
	if s.metricsToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.metricsToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: status %d (set -metrics-token or -metrics-addr?)", s.metricsURL, resp.StatusCode)
	}
	return metricValue(bufio.NewScanner(resp.Body), "go_memstats_mallocs_total")
}

// metricValue finds an unlabelled series' value in Prometheus text format.
func metricValue(sc *bufio.Scanner, name string) (float64, error) {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New(name + " not found in metrics")
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
