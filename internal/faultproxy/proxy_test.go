package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// echo is a loopback line-echo server that records every line it received.
type echo struct {
	ln   net.Listener
	mu   sync.Mutex
	got  []string
	wg   sync.WaitGroup
	conn []net.Conn
}

func newEcho(t *testing.T) *echo {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echo{ln: ln}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.conn = append(e.conn, c)
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					e.mu.Lock()
					e.got = append(e.got, strings.TrimSpace(line))
					e.mu.Unlock()
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		e.mu.Lock()
		for _, c := range e.conn {
			c.Close()
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
	return e
}

func (e *echo) received() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.got...)
}

func setup(t *testing.T) (*echo, *Proxy) {
	t.Helper()
	e := newEcho(t)
	p, err := New(e.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return e, p
}

func dial(t *testing.T, p *Proxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip sends line and waits up to limit for its echo.
func roundTrip(c net.Conn, r *bufio.Reader, line string, limit time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(limit))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	got, err := r.ReadString('\n')
	return strings.TrimSpace(got), err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestPassForwardsBothWays(t *testing.T) {
	_, p := setup(t)
	c, r := dial(t, p)
	if got, err := roundTrip(c, r, "hello", 2*time.Second); err != nil || got != "hello" {
		t.Fatalf("echo = %q, %v; want hello", got, err)
	}
}

func TestLatencyDelaysEachDirection(t *testing.T) {
	_, p := setup(t)
	p.SetLatency(100 * time.Millisecond)
	c, r := dial(t, p)
	start := time.Now()
	if got, err := roundTrip(c, r, "slow", 5*time.Second); err != nil || got != "slow" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	// One delay each way: a lower bound only, the machine may be slower.
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("round trip took %s, want at least 200ms", el)
	}
}

func TestBlackHoleHoldsBytesUntilPass(t *testing.T) {
	e, p := setup(t)
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "before", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.SetMode(BlackHole)
	if _, err := roundTrip(c, r, "held", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("during the black hole: %v, want a timeout", err)
	}
	if got := e.received(); len(got) != 1 {
		t.Fatalf("server received %v during the black hole", got)
	}
	// A connection opened during the black hole is accepted but not served.
	c2, r2 := dial(t, p)
	if _, err := roundTrip(c2, r2, "new", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("new connection during the black hole: %v, want a timeout", err)
	}
	p.SetMode(Pass)
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || strings.TrimSpace(got) != "held" {
		t.Fatalf("after return: %q, %v; want the held line", got, err)
	}
	_ = c2.SetDeadline(time.Now().Add(2 * time.Second))
	if got, err := r2.ReadString('\n'); err != nil || strings.TrimSpace(got) != "new" {
		t.Fatalf("new connection after return: %q, %v", got, err)
	}
}

func TestResetSendsRST(t *testing.T) {
	_, p := setup(t)
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "x", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := p.Reset(); n != 1 {
		t.Fatalf("Reset ended %d connections, want 1", n)
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	_, err := r.ReadString('\n')
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after reset: %v, want ECONNRESET", err)
	}
	if p.Open() != 0 {
		t.Fatalf("%d connections open after reset", p.Open())
	}
	// The proxy still serves new connections.
	c2, r2 := dial(t, p)
	if got, err := roundTrip(c2, r2, "again", 2*time.Second); err != nil || got != "again" {
		t.Fatalf("after reset: %q, %v", got, err)
	}
}

func TestCutClosesWithFIN(t *testing.T) {
	_, p := setup(t)
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "x", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Fatalf("read after cut: %v, want EOF", err)
	}
}

func TestRefuseResetsNewConnections(t *testing.T) {
	_, p := setup(t)
	p.SetMode(Refuse)
	// The reset may come at the dial or at the first exchange.
	c, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second)
	if err == nil {
		defer c.Close()
		_, err = roundTrip(c, bufio.NewReader(c), "x", 2*time.Second)
	}
	if err == nil || isTimeout(err) {
		t.Fatalf("refused connection answered: %v", err)
	}
}

func TestCutOnBeforeAndAfter(t *testing.T) {
	e, p := setup(t)
	c, r := dial(t, p)
	fired := p.CutOn("COMMIT", Before)
	if _, err := roundTrip(c, r, "please commit", 2*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("Before: %v, want a reset", err)
	}
	<-fired
	for _, l := range e.received() {
		if strings.Contains(l, "commit") {
			t.Fatalf("Before: the server received %q", l)
		}
	}
	c2, r2 := dial(t, p)
	fired = p.CutOn("commit", After)
	if _, err := roundTrip(c2, r2, "now COMMIT", 2*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("After: %v, want a reset", err)
	}
	<-fired
	deadline := time.Now().Add(2 * time.Second)
	for !contains(e.received(), "now COMMIT") {
		if time.Now().After(deadline) {
			t.Fatalf("After: the server never received the line; got %v", e.received())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestTargetMustBeLoopback(t *testing.T) {
	if _, err := New("192.0.2.1:5432"); err == nil {
		t.Fatal("a non-loopback target was accepted")
	}
}
