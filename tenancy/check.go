package tenancy

import (
	"context"
	"fmt"

	"github.com/tenantry/tenantry/migrations"
	"gorm.io/gorm"
)

// RoleWarnings says what about the connected database weakens isolation
// without breaking it: connections that do not start with an empty
// search_path, and tenant-named tables in public (a search_path bug
// elsewhere could find them). serve logs each warning at start-up. What
// about the request role could cross the tenant boundary is
// CheckRequestRole's job.
func RoleWarnings(ctx context.Context, db *gorm.DB) ([]string, error) {
	var r struct {
		Role        string
		PublicItems bool
		Path        string
	}
	err := db.WithContext(ctx).Raw(`SELECT current_user AS role,
		to_regclass('public.items') IS NOT NULL AS public_items, current_setting('search_path') AS path`).Scan(&r).Error
	if err != nil {
		return nil, fmt.Errorf("inspect database role: %w", err)
	}
	var w []string
	// A path set to '' reads back as "" (an empty identifier, which no
	// schema can have): as empty as the startup parameter's true "".
	if r.Path != "" && r.Path != `""` {
		// Open asks for an empty search_path at connect; a pooler that
		// drops startup parameters (PgBouncer's ignore_startup_parameters)
		// loses it, and queries that escape a scope find public again.
		w = append(w, fmt.Sprintf("connections start with search_path %q, not empty (a pooler dropped the startup parameter?); run ALTER ROLE %q SET search_path = ''", r.Path, r.Role))
	}
	if r.PublicItems {
		w = append(w, "schema public holds a table named items, like the tenant tables; no scope reads it, but remove it")
	}
	return w, nil
}

// Finding is one thing CheckRequestRole found about the request role.
type Finding struct {
	// Crosses is set when the role could reach another tenant's data
	// (or its own outside a scope) without SQL injection, or could undo
	// the role switch; serve refuses to start then, outside dev mode.
	Crosses bool
	// Message names the privilege and the exact fix.
	Message string
}

func (f Finding) String() string { return f.Message }

// CheckRequestRole inspects the role db logs in as, the role requests run
// as. separate says whether a DDL role of its own does onboarding and
// migrations (MIGRATION_DATABASE_URL); without one, the request role owns
// the tenant schemas and can create roles, which SECURITY.md accepts for the
// simple setup with a warning. The checks are of effect, not of shape: a
// role that can use any tenant schema outside a scope is refused however it
// got there (ownership, a direct grant, pg_read_all_data, inheritance).
func CheckRequestRole(ctx context.Context, db *gorm.DB, dir *Directory, separate bool) ([]Finding, error) {
	group, err := dir.groupRole(ctx)
	if err != nil {
		return nil, err
	}
	var r struct {
		Attrs     roleAttrs `gorm:"embedded"` // a named field: GORM skips unexported embedded ones
		Member    bool
		Reachable int64
		Schemas   int64
		Registry  bool
	}
	err = db.WithContext(ctx).Raw(`SELECT `+roleAttrsColumns+`,
		pg_has_role(current_user, $1, 'MEMBER') AS member,
		(SELECT count(*) FROM `+migrations.TenantsTable+` t JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema_name
			WHERE has_schema_privilege(current_user, n.oid, 'USAGE')) AS reachable,
		(SELECT count(*) FROM `+migrations.TenantsTable+`) AS schemas,
		has_table_privilege(current_user, '`+migrations.TenantsTable+`', 'INSERT, UPDATE, DELETE, TRUNCATE') AS registry
		FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`, group).Scan(&r).Error
	if err != nil {
		return nil, fmt.Errorf("inspect the request role: %w", err)
	}
	q := quoteIdent(r.Attrs.Role)
	var f []Finding
	add := func(crosses bool, format string, args ...any) {
		f = append(f, Finding{Crosses: crosses, Message: fmt.Sprintf(format, args...)})
	}
	if r.Attrs.Super {
		add(true, "request role %s is a SUPERUSER, which ignores every grant and can RESET ROLE to anything: connect DATABASE_URL as a role without it (ALTER ROLE %s NOSUPERUSER, or a new LOGIN role; SECURITY.md)", q, q)
	}
	checkBypassRLS(add, r.Attrs)
	if !r.Member && !r.Attrs.Super {
		add(true, "request role %s is not a member of the deployment's group role %s, so scopes cannot switch to tenant roles: run tenantry migrate with MIGRATION_DATABASE_URL set, or GRANT %s TO %s", q, quoteIdent(group), quoteIdent(group), q)
	}
	if !separate {
		add(false, "request role %s is also the DDL role (no MIGRATION_DATABASE_URL): it owns the tenant schemas and can create roles, so inside a scope the role switch holds, but SQL injected past the API could RESET ROLE and reach every tenant; set MIGRATION_DATABASE_URL to a separate DDL role (SECURITY.md)", q)
		return f, nil
	}
	checkSeparateRole(add, r.Attrs)
	if r.Reachable > 0 && !r.Attrs.Super {
		add(true, "request role %s can use %d of %d tenant schemas outside a scope (it owns them, was granted them, or inherits pg_read_all_data): the schemas must belong to the DDL role (ALTER SCHEMA ... OWNER TO the MIGRATION_DATABASE_URL role) and the role must hold no grants on them (REVOKE ALL ON SCHEMA ... FROM %s)", q, r.Reachable, r.Schemas, q)
	}
	if r.Registry && !r.Attrs.Super {
		add(true, "request role %s can change the tenant registry, and so point its tenant at another tenant's schema or role: run REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %s FROM %s, and let it own nothing in schema %s", q, migrations.TenantsTable, q, migrations.SharedSchema)
	}
	return f, nil
}
