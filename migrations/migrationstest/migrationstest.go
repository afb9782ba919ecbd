// Package migrationstest holds migration steps for tests and benchmarks of
// the migration machinery; none of them ships in a real plan.
package migrationstest

import (
	"slices"

	"github.com/tenantry/tenantry/migrations"
)

// SKUStep is a realistic evolution of the tenant schema: add a column,
// backfill it, index it; with the Down SQL that undoes it. It is
// Compatible: the shipped models do not read the column.
var SKUStep = migrations.Step{Version: 2, Name: "item sku",
	Up: `ALTER TABLE items ADD COLUMN sku varchar(32);
UPDATE items SET sku = 'SKU-' || id;
CREATE INDEX idx_items_sku ON items (sku)`,
	Down:       `DROP INDEX idx_items_sku; ALTER TABLE items DROP COLUMN sku`,
	Compatible: true,
}

// PlanWith returns the shipped tenant plan followed by steps.
func PlanWith(steps ...migrations.Step) migrations.Plan {
	return migrations.Plan{Models: migrations.Items.Models, Steps: append(slices.Clone(migrations.Items.Steps), steps...)}
}
