// Package benchkit holds what the benchmark commands (cmd/benchhttp,
// cmd/scalebench) share: servers under test run as child processes, and a
// bounded worker pool for setup work.
package benchkit

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Server is an HTTP server under test, a child process of the benchmark.
type Server struct {
	Name    string
	Base    string // http://127.0.0.1:port
	LogPath string
	cmd     *exec.Cmd
	done    chan error
}

// FreeAddr returns a loopback address with a port free at the time of asking.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// StartServer starts bin with args and env (nothing inherited but PATH and
// HOME, so the caller's shell cannot change what is measured), its output
// in dir/<name>.log, and waits until GET /healthz on addr answers 200. The
// kernel kills the child if the benchmark dies.
func StartServer(ctx context.Context, dir, name, bin string, args, env []string, addr string) (*Server, error) {
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
	s := &Server{Name: name, Base: "http://" + addr, LogPath: logPath, cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(90 * time.Second)
	probe := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case err := <-s.done:
			s.done <- err
			return nil, fmt.Errorf("server %s exited during start-up (%v); log:\n%s", name, err, Tail(logPath))
		default:
		}
		if resp, err := probe.Get(s.Base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.Stop()
			return nil, fmt.Errorf("server %s not healthy after 90s; log:\n%s", name, Tail(logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PID is the child's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Exited reports, with its log's tail, a server that stopped by itself.
func (s *Server) Exited() error {
	select {
	case err := <-s.done:
		s.done <- err
		return fmt.Errorf("server %s exited (%v); log:\n%s", s.Name, err, Tail(s.LogPath))
	default:
		return nil
	}
}

// Stop asks for a graceful stop (SIGTERM) and kills after 30 s.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
	}
}

// Tail is the last 3,000 bytes of the file at path (a server's log), or
// what there is of it.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
