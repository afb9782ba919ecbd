// Package faultproxy is a loopback TCP proxy that injects network faults
// between a client (the service) and a server (PostgreSQL) for the chaos
// tests: added latency, a black hole that stops forwarding while keeping
// sockets open, resets (RST) and cuts (FIN) of the current connections,
// refusal of new ones, and one-shot cuts triggered by what the client sends.
// It listens on 127.0.0.1 only: it is a test instrument, never a relay.
package faultproxy

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"time"
)

// Mode is how the proxy treats traffic from now on.
type Mode int

const (
	// Pass forwards bytes as they come.
	Pass Mode = iota
	// Latency delays every chunk by the configured latency, each direction.
	Latency
	// BlackHole stops forwarding in both directions and dials nothing for
	// new connections; sockets stay open, so a peer learns nothing until its
	// own deadline. Bytes held back are delivered when the mode returns to
	// Pass or Latency, as TCP would retransmit them after a partition heals.
	BlackHole
	// Refuse resets every new connection at once, like a closed port.
	Refuse
)

func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Latency:
		return "latency"
	case BlackHole:
		return "black hole"
	case Refuse:
		return "refuse"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// When says where a trigger cuts relative to the chunk that matched.
type When int

const (
	// Before drops the matching chunk and resets the connection: the
	// server never sees the statement.
	Before When = iota
	// After forwards the matching chunk, then resets the connection before
	// any answer reaches the client: the server may have acted, the
	// client cannot know.
	After
)

// Proxy forwards connections from its loopback listener to one target.
type Proxy struct {
	target string
	ln     net.Listener

	mu      sync.Mutex
	cond    *sync.Cond // signalled when mode changes or the proxy closes
	mode    Mode
	latency time.Duration
	conns   map[*pair]struct{}
	trigger *trigger
	closed  bool
	wg      sync.WaitGroup
	// Accepted counts connections accepted since the start.
	accepted int
}

type trigger struct {
	match []byte
	when  When
	fired chan struct{}
}

// pair is one proxied connection: the client's socket and the target's.
type pair struct {
	mu             sync.Mutex
	client, server net.Conn
	ended          bool
}

// New listens on a free port of 127.0.0.1 and forwards to target
// (host:port), which must be a loopback address too.
func New(target string) (*Proxy, error) {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("faultproxy: target %s is not a loopback address", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, ln: ln, conns: map[*pair]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's listening address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port is the proxy's listening port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// SetMode switches the mode for current and new connections.
func (p *Proxy) SetMode(m Mode) {
	p.mu.Lock()
	p.mode = m
	p.cond.Broadcast()
	p.mu.Unlock()
}

// SetLatency sets the delay of Latency mode and switches to it.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency, p.mode = d, Latency
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Reset sends RST on both sides of every current connection and returns how
// many it reset. New connections are served by the current mode.
func (p *Proxy) Reset() int { return p.endAll(true) }

// Cut closes both sides of every current connection in an orderly way (FIN)
// and returns how many it closed.
func (p *Proxy) Cut() int { return p.endAll(false) }

// Open returns the number of connections currently proxied.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Accepted returns the number of connections accepted so far.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// CutOn arms a one-shot trigger: the next client chunk that contains match
// (compared case-insensitively) resets its connection, Before or After the
// chunk is forwarded. The returned channel closes when it fires. Arming
// replaces a trigger that has not fired.
func (p *Proxy) CutOn(match string, when When) <-chan struct{} {
	t := &trigger{match: bytes.ToLower([]byte(match)), when: when, fired: make(chan struct{})}
	p.mu.Lock()
	p.trigger = t
	p.mu.Unlock()
	return t.fired
}

// Disarm removes a trigger that has not fired.
func (p *Proxy) Disarm() {
	p.mu.Lock()
	p.trigger = nil
	p.mu.Unlock()
}

// Close stops listening, resets every connection and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	err := p.ln.Close()
	p.endAll(true)
	p.wg.Wait()
	return err
}

func (p *Proxy) endAll(rst bool) int {
	p.mu.Lock()
	all := make([]*pair, 0, len(p.conns))
	for c := range p.conns {
		all = append(all, c)
	}
	p.mu.Unlock()
	for _, c := range all {
		c.end(rst)
		p.drop(c)
	}
	return len(all)
}

// end closes both sockets once; with rst, SO_LINGER 0 makes the close send
// RST instead of FIN.
func (c *pair) end(rst bool) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	socks := []net.Conn{c.client, c.server}
	c.mu.Unlock()
	for _, s := range socks {
		if s != nil {
			closeConn(s, rst)
		}
	}
}

// attach sets the target's socket, unless the pair ended while it was
// being dialled.
func (c *pair) attach(s net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	c.server = s
	return true
}

func closeConn(s net.Conn, rst bool) {
	if tc, ok := s.(*net.TCPConn); ok && rst {
		_ = tc.SetLinger(0)
	}
	_ = s.Close()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

// gate blocks while the proxy is black-holed and returns the latency to
// apply, or false when the proxy closed.
func (p *Proxy) gate(c *pair) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if _, live := p.conns[c]; !live || p.closed {
			return 0, false
		}
		if p.mode != BlackHole {
			break
		}
		p.cond.Wait()
	}
	if p.mode == Latency {
		return p.latency, true
	}
	return 0, true
}

func (p *Proxy) handle(client net.Conn) {
	defer p.wg.Done()
	c := &pair{client: client}
	p.mu.Lock()
	if p.closed || p.mode == Refuse {
		p.mu.Unlock()
		c.end(true)
		return
	}
	p.conns[c] = struct{}{}
	p.accepted++
	p.mu.Unlock()
	defer p.drop(c)
	// A black-holed path answers no SYN: hold the dial until it heals.
	if _, ok := p.gate(c); !ok {
		c.end(true)
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.end(true)
		return
	}
	if !c.attach(server) {
		// Reset or cut while dialling.
		closeConn(server, true)
		return
	}
	done := make(chan struct{}, 2)
	go func() { p.pipe(c, server, client, true); done <- struct{}{} }()
	go func() { p.pipe(c, client, server, false); done <- struct{}{} }()
	<-done
	c.end(false)
	<-done
}

func (p *Proxy) drop(c *pair) {
	p.mu.Lock()
	delete(p.conns, c)
	p.cond.Broadcast()
	p.mu.Unlock()
}

// pipe copies src to dst chunk by chunk, through the gate; fromClient
// chunks are checked against the armed trigger.
func (p *Proxy) pipe(c *pair, dst, src net.Conn, fromClient bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			delay, ok := p.gate(c)
			if !ok {
				return
			}
			if delay > 0 {
				time.Sleep(delay)
			}
			var fire *trigger
			if fromClient {
				fire = p.take(buf[:n])
			}
			// fired closes before the reset, so a client that sees the
			// reset can rely on the trigger having fired.
			if fire != nil && fire.when == Before {
				close(fire.fired)
				p.dropConn(c)
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			if fire != nil {
				close(fire.fired)
				p.dropConn(c)
				return
			}
		}
		if err != nil {
			// EOF or an error on either side ends the pair (handle
			// closes both): PostgreSQL's protocol has no half-close.
			return
		}
	}
}

// dropConn resets c and forgets it, so the gate releases its other pipe.
func (p *Proxy) dropConn(c *pair) {
	c.end(true)
	p.drop(c)
}

// take returns the armed trigger and disarms it if chunk matches it.
func (p *Proxy) take(chunk []byte) *trigger {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.trigger
	if t == nil || !bytes.Contains(bytes.ToLower(chunk), t.match) {
		return nil
	}
	p.trigger = nil
	return t
}
