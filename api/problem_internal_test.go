package api

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
)

// answer runs err through the one error adapter and returns the status and
// Retry-After it produced.
func answer(t *testing.T, err error) (int, string) {
	t.Helper()
	s := &Server{log: slog.New(slog.DiscardHandler)}
	gin.SetMode(gin.ReleaseMode) // as routes() does; no debug banner
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	c.Request = httptest.NewRequest(http.MethodGet, "/items", nil)
	s.fail(c, err)
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	return rec.Code, rec.Header().Get("Retry-After")
}

func pgErr(code string) error {
	return fmt.Errorf("tenant query: %w", &pgconn.PgError{Severity: "ERROR", Code: code, Message: "m"})
}

// realConnectError dials a loopback port nobody listens on: a genuine
// pgconn.ConnectError wrapping ECONNREFUSED.
func realConnectError(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = pgconn.Connect(ctx, "postgres://u@"+addr+"/db?sslmode=disable")
	if err == nil {
		t.Fatal("connecting to a closed port succeeded")
	}
	return err
}

type noConnector struct{}

func (noConnector) Connect(context.Context) (driver.Conn, error) { return nil, driver.ErrBadConn }
func (noConnector) Driver() driver.Driver                        { return nil }

// realDBClosedError is database/sql's own error for a closed pool.
func realDBClosedError(t *testing.T) error {
	t.Helper()
	db := sql.OpenDB(noConnector{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	err := db.PingContext(context.Background())
	if err == nil {
		t.Fatal("ping on a closed pool succeeded")
	}
	return err
}

func TestEveryDatabaseFaultHasOneAnswer(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	tests := []struct {
		name   string
		err    error
		status int
	}{
		// PostgreSQL errors, by SQLSTATE.
		{"undefined table", pgErr("42P01"), 503},
		{"undefined schema", pgErr("3F000"), 503},
		{"insufficient privilege", pgErr("42501"), 500},
		{"query cancelled", pgErr("57014"), 503},
		{"lock not available", pgErr("55P03"), 503},
		{"admin shutdown", pgErr("57P01"), 503},
		{"crash shutdown", pgErr("57P02"), 503},
		{"cannot connect now", pgErr("57P03"), 503},
		{"too many connections", pgErr("53300"), 503},
		{"connection failure", pgErr("08006"), 503},
		{"serialization failure", pgErr("40001"), 503},
		{"deadlock", pgErr("40P01"), 503},
		{"idle in transaction timeout", pgErr("25P03"), 503},
		{"unique violation", pgErr("23505"), 409},
		{"cached plan changed", pgErr("0A000"), 503},
		{"invalid bytes", pgErr("22021"), 400},
		{"value too long", pgErr("22001"), 400},
		{"internal error", pgErr("XX000"), 500},
		// Network and driver errors: a database that is away.
		{"connection refused (real dial)", realConnectError(t), 503},
		{"connection refused", fmt.Errorf("query: %w", refused), 503},
		{"connection reset", fmt.Errorf("query: %w", reset), 503},
		{"EOF", fmt.Errorf("receive message: %w", io.EOF), 503},
		{"unexpected EOF", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), 503},
		{"bad connection", fmt.Errorf("begin: %w", driver.ErrBadConn), 503},
		{"connection done", fmt.Errorf("commit: %w", sql.ErrConnDone), 503},
		{"database is closed (real)", realDBClosedError(t), 503},
		{"pgconn closed", fmt.Errorf("exec: %w", pgconn.ErrConnClosed), 503},
		{"network closed", fmt.Errorf("write: %w", net.ErrClosed), 503},
		{"context deadline", fmt.Errorf("get tenant: %w", context.DeadlineExceeded), 503},
		{"context cancelled", fmt.Errorf("scope: %w", context.Canceled), 503},
		// Errors that already carry a kind keep it.
		{"schema behind", tenancy.ErrBehind, 503},
		{"not found", fmt.Errorf("item 3: %w", models.ErrNotFound), 404},
		{"field error", models.Invalid("name", "is required"), 400},
		// The HTTP layer's own kinds win over a network-looking cause.
		{"body timeout", &clientError{Kind: errBodyTimeout, Detail: "late body", Cause: os.ErrDeadlineExceeded}, 408},
		// Anything else is a bug: 500, and nothing invites a retry.
		{"unknown", errors.New("boom"), 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, retry := answer(t, tt.err)
			if status != tt.status {
				t.Fatalf("status = %d, want %d (err %v)", status, tt.status, tt.err)
			}
			wantRetry := ""
			if status == http.StatusServiceUnavailable {
				wantRetry = "1"
			}
			if retry != wantRetry {
				t.Fatalf("Retry-After = %q, want %q", retry, wantRetry)
			}
		})
	}
}

// The classification keeps the original error in the chain for the log.
func TestClassifyKeepsTheCause(t *testing.T) {
	orig := pgErr("57P01")
	got := tenancy.Classify(orig)
	var pe *pgconn.PgError
	if !errors.Is(got, models.ErrUnavailable) || !errors.As(got, &pe) || pe.Code != "57P01" {
		t.Fatalf("Classify(%v) = %v: lost the kind or the cause", orig, got)
	}
	if tenancy.Classify(nil) != nil {
		t.Fatal("Classify(nil) != nil")
	}
}
