package tenancy

import (
	"net"
	"time"
)

// Connection-level limits. statement_timeout and its kin run inside
// PostgreSQL, so they cannot end a wait on a network path that has gone
// silent (a black hole: packets dropped, sockets still open); these end it
// on the Go side.
const (
	// DefaultConnectTimeout bounds dialling plus the startup exchange of a
	// new connection (pgx's connect_timeout, which a URL may set instead):
	// a healthy server on a LAN answers in milliseconds, and a request
	// waiting for a connection should fail well inside its own deadline.
	DefaultConnectTimeout = 5 * time.Second
	// keepAliveIdle, keepAliveInterval and keepAliveCount make the kernel
	// probe an idle connection after 15 s and give up after 3 unanswered
	// probes 5 s apart: a pooled connection on a dead path is found within
	// 30 s instead of the kernel default of over two hours.
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 3
	// tcpUserTimeout (Linux TCP_USER_TIMEOUT, RFC 5482) drops a connection
	// whose sent data stays unacknowledged this long, which keepalive alone
	// does not cover while a write is outstanding. It matches the keepalive
	// window (idle + interval × count), as the socket(7) advice for using
	// both together suggests. It never cuts a long query whose bytes were
	// acknowledged: only unacknowledged data counts.
	tcpUserTimeout = keepAliveIdle + keepAliveInterval*keepAliveCount
)

// dialer returns the dialer of every database connection.
func dialer(connectTimeout time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout: connectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount,
		},
		Control: setUserTimeout,
	}
}
