//go:build !linux

package tenancy

import "syscall"

// setUserTimeout does nothing where TCP_USER_TIMEOUT does not exist; the
// keepalive settings and the request deadlines still bound every wait.
func setUserTimeout(string, string, syscall.RawConn) error { return nil }
