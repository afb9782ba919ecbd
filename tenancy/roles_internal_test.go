package tenancy

import (
	"strings"
	"testing"
)

// Onboarding grants before it makes the tables and so needs no GRANT ...
// ON ALL TABLES, which scans the whole of pg_class; grants on a schema that
// already holds tables (a backfill, a move's target) must still cover them.
func TestTenantRolesSQLScansExistingObjectsOnlyWhenAsked(t *testing.T) {
	r, err := RolesFor("0123456789", 7)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := tenantRolesSQL("t_acme", r, "tr0123456789_app", true, false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fresh, "ALL TABLES") || strings.Contains(fresh, "ALL SEQUENCES") {
		t.Errorf("grants for a new schema scan existing objects:\n%s", fresh)
	}
	if !strings.Contains(fresh, "ALTER DEFAULT PRIVILEGES") {
		t.Errorf("grants for a new schema lack default privileges:\n%s", fresh)
	}
	existing, err := tenantRolesSQL("t_acme", r, "tr0123456789_app", false, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ON ALL TABLES IN SCHEMA", "ON ALL SEQUENCES IN SCHEMA", "ALTER DEFAULT PRIVILEGES"} {
		if !strings.Contains(existing, want) {
			t.Errorf("grants for an existing schema lack %q:\n%s", want, existing)
		}
	}
}
