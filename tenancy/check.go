package tenancy

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// RoleWarnings says what about the connected role and database weakens
// isolation. The scope holds without these, but defence in depth wants a
// role that is not a superuser (which ignores every grant) and does not
// bypass row-level security, connections that start with an empty
// search_path, and no tenant-named tables in public (a search_path bug
// elsewhere could find them). serve logs each warning at start-up.
func RoleWarnings(ctx context.Context, db *gorm.DB) ([]string, error) {
	var r struct {
		Role        string
		Super       bool
		BypassRLS   bool
		PublicItems bool
		Path        string
	}
	err := db.WithContext(ctx).Raw(`SELECT current_user AS role, r.rolsuper AS super, r.rolbypassrls AS bypass_rls,
		to_regclass('public.items') IS NOT NULL AS public_items, current_setting('search_path') AS path
		FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`).Scan(&r).Error
	if err != nil {
		return nil, fmt.Errorf("inspect database role: %w", err)
	}
	var w []string
	if r.Super {
		w = append(w, fmt.Sprintf("connected as superuser %q: grants cannot back up tenant isolation; use a role without SUPERUSER", r.Role))
	} else if r.BypassRLS {
		w = append(w, fmt.Sprintf("role %q has BYPASSRLS; use a role without it", r.Role))
	}
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
