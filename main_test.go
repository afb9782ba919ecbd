package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/internal/pgtest"
	"github.com/tenantry/tenantry/migrations"
)

func TestMain(m *testing.M) { pgtest.Run(m) }

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

const secret = "an-operator-secret-of-32-bytes-or-more"

func TestServeRefusesToStartWithoutASecret(t *testing.T) {
	tests := []struct {
		name string
		env  func(string) string
		want string
	}{
		{"no secret", envOf(), "JWT_SECRET"},
		{"short secret", envOf("JWT_SECRET", "tooshort"), "at least 32 bytes"},
		{"unreadable key file", envOf("JWT_PUBLIC_KEY_FILE", "/nonexistent.pem"), "JWT_PUBLIC_KEY_FILE"},
		{"short secret even in dev", envOf("TENANTRY_ENV", "dev", "JWT_SECRET", "tooshort"), "at least 32 bytes"},
		{"both a secret and a key", envOf("JWT_SECRET", secret, "JWT_PUBLIC_KEY_FILE", "/k.pem"), "not both"},
		{"max lifetime not a duration", envOf("JWT_SECRET", secret, "JWT_MAX_LIFETIME", "forever"), "JWT_MAX_LIFETIME"},
		{"max lifetime negative", envOf("JWT_SECRET", secret, "JWT_MAX_LIFETIME", "-1h"), "JWT_MAX_LIFETIME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No database is reachable at this URL: the secret check must
			// come first and say what is wrong.
			env := func(k string) string {
				if k == "DATABASE_URL" {
					return "postgres://nobody@127.0.0.1:1/none"
				}
				return tt.env(k)
			}
			err := run(context.Background(), []string{"serve"}, env, &bytes.Buffer{}, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("serve err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestDevModeHasADevelopmentSecret(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"token", "--tenant", "acme", "--no-lookup"}, envOf("TENANTRY_ENV", "dev"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Count(strings.TrimSpace(out.String()), ".") != 2 {
		t.Fatalf("token output %q is not a JWT", out.String())
	}
	if err := run(context.Background(), []string{"token", "--tenant", "acme"}, envOf(), &out, io.Discard); err == nil {
		t.Fatal("token without a secret outside dev mode succeeded")
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"tenants"}, {"tenants", "create"}, {"tenants", "frobnicate", "x"},
		{"tenants", "list", "extra"}, {"serve", "extra"}, {"dev", "extra"}, {"healthcheck", "now"}, {"token"},
		{"token", "--tenant", "a", "--ttl", "-1h"}, {"migrate", "--concurrency", "0"}, {"migrate", "--to", "-1"}} {
		var stderr bytes.Buffer
		err := run(context.Background(), args, envOf("TENANTRY_ENV", "dev"), &bytes.Buffer{}, &stderr)
		if !errors.Is(err, errUsage) {
			t.Errorf("run %v: %v, want a usage error", args, err)
		}
		if !strings.Contains(stderr.String(), "usage: tenantry") {
			t.Errorf("run %v printed no usage on stderr (got %q)", args, stderr.String())
		}
	}
	if err := run(context.Background(), []string{"token", "--admin", "--ttl", "25h"}, envOf("TENANTRY_ENV", "dev"), &bytes.Buffer{}, io.Discard); err == nil {
		t.Error("a token longer than JWT_MAX_LIFETIME was minted")
	}
}

// Usage and dispatch both come from the commands table: help lists every
// command (and every tenants subcommand), and run reaches each one.
func TestUsageAndDispatchComeFromTheTable(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, envOf(), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, c := range commands {
		if !strings.Contains(out.String(), "tenantry "+c.name) {
			t.Errorf("help does not list %q:\n%s", c.name, out.String())
		}
		// A flag no command has makes each fail in its own way before it
		// touches a database, never as an unknown command.
		err := run(context.Background(), []string{c.name, "--no-such-flag"}, envOf("TENANTRY_ENV", "dev"), &bytes.Buffer{}, io.Discard)
		if err == nil || strings.Contains(err.Error(), "unknown command") {
			t.Errorf("run %s --no-such-flag: %v; want the command's own refusal", c.name, err)
		}
	}
	for _, c := range tenantCommands {
		if !strings.Contains(out.String(), c.name) {
			t.Errorf("help does not list tenants %s", c.name)
		}
	}
}

// TestServeEndToEnd runs the real binary's serve path on a loopback port:
// onboarding and items through real HTTP, then a graceful shutdown that
// lets an in-flight request finish and refuses new connections.
func TestServeEndToEnd(t *testing.T) {
	roles := pgtest.NewDBWithRoles(t)
	dbURL, app := withAppName(t, roles.AppURL)
	env := envOf("DATABASE_URL", dbURL, "MIGRATION_DATABASE_URL", withApp(t, roles.DDLURL, app),
		"JWT_SECRET", secret, "ADDR", "127.0.0.1:0",
		// Short enough that the request held on a lock below outlasts it.
		"SHUTDOWN_DELAY", "100ms")
	tok := tokenCmd(t, env)
	admin := tok("--admin")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	cfg := loadConfig(env)
	go func() { done <- serve(ctx, cfg, &bytes.Buffer{}, func(a string) { addrc <- a }) }()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	call := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			return 0, ""
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if st, body := call("POST", "/admin/tenants", admin, `{"name":"acme"}`); st != 201 {
		t.Fatalf("onboard: %d %s", st, body)
	}
	// After onboarding: the CLI looks acme up and binds the token to it.
	acme := tok("--tenant", "acme")
	if st, body := call("POST", "/items", acme, `{"name":"anvil"}`); st != 201 {
		t.Fatalf("create: %d %s", st, body)
	}

	// Hold a lock on acme's table so a request stays in flight.
	release := holdLock(t, roles.DDLURL, "t_acme.items")
	var wg sync.WaitGroup
	var inflight int
	var inflightBody string
	wg.Add(1)
	go func() {
		defer wg.Done()
		inflight, inflightBody = call("GET", "/items", acme, "")
	}()
	waitFor(t, func() bool { // the request is waiting on the lock
		var n int
		// As the request role: only a session's own role (or a
		// superuser) sees its wait events.
		conn2, err := pgx.Connect(context.Background(), roles.AppURL)
		if err != nil {
			return false
		}
		defer conn2.Close(context.Background())
		if err := conn2.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = $1", app).Scan(&n); err != nil {
			t.Errorf("look for the blocked request: %v", err)
			return false
		}
		return n == 1
	})
	cancel() // SIGTERM
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	release()
	wg.Wait()
	if inflight != 200 || !strings.Contains(inflightBody, "anvil") {
		t.Fatalf("in-flight request during shutdown: %d %s", inflight, inflightBody)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve returned %v after shutdown", err)
	}
	// Both pools are closed: no backend of the service is left.
	probe, err := pgx.Connect(context.Background(), roles.DDLURL)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close(context.Background())
	waitFor(t, func() bool { return backendsOf(t, probe, app) == 0 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMigrateAndTenantCommands(t *testing.T) {
	roles := pgtest.NewDBWithRoles(t)
	env := envOf("DATABASE_URL", roles.AppURL, "MIGRATION_DATABASE_URL", roles.DDLURL, "JWT_SECRET", secret)
	ctx := context.Background()
	for _, n := range []string{"alpha", "beta"} {
		if err := run(ctx, []string{"tenants", "create", n}, env, &bytes.Buffer{}, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	if err := run(ctx, []string{"tenants", "create", "alpha"}, env, &bytes.Buffer{}, io.Discard); err == nil {
		t.Fatal("creating alpha twice succeeded")
	}
	type summary struct {
		Target, Tenants, Current, Migrated, Failed, Skipped int
		Results                                             []struct {
			Tenant, Error string
			From, To      int
		}
	}
	migrate := func(args ...string) summary {
		var out bytes.Buffer
		if err := run(ctx, append([]string{"migrate", "--json"}, args...), env, &out, io.Discard); err != nil {
			t.Fatalf("migrate %v: %v\n%s", args, err, out.String())
		}
		var sum summary
		if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
			t.Fatalf("migrate --json output: %v\n%s", err, out.String())
		}
		return sum
	}
	// Both tenants were born at the latest version: nothing to visit, and
	// the summary still reports the fleet.
	if sum := migrate(); sum.Tenants != 2 || sum.Current != 2 || sum.Migrated != 0 || sum.Failed != 0 || len(sum.Results) != 0 {
		t.Fatalf("no-op migrate summary %+v; want 2 tenants, both current, none visited", sum)
	}
	// Named tenants are visited even when up to date, and stay there.
	sum := migrate("--tenants", "alpha,beta")
	if sum.Tenants != 2 || sum.Current != 2 || sum.Failed != 0 || len(sum.Results) != 2 ||
		sum.Results[0].Tenant != "alpha" || sum.Results[1].Tenant != "beta" || sum.Results[0].From != sum.Results[0].To {
		t.Fatalf("migrate summary %+v", sum)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"migrate", "status"}, env, &out, io.Discard); err != nil {
		t.Fatalf("migrate status: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "2 tenants, latest version 1, 0 drifted") {
		t.Fatalf("migrate status:\n%s", out.String())
	}
	for _, st := range []string{"read-only", "suspend", "resume"} {
		out.Reset()
		if err := run(ctx, []string{"tenants", st, "alpha"}, env, &out, io.Discard); err != nil {
			t.Fatalf("tenants %s: %v", st, err)
		}
		if want := map[string]string{"read-only": "read-only", "suspend": "suspended", "resume": "active"}[st]; !strings.HasSuffix(strings.TrimSpace(out.String()), want) {
			t.Fatalf("tenants %s printed %q, want status %s", st, out.String(), want)
		}
	}
	out.Reset()
	if err := run(ctx, []string{"tenants", "delete", "beta"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"tenants", "list"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "alpha") || strings.Contains(out.String(), "beta") {
		t.Fatalf("tenants list after delete:\n%s", out.String())
	}
}

// Commands that only look change nothing, not even the shared schema.
func TestReadOnlyCommandsChangeNothing(t *testing.T) {
	roles := pgtest.NewDBWithRoles(t)
	url := roles.DDLURL
	env := envOf("DATABASE_URL", roles.AppURL, "MIGRATION_DATABASE_URL", url, "JWT_SECRET", secret)
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, []string{"migrate", "--dry-run"}, env, &out, io.Discard); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	var steps []int
	for _, st := range migrations.Shared.Steps {
		steps = append(steps, st.Version)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("shared schema: would run steps %v", steps)) {
		t.Fatalf("dry run on a fresh database said:\n%s", out.String())
	}
	for _, args := range [][]string{{"migrate", "status"}, {"tenants", "list"}} {
		if err := run(ctx, args, env, &bytes.Buffer{}, io.Discard); err == nil {
			t.Errorf("%v on an unmigrated database succeeded", args)
		}
	}
	for _, args := range [][]string{{"migrate", "--to", "-1"}, {"migrate", "--to", "99"}} {
		if err := run(ctx, args, env, &bytes.Buffer{}, io.Discard); err == nil || !strings.Contains(err.Error(), "--to") {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", migrations.SharedSchema).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the tenantry schema exists after read-only commands (%d, %v)", n, err)
	}
}

// A request role that could cross the tenant boundary stops serve outside
// dev mode, with each privilege and its fix named; dev mode only warns.
// Here DATABASE_URL logs in as the DDL role (owner of every schema, with
// CREATEROLE and INHERIT) while MIGRATION_DATABASE_URL claims separation.
func TestServeRefusesARequestRoleThatCouldCrossTheBoundary(t *testing.T) {
	roles := pgtest.NewDBWithRoles(t)
	posing := withApp(t, roles.DDLURL, "posing-as-the-request-role")
	env := envOf("DATABASE_URL", posing, "MIGRATION_DATABASE_URL", roles.DDLURL, "JWT_SECRET", secret, "ADDR", "127.0.0.1:0")
	ctx := context.Background()
	if err := run(ctx, []string{"tenants", "create", "acme"}, env, &bytes.Buffer{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	err := serve(ctx, loadConfig(env), &bytes.Buffer{}, func(string) { t.Error("serve started listening") })
	if err == nil {
		t.Fatal("serve started with the DDL role as its request role")
	}
	for _, want := range []string{"refusing to serve", "NOCREATEROLE", "NOINHERIT", "can use 1 of 1 tenant schemas"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q:\n%v", want, err)
		}
	}

	cfg := loadConfig(envOf("DATABASE_URL", posing, "MIGRATION_DATABASE_URL", roles.DDLURL, "TENANTRY_ENV", "dev"))
	h, err := openDB(ctx, cfg, serveAdminPool)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	var logs bytes.Buffer
	if err := checkRoles(ctx, cfg, h, h.directory(), newLogger(cfg, &logs)); err != nil {
		t.Fatalf("dev mode refused: %v", err)
	}
	if !strings.Contains(logs.String(), "NOCREATEROLE") {
		t.Fatalf("dev mode did not warn:\n%s", logs.String())
	}
}

// tokenCmd returns a function that runs `tenantry token ARGS...` with env
// and returns the token it printed.
func tokenCmd(t *testing.T, env func(string) string) func(args ...string) string {
	t.Helper()
	return func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), append([]string{"token"}, args...), env, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out.String())
	}
}

// holdLock takes an ACCESS EXCLUSIVE lock on table (a fixed name from the
// test) in a transaction of its own connection, and returns the function
// that ends that transaction.
func holdLock(t *testing.T, url, table string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
