package pgtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestSplitImageFollowsDockerReferences(t *testing.T) {
	for _, c := range []struct{ in, repo, tag string }{
		{"postgres:15", "postgres", "15"},
		{"postgres", "postgres", "latest"},
		{"tenantry-local/postgres:15", "tenantry-local/postgres", "15"},
		{"registry.local:5000/pg/postgres:15.4", "registry.local:5000/pg/postgres", "15.4"},
		{"registry.local:5000/postgres", "registry.local:5000/postgres", "latest"},
	} {
		repo, tag := splitImage(c.in)
		if repo != c.repo || tag != c.tag {
			t.Errorf("splitImage(%q) = %q, %q; want %q, %q", c.in, repo, tag, c.repo, c.tag)
		}
	}
}

// A server that answers with an error other than "starting up" will give
// the same answer on every retry, so the wait must stop at once.
func TestStartingUpRetriesOnlyWhatWaitingCures(t *testing.T) {
	pg := func(code string) error {
		return fmt.Errorf("connect: %w", &pgconn.PgError{Code: code})
	}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"cut during init", io.ErrUnexpectedEOF, true},
		{"57P03 starting up", pg("57P03"), true},
		{"28P01 password refused", pg("28P01"), false},
		{"28000 no pg_hba.conf entry", pg("28000"), false},
		{"3D000 no such database", pg("3D000"), false},
		{"plain error", errors.New("x"), true},
	} {
		if got := startingUp(c.err); got != c.want {
			t.Errorf("%s: startingUp = %v, want %v", c.name, got, c.want)
		}
	}
}
