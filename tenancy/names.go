// Package tenancy maps tenants to PostgreSQL schemas and scopes database work
// to one tenant at a time. It knows schemas and transactions, never HTTP, so
// any Go program (the API, the CLI, a worker) can use it.
package tenancy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tenantry/tenantry/models"
)

// Tenant-name limits: 2 to 48 characters (README and openapi.json say the same). 48 keeps the derived
// schema name (prefix + name) well under PostgreSQL's 63-byte identifier limit
// (NAMEDATALEN-1), past which names are silently truncated and two tenants
// could alias one schema.
const (
	MinNameLen = 2
	MaxNameLen = 48
	// schemaPrefix keeps every tenant schema out of the reserved pg_ namespace
	// and away from public, information_schema and the shared schema.
	schemaPrefix = "t_"
	// maxIdentifier is PostgreSQL's NAMEDATALEN-1.
	maxIdentifier = 63
)

// ValidateName checks a tenant name against the rule README states: a lowercase letter,
// then lowercase letters, digits, '-' or '_'; 2 to 48 characters.
func ValidateName(name string) error {
	if len(name) < MinNameLen || len(name) > MaxNameLen {
		return models.Invalid("name", fmt.Sprintf("must be %d to %d characters", MinNameLen, MaxNameLen))
	}
	if name[0] < 'a' || name[0] > 'z' {
		return models.Invalid("name", "must start with a lowercase letter")
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return models.Invalid("name", "may contain only lowercase letters, digits, '-' and '_'")
		}
	}
	return nil
}

// SchemaFor derives the schema of a valid tenant name: "t_" + the name with
// '-' spelled '_'. The result is a valid unquoted identifier of at most 50
// bytes. "a-b" and "a_b" derive the same schema; the registry's unique
// schema_name and the onboarding lock turn that collision into a conflict.
func SchemaFor(name string) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	return schemaPrefix + strings.ReplaceAll(name, "-", "_"), nil
}

// validSchema reports whether s can only be a tenant schema this package
// derived: the prefix, then [a-z0-9_], within the identifier limit. Checked
// again right before a schema name reaches SQL, whatever its source.
func validSchema(s string) bool {
	if len(s) <= len(schemaPrefix) || len(s) > maxIdentifier || !strings.HasPrefix(s, schemaPrefix) {
		return false
	}
	for i := len(schemaPrefix); i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Roles. PostgreSQL roles belong to the whole server while schemas belong to
// one database, so role names carry the deployment id (a random value the
// shared migration stores once per database): two databases on one server
// (a test per database, staging beside production) never share or collide
// on a role. A tenant's roles are named after its registry id, not its
// name: the id is its incarnation. A tenant deleted and onboarded again
// under the same name gets the same schema name but new roles, so a stale
// registry row still cached by another instance names roles that were
// dropped with the old incarnation, and its scope fails closed instead of
// reaching the successor's rows. A name is "tr" + deployment id + "_w" or
// "_r" + the decimal id: at most 2+10+2+19 = 33 bytes, well inside
// PostgreSQL's 63-byte identifier limit, so it is never truncated. The
// group role's "_app" cannot be mistaken for a kind followed by digits.
const (
	rolePrefix = "tr"
	// DeploymentIDLen is the length of a deployment id: 10 lowercase hex
	// digits, 40 random bits.
	DeploymentIDLen = 10
)

// TenantRoles are the two NOLOGIN roles of one tenant.
type TenantRoles struct {
	// Write has USAGE on the tenant's schema and DML on its tables and
	// sequences (not on its migration ledger).
	Write string
	// Read has USAGE and SELECT only: the read-only state's role.
	Read string
}

// RolesFor derives the roles of the tenant whose registry id is id in
// deployment dep. Registry ids are positive (an identity column).
func RolesFor(dep string, id int64) (TenantRoles, error) {
	if !validDeployment(dep) {
		return TenantRoles{}, fmt.Errorf("deployment id %q: %w", dep, models.ErrInvalid)
	}
	if id <= 0 {
		return TenantRoles{}, fmt.Errorf("tenant id %d: %w", id, models.ErrInvalid)
	}
	n := strconv.FormatInt(id, 10)
	return TenantRoles{Write: rolePrefix + dep + "_w" + n, Read: rolePrefix + dep + "_r" + n}, nil
}

// GroupRole is the deployment's NOLOGIN, NOINHERIT role that is a member of
// every tenant role. The request role is granted the group: that lets it
// SET ROLE to any tenant role inside a scope, while NOINHERIT on the group
// stops the tenants' privileges from flowing up to it outside one.
func GroupRole(dep string) (string, error) {
	if !validDeployment(dep) {
		return "", fmt.Errorf("deployment id %q: %w", dep, models.ErrInvalid)
	}
	return rolePrefix + dep + "_app", nil
}

func validDeployment(dep string) bool {
	if len(dep) != DeploymentIDLen {
		return false
	}
	for i := 0; i < len(dep); i++ {
		if c := dep[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// validRole reports whether r can only be a role this package derived: a
// tenant role (a kind, then a positive int64 in canonical decimal: no sign,
// no leading zero) or a group role.
func validRole(r string) bool {
	if len(r) > maxIdentifier || len(r) < len(rolePrefix)+DeploymentIDLen+3 || !strings.HasPrefix(r, rolePrefix) {
		return false
	}
	dep, rest := r[len(rolePrefix):len(rolePrefix)+DeploymentIDLen], r[len(rolePrefix)+DeploymentIDLen:]
	if !validDeployment(dep) {
		return false
	}
	if rest == "_app" {
		return true
	}
	if rest[:2] != "_w" && rest[:2] != "_r" {
		return false
	}
	digits := rest[2:]
	if digits[0] < '1' || digits[0] > '9' {
		return false
	}
	for i := 1; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	id, err := strconv.ParseInt(digits, 10, 64)
	return err == nil && id > 0
}
