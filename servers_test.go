package main

import (
	"strings"
	"testing"

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
