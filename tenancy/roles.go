package tenancy

import (
	"context"
	"fmt"
	"strings"

	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// A tenant's roles (see RolesFor) hold USAGE on its schema and DML on its
// tables and sequences, nothing else: no CREATE, no access to the registry,
// to public's tables or to any other schema. Scopes switch to them LOCAL.
// The request role reaches them through the deployment's group role, which
// is NOINHERIT, so outside a scope the request role holds none of their
// privileges.

// tenantRolesSQL grants a tenant schema's roles their privileges; with
// create it makes the roles first, and with existing it also grants on the
// tables and sequences already in the schema. GRANT ... ON ALL TABLES IN
// SCHEMA finds them by scanning the whole of pg_class (there is no index
// on the namespace alone): measured at 10,000 tenants it took 283-485 ms of
// an onboarding that otherwise takes tens of milliseconds, so onboarding
// runs this before it makes the tables (existing false) and lets the
// default privileges cover them. ALTER DEFAULT PRIVILEGES covers tables
// that later migrations add (default privileges apply to objects the role
// running the DDL creates, so onboarding and migrations must run as the same
// DDL role: SECURITY.md). The migration ledger stays the owner's: a tenant
// scope cannot rewrite its own schema history.
func tenantRolesSQL(schema string, r TenantRoles, group string, create, existing bool) (string, error) {
	if !validSchema(schema) || !validRole(r.Write) || !validRole(r.Read) || !validRole(group) {
		return "", fmt.Errorf("tenancy: roles of %q: %w", schema, models.ErrInvalid)
	}
	s, w, rd, g := quoteIdent(schema), quoteIdent(r.Write), quoteIdent(r.Read), quoteIdent(group)
	var b strings.Builder
	if create {
		// NOINHERIT: a tenant role never passes privileges on, should one
		// ever be granted another role.
		fmt.Fprintf(&b, "CREATE ROLE %s NOLOGIN NOINHERIT;\nCREATE ROLE %s NOLOGIN NOINHERIT;\n", w, rd)
	}
	fmt.Fprintf(&b, `GRANT %[2]s, %[3]s TO %[4]s;
GRANT USAGE ON SCHEMA %[1]s TO %[2]s, %[3]s;
`, s, w, rd, g)
	if existing {
		fmt.Fprintf(&b, `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %[1]s TO %[2]s;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %[1]s TO %[2]s;
GRANT SELECT ON ALL TABLES IN SCHEMA %[1]s TO %[3]s;
`, s, w, rd)
	}
	fmt.Fprintf(&b, `ALTER DEFAULT PRIVILEGES IN SCHEMA %[1]s GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %[2]s;
ALTER DEFAULT PRIVILEGES IN SCHEMA %[1]s GRANT USAGE, SELECT ON SEQUENCES TO %[2]s;
ALTER DEFAULT PRIVILEGES IN SCHEMA %[1]s GRANT SELECT ON TABLES TO %[3]s`, s, w, rd)
	return b.String(), nil
}

// revokeLedgerSQL takes the ledger back from the tenant roles after a
// GRANT ... ON ALL TABLES gave it to them.
func revokeLedgerSQL(schema string, r TenantRoles) string {
	return "REVOKE ALL ON TABLE " + quoteIdent(schema) + "." + quoteIdent(migrations.TenantLedger) +
		" FROM " + quoteIdent(r.Write) + ", " + quoteIdent(r.Read)
}

// dropRolesSQL drops a tenant's roles. It runs after DROP SCHEMA ...
// CASCADE, which took every privilege they held in this database with it
// (their default privileges depend on the schema too); their membership in
// the group role goes with them.
func dropRolesSQL(r TenantRoles) string {
	return "DROP ROLE IF EXISTS " + quoteIdent(r.Write) + ", " + quoteIdent(r.Read)
}

// Deployment returns this database's deployment id, which the shared
// migration created; it never changes, so it is read once.
func (d *Directory) Deployment(ctx context.Context) (string, error) {
	d.depMu.Lock()
	defer d.depMu.Unlock()
	if d.dep != "" {
		return d.dep, nil
	}
	var dep string
	if err := d.admin.WithContext(ctx).Raw("SELECT id FROM " + migrations.DeploymentTable).Scan(&dep).Error; err != nil {
		return "", classify(fmt.Errorf("read deployment id: %w", err))
	}
	if !validDeployment(dep) {
		return "", fmt.Errorf("deployment id %q: %w (is the shared schema migrated?)", dep, models.ErrUnavailable)
	}
	d.dep = dep
	return dep, nil
}

// groupRole is the deployment's group role (GroupRole of Deployment).
func (d *Directory) groupRole(ctx context.Context) (string, error) {
	dep, err := d.Deployment(ctx)
	if err != nil {
		return "", err
	}
	return GroupRole(dep)
}

// EnsureRoles readies the roles of a deployment, idempotently, through the
// DDL handle: the request role gets the group role (so scopes may switch to
// tenant roles) and SELECT on the registry, and every tenant onboarded
// before tenant roles existed gets its roles, each in its own transaction
// under its schema's lock. `tenantry migrate` runs it. requestRole is the
// role DATABASE_URL logs in as; when it is the DDL role itself (one URL),
// it owns the registry already and only joins the group.
func (d *Directory) EnsureRoles(ctx context.Context, requestRole string) error {
	if requestRole == "" || len(requestRole) > maxIdentifier || strings.ContainsRune(requestRole, 0) {
		return fmt.Errorf("request role %q: %w", requestRole, models.ErrInvalid)
	}
	dep, err := d.Deployment(ctx)
	if err != nil {
		return err
	}
	group, err := GroupRole(dep)
	if err != nil {
		return err
	}
	req := quoteIdent(requestRole)
	err = d.admin.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := setLimits(tx, DDLLimits); err != nil {
			return err
		}
		var self bool
		if err := tx.Raw("SELECT current_user = $1", requestRole).Scan(&self).Error; err != nil {
			return err
		}
		grants := "GRANT " + quoteIdent(group) + " TO " + req
		if !self {
			grants += ";\nGRANT USAGE ON SCHEMA " + quoteIdent(migrations.SharedSchema) + " TO " + req +
				";\nGRANT SELECT ON " + migrations.TenantsTable + ", " + migrations.DeploymentTable + " TO " + req
		}
		return execEach(tx, grants)
	})
	if err != nil {
		return classify(fmt.Errorf("grant the request role %q: %w", requestRole, err))
	}
	var todo []models.Tenant
	if err := d.admin.WithContext(ctx).Table(migrations.TenantsTable).Where("db_role = '' OR db_role_read = ''").
		Order("name").Find(&todo).Error; err != nil {
		return classify(fmt.Errorf("select tenants without roles: %w", err))
	}
	for _, t := range todo {
		if err := d.backfillRoles(ctx, dep, group, t); err != nil {
			return err
		}
		d.Forget(t.Name)
	}
	if err := d.renameNamedRoles(ctx, dep); err != nil {
		return err
	}
	return d.ensureWorkerLogins(ctx)
}

// renameNamedRoles renames roles made when tenant roles were named after
// the tenant (tr<dep>_w_<name>) to the id form RolesFor derives: a stale
// cached row names the same role-by-name as the successor's, so that form
// did not stop an old incarnation's token. ALTER ROLE ... RENAME keeps the
// role's grants and memberships (they hang on its OID). Until renamed, such
// a tenant is refused like one without roles (ErrNoRole).
func (d *Directory) renameNamedRoles(ctx context.Context, dep string) error {
	var todo []models.Tenant
	if err := d.admin.WithContext(ctx).Table(migrations.TenantsTable).
		Where("db_role LIKE ? OR db_role_read LIKE ?", rolePrefix+dep+`\__\_%`, rolePrefix+dep+`\__\_%`).
		Order("name").Find(&todo).Error; err != nil {
		return classify(fmt.Errorf("select tenants with name-derived roles: %w", err))
	}
	for _, t := range todo {
		r, err := RolesFor(dep, t.ID)
		if err != nil {
			return err
		}
		var sql []string
		for _, p := range [][2]string{{t.DBRole, r.Write}, {t.DBRoleRead, r.Read}} {
			if p[0] == p[1] {
				continue
			}
			if !nameDerivedRole(dep, p[0]) {
				return fmt.Errorf("tenant %q: role %q is not one this service made: %w", t.Name, p[0], models.ErrInvalid)
			}
			sql = append(sql, "ALTER ROLE "+quoteIdent(p[0])+" RENAME TO "+quoteIdent(p[1]))
		}
		err = d.admin.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := setLimits(tx, DDLLimits); err != nil {
				return err
			}
			if err := lockSchema(tx, t.SchemaName); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
			res := tx.Table(migrations.TenantsTable).Where("id = ? AND db_role = ? AND db_role_read = ?", t.ID, t.DBRole, t.DBRoleRead).
				Updates(map[string]any{"db_role": r.Write, "db_role_read": r.Read})
			if res.Error != nil || res.RowsAffected == 0 {
				return res.Error // another runner renamed them while this one waited
			}
			return execEach(tx, strings.Join(sql, ";\n"))
		})
		if err != nil {
			return classify(fmt.Errorf("rename roles of tenant %q: %w", t.Name, err))
		}
		d.Forget(t.Name)
	}
	return nil
}

// nameDerivedRole reports whether r has the form tenant roles had when
// they were named after the tenant's schema: tr<dep>_w_<name> or
// tr<dep>_r_<name>.
func nameDerivedRole(dep, r string) bool {
	for _, kind := range []string{"_w_", "_r_"} {
		if rest, ok := strings.CutPrefix(r, rolePrefix+dep+kind); ok && len(r) <= maxIdentifier {
			return validSchema(schemaPrefix + rest)
		}
	}
	return false
}

// backfillRoles gives one tenant onboarded before roles existed its roles.
func (d *Directory) backfillRoles(ctx context.Context, dep, group string, t models.Tenant) error {
	r, err := RolesFor(dep, t.ID)
	if err != nil {
		return err
	}
	grants, err := tenantRolesSQL(t.SchemaName, r, group, true, true)
	if err != nil {
		return err
	}
	err = d.admin.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := setLimits(tx, DDLLimits); err != nil {
			return err
		}
		if err := lockSchema(tx, t.SchemaName); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		var still int64
		if err := tx.Table(migrations.TenantsTable).Where("id = ? AND db_role = ''", t.ID).Count(&still).Error; err != nil {
			return err
		}
		if still == 0 {
			return nil // another runner gave it roles while this one waited
		}
		var ledger bool
		if err := tx.Raw("SELECT to_regclass($1) IS NOT NULL", quoteIdent(t.SchemaName)+"."+migrations.TenantLedger).Scan(&ledger).Error; err != nil {
			return err
		}
		if ledger {
			grants += ";\n" + revokeLedgerSQL(t.SchemaName, r)
		}
		if err := execEach(tx, grants); err != nil {
			return err
		}
		res := tx.Table(migrations.TenantsTable).Where("id = ? AND db_role = ''", t.ID).
			Updates(map[string]any{"db_role": r.Write, "db_role_read": r.Read})
		return res.Error
	})
	if err != nil {
		return classify(fmt.Errorf("roles of tenant %q: %w", t.Name, err))
	}
	return nil
}
