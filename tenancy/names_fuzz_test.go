package tenancy

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/models"
)

// nameRule is the tenant-name rule (README's ^[a-z][a-z0-9_-]{1,47}$) as a regular expression:
// an oracle independent of ValidateName's hand-written loop.
var nameRule = regexp.MustCompile(`^[a-z][a-z0-9_-]{1,47}$`)

// schemaRule is what any derived schema must look like: a valid unquoted
// identifier within PostgreSQL's 63 bytes, under the tenant prefix.
var schemaRule = regexp.MustCompile(`^t_[a-z0-9_]{1,61}$`)

// FuzzSchemaFor checks name validation and schema derivation against the
// rule: a name is accepted exactly when it matches, its schema is a valid
// identifier the quoting cannot break, and a refused name is ErrInvalid.
func FuzzSchemaFor(f *testing.F) {
	for _, s := range []string{"acme", "a-b", "a_b", "ab", "a", strings.Repeat("z", 48), strings.Repeat("z", 49),
		"Acme", "1acme", "acme,public", `acme"`, "acme\x00", "аcme", "public", "pg_catalog", "t_acme", "acme\n", "a--"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		verr := ValidateName(name)
		schema, serr := SchemaFor(name)
		if (verr == nil) != nameRule.MatchString(name) {
			t.Fatalf("ValidateName(%q) = %v, but the rule says match=%v", name, verr, nameRule.MatchString(name))
		}
		if (verr == nil) != (serr == nil) {
			t.Fatalf("ValidateName(%q) = %v but SchemaFor = %v", name, verr, serr)
		}
		if verr != nil {
			if !errors.Is(verr, models.ErrInvalid) || !errors.Is(serr, models.ErrInvalid) {
				t.Fatalf("refusal of %q is not ErrInvalid: %v / %v", name, verr, serr)
			}
			return
		}
		if !schemaRule.MatchString(schema) || len(schema) > maxIdentifier || !validSchema(schema) {
			t.Fatalf("SchemaFor(%q) = %q, not a valid tenant schema", name, schema)
		}
		if want := "t_" + strings.ReplaceAll(name, "-", "_"); schema != want {
			t.Fatalf("SchemaFor(%q) = %q, want %q", name, schema, want)
		}
		if q := quoteIdent(schema); strings.Count(q, `"`) != 2 {
			t.Fatalf("quoteIdent(%q) = %s", schema, q)
		}
	})
}

// FuzzValidSchema checks the last guard before a schema name reaches SQL:
// whatever the string, it passes only if it has a derived schema's shape.
func FuzzValidSchema(f *testing.F) {
	for _, s := range []string{"t_acme", "t_", "t_a", "public", `t_a"b`, "t_A", "t_a-b", "t_" + strings.Repeat("a", 61), "t_" + strings.Repeat("a", 62), "t_a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validSchema(s), schemaRule.MatchString(s); got != want {
			t.Fatalf("validSchema(%q) = %v, want %v", s, got, want)
		}
	})
}
