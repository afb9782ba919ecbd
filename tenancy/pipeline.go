package tenancy

import (
	"context"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// A scope's BEGIN and pin travel with its first statement.
//
// pgx waits for each reply before it sends the next statement, and
// database/sql gives a driver no way to send two at once, so a scoped read
// took three round trips: BEGIN with the pin, the query, COMMIT. On a
// loopback connection each round trip costs both processes a system call
// and a wake-up, about as much CPU as the query itself. So a pinned
// connection defers its BEGIN: BeginTx only arms the connection, and the
// simple-protocol Query message "BEGIN; SELECT set_config(...)..." goes out
// in the same write as the bytes pgx sends for the scope's first statement,
// whatever they are. A read is then two round trips: the statement, and
// COMMIT.
//
// Nothing about the pin changes. PostgreSQL handles the messages in order:
// the BEGIN and the pin complete before the statement is even parsed, so
// its names resolve in the tenant schema alone, under the tenant's role,
// within the limits, exactly as if it had been sent after their reply, and
// the transaction still never exists unpinned. A pin that fails aborts the
// transaction, and PostgreSQL refuses the statement without running it
// (25P02, current transaction is aborted); pgx is handed the pin's own
// error in place of that one, so the scope fails closed with the error it
// always did.
//
// The replies pass through the same connection's reader: those to the
// BEGIN-and-pin message, up to and including its ReadyForQuery, are taken
// out of the stream, so pgx reads only the replies to what it sent, and its
// view of the protocol (transaction status included) stays exact. The hook
// is pgconn's BuildFrontend, which sees the bytes after any TLS. Every way
// database/sql reaches a pgx connection (Exec, Query, Prepare, the simple
// protocol) writes through it; pgconn's batch path writes to the socket
// directly, but nothing inside a scope can reach it.

// A tenant scope goes further when pgx's bytes for its first statement are
// extended-protocol messages ending in their Sync, as every pgx query's
// and every Exec's with arguments are. The pipe then puts extended
// messages in front of them, without a Sync of their own: the Bind and
// Execute of the prepared BEGIN (a WithTx scope) and of the prepared pin
// (pin.go), each with its Parse on a connection's first use. A ReadOnce
// scope sends no BEGIN: its transaction is the implicit one of the
// extended protocol, which lasts up to pgx's Sync, so it needs no COMMIT
// either, and nothing is left to read after the statement's own reply.
// Either way, a BEGIN or pin that fails makes PostgreSQL skip everything
// up to the Sync, so the statement never runs and the failure is the
// reply pgx reads for it. The replies to the messages put in front
// (ParseComplete, BindComplete, the pin's row, CommandComplete) are taken
// out of the stream. Other bytes (a simple Query, which would end the
// implicit transaction, or ignore a failed pin's Sync-less messages and
// hang) take the simple-protocol path above instead.
//
// A transaction-mode pooler between tenantry and PostgreSQL hands each
// transaction a server connection of its own choosing, so a statement
// prepared on one may be missing on the next (26000) or already there
// (42P05). Either error means nothing ran: the pipe sends the scope again
// at once with everything parsed unnamed (after a ROLLBACK of the
// explicit transaction a WithTx scope had begun), so the scope still
// succeeds, and a pool that sees maxPinMisses of them stops naming
// statements.

// namedStmts is what a pool's connections share about the statements they
// prepare: the pins, the BEGIN and the statement cache's.
type namedStmts struct {
	misses atomic.Int32
	// stmts is the size of each connection's statement cache
	// (stmtcache.go); 0 turns it off.
	stmts int
}

// maxPinMisses is how many refused named statements make a pool parse
// every statement per scope instead. One miss follows a DEALLOCATE ALL run by a scope's
// own SQL; a pooler makes them steadily, and three is past chance. Parsing
// costs about a fifth more backend CPU per scoped read (pin.go).
const maxPinMisses = 3

// named reports whether the pool still names its statements.
func (rp *namedStmts) named() bool { return rp != nil && rp.misses.Load() < maxPinMisses }

// pipe sits between pgx's protocol frontend and the connection.
type pipe struct {
	r io.Reader
	w io.Writer

	// pins is the pool's record of its prepared statements; prepRead,
	// prepWrite and prepBegin: this connection holds the read pin, the
	// pin and the BEGIN, as far as the pipe knows.
	pins                           *namedStmts
	prepRead, prepWrite, prepBegin bool

	// mu guards the fields below: pgconn closes a broken connection from
	// a goroutine of its own, whose farewell write may meet the scope's
	// end (settle) running in the request's goroutine.
	mu sync.Mutex

	// armed is the encoded BEGIN-and-pin Query message that goes out with
	// the next write; nil when nothing is deferred.
	armed []byte
	// req is the scope whose pin is armed or awaiting its replies.
	req *pinRequest
	// suffix is the COMMIT of a ReadOnce scope, to go out right behind its
	// statement; sealed: it went out, and nothing more may be written
	// until the scope ends.
	suffix []byte
	sealed bool
	// skipping: the messages being read answer the BEGIN and pin.
	skipping bool
	// pinErr is the ErrorResponse the pin drew, held until pgx reads the
	// error that it replaces.
	pinErr []byte

	// The reader's place in the stream of messages: a header (type and
	// length, 5 bytes) collects in hdr; then rem bytes of body follow, of
	// a message that is kept (passed to pgx), dropped or saved.
	hdr    [5]byte
	hdrN   int
	inBody bool
	rem    int
	mode   byte

	rbuf   []byte // bytes read while filtering
	out    []byte // filtered bytes waiting for pgx
	outOff int
	rerr   error // a read error held back until out is drained
	wbuf   []byte
	saving []byte

	// A scope on the extended protocol (see above): extPin, its BEGIN
	// and pin went out in front of pgx's statement, named or parsed
	// unnamed (named); implicit, a ReadOnce scope's, without BEGIN. The
	// replies to skip: skipC CommandCompletes, and a ParseComplete for
	// each of parses, whose flag it sets (nil for an unnamed Parse).
	// resend is pgx's bytes, kept to send again unnamed when a named
	// statement is refused (retrying: the refusal's replies are being
	// dropped; retried: it was sent again).
	extPin, implicit, named, retrying, retried bool
	skipC                                      int
	parses                                     []*bool
	resend                                     []byte
	// stmts is the connection's statement cache (stmtcache.go), nil when
	// off; stmt, the scope's statement as it named it, until pgx's
	// BindComplete shows the Bind of the named statement went through.
	stmts *stmtCache
	stmt  *stmtPlan
}

const (
	keep byte = iota
	drop
	save
)

// maxKeptBuffer bounds the write and read buffers a connection keeps
// between uses; larger ones (a big insert) are left to the collector.
const maxKeptBuffer = 64 << 10

// frontend is the connection's pgconn BuildFrontend.
func (p *pipe) frontend(r io.Reader, w io.Writer) *pgproto3.Frontend {
	*p = pipe{r: r, w: w, pins: p.pins}
	if p.pins != nil {
		p.stmts = newStmtCache(p.pins.stmts)
	}
	return pgproto3.NewFrontend(p, p)
}

// arm defers req's BEGIN and pin to the next write.
func (p *pipe) arm(req *pinRequest) error {
	msg, err := (&pgproto3.Query{String: req.begin()}).Encode(nil)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed, p.req, p.suffix = msg, req, nil
	if req.once {
		p.suffix = commitMsg
	}
	return nil
}

// commitMsg is the encoded Query message "COMMIT".
var commitMsg, _ = (&pgproto3.Query{String: "COMMIT"}).Encode(nil)

// settle forgets the scope when its transaction ends, whatever state the
// replies were in (a connection that died mid-reply is closed anyway).
func (p *pipe) settle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed, p.req, p.pinErr, p.skipping = nil, nil, nil, false
	p.suffix, p.sealed = nil, false
	p.extPin, p.implicit, p.named, p.retrying, p.retried = false, false, false, false, false
	p.skipC, p.parses = 0, p.parses[:0]
	if p.stmt != nil && !p.stmt.entry.ready {
		// The scope ended before its named Parse was answered (a
		// connection that died mid-reply): the statement may not exist.
		p.stmts.drop(p.stmt.entry, true)
	}
	p.stmt = nil
	if cap(p.resend) > maxKeptBuffer {
		p.resend = nil
	}
}

func (p *pipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	if p.armed == nil {
		sealed := p.sealed
		p.mu.Unlock()
		if sealed {
			// A ReadOnce scope's second statement: its COMMIT is
			// already on the wire, so this would run outside it.
			return 0, ErrReadOnce
		}
		return p.w.Write(b)
	}
	var buf []byte
	var prefix int
	if p.req.pin != nil && extendedWithSync(b) {
		p.named, p.implicit = p.pins.named(), p.req.once
		if p.named {
			p.stmt = p.stmts.plan(p.req.spec.Schema, b)
		}
		buf = p.stmts.appendCloses(p.wbuf[:0])
		buf = p.appendPrefix(buf, false)
		prefix = len(buf)
		if p.stmt != nil {
			buf = p.stmt.append(buf)
		} else {
			buf = append(buf, b...)
		}
		p.extPin, p.sealed = true, p.implicit
		p.resend = append(p.resend[:0], b...)
	} else {
		buf = append(append(p.wbuf[:0], p.armed...), b...)
		prefix = len(p.armed)
		buf = append(buf, p.suffix...)
		p.sealed = p.suffix != nil
	}
	p.armed, p.skipping, p.pinErr, p.wbuf, p.suffix = nil, true, nil, nil, nil
	p.mu.Unlock()
	n, err := p.w.Write(buf)
	if cap(buf) <= maxKeptBuffer {
		p.mu.Lock()
		p.wbuf = buf[:0]
		p.mu.Unlock()
	}
	if err == nil {
		return len(b), nil
	}
	return min(max(n-prefix, 0), len(b)), err
}

// executeMsg is the encoded Execute of the unnamed portal, all rows.
var executeMsg, _ = (&pgproto3.Execute{}).Encode(nil)

// extendedWithSync reports whether b is whole extended-protocol messages
// (Parse, Bind, Describe, Execute, Close) ending in their one Sync: a
// statement PostgreSQL will skip whole, up to that Sync, when the pin in
// front of it fails, and answer with one ReadyForQuery. A second Sync
// (a pipelined batch) would end the transaction in the middle, and run
// what follows it unpinned; a simple Query would commit the implicit
// transaction, or be ignored after a failed pin and never answered.
func extendedWithSync(b []byte) bool {
	for len(b) >= 5 {
		n := int(binary.BigEndian.Uint32(b[1:5])) + 1
		if n < 5 || n > len(b) {
			return false
		}
		switch b[0] {
		case 'P', 'B', 'D', 'E', 'C':
		case 'S':
			return n == len(b)
		default:
			return false
		}
		b = b[n:]
	}
	return false
}

// appendPrefix appends what goes in front of a scope's first statement on
// the extended protocol: after a refusal, the ROLLBACK of a WithTx
// scope's transaction (retry); the BEGIN of a WithTx scope; the pin. Each
// is named as p.named says, with its Close and Parse when this connection
// does not hold it, or parsed unnamed. No Sync: the statement behind
// ends the message sequence. It sets skipC and parses to what answers it.
func (p *pipe) appendPrefix(buf []byte, retry bool) []byte {
	p.skipC, p.parses = 0, p.parses[:0]
	if retry && !p.implicit {
		buf = p.appendStmt(buf, "", "ROLLBACK", nil, nil, nil)
	}
	if !p.implicit {
		buf = p.appendStmt(buf, beginName, "BEGIN", &p.prepBegin, nil, beginBindMsg)
	}
	pin, flag := p.req.pin, &p.prepWrite
	if p.implicit {
		flag = &p.prepRead
	}
	return p.appendStmt(buf, pin.name, pin.sql, flag, pin.params, pin.named)
}

// appendStmt appends the Bind and Execute of one statement, after its Close
// and Parse when it is to be named but not yet prepared (flag false), or
// its unnamed Parse when the scope does not name statements. bind is its
// encoded Bind of the named statement.
func (p *pipe) appendStmt(buf []byte, name, sql string, flag *bool, params [][]byte, bind []byte) []byte {
	if !p.named || flag == nil {
		buf, _ = (&pgproto3.Parse{Query: sql}).Encode(buf)
		buf, _ = (&pgproto3.Bind{Parameters: params}).Encode(buf)
		p.parses = append(p.parses, nil)
	} else {
		if !*flag {
			// Closing a statement that does not exist is no error; one
			// that does (after a refusal) is replaced.
			buf, _ = (&pgproto3.Close{ObjectType: 'S', Name: name}).Encode(buf)
			buf, _ = (&pgproto3.Parse{Name: name, Query: sql}).Encode(buf)
			p.parses = append(p.parses, flag)
		}
		buf = append(buf, bind...)
	}
	p.skipC++
	return append(buf, executeMsg...)
}

// beginBindMsg is the encoded Bind of the prepared BEGIN.
var beginBindMsg, _ = (&pgproto3.Bind{PreparedStatement: beginName}).Encode(nil)

// state reports, under the lock, whether a deferred BEGIN is still armed,
// whether a ReadOnce scope's statement went out (sealed), and whether its
// transaction was the implicit one of the extended protocol (ext: nothing
// follows its reply).
func (p *pipe) state() (armed, sealed, ext bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.armed != nil, p.sealed, p.extPin && p.implicit
}

// disarmSuffix drops a ReadOnce scope's COMMIT before its statement went
// out (the scope commits the ordinary way).
func (p *pipe) disarmSuffix() {
	p.mu.Lock()
	p.suffix = nil
	p.mu.Unlock()
}

func (p *pipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.outOff < len(p.out) {
			n := copy(b, p.out[p.outOff:])
			p.outOff += n
			return n, nil
		}
		p.out, p.outOff = p.out[:0], 0
		if p.rerr != nil {
			err := p.rerr
			p.rerr = nil
			return 0, err
		}
		if !p.skipping && p.pinErr == nil && p.stmt == nil {
			// Nothing to take out: pgx reads straight into its buffer,
			// and the reader only keeps its place among the messages.
			p.mu.Unlock()
			n, err := p.r.Read(b)
			p.mu.Lock()
			p.track(b[:n])
			return n, err
		}
		if p.rbuf == nil {
			p.rbuf = make([]byte, 8192)
		}
		rbuf := p.rbuf
		p.mu.Unlock()
		n, err := p.r.Read(rbuf)
		p.mu.Lock()
		p.filter(rbuf[:n])
		if err != nil {
			if p.pinErr != nil {
				// The connection ended before pgx saw the pin's error
				// (a backend's farewell arrives as one): hand it over
				// first, so pgx reports what the server said.
				p.out = append(p.out, p.pinErr...)
				p.pinErr = nil
			}
			p.rerr = err
		}
	}
}

// track follows message boundaries in bytes passed through unfiltered.
func (p *pipe) track(b []byte) {
	for len(b) > 0 {
		if p.inBody {
			k := min(p.rem, len(b))
			b, p.rem = b[k:], p.rem-k
			if p.rem == 0 {
				p.inBody = false
			}
			continue
		}
		k := copy(p.hdr[p.hdrN:], b)
		b, p.hdrN = b[k:], p.hdrN+k
		if p.hdrN == len(p.hdr) {
			p.hdrN, p.inBody = 0, true
			p.rem = int(binary.BigEndian.Uint32(p.hdr[1:])) - 4
			p.mode = keep
			if p.rem <= 0 {
				p.inBody = false
			}
		}
	}
}

// filter appends to out the bytes of b that pgx is to read.
func (p *pipe) filter(b []byte) {
	for len(b) > 0 {
		if !p.inBody {
			k := copy(p.hdr[p.hdrN:], b)
			b, p.hdrN = b[k:], p.hdrN+k
			if p.hdrN < len(p.hdr) {
				return
			}
			p.hdrN, p.inBody = 0, true
			p.rem = int(binary.BigEndian.Uint32(p.hdr[1:])) - 4
			p.begin(p.hdr[0])
			if p.rem <= 0 {
				p.end()
			}
			continue
		}
		k := min(p.rem, len(b))
		switch p.mode {
		case keep:
			p.out = append(p.out, b[:k]...)
		case save:
			p.saving = append(p.saving, b[:k]...)
		}
		b, p.rem = b[k:], p.rem-k
		if p.rem == 0 {
			p.end()
		}
	}
}

// begin decides what becomes of the message whose header is in hdr.
func (p *pipe) begin(typ byte) {
	switch {
	case p.skipping && p.extPin && !p.retrying && typ == 'Z':
		// Not expected before the pin's CommandComplete; should it come,
		// it answers pgx's Sync, and pgx must have it.
		p.skipping = false
		p.mode = keep
	case p.skipping && (typ == 'S' || typ == 'N' || typ == 'A'):
		// ParameterStatus, notices and notifications may come at any
		// time; pgx keeps track of them.
		p.mode = keep
	case p.skipping && typ == 'E':
		p.mode = save
		p.saving = append(p.saving[:0], p.hdr[:]...)
	case p.skipping:
		p.mode = drop
	case p.stmt != nil && typ == '1':
		// The named statement's ParseComplete: pgx gets one with the
		// BindComplete below, whether the Parse went out or not.
		p.mode = drop
	case p.stmt != nil && typ == '2':
		p.out = append(p.out, parseCompleteMsg...)
		p.stmt = nil
		p.mode = keep
	case p.stmt != nil && typ == 'E':
		p.mode = save
		p.saving = append(p.saving[:0], p.hdr[:]...)
	case typ == 'E' && p.pinErr != nil:
		// The statement's error, which the failed pin caused: pgx
		// gets the pin's error in its place.
		p.out = append(p.out, p.pinErr...)
		p.pinErr = nil
		p.mode = drop
	default:
		p.mode = keep
	}
	if p.mode == keep {
		p.out = append(p.out, p.hdr[:]...)
	}
}

// end closes the message just read.
func (p *pipe) end() {
	p.inBody = false
	switch {
	case p.mode == save && p.stmt != nil && !p.skipping:
		p.namedFailed()
	case p.mode == save && p.extPin:
		p.prefixFailed()
	case p.mode == save:
		p.pinErr = append([]byte(nil), p.saving...)
		if p.req != nil && p.req.pinErr == nil {
			p.req.pinErr = decodeError(p.saving)
		}
	case p.skipping && p.extPin && p.retrying && p.hdr[0] == 'Z':
		p.sendAgain()
	case p.stmt != nil && !p.skipping && p.hdr[0] == '1':
		p.stmt.entry.ready = true
	case p.skipping && p.extPin && p.hdr[0] == '1':
		// A ParseComplete of the prefix: a named Parse made its statement.
		if len(p.parses) > 0 {
			if f := p.parses[0]; f != nil {
				*f = true
			}
			p.parses = p.parses[1:]
		}
	case p.skipping && p.extPin && p.hdr[0] == 'C':
		// When the pin's is done, what follows answers pgx's statement.
		if p.skipC--; p.skipC <= 0 {
			p.skipping = false
		}
	case p.skipping && !p.extPin && p.hdr[0] == 'Z':
		// ReadyForQuery: the BEGIN and pin are answered; what follows
		// answers pgx.
		p.skipping = false
	}
	if cap(p.saving) > maxKeptBuffer {
		p.saving = nil
	}
}

// decodeError returns the error of an encoded ErrorResponse message, or
// nil when it does not decode.
func decodeError(msg []byte) error {
	var e pgproto3.ErrorResponse
	if len(msg) < 5 || e.Decode(msg[5:]) != nil {
		return nil
	}
	return pgconn.ErrorResponseToPgError(&e)
}

// prefixFailed handles the ErrorResponse that the BEGIN or pin in front of
// pgx's statement drew, held in saving. PostgreSQL skips pgx's statement
// up to its Sync, so the error is the statement's reply: pgx gets it,
// unless a named statement was refused for being missing or already
// there, which the scope survives (sendAgain).
func (p *pipe) prefixFailed() {
	if p.retrying {
		return // PostgreSQL sends one error per Sync; nothing else comes
	}
	if p.stmt != nil {
		// PostgreSQL skipped the statement's named Parse with the rest.
		if !p.stmt.entry.ready {
			p.stmts.drop(p.stmt.entry, false)
		}
		p.stmt = nil
	}
	err := decodeError(p.saving)
	var pgErr *pgconn.PgError
	if p.named && !p.retried && errors.As(err, &pgErr) &&
		(pgErr.Code == "26000" || pgErr.Code == "42P05") {
		p.distrustNamed()
		p.retrying = true
		return
	}
	if p.req != nil && p.req.pinErr == nil {
		p.req.pinErr = err
	}
	p.out = append(p.out, p.saving...)
	p.skipping = false
}

// distrustNamed follows a refused name (26000: gone; 42P05: taken): the
// connection's statements are not what the pipe thinks. Which one was
// refused matters not: the pins and BEGIN are closed and parsed again at
// their next use, the statement cache starts over, and the pool counts a
// miss (maxPinMisses).
func (p *pipe) distrustNamed() {
	p.prepRead, p.prepWrite, p.prepBegin = false, false, false
	p.stmts.reset()
	p.pins.misses.Add(1)
}

// parseCompleteMsg is the encoded ParseComplete message.
var parseCompleteMsg, _ = (&pgproto3.ParseComplete{}).Encode(nil)

// namedFailed handles an ErrorResponse to the named statement (its Parse or
// Bind), held in saving. A statement whose plan no longer fits its table
// (0A000), that is gone (26000) or whose name is taken (42P05) is dropped
// from the cache, and the scope goes again with pgx's own unnamed
// statement: nothing ran. Any other error is pgx's.
func (p *pipe) namedFailed() {
	e := p.stmt.entry
	p.stmt = nil
	var pgErr *pgconn.PgError
	if err := decodeError(p.saving); !p.retried && errors.As(err, &pgErr) &&
		(pgErr.Code == "0A000" || pgErr.Code == "26000" || pgErr.Code == "42P05") {
		if pgErr.Code == "0A000" {
			p.stmts.drop(e, true)
		} else {
			p.distrustNamed()
		}
		p.retrying, p.skipping = true, true
		return
	}
	if !e.ready {
		p.stmts.drop(e, false) // its Parse failed: nothing was made
	}
	p.out = append(p.out, p.saving...)
}

// sendAgain sends the scope once more with everything parsed unnamed, at
// the ReadyForQuery that ended the refused attempt, in which nothing ran
// (a WithTx scope's transaction, aborted, is rolled back first). A write
// that fails fails pgx's read.
func (p *pipe) sendAgain() {
	p.retrying, p.retried, p.named = false, true, false
	buf := p.stmts.appendCloses(nil)
	buf = p.appendPrefix(buf, true)
	buf = append(buf, p.resend...)
	if _, err := p.w.Write(buf); err != nil && p.rerr == nil {
		p.rerr = err
	}
}

// beginDeferred begins a pinned transaction without a round trip: the
// connection is armed, and the BEGIN and pin go out with the first
// statement. A connection found dead here is refused with
// driver.ErrBadConn, so database/sql retries the BEGIN on another one, as
// it did when the BEGIN was sent at once (beginFailed).
func (c *pinConn) beginDeferred(ctx context.Context, req *pinRequest) (driver.Tx, error) {
	pc := c.Conn.Conn()
	if pc.IsClosed() || pc.PgConn().TxStatus() != 'I' || !c.live.idleAlive(pc.PgConn().Conn()) {
		return nil, driver.ErrBadConn
	}
	if err := c.pipe.arm(req); err != nil {
		return nil, err
	}
	req.done = true
	return &deferredTx{ctx: ctx, conn: c, req: req}, nil
}

// deferredTx is a pinned transaction whose BEGIN went out, or will go out,
// with its first statement.
type deferredTx struct {
	ctx  context.Context
	conn *pinConn
	req  *pinRequest
}

// Commit commits. When no statement ran, the BEGIN and pin go out with the
// COMMIT, in one write: a scope on a missing schema or role fails even if
// its function asked nothing of the database, as it always did.
func (t *deferredTx) Commit() error {
	p, pc := t.conn.pipe, t.conn.Conn.Conn()
	defer p.settle()
	if _, sealed, ext := p.state(); ext {
		return t.endedAtSync(t.ctx)
	} else if sealed {
		return t.settleSealed(t.ctx)
	}
	p.disarmSuffix() // a ReadOnce scope that ran nothing commits as any other
	tag, err := pc.Exec(t.ctx, "COMMIT")
	if err != nil {
		if !pc.IsClosed() && pc.PgConn().TxStatus() != 'I' {
			_ = pc.Close(t.ctx)
		}
		return err
	}
	if tag.String() == "ROLLBACK" {
		if t.req.pinErr != nil {
			return t.req.pinErr
		}
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// Rollback must run even when the request's context was cancelled, which
// is often why it runs at all. A transaction whose BEGIN never went out
// has nothing to roll back.
func (t *deferredTx) Rollback() error {
	p, pc := t.conn.pipe, t.conn.Conn.Conn()
	defer p.settle()
	armed, sealed, ext := p.state()
	if armed {
		return nil
	}
	if ext {
		// The transaction ended at the statement's Sync, read-only.
		return t.endedAtSync(t.ctx)
	}
	if pc.IsClosed() {
		return pgconn.ErrConnClosed
	}
	ctx, cancel := rollbackContext(t.ctx)
	defer cancel()
	if sealed {
		// The COMMIT went out behind the one statement, a read in a
		// READ ONLY transaction: committing it undoes nothing that a
		// rollback would have kept.
		return t.settleSealed(ctx)
	}
	if _, err := pc.Exec(ctx, "ROLLBACK"); err != nil {
		// The connection's state is unknown: it must not be reused.
		_ = pc.Close(ctx)
		return err
	}
	return nil
}

// pipeKey carries the pipe of a connection being made to the connector's
// BeforeConnect hook.
type pipeKey struct{}

// attachPipe is the connector's BeforeConnect hook: the connection being
// made reads and writes through the pipe its Connect put in ctx.
func attachPipe(ctx context.Context, cfg *pgx.ConnConfig) error {
	if p, ok := ctx.Value(pipeKey{}).(*pipe); ok {
		cfg.BuildFrontend = p.frontend
	}
	return nil
}

// settleSealed reads the replies to the COMMIT that went out behind a
// ReadOnce scope's statement; they are usually in the connection's buffer
// already, read with the statement's. A connection whose replies cannot be
// read is closed: its state is unknown.
func (t *deferredTx) settleSealed(ctx context.Context) error {
	pc := t.conn.Conn.Conn()
	var tag string
	var pgErr error
	for {
		msg, err := pc.PgConn().ReceiveMessage(ctx)
		if err != nil {
			_ = pc.Close(ctx)
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.CommandComplete:
			tag = string(m.CommandTag)
		case *pgproto3.ErrorResponse:
			pgErr = pgconn.ErrorResponseToPgError(m)
		case *pgproto3.ReadyForQuery:
			switch {
			case pgErr != nil:
				return pgErr
			case tag == "ROLLBACK" && t.req.pinErr != nil:
				return t.req.pinErr
			case tag == "ROLLBACK":
				return pgx.ErrTxCommitRollback
			}
			return nil
		}
	}
}

// endedAtSync ends a ReadOnce scope whose transaction was the statement's
// implicit one: PostgreSQL ended it at the statement's Sync, and pgx read
// the reply up to its ReadyForQuery. A connection found anywhere else is
// closed: its state is unknown.
func (t *deferredTx) endedAtSync(ctx context.Context) error {
	pc := t.conn.Conn.Conn()
	if pc.IsClosed() {
		return pgconn.ErrConnClosed
	}
	if st := pc.PgConn().TxStatus(); st != 'I' {
		_ = pc.Close(ctx)
		return fmt.Errorf("tenancy: ReadOnce scope ended with the connection in transaction state %q", st)
	}
	return nil
}

// A ReadOnce scope's second statement is refused here, before pgx sees it,
// so the connection stays whole (its COMMIT's replies still to be read);
// the pipe's Write refuses it too, should a path reach pgx another way.

func (c *pinConn) sealed() bool {
	if c.pipe == nil {
		return false
	}
	_, sealed, _ := c.pipe.state()
	return sealed
}

func (c *pinConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.sealed() {
		return nil, ErrReadOnce
	}
	return c.Conn.ExecContext(ctx, query, args)
}

func (c *pinConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.sealed() {
		return nil, ErrReadOnce
	}
	return c.Conn.QueryContext(ctx, query, args)
}

func (c *pinConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if c.sealed() {
		return nil, ErrReadOnce
	}
	return c.Conn.PrepareContext(ctx, query)
}
