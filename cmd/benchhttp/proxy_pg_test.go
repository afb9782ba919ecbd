package main

import (
	"context"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Run(m) }

// TestProxyCountsWhatPostgreSQLRuns drives a real PostgreSQL session
// through the accounting proxy and checks each kind of traffic the
// variants send: a simple Query holding several statements, and an
// extended-protocol statement parsed afresh (pgx's exec mode).
func TestProxyCountsWhatPostgreSQLRuns(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	p, err := startProxy(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	u.Host = p.Addr()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if c := p.Counts(); c.Conns != 1 || c.RoundTrips < 1 {
		t.Fatalf("after connecting: %+v, want one session and at least one round trip", c)
	}

	before := p.Counts()
	if _, err := conn.Exec(ctx, "BEGIN; SELECT 1; COMMIT", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if got, want := p.Counts().sub(before), (counts{RoundTrips: 1, Queries: 1, SimpleStmt: 3}); got != want {
		t.Errorf("simple query of three statements: got %+v, want %+v", got, want)
	}

	before = p.Counts()
	var n int
	if err := conn.QueryRow(ctx, "SELECT $1::int + 1", pgx.QueryExecModeExec, 41).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 42 {
		t.Fatalf("query answered %d through the proxy, want 42", n)
	}
	if got, want := p.Counts().sub(before), (counts{RoundTrips: 1, Executes: 1, Parses: 1}); got != want {
		t.Errorf("exec-mode statement: got %+v, want %+v", got, want)
	}
}
