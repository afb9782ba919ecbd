package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/internal/pgtest"
	"github.com/tenantry/tenantry/migrations"
)

// withAppName gives dbURL an application_name of its own, so a test can
// find exactly its service's backends in pg_stat_activity.
func withAppName(t *testing.T, dbURL string) (string, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "tenantry-test-" + hex.EncodeToString(b[:])
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String(), name
}

// withApp sets application_name app on dbURL, so the DDL role's pool is
// counted with the request role's.
func withApp(t *testing.T, dbURL, app string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	return u.String()
}

func backendsOf(t *testing.T, conn *pgx.Conn, app string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()", app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func get(base, path, token string) (int, http.Header, error) {
	req, _ := http.NewRequest("GET", base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, nil
}

// SIGTERM under load, with a request that cannot finish within the drain
// budget: readiness turns 503 first while the listener still accepts; then
// the drain runs out, the stuck request is cancelled, serve reports that
// the drain did not finish (a non-zero exit), and no backend of the
// service is left in PostgreSQL.
func TestShutdownCancelsWhatTheDrainCannotWaitFor(t *testing.T) {
	roles := pgtest.NewDBWithRoles(t)
	rawURL := roles.DDLURL // the owner, who may lock the registry
	dbURL, app := withAppName(t, roles.AppURL)
	env := envOf("DATABASE_URL", dbURL, "MIGRATION_DATABASE_URL", withApp(t, rawURL, app), "JWT_SECRET", secret, "ADDR", "127.0.0.1:0",
		"SHUTDOWN_DELAY", "400ms", "SHUTDOWN_TIMEOUT", "1s")
	tok := tokenCmd(t, env)
	admin := tok("--admin")
	ctx, sigterm := context.WithCancel(context.Background())
	defer sigterm()
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	logs := &bytes.Buffer{}
	go func() { done <- serve(ctx, loadConfig(env), logs, func(a string) { addrc <- a }) }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	base := "http://" + addr
	req, _ := http.NewRequest("POST", base+"/admin/tenants", strings.NewReader(`{"name":"beta"}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("onboard beta: %v %v", resp, err)
	}
	resp.Body.Close()
	// Minted once beta exists: the CLI looks it up and binds the token to it.
	beta := tok("--tenant", "beta")

	// Block registry reads: beta's first request waits in its tenant
	// lookup, with no lock_timeout, until its 10 s request deadline.
	release := holdLock(t, rawURL, migrations.TenantsTable)
	stuck := make(chan error, 1)
	go func() {
		_, _, err := get(base, "/items", beta)
		stuck <- err
	}()
	// As the request role: only a session's own role sees its wait events.
	probe, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close(context.Background())
	waitFor(t, func() bool {
		var n int
		if err := probe.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	})

	start := time.Now()
	sigterm()
	// Readiness is off at once, and the listener still accepts meanwhile.
	waitFor(t, func() bool {
		st, hdr, err := get(base, "/readyz", "")
		return err == nil && st == http.StatusServiceUnavailable && hdr.Get("Retry-After") != ""
	})
	if st, _, err := get(base, "/healthz", ""); err != nil || st != 200 {
		t.Fatalf("a new request during the readiness delay: %d %v", st, err)
	}
	var serveErr error
	select {
	case serveErr = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not return 20 s after SIGTERM")
	}
	if !errors.Is(serveErr, errDrainIncomplete) {
		t.Fatalf("serve returned %v, want the drain-incomplete error (exit status 1)", serveErr)
	}
	// The stuck request ended at the drain budget, not at its deadline.
	select {
	case <-stuck:
	case <-time.After(20 * time.Second):
		t.Fatal("the stuck request did not end")
	}
	if elapsed := time.Since(start); elapsed > 8*time.Second {
		t.Errorf("shutdown took %s; delay 400ms + drain 1s should end well before the 10 s request deadline", elapsed)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("the listener still accepts after serve returned")
	}
	release()
	waitFor(t, func() bool { return backendsOf(t, probe, app) == 0 })
	if !strings.Contains(logs.String(), "drain budget exceeded") {
		t.Errorf("the log does not say the drain budget ran out:\n%s", logs.String())
	}
}

func TestServeRefusesUnusableTimeouts(t *testing.T) {
	for _, tc := range []struct{ key, val, want string }{
		{"REQUEST_TIMEOUT", "30s", "below the 30s write timeout"},
		{"REQUEST_TIMEOUT", "ten seconds", "REQUEST_TIMEOUT"},
		{"REQUEST_TIMEOUT", "0s", "REQUEST_TIMEOUT"},
		{"SHUTDOWN_TIMEOUT", "-1s", "SHUTDOWN_TIMEOUT"},
		{"SHUTDOWN_DELAY", "soon", "SHUTDOWN_DELAY"},
	} {
		// No database answers at this URL: the check must come first.
		env := envOf("JWT_SECRET", secret, "DATABASE_URL", "postgres://nobody@127.0.0.1:1/none", tc.key, tc.val)
		err := run(context.Background(), []string{"serve"}, env, &bytes.Buffer{}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: serve err = %v, want one mentioning %q", tc.key, tc.val, err, tc.want)
		}
	}
	cfg := loadConfig(envOf("SHUTDOWN_DELAY", "0s"))
	if cfg.serveErr != nil || cfg.shutdownDelay != 0 || cfg.requestTimeout != 10*time.Second || cfg.drainTimeout != 20*time.Second {
		t.Errorf("defaults with SHUTDOWN_DELAY=0s: %v delay %s request %s drain %s", cfg.serveErr, cfg.shutdownDelay, cfg.requestTimeout, cfg.drainTimeout)
	}
}
