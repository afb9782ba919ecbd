package tenancy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// WithApp makes the directory serve, onboard and migrate tenants with the
// program's tenant plan (app.Tenant: its models and steps), and apply its
// shared plan in ApplyShared. Without it a directory serves tenantry's own
// service (migrations.Tenantry).
func WithApp(app migrations.App) Option {
	return func(d *Directory) { d.app, d.plan = app, app.Tenant }
}

// App returns what the directory's program declared (WithApp).
func (d *Directory) App() migrations.App { return d.app }

// appLockKey serialises the program's shared migrations across instances
// that start together (an arbitrary constant, "tapp" in ASCII).
const appLockKey = 0x74617070

// ApplyShared brings the shared schemas up to date, as the DDL role:
// tenantry's registry first (migrations.ApplyShared), then the program's
// shared plan in its own schema and ledger. It is idempotent and safe to
// run from instances that start together. A shared plan whose models and
// steps disagree is refused before anything of it runs.
func (d *Directory) ApplyShared(ctx context.Context) error {
	if err := migrations.ApplyShared(ctx, d.admin); err != nil {
		return classify(err)
	}
	p := d.app.Shared
	if len(p.Steps) == 0 {
		return nil
	}
	schema := d.app.Schema()
	if !validAppSchema(schema) {
		return fmt.Errorf("tenancy: shared schema %q: %w: %w", schema, errAppSchema, models.ErrInvalid)
	}
	if len(p.Models) > 0 {
		if _, err := migrations.CaptureBlueprint(ctx, d.admin, p, scratchPin); err != nil {
			return classify(fmt.Errorf("shared plan: %w", err))
		}
	}
	err := d.admin.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SELECT pg_advisory_xact_lock($1)", appLockKey).Error; err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		// Like the registry, the program's shared tables stay on a Citus
		// coordinator, outside the tenant distribution (citus.go).
		if err := execEach(tx, localSchemaSQL+";\nCREATE SCHEMA IF NOT EXISTS "+quoteIdent(schema)+";\n"+appPinSQL(schema, DDLLimits)); err != nil {
			return err
		}
		_, _, err := migrations.MigrateTo(tx, p, p.Latest())
		return err
	})
	if err != nil {
		return classify(fmt.Errorf("shared schema %s: %w", schema, err))
	}
	return nil
}

// InShared runs fn in one transaction pinned to the program's shared
// schema, as the DDL role (the owner of the shared tables), with
// RequestLimits. It is for data every tenant shares (plans, a catalogue);
// tenant data is only ever reached through WithTx.
func (d *Directory) InShared(ctx context.Context, fn func(tx *gorm.DB) error) error {
	schema := d.app.Schema()
	if !validAppSchema(schema) {
		return fmt.Errorf("tenancy: shared schema %q: %w: %w", schema, errAppSchema, models.ErrInvalid)
	}
	if ctx.Value(scopeKey{}) != nil {
		return ErrNested
	}
	err := d.admin.WithContext(context.WithValue(ctx, scopeKey{}, schema)).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(appPinSQL(schema, RequestLimits)).Error; err != nil {
			return err
		}
		return fn(tx)
	})
	return classify(err)
}

// errAppSchema explains what a program's shared schema may be called.
var errAppSchema = errors.New("a shared schema is a lower-case identifier that is neither a tenant's (t_...), the registry's, public, nor a system schema")

// validAppSchema reports whether s may name a program's shared schema: a
// plain lower-case identifier that no tenant schema (t_...), tenantry's
// registry schema or a system schema can be.
func validAppSchema(s string) bool {
	if s == "" || len(s) > maxIdentifier || s == migrations.SharedSchema || s == "public" || s == "information_schema" ||
		strings.HasPrefix(s, schemaPrefix) || strings.HasPrefix(s, "pg_") || !(s[0] >= 'a' && s[0] <= 'z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Setup readies a database for the directory's program, idempotently: the
// shared migrations (ApplyShared), then the roles (EnsureRoles) of the
// request role, the role the directory's own handle logs in as. A program
// runs it at start or in its migrate command, before it onboards or
// serves tenants.
func (d *Directory) Setup(ctx context.Context) error {
	if err := d.ApplyShared(ctx); err != nil {
		return err
	}
	var role string
	if err := d.db.WithContext(ctx).Raw("SELECT current_user").Scan(&role).Error; err != nil {
		return classify(fmt.Errorf("request role: %w", err))
	}
	return d.EnsureRoles(ctx, role)
}
