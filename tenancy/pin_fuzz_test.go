package tenancy

import (
	"strings"
	"testing"
)

// FuzzPinSQL: whatever schema and role reach the pin builder, it either
// refuses them or builds one SELECT (no statement separator, balanced
// quotes) that names exactly the validated schema and role.
func FuzzPinSQL(f *testing.F) {
	f.Add("t_acme", "tr0123456789_w_acme")
	f.Add("t_acme", "")
	f.Add(`t_a"; DROP SCHEMA tenantry; --`, "tr0123456789_w_a")
	f.Add("t_acme", "tr0123456789_w_acme'; RESET ROLE; --")
	f.Add("t_acme,public", "tr0123456789_app")
	f.Fuzz(func(t *testing.T, schema, role string) {
		sql, err := pinSQL(pinSpec{Schema: schema, Role: role, Limits: RequestLimits})
		if err != nil {
			return
		}
		if !validSchema(schema) || (role != "" && !validRole(role)) {
			t.Fatalf("pinSQL accepted schema %q role %q", schema, role)
		}
		if strings.Contains(sql, ";") || strings.Count(sql, "'")%2 != 0 || strings.Count(sql, `"`) != 4 {
			t.Fatalf("pin for %q/%q is not one well-quoted SELECT: %s", schema, role, sql)
		}
		if !strings.Contains(sql, `'"`+schema+`"'`) {
			t.Fatalf("pin does not name schema %q: %s", schema, sql)
		}
		if role != "" && !strings.Contains(sql, "set_config('role', '"+role+"', true)") {
			t.Fatalf("pin does not switch to role %q: %s", role, sql)
		}
		if role == "" && strings.Contains(sql, "'role'") {
			t.Fatalf("pin without a role switches role: %s", sql)
		}
	})
}

// FuzzRolesFor: for any deployment id and tenant name, derivation either
// refuses them or yields two distinct roles that validRole accepts, fit in
// 63 bytes, and map back to the tenant's schema.
func FuzzRolesFor(f *testing.F) {
	f.Add("0123456789", "acme")
	f.Add("abcdefabcd", "a-b")
	f.Add("0123456789", "a"+strings.Repeat("z", MaxNameLen-1))
	f.Add("01234567890", "acme")
	f.Add("ABCDEF0123", "acme")
	f.Add("0123456789", "_app")
	f.Fuzz(func(t *testing.T, dep, name string) {
		schema, err := SchemaFor(name)
		if err != nil {
			return
		}
		r, err := RolesFor(dep, schema)
		if err != nil {
			if validDeployment(dep) {
				t.Fatalf("RolesFor(%q, %q) refused a valid deployment: %v", dep, schema, err)
			}
			return
		}
		group, err := GroupRole(dep)
		if err != nil {
			t.Fatal(err)
		}
		for _, role := range []string{r.Write, r.Read} {
			if len(role) > maxIdentifier || !validRole(role) || role == group {
				t.Fatalf("RolesFor(%q, %q) = %q: too long, not valid, or the group role", dep, schema, role)
			}
			if !strings.HasSuffix(role, schema[len(schemaPrefix):]) || !strings.HasPrefix(role, rolePrefix+dep) {
				t.Fatalf("role %q does not carry deployment %q and schema %q", role, dep, schema)
			}
		}
		if r.Write == r.Read {
			t.Fatalf("write and read roles coincide: %q", r.Write)
		}
	})
}
