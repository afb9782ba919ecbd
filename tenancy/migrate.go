package tenancy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// This file is what a fleet run (package fleet) asks of the directory: the
// directory decides which handle a tenant's schema is reached through and
// how it is pinned, and it alone writes the registry.

// MigrateSchema runs fn in t's schema, on t's server, as the DDL role with
// DDL limits, holding the schema's migration lock, so two runners never
// migrate one schema at once (the second waits, then finds nothing to do).
// fn returns the version the schema has when it is done, and the registry
// records it: in the same transaction when the registry shares the
// tenant's server, so the two never disagree once committed; otherwise
// right after the schema's transaction committed (if that fails, the
// registry lags the ledger, migrate status says so, and the next run
// repairs it). An error from fn rolls the schema back and is returned as
// is. The tenant's cached row is evicted either way.
func (d *Directory) MigrateSchema(ctx context.Context, t models.Tenant, fn func(tx *gorm.DB) (int, error)) error {
	defer d.Forget(t.Name)
	admin, err := d.pool(ctx, t.Server, true)
	if err != nil {
		return err
	}
	home := t.Server == HomeServer
	version := 0
	err = migrationScope(ctx, admin, t.SchemaName, func(tx *gorm.DB) error {
		v, err := fn(tx)
		if err != nil {
			return err
		}
		version = v
		if !home {
			return nil
		}
		if err := tx.Exec("UPDATE "+migrations.TenantsTable+" SET schema_version = $1 WHERE schema_name = $2", v, t.SchemaName).Error; err != nil {
			return fmt.Errorf("record version: %w", err)
		}
		return nil
	})
	if err != nil || home {
		return err
	}
	if err := d.recordVersion(ctx, t.ID, version); err != nil {
		return fmt.Errorf("record version: %w", err)
	}
	return nil
}

// recordAttempts and recordWait bound recording a migrated remote schema's
// version in the registry: the schema committed already, so a brief
// registry fault (a failover, a lock timeout) or the run being interrupted
// at that moment would leave the registry behind the ledger, and the
// tenant answered 503 (ErrBehind) until the next run. Three tries over at
// most 30 s, the bound of the other after-commit registry writes, ride out
// a blip without holding a run long.
const (
	recordAttempts = 3
	recordWait     = 30 * time.Second
	recordPause    = 250 * time.Millisecond
)

// recordVersion writes tenant id's schema version in the registry after its
// schema, on another server, committed the migration. It outlives the
// run's cancellation (bounded by recordWait), and retries.
func (d *Directory) recordVersion(ctx context.Context, id int64, v int) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordWait)
	defer cancel()
	var err error
	for i := 0; i < recordAttempts; i++ {
		if i > 0 {
			select {
			case <-time.After(recordPause):
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			}
		}
		if err = d.admin.WithContext(ctx).Table(migrations.TenantsTable).Where("id = ?", id).
			Update("schema_version", v).Error; err == nil {
			return nil
		}
	}
	return classify(err)
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

// SchemaVersion reads the version of t's schema, on t's server, from the
// schema's own ledger (0 when it has none), refusing edited or unknown
// steps. It takes no lock: a check does not wait for a running migration.
func (d *Directory) SchemaVersion(ctx context.Context, t models.Tenant) (int, error) {
	admin, err := d.pool(ctx, t.Server, true)
	if err != nil {
		return 0, err
	}
	var v int
	err = InSchema(ctx, admin, t.SchemaName, DDLLimits, func(tx *gorm.DB) error {
		var err error
		v, err = migrations.Version(tx, d.plan)
		return err
	})
	return v, err
}

// Fingerprints returns the shape of each tenant's schema
// (migrations.Fingerprints), keyed by schema name, from one catalog query
// per server for all of its tenants. A server that cannot be read leaves
// its tenants out of the shapes and in unreadable, with the reason, so the
// others are still checked.
func (d *Directory) Fingerprints(ctx context.Context, ts []models.Tenant) (shapes map[string]string, unreadable map[string]error, err error) {
	byServer := map[string][]string{}
	for _, t := range ts {
		if !validSchema(t.SchemaName) {
			return nil, nil, fmt.Errorf("tenancy: schema %q: %w", t.SchemaName, models.ErrInvalid)
		}
		byServer[t.Server] = append(byServer[t.Server], t.SchemaName)
	}
	shapes, unreadable = make(map[string]string, len(ts)), map[string]error{}
	for server, schemas := range byServer {
		var fps map[string]string
		admin, err := d.pool(ctx, server, true)
		if err == nil {
			err = admin.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				// An empty search_path (pg_catalog only) prints every other name
				// schema-qualified, as a scope pinned to one tenant schema does,
				// so these fingerprints equal the ones taken inside a scope.
				if err := tx.Exec("SELECT set_config('search_path', '', true), set_config('statement_timeout', $1, true)",
					ms(DDLLimits.Statement)).Error; err != nil {
					return err
				}
				var err error
				fps, err = migrations.Fingerprints(tx, schemas)
				return err
			})
		}
		if err != nil {
			err = classify(fmt.Errorf("fingerprint the schemas on server %q: %w", server, err))
			for _, s := range schemas {
				unreadable[s] = err
			}
			continue
		}
		for s, fp := range fps {
			shapes[s] = fp
		}
	}
	return shapes, unreadable, nil
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
// transaction of ReferenceFingerprint.
const referenceSchema = "t_tenantry_reference_schema_for_drift_checks_only_here"

// ReferenceFingerprint is the fingerprint a schema at version should have:
// that of a scratch schema migrated from empty to version by the plan's
// steps, in a transaction rolled back afterwards. Version 0 is an empty
// schema, without even a ledger.
func (d *Directory) ReferenceFingerprint(ctx context.Context, version int) (string, error) {
	if version == 0 {
		return "", nil
	}
	const scratch = referenceSchema
	var fp string
	err := d.admin.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := scratchPin(tx, scratch); err != nil {
			return err
		}
		if _, _, err := migrations.MigrateTo(tx, d.plan, version); err != nil {
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
