package tenancy

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// idleAlive reports whether an idle connection still looks usable, with
// one non-blocking peek at its socket and no round trip. PostgreSQL sends
// an idle client nothing unasked except its farewell when the backend ends
// (a restart, pg_terminate_backend) and, rarely, a ParameterStatus after a
// configuration reload: pending bytes or end of file mean the connection is
// to be replaced, which costs at worst one needless reconnect.
func idleAlive(c net.Conn) bool {
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
	// Control, not Read: the peek never blocks, and pgconn's background
	// reader may still sit in a blocking read of this socket from an
	// earlier write (holding the descriptor's read lock until bytes come).
	alive := true
	err = rc.Control(func(fd uintptr) {
		var b [1]byte
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		alive = err == unix.EAGAIN || err == unix.EINTR
	})
	return alive && err == nil
}
