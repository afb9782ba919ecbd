// Package tenancy maps tenants to PostgreSQL schemas and scopes database work
// to one tenant at a time. It knows schemas and transactions, never HTTP, so
// any Go program (the API, the CLI, a worker) can use it.
package tenancy

import (
	"fmt"
	"strings"

	"github.com/tenantry/tenantry/models"
)

// Tenant-name limits from DESIGN.md: 2 to 48 characters. 48 keeps the derived
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

// ValidateName checks a tenant name against DESIGN's rule: a lowercase letter,
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

// quoteIdent quotes a schema name that validSchema accepted. Such a name
// holds no quote, so doubling is never needed; quoting still keeps it an
// identifier (never a keyword) and keeps set_config from splitting it.
func quoteIdent(s string) string { return `"` + s + `"` }
