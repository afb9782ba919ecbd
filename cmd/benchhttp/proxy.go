package main

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
)

// counts are what the accounting proxy saw go by.
type counts struct {
	Conns      int64 // client connections accepted (new PostgreSQL sessions)
	RoundTrips int64 // client sends that followed a server answer, plus each session's first send
	Executes   int64 // extended-protocol Execute messages ('E')
	Queries    int64 // simple-protocol Query messages ('Q')
	SimpleStmt int64 // statements inside those Query messages
	Parses     int64 // Parse messages ('P'): statements PostgreSQL had to parse and plan afresh
}

// Statements is how many SQL statements PostgreSQL ran: one per Execute,
// plus every statement of a simple Query ("BEGIN; SELECT 1" is two).
func (c counts) Statements() int64 { return c.Executes + c.SimpleStmt }

func (c counts) sub(o counts) counts {
	return counts{c.Conns - o.Conns, c.RoundTrips - o.RoundTrips, c.Executes - o.Executes,
		c.Queries - o.Queries, c.SimpleStmt - o.SimpleStmt, c.Parses - o.Parses}
}

// countingProxy forwards loopback TCP connections to PostgreSQL and counts,
// from the client's side of the wire protocol, the round trips and the
// statements each connection makes. It is only used in a short accounting
// pass: the extra hop would distort the timed rounds.
type countingProxy struct {
	ln                                         net.Listener
	upstream                                   string
	conns, rts, execs, queries, simple, parses atomic.Int64
	wg                                         sync.WaitGroup
}

func startProxy(upstream string) (*countingProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &countingProxy{ln: ln, upstream: upstream}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *countingProxy) Addr() string { return p.ln.Addr().String() }

func (p *countingProxy) Counts() counts {
	return counts{p.conns.Load(), p.rts.Load(), p.execs.Load(), p.queries.Load(), p.simple.Load(), p.parses.Load()}
}

// Close stops accepting and waits for open connections to end (their
// clients close them when their servers stop).
func (p *countingProxy) Close() {
	p.ln.Close()
	p.wg.Wait()
}

func (p *countingProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *countingProxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer client.Close()
	server, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer server.Close()
	var turn turnTaker
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				turn.serverSent()
				if _, werr := client.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		client.Close()
	}()
	parser := msgParser{}
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if turn.clientSent() {
				p.rts.Add(1)
			}
			var c counts
			parser.feed(buf[:n], &c)
			p.execs.Add(c.Executes)
			p.queries.Add(c.Queries)
			p.simple.Add(c.SimpleStmt)
			p.parses.Add(c.Parses)
			if _, werr := server.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	server.Close()
	<-done
}

// turnTaker decides what a round trip is: the client sending after the
// server has answered (or for the first time). Several writes in a row
// without an answer in between, a pipeline, are one round trip.
type turnTaker struct {
	mu       sync.Mutex
	started  bool
	answered bool
}

func (t *turnTaker) serverSent() {
	t.mu.Lock()
	t.answered = true
	t.mu.Unlock()
}

// clientSent reports whether this send starts a new round trip.
func (t *turnTaker) clientSent() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	newTrip := !t.started || t.answered
	t.started, t.answered = true, false
	return newTrip
}

// Protocol codes of the untyped messages a session may start with
// (PostgreSQL protocol 3.0, "Message Formats").
const (
	codeSSLRequest    = 80877103
	codeGSSENCRequest = 80877104
)

// msgParser reads the client's half of the PostgreSQL wire protocol as it
// streams by in arbitrary pieces. Before the startup message, messages have
// no type byte (length, code); after it, a type byte and a length that
// counts itself but not the type.
type msgParser struct {
	started bool   // past the startup message
	hdr     []byte // partial header
	skip    int    // body bytes still to pass over
	typ     byte   // type of the message whose body is being read
	query   []byte // body of a 'Q' message being collected
}

func (m *msgParser) feed(b []byte, c *counts) {
	for len(b) > 0 {
		if m.skip > 0 {
			n := min(m.skip, len(b))
			if m.typ == 'Q' {
				m.query = append(m.query, b[:n]...)
			}
			m.skip -= n
			b = b[n:]
			if m.skip == 0 && m.typ == 'Q' {
				c.SimpleStmt += int64(countStatements(string(m.query)))
				m.query = m.query[:0]
			}
			continue
		}
		want := 5
		if !m.started {
			want = 8
		}
		n := min(want-len(m.hdr), len(b))
		m.hdr = append(m.hdr, b[:n]...)
		b = b[n:]
		if len(m.hdr) < want {
			return
		}
		if !m.started {
			length := int(binary.BigEndian.Uint32(m.hdr[:4]))
			code := binary.BigEndian.Uint32(m.hdr[4:8])
			if code != codeSSLRequest && code != codeGSSENCRequest {
				m.started = true // startup (or cancel) message
			}
			m.typ, m.skip = 0, max(0, length-8)
		} else {
			m.typ = m.hdr[0]
			m.skip = max(0, int(binary.BigEndian.Uint32(m.hdr[1:5]))-4)
			switch m.typ {
			case 'E':
				c.Executes++
			case 'P':
				c.Parses++
			case 'Q':
				c.Queries++
				if m.skip == 0 {
					m.typ = 0
				}
			}
		}
		m.hdr = m.hdr[:0]
	}
}

// countStatements counts the non-empty statements of a simple Query
// string: it splits on semicolons outside string literals ('...',
// E'...' with backslash escapes, $tag$...$tag$), quoted identifiers and
// comments (-- and nested /* */), as PostgreSQL's own lexer would. The
// trailing NUL of the message is ignored.
func countStatements(sql string) int {
	n := 0
	nonEmpty := false
	for i := 0; i < len(sql); {
		ch := sql[i]
		switch {
		case ch == ';':
			if nonEmpty {
				n++
			}
			nonEmpty = false
			i++
		case ch == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case ch == '/' && i+1 < len(sql) && sql[i+1] == '*':
			depth := 0
			for i < len(sql) {
				if sql[i] == '/' && i+1 < len(sql) && sql[i+1] == '*' {
					depth++
					i += 2
				} else if sql[i] == '*' && i+1 < len(sql) && sql[i+1] == '/' {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
		case ch == '\'':
			escapes := i > 0 && (sql[i-1] == 'E' || sql[i-1] == 'e') && (i < 2 || !isIdentChar(sql[i-2]))
			i = skipQuoted(sql, i, '\'', escapes)
			nonEmpty = true
		case ch == '"':
			i = skipQuoted(sql, i, '"', false)
			nonEmpty = true
		case ch == '$' && (i == 0 || !isIdentChar(sql[i-1])):
			if end, ok := dollarTag(sql, i); ok {
				tag := sql[i:end]
				j := indexFrom(sql, tag, end)
				if j < 0 {
					i = len(sql)
				} else {
					i = j + len(tag)
				}
			} else {
				i++
			}
			nonEmpty = true
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == 0:
			i++
		default:
			nonEmpty = true
			i++
		}
	}
	if nonEmpty {
		n++
	}
	return n
}

// skipQuoted returns the index just past the quote that closes the one at
// i; a doubled quote is an escaped quote, and with escapes a backslash
// escapes the next byte.
func skipQuoted(s string, i int, q byte, escapes bool) int {
	for i++; i < len(s); i++ {
		switch {
		case escapes && s[i] == '\\':
			i++
		case s[i] == q && i+1 < len(s) && s[i+1] == q:
			i++
		case s[i] == q:
			return i + 1
		}
	}
	return len(s)
}

// dollarTag reports whether a dollar-quote opener ($$ or $tag$) starts at
// i, and where it ends.
func dollarTag(s string, i int) (int, bool) {
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '$':
			return j + 1, true
		case isIdentChar(s[j]) && !(j == i+1 && s[j] >= '0' && s[j] <= '9'):
		default:
			return 0, false
		}
	}
	return 0, false
}

func isIdentChar(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b >= 0x80
}

func indexFrom(s, sub string, from int) int {
	for j := from; j+len(sub) <= len(s); j++ {
		if s[j:j+len(sub)] == sub {
			return j
		}
	}
	return -1
}
