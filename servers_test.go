package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/internal/pglocal"
	"github.com/tenantry/tenantry/internal/pgtest"
	"github.com/tenantry/tenantry/tenancy"
)

func TestLoadServersReadsTheTenantServerVariables(t *testing.T) {
	env := map[string]string{
		"TENANT_SERVERS":        "b=postgres://app@hb/db,c=postgres://app@hc/db",
		"TENANT_SERVERS_DDL":    "b=postgres://ddl@hb/db",
		"TENANT_SERVER_WEIGHTS": "home=2,c=3",
		"TENANT_MOVE_URLS":      "home=postgres://su@ha/db,b=postgres://su@hb/db",
	}
	sc, err := loadServers(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := []tenancy.Server{
		{Name: "b", URL: "postgres://app@hb/db", AdminURL: "postgres://ddl@hb/db", MoveURL: "postgres://su@hb/db"},
		{Name: "c", URL: "postgres://app@hc/db", Weight: 3},
	}
	if len(sc.servers) != len(want) || sc.servers[0] != want[0] || sc.servers[1] != want[1] {
		t.Fatalf("servers: got %+v, want %+v", sc.servers, want)
	}
	if sc.homeWeight != 2 || sc.homeMoveURL != "postgres://su@ha/db" {
		t.Fatalf("home: weight %d move %q", sc.homeWeight, sc.homeMoveURL)
	}
	if got := (serverConfig{}).options(tenancy.DefaultPool); got != nil {
		t.Errorf("no TENANT_SERVERS*: got %d options, want none (nothing changes)", len(got))
	}
}

func TestLoadServersRefusesNamesItCannotUse(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"TENANT_SERVERS=home=postgres://x/y", "home"},
		{"TENANT_SERVERS=B=postgres://x/y", "TENANT_SERVERS"},
		{"TENANT_SERVERS_DDL=b=postgres://x/y", "TENANT_SERVERS does not"},
		{"TENANT_SERVER_WEIGHTS=b=2", "TENANT_SERVERS does not"},
		{"TENANT_SERVER_WEIGHTS=home=zero", "TENANT_SERVER_WEIGHTS"},
		{"TENANT_MOVE_URLS=c=postgres://x/y", "TENANT_SERVERS does not"},
	} {
		k, v, _ := strings.Cut(tc.env, "=")
		_, err := loadServers(func(key string) string {
			if key == k {
				return v
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error naming %q", tc.env, err, tc.want)
		}
	}
}

// A TENANT_SERVERS server whose request role is a superuser stops serve
// outside dev mode, as home's would; dev mode starts and warns.
func TestServeRefusesAServersRequestRoleThatCouldCrossTheBoundary(t *testing.T) {
	roles := pgtest.NewDBWithRoles(t)
	b := pgtest.NewServer(t, pglocal.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, err := pgx.Connect(ctx, b.SuperURL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "ALTER ROLE "+pgx.Identifier{b.Roles.AppRole}.Sanitize()+" SUPERUSER")
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vars := []string{"DATABASE_URL", roles.AppURL, "MIGRATION_DATABASE_URL", roles.DDLURL, "JWT_SECRET", secret, "ADDR", "127.0.0.1:0",
		"TENANT_SERVERS", "b=" + b.Roles.AppURL, "TENANT_SERVERS_DDL", "b=" + b.Roles.DDLURL}
	err = serve(ctx, loadConfig(envOf(vars...)), &bytes.Buffer{}, func(string) { t.Error("serve started listening"); cancel() })
	if err == nil {
		t.Fatal("serve started with a superuser as server b's request role")
	}
	for _, want := range []string{"refusing to serve", `server "b"`, "SUPERUSER"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q:\n%v", want, err)
		}
	}

	var logs bytes.Buffer
	served := make(chan struct{})
	go func() {
		defer close(served)
		err := serve(ctx, loadConfig(envOf(append(vars, "TENANTRY_ENV", "dev")...)), &logs, func(string) { cancel() })
		if err != nil {
			t.Errorf("dev mode: %v", err)
		}
	}()
	<-served
	if !strings.Contains(logs.String(), "SUPERUSER") {
		t.Fatalf("dev mode did not warn:\n%s", logs.String())
	}
}
