package tenancy_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/migrations/migrationstest"
	"github.com/tenantry/tenantry/tenancy"
)

func TestBlueprintRefusesModelsThatDisagreeWithTheSteps(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	// The plan says items has a sku column; the models do not.
	dir := tenancy.NewDirectory(e.db, tenancy.WithAdmin(e.ddl), tenancy.WithPlan(migrationstest.PlanWith(migrationstest.SKUStep)))
	if _, err := dir.Onboard(context.Background(), "mismatch"); !errors.Is(err, migrations.ErrModelsDisagree) {
		t.Fatalf("onboard with disagreeing models and steps: %v, want ErrModelsDisagree", err)
	}
	if schemaExists(t, e, "t_mismatch") || registryCount(t, e) != 0 {
		t.Fatal("the refused onboarding left something behind")
	}
	var scratch int
	// The blueprint's scratch schemas and the drift reference are all
	// named t_tenantry_...
	if err := e.ddl.Raw("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_tenantry\\_%'").Scan(&scratch).Error; err != nil {
		t.Fatal(err)
	}
	if scratch != 0 {
		t.Fatalf("%d scratch schemas were left behind", scratch)
	}
}
