package migrations

import "github.com/tenantry/tenantry/models"

// Items is tenantry's own service's tenant plan, declared as any program
// declares its own (see App): the models that live in every tenant schema
// and the steps that build them. Step 1 is the schema GORM's AutoMigrate
// makes from the models (CaptureBlueprint refuses a plan whose models and
// steps differ); it uses IF NOT EXISTS so schemas onboarded before the
// ledger existed adopt it. Add a step for every model change, and keep the
// models in step with it.
var Items = Plan{
	Models: []any{&models.Item{}},
	Steps: []Step{
		{Version: 1, Name: "items", Up: `
CREATE TABLE IF NOT EXISTS "items" ("id" bigserial,"name" varchar(200) NOT NULL,"description" varchar(2000) NOT NULL DEFAULT '',"created_at" timestamptz,"updated_at" timestamptz,PRIMARY KEY ("id"));
CREATE INDEX IF NOT EXISTS "idx_items_name" ON "items" ("name")`},
	},
}
