package tenancy

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/tenantry/tenantry/internal/pgtest"
	"golang.org/x/sys/unix"
)

// The connections Open makes carry the socket options that notice a dead
// path: keepalive with our timings and TCP_USER_TIMEOUT. (Loopback cannot
// black-hole a socket the kernel acknowledges, so the options themselves
// are what can be checked.)
func TestOpenSetsKeepaliveAndUserTimeoutOnItsSockets(t *testing.T) {
	db, err := Open(context.Background(), pgtest.NewDB(t), PoolConfig{MaxOpen: 1, MaxIdle: 1})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	defer sqlDB.Close()
	conn, err := sqlDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var nc net.Conn
	if err := conn.Raw(func(dc any) error {
		nc = dc.(*pinConn).Conn.Conn().PgConn().Conn()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tcp, ok := nc.(*net.TCPConn)
	if !ok {
		t.Skipf("the test database is reached over %T, not TCP", nc)
	}
	rc, err := tcp.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ level, opt, val int }{
		"SO_KEEPALIVE":     {unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		"TCP_KEEPIDLE":     {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(keepAliveIdle / time.Second)},
		"TCP_KEEPINTVL":    {unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(keepAliveInterval / time.Second)},
		"TCP_KEEPCNT":      {unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepAliveCount},
		"TCP_USER_TIMEOUT": {unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(tcpUserTimeout.Milliseconds())},
	}
	for name, w := range want {
		var got int
		var gerr error
		if err := rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), w.level, w.opt) }); err != nil {
			t.Fatal(err)
		}
		if gerr != nil {
			t.Fatalf("getsockopt %s: %v", name, gerr)
		}
		if got != w.val {
			t.Errorf("%s = %d, want %d", name, got, w.val)
		}
	}
}
