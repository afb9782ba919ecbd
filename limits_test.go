package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/tenancy"
)

func TestFairnessSettingsFromTheEnvironment(t *testing.T) {
	pool, rl, q, err := loadLimits(envOf())
	if err != nil || pool != tenancy.DefaultPool || rl != api.DefaultRateLimit || q != (api.Quota{}) {
		t.Fatalf("defaults: %+v %+v %+v %v", pool, rl, q, err)
	}
	pool, rl, q, err = loadLimits(envOf("TENANT_POOL_SHARE", "3", "TENANT_POOL_WAIT", "250ms",
		"TENANT_RATE", "2.5", "TENANT_BURST", "7", "TENANT_MAX_ITEMS", "1000", "TENANT_MAX_BYTES", "1048576",
		"DB_CONN_MAX_SCHEMAS", "0", "DB_CONN_MAX_TRANSACTIONS", "5000",
		"DB_STATEMENT_CACHE", "0"))
	if err != nil {
		t.Fatal(err)
	}
	wantPool := tenancy.DefaultPool
	wantPool.TenantShare, wantPool.TenantWait = 3, 250*time.Millisecond
	wantPool.ConnMaxSchemas, wantPool.ConnMaxTransactions, wantPool.StatementCache = 0, 5000, 0
	if diff := cmp.Diff(wantPool, pool); diff != "" {
		t.Errorf("pool (-want +got):\n%s", diff)
	}
	if want := (api.RateLimit{PerSecond: 2.5, Burst: 7}); rl != want {
		t.Errorf("rate = %+v, want %+v", rl, want)
	}
	if want := (api.Quota{Items: 1000, Bytes: 1 << 20}); q != want {
		t.Errorf("quota = %+v, want %+v", q, want)
	}
	if _, rl, _, err := loadLimits(envOf("TENANT_RATE", "0", "TENANT_POOL_SHARE", "-1")); err != nil || rl.PerSecond != 0 {
		t.Errorf("TENANT_RATE=0 (off): %+v, %v", rl, err)
	}
}

// A malformed limit stops serve before it connects, naming the variable.
func TestServeRefusesMalformedLimits(t *testing.T) {
	for _, kv := range [][2]string{
		{"TENANT_POOL_SHARE", "many"}, {"TENANT_POOL_SHARE", "-2"}, {"TENANT_POOL_WAIT", "1"},
		{"TENANT_POOL_WAIT", "-1s"}, {"TENANT_RATE", "-1"}, {"TENANT_RATE", "NaN"}, {"TENANT_RATE", "+Inf"},
		{"TENANT_BURST", "0"}, {"TENANT_MAX_ITEMS", "-5"}, {"TENANT_MAX_BYTES", "1e9"},
		{"DB_CONN_MAX_SCHEMAS", "-1"}, {"DB_CONN_MAX_TRANSACTIONS", "lots"}, {"DB_STATEMENT_CACHE", "-1"},
	} {
		env := envOf("JWT_SECRET", secret, "DATABASE_URL", "postgres://nobody@127.0.0.1:1/none", kv[0], kv[1])
		err := run(context.Background(), []string{"serve"}, env, &bytes.Buffer{}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), kv[0]) {
			t.Errorf("%s=%s: serve err = %v, want one naming %s", kv[0], kv[1], err, kv[0])
		}
	}
}
