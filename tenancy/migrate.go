package tenancy

import (
	"context"
	"errors"
	"fmt"

	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// MigrateOptions select and drive a migration run.
type MigrateOptions struct {
	migrations.Options
	// Tenants limits the run to these names; empty means every tenant
	// whose recorded version differs from the target.
	Tenants []string
}

// Migrate brings tenant schemas to the target version, each in its own
// transaction under its schema's advisory lock, so two runners never
// migrate one schema at once (the second waits, re-reads the ledger and
// finds nothing to do). Without Tenants it selects, with one indexed query,
// the tenants whose recorded version differs from the target: a run with
// nothing to do touches no tenant schema.
func (d *Directory) Migrate(ctx context.Context, o MigrateOptions) ([]migrations.Result, error) {
	if o.Plan.Steps == nil {
		o.Plan = d.plan
	}
	to := o.To
	if to <= 0 || to > o.Plan.Latest() {
		to = o.Plan.Latest()
	}
	var ts []models.Tenant
	q := d.admin.WithContext(ctx).Table(migrations.TenantsTable).Order("name")
	if len(o.Tenants) > 0 {
		q = q.Where("name IN ?", o.Tenants)
	} else {
		q = q.Where("schema_version <> ?", to)
	}
	if err := q.Find(&ts).Error; err != nil {
		return nil, classify(fmt.Errorf("select tenants to migrate: %w", err))
	}
	if len(o.Tenants) > 0 && len(ts) != len(o.Tenants) {
		known := map[string]bool{}
		for _, t := range ts {
			known[t.Name] = true
		}
		for _, n := range o.Tenants {
			if !known[n] {
				return nil, fmt.Errorf("tenant %q: %w", n, models.ErrNotFound)
			}
		}
	}
	targets := make([]migrations.Target, len(ts))
	where := map[string]string{} // schema -> server, for the scope
	for i, t := range ts {
		targets[i] = migrations.Target{Tenant: t.Name, Schema: t.SchemaName, Version: t.SchemaVersion}
		where[t.SchemaName] = t.Server
		if t.Server != HomeServer {
			id := t.ID
			targets[i].Record = func(ctx context.Context, v int) error {
				return d.admin.WithContext(ctx).Table(migrations.TenantsTable).Where("id = ?", id).
					Update("schema_version", v).Error
			}
		}
	}
	scope := func(ctx context.Context, schema string, fn func(tx *gorm.DB) error) error {
		admin, err := d.pool(ctx, where[schema], true)
		if err != nil {
			return err
		}
		return migrationScope(ctx, admin, schema, fn)
	}
	results := migrations.Run(ctx, targets, scope, o.Options)
	for _, t := range ts {
		d.Forget(t.Name)
	}
	return results, nil
}

// migrationScope pins a schema with DDL limits and takes its lock. The
// lock waits without lock_timeout (a second runner waits for the first to
// finish the schema, then finds nothing to do), bounded by the
// transaction's statement_timeout; DDL after it keeps lock_timeout, so a
// step never queues long behind a request's locks.
func migrationScope(ctx context.Context, admin *gorm.DB, schema string, fn func(tx *gorm.DB) error) error {
	return InSchema(ctx, admin, schema, DDLLimits, func(tx *gorm.DB) error {
		// One round trip; the schema name is validated, so it may be inlined.
		err := tx.Exec(fmt.Sprintf(`SELECT set_config('lock_timeout', '0', true);
SELECT pg_advisory_xact_lock(%d, hashtext('%s'));
SELECT set_config('lock_timeout', '%s', true)`, lockClass, schema, ms(DDLLimits.Lock))).Error
		if err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		return fn(tx)
	})
}

// SchemaStatus is one tenant's migration state.
type SchemaStatus struct {
	Tenant string `json:"tenant"`
	Schema string `json:"schema"`
	// Version is what the schema's ledger says; Recorded what the
	// registry says.
	Version  int   `json:"version"`
	Recorded int   `json:"recorded"`
	Pending  []int `json:"pending,omitempty"`
	// Drift is set when the schema's tables differ from what its version
	// should look like, or the ledger cannot be trusted.
	Drift string `json:"drift,omitempty"`
}

// Status reads every tenant's ledger and compares each schema's shape with
// a reference schema built at the same version (by replaying the plan's
// steps in a scratch schema that is rolled back).
func (d *Directory) Status(ctx context.Context) ([]SchemaStatus, error) {
	ts, err := d.List(ctx)
	if err != nil {
		return nil, err
	}
	refs := map[int]string{}
	out := make([]SchemaStatus, 0, len(ts))
	for _, t := range ts {
		st := SchemaStatus{Tenant: t.Name, Schema: t.SchemaName, Recorded: t.SchemaVersion}
		var fp string
		admin, err := d.pool(ctx, t.Server, true)
		if err != nil {
			st.Drift = "unreadable: " + err.Error()
			out = append(out, st)
			continue
		}
		err = InSchema(ctx, admin, t.SchemaName, DDLLimits, func(tx *gorm.DB) error {
			v, err := migrations.Version(tx, d.plan)
			if err != nil {
				return err
			}
			st.Version = v
			fp, err = migrations.Fingerprint(tx, t.SchemaName)
			return err
		})
		if err != nil {
			st.Drift = "unreadable: " + err.Error()
			out = append(out, st)
			continue
		}
		for _, s := range d.plan.Pending(st.Version, d.plan.Latest()) {
			st.Pending = append(st.Pending, s.Version)
		}
		ref, ok := refs[st.Version]
		if !ok {
			if ref, err = d.reference(ctx, st.Version); err != nil {
				return nil, err
			}
			refs[st.Version] = ref
		}
		switch {
		case fp != ref:
			st.Drift = "tables differ from version " + fmt.Sprint(st.Version)
		case st.Recorded != st.Version:
			st.Drift = fmt.Sprintf("registry records version %d", st.Recorded)
		}
		out = append(out, st)
	}
	return out, nil
}

var errReference = errors.New("reference built")

// scratchPin creates a scratch schema in tx and pins tx to it, for the
// drift check's reference and the blueprint capture, with the one pin
// builder. Scratch names are longer than any derived tenant schema (at most
// 50 bytes), so no tenant can own one.
func scratchPin(tx *gorm.DB, schema string) error {
	if len(schema) <= len(schemaPrefix)+MaxNameLen {
		return fmt.Errorf("tenancy: scratch schema %q could be a tenant's: %w", schema, models.ErrInvalid)
	}
	sel, err := pinSQL(pinSpec{Schema: schema, Limits: DDLLimits})
	if err != nil {
		return err
	}
	return execEach(tx, localSchemaSQL+";\nCREATE SCHEMA "+quoteIdent(schema)+";\n"+sel)
}

// referenceSchema is longer than any derived schema name (at most 50
// bytes), so no tenant can own it; it exists only inside the rolled-back
// transaction of reference.
const referenceSchema = "t_tenantry_reference_schema_for_drift_checks_only_here"

// reference fingerprints a scratch schema migrated from empty to version;
// version 0 is an empty schema, without even a ledger.
func (d *Directory) reference(ctx context.Context, version int) (string, error) {
	if version == 0 {
		return "", nil
	}
	const scratch = referenceSchema
	var fp string
	err := d.admin.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := scratchPin(tx, scratch); err != nil {
			return err
		}
		if _, _, err := migrations.Upgrade(tx, d.plan, version); err != nil {
			return err
		}
		var err error
		if fp, err = migrations.Fingerprint(tx, scratch); err != nil {
			return err
		}
		return errReference
	})
	if !errors.Is(err, errReference) {
		return "", fmt.Errorf("reference schema at version %d: %w", version, err)
	}
	return fp, nil
}
