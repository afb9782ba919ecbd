package tenancy_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/tenantry/tenantry/internal/pgtest"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// Note is a program's own tenant-scoped model: it names no schema, and
// reads and writes the notes table of whichever tenant the scope pinned.
type Note struct {
	ID        int64  `gorm:"primaryKey"`
	Body      string `gorm:"size:500;not null"`
	CreatedAt time.Time
}

// notes declares the program: its tenant models and the steps that build
// them. The steps are what GORM's AutoMigrate of the models would make;
// onboarding refuses a declaration where the two differ.
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

// openNotes opens a directory for the notes program on a fresh database,
// ready to onboard.
func openNotes(ctx context.Context, app migrations.App) *tenancy.Directory {
	db, err := tenancy.Open(ctx, databaseURL(), tenancy.DefaultPool)
	if err != nil {
		log.Fatal(err)
	}
	dir := tenancy.NewDirectory(db, tenancy.WithApp(app))
	if err := dir.Setup(ctx); err != nil {
		log.Fatal(err)
	}
	return dir
}

// Open a database and ready it for a program's own models.
func ExampleOpen() {
	ctx := context.Background()
	db, err := tenancy.Open(ctx, databaseURL(), tenancy.DefaultPool)
	if err != nil {
		log.Fatal(err)
	}
	dir := tenancy.NewDirectory(db, tenancy.WithApp(notes))
	// The registry, the program's shared steps, the request role's roles.
	if err := dir.Setup(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("tenant plan at version", dir.Plan().Latest())
	// Output: tenant plan at version 1
}

// Onboard a tenant: its schema, its tables and its registry row appear
// together.
func ExampleDirectory_Onboard() {
	ctx := context.Background()
	dir := openNotes(ctx, notes)
	t, err := dir.Onboard(ctx, "acme")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Name, t.SchemaName, t.SchemaVersion)
	// Output: acme t_acme 1
}

// Run queries in one tenant's scope: resolve the tenant through the
// directory, then every query inside fn reaches that tenant's tables only.
func ExampleWithTx() {
	ctx := context.Background()
	dir := openNotes(ctx, notes)
	for _, name := range []string{"acme", "globex"} {
		if _, err := dir.Onboard(ctx, name); err != nil {
			log.Fatal(err)
		}
	}
	acme, err := dir.Active(ctx, "acme")
	if err != nil {
		log.Fatal(err)
	}
	err = tenancy.WithTx(ctx, acme, func(tx *gorm.DB) error {
		return tx.Create(&Note{Body: "call back"}).Error
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{"acme", "globex"} {
		t, err := dir.Active(ctx, name)
		if err != nil {
			log.Fatal(err)
		}
		var n int64
		if err := tenancy.WithTx(ctx, t, func(tx *gorm.DB) error { return tx.Model(&Note{}).Count(&n).Error }); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s has %d note(s)\n", name, n)
	}
	// Output:
	// acme has 1 note(s)
	// globex has 0 note(s)
}
