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

// FormerFingerprintSQL is the drift check's per-schema query as it was
// before the fleet query ($1 the quoted schema name, $2 the bare one): the
// fleet tests check that the fleet query sees what it saw, and fleetbench
// times it as the baseline. It filters on the namespace, which no catalog
// index covers, so each call scans pg_class and pg_constraint whole.
const FormerFingerprintSQL = `
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
	SELECT 'table ' || c.relname || ' ' || c.relkind::text AS line
	FROM pg_class c WHERE c.relnamespace = to_regnamespace($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
	UNION ALL
	SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
		|| CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
		|| coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
		|| CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
	FROM pg_attribute a
	JOIN pg_class c ON c.oid = a.attrelid
	LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	WHERE c.relnamespace = to_regnamespace($1) AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = $2
	UNION ALL
	SELECT 'constraint ' || c.relname || '.' || k.conname || ' ' || pg_get_constraintdef(k.oid)
	FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
	WHERE k.connamespace = to_regnamespace($1)
) lines`
