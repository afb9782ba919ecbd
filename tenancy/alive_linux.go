package tenancy

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// liveness peeks at one connection's socket. It keeps the socket's raw
// handle and its peek function between scopes, so the check allocates
// nothing per scope.
type liveness struct {
	conn  net.Conn
	rc    syscall.RawConn
	alive bool
	peek  func(fd uintptr)
}

// idleAlive reports whether an idle connection still looks usable, with
// one non-blocking peek at its socket and no round trip. PostgreSQL sends
// an idle client nothing unasked except its farewell when the backend ends
// (a restart, pg_terminate_backend) and, rarely, a ParameterStatus after a
// configuration reload: pending bytes or end of file mean the connection is
// to be replaced, which costs at worst one needless reconnect.
func (l *liveness) idleAlive(c net.Conn) bool {
	if l.conn != c || l.rc == nil {
		l.conn, l.rc = c, nil
		if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
			c = tc.NetConn() // TLS: the record layer's bytes count the same
		}
		sc, ok := c.(syscall.Conn)
		if !ok {
			return true
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return true
		}
		l.rc = rc
		l.peek = func(fd uintptr) {
			var b [1]byte
			_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			l.alive = err == unix.EAGAIN || err == unix.EINTR
		}
	}
	// Control, not Read: the peek never blocks, and pgconn's background
	// reader may still sit in a blocking read of this socket from an
	// earlier write (holding the descriptor's read lock until bytes come).
	l.alive = true
	err := l.rc.Control(l.peek)
	return l.alive && err == nil
}
