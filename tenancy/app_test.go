package tenancy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tenantry/tenantry/fleet"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// note and plan are a program's own models: a tenant-scoped note, and a
// shared plan (a price list every tenant shares).
type note struct {
	ID        int64  `gorm:"primaryKey"`
	Body      string `gorm:"size:500;not null"`
	CreatedAt time.Time
}

type plan struct {
	ID    int64  `gorm:"primaryKey"`
	Code  string `gorm:"size:20;not null;uniqueIndex"`
	Cents int64  `gorm:"not null"`
}

var notesApp = migrations.App{
	Tenant: migrations.Plan{Models: []any{&note{}}, Steps: []migrations.Step{{Version: 1, Name: "notes", Up: `
CREATE TABLE "notes" ("id" bigserial,"body" varchar(500) NOT NULL,"created_at" timestamptz,PRIMARY KEY ("id"))`}}},
	Shared: migrations.Plan{Models: []any{&plan{}}, Steps: []migrations.Step{
		{Version: 1, Name: "plans", Up: `CREATE TABLE "plans" ("id" bigserial,"code" varchar(20) NOT NULL,"cents" bigint NOT NULL,PRIMARY KEY ("id"))`},
		{Version: 2, Name: "plan codes are unique", Up: `CREATE UNIQUE INDEX "idx_plans_code" ON "plans" ("code")`},
		{Version: 3, Name: "seed plans", Go: func(tx *gorm.DB) error {
			return tx.Create(&[]plan{{Code: "free", Cents: 0}, {Code: "pro", Cents: 900}}).Error
		}},
	}},
	SharedSchema: "billing",
}

// A program's own tenant models are what onboarding builds, and what its
// scopes reach; tenantry's items are not there.
func TestRegisteredTenantModelsAreOnboarded(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	ctx := context.Background()
	dir := e.te.Directory(tenancy.WithApp(notesApp))
	if _, err := dir.Onboard(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	r, err := dir.Active(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var got []note
	err = tenancy.WithTx(ctx, r, func(tx *gorm.DB) error {
		if err := tx.Create(&note{Body: "hello"}).Error; err != nil {
			return err
		}
		return tx.Find(&got).Error
	})
	if err != nil || len(got) != 1 || got[0].Body != "hello" {
		t.Fatalf("notes in acme's scope: %+v, %v", got, err)
	}
	err = tenancy.WithTx(ctx, r, func(tx *gorm.DB) error { return tx.Exec("SELECT 1 FROM items").Error })
	if err == nil {
		t.Fatal("acme's schema has tenantry's items table; want only the program's models")
	}
	// The drift check compares against the program's models, so a
	// freshly onboarded tenant has none.
	st, err := fleet.Inspect(ctx, dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Drift != "" || st[0].Version != 1 {
		t.Fatalf("status = %+v, want acme at version 1 without drift", st)
	}
}

// A program whose tenant models and steps build different schemas is
// refused before any tenant is onboarded.
func TestRegisteredModelsThatDisagreeWithTheStepsAreRefused(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	bad := notesApp
	bad.Tenant.Steps = []migrations.Step{{Version: 1, Name: "notes", Up: `CREATE TABLE "notes" ("id" bigserial PRIMARY KEY)`}}
	_, err := e.te.Directory(tenancy.WithApp(bad)).Onboard(context.Background(), "acme")
	if !errors.Is(err, migrations.ErrModelsDisagree) {
		t.Fatalf("onboard with disagreeing models: %v, want ErrModelsDisagree", err)
	}
	if _, err := e.dir.Get(context.Background(), "acme"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("after the refusal acme: %v, want ErrNotFound", err)
	}
}

// A program's shared steps run after tenantry's, in their own schema and
// ledger, once however often they are applied, and InShared reads them.
func TestRegisteredSharedStepsHaveTheirOwnLedger(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	ctx := context.Background()
	dir := e.te.Directory(tenancy.WithApp(notesApp))
	for range 2 {
		if err := dir.ApplyShared(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var own, registry int
	if err := e.ddl.Raw("SELECT count(*) FROM billing.schema_migrations").Scan(&own).Error; err != nil {
		t.Fatal(err)
	}
	if err := e.ddl.Raw("SELECT count(*) FROM tenantry.schema_migrations").Scan(&registry).Error; err != nil {
		t.Fatal(err)
	}
	if own != 3 || registry != migrations.Shared.Latest() {
		t.Fatalf("ledgers: billing %d, tenantry %d; want 3 and %d", own, registry, migrations.Shared.Latest())
	}
	var plans []plan
	if err := dir.InShared(ctx, func(tx *gorm.DB) error { return tx.Order("code").Find(&plans).Error }); err != nil {
		t.Fatal(err)
	}
	if len(plans) != 2 || plans[0].Code != "free" || plans[1].Code != "pro" {
		t.Fatalf("plans = %+v, want the seeded free and pro once each", plans)
	}
}

// A shared schema that could be a tenant's, the registry's or a system
// schema is refused before any SQL, and so is a shared plan whose models
// disagree with its steps.
func TestRegisteredSharedPlanIsChecked(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	ctx := context.Background()
	for _, s := range []string{"t_acme", "tenantry", "public", "pg_catalog", "Billing", `a"b`, "1x"} {
		app := notesApp
		app.SharedSchema = s
		if err := e.te.Directory(tenancy.WithApp(app)).ApplyShared(ctx); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("shared schema %q: %v, want ErrInvalid", s, err)
		}
	}
	bad := notesApp
	bad.Shared.Steps = bad.Shared.Steps[:1]
	if err := e.te.Directory(tenancy.WithApp(bad)).ApplyShared(ctx); !errors.Is(err, migrations.ErrModelsDisagree) {
		t.Fatalf("shared models without their unique index step: %v, want ErrModelsDisagree", err)
	}
	var exists bool
	if err := e.ddl.Raw("SELECT to_regnamespace('billing') IS NOT NULL").Scan(&exists).Error; err != nil || exists {
		t.Fatalf("billing schema exists = %v (%v) after a refused plan; want none", exists, err)
	}
}
