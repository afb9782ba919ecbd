package tenancy

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// FuzzPinSQL: whatever schema and role reach the pin builder, it either
// refuses them or builds one SELECT (no statement separator, balanced
// quotes) that names exactly the validated schema and role.
func FuzzPinSQL(f *testing.F) {
	f.Add("t_acme", "tr0123456789_w42")
	f.Add("t_acme", "")
	f.Add(`t_a"; DROP SCHEMA tenantry; --`, "tr0123456789_w1")
	f.Add("t_acme", "tr0123456789_w42'; RESET ROLE; --")
	f.Add("t_acme", "tr0123456789_r042")
	f.Add("t_acme", "tr0123456789_w_acme")
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

// FuzzRolesFor: for any deployment id and tenant id, derivation either
// refuses them or yields two distinct roles that validRole accepts, fit in
// 63 bytes, are not the group role, and carry the deployment and exactly
// that id (so two incarnations never share a role).
func FuzzRolesFor(f *testing.F) {
	f.Add("0123456789", int64(1))
	f.Add("abcdefabcd", int64(42))
	f.Add("0123456789", int64(math.MaxInt64))
	f.Add("0123456789", int64(0))
	f.Add("0123456789", int64(-7))
	f.Add("01234567890", int64(1))
	f.Add("ABCDEF0123", int64(1))
	f.Fuzz(func(t *testing.T, dep string, id int64) {
		r, err := RolesFor(dep, id)
		if err != nil {
			if validDeployment(dep) && id > 0 {
				t.Fatalf("RolesFor(%q, %d) refused a valid deployment and id: %v", dep, id, err)
			}
			return
		}
		if !validDeployment(dep) || id <= 0 {
			t.Fatalf("RolesFor(%q, %d) accepted them: %+v", dep, id, r)
		}
		group, err := GroupRole(dep)
		if err != nil {
			t.Fatal(err)
		}
		for _, role := range []string{r.Write, r.Read} {
			if len(role) > maxIdentifier || !validRole(role) || role == group {
				t.Fatalf("RolesFor(%q, %d) = %q: too long, not valid, or the group role", dep, id, role)
			}
			rest, ok := strings.CutPrefix(role, rolePrefix+dep)
			if !ok || len(rest) < 3 {
				t.Fatalf("role %q does not carry deployment %q", role, dep)
			}
			if back, err := strconv.ParseInt(rest[2:], 10, 64); err != nil || back != id {
				t.Fatalf("role %q does not carry id %d (%d, %v)", role, id, back, err)
			}
		}
		if r.Write == r.Read {
			t.Fatalf("write and read roles coincide: %q", r.Write)
		}
	})
}

// FuzzValidRole: whatever string validRole accepts is the group role or a
// role RolesFor derives, so the pin cannot switch to a role the service
// did not name (a superuser, another deployment's group, a padded id).
func FuzzValidRole(f *testing.F) {
	f.Add("tr0123456789_app")
	f.Add("tr0123456789_w42")
	f.Add("tr0123456789_r042")
	f.Add("tr0123456789_w0")
	f.Add("tr0123456789_w9223372036854775808")
	f.Add("tr0123456789_w_acme")
	f.Add("postgres")
	f.Fuzz(func(t *testing.T, role string) {
		if !validRole(role) {
			return
		}
		dep := role[len(rolePrefix) : len(rolePrefix)+DeploymentIDLen]
		if g, err := GroupRole(dep); err == nil && g == role {
			return
		}
		id, err := strconv.ParseInt(role[len(rolePrefix)+DeploymentIDLen+2:], 10, 64)
		if err != nil {
			t.Fatalf("validRole accepted %q without an id: %v", role, err)
		}
		r, err := RolesFor(dep, id)
		if err != nil || (role != r.Write && role != r.Read) {
			t.Fatalf("validRole accepted %q, which RolesFor(%q, %d) does not derive (%+v, %v)", role, dep, id, r, err)
		}
	})
}
