package fleet_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/tenantry/tenantry/fleet"
	"github.com/tenantry/tenantry/internal/pgtest"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// Note is a program's own tenant-scoped model.
type Note struct {
	ID        int64  `gorm:"primaryKey"`
	Body      string `gorm:"size:500;not null"`
	CreatedAt time.Time
}

// notes declares the program: its tenant models and the steps that build
// them.
var notes = migrations.App{Tenant: migrations.Plan{
	Models: []any{&Note{}},
	Steps: []migrations.Step{{Version: 1, Name: "notes", Up: `
CREATE TABLE "notes" ("id" bigserial,"body" varchar(500) NOT NULL,"created_at" timestamptz,PRIMARY KEY ("id"))`}},
}}

// databaseURL returns a fresh database on the test server; a program reads
// its own (DATABASE_URL, say).
func databaseURL() string {
	url, err := pgtest.Scratch()
	if err != nil {
		log.Fatal(err)
	}
	return url
}

// Migrate every tenant to a new version of the program: a step that adds
// a column (with Go code that backfills it) and the model that has it.
func ExampleMigrate() {
	ctx := context.Background()
	db, err := tenancy.Open(ctx, databaseURL(), tenancy.DefaultPool)
	if err != nil {
		log.Fatal(err)
	}
	dir := tenancy.NewDirectory(db, tenancy.WithApp(notes))
	if err := dir.Setup(ctx); err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{"acme", "globex"} {
		if _, err := dir.Onboard(ctx, name); err != nil {
			log.Fatal(err)
		}
	}
	type Note struct { // version 2 of the model
		ID        int64  `gorm:"primaryKey"`
		Body      string `gorm:"size:500;not null"`
		Pinned    bool   `gorm:"not null;default:false"`
		CreatedAt time.Time
	}
	v2 := notes
	v2.Tenant = migrations.Plan{Models: []any{&Note{}}, Steps: append(notes.Tenant.Steps[:1:1], migrations.Step{
		Version: 2, Name: "pinned notes",
		Up: `ALTER TABLE "notes" ADD COLUMN "pinned" boolean NOT NULL DEFAULT false`,
		Go: func(tx *gorm.DB) error {
			return tx.Exec(`UPDATE "notes" SET "pinned" = true WHERE "body" LIKE '!%'`).Error
		},
	})}
	sum, err := fleet.Migrate(ctx, tenancy.NewDirectory(db, tenancy.WithApp(v2)), fleet.Options{Concurrency: 2})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range sum.Results {
		fmt.Println(r.Tenant, r.From, "->", r.To, r.Err)
	}
	fmt.Printf("%d tenants: %d migrated, %d current, %d failed\n", sum.Tenants, sum.Migrated, sum.Current, sum.Failed)
	// Output:
	// acme 1 -> 2 <nil>
	// globex 1 -> 2 <nil>
	// 2 tenants: 2 migrated, 0 current, 0 failed
}
