package tenancy

import (
	"errors"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
)

func TestValidateNameFollowsDesignRule(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"ab", true},
		{"acme", true},
		{"acme-corp_2", true},
		{strings.Repeat("a", 48), true},
		{"a", false},                         // too short
		{strings.Repeat("a", 49), false},     // too long
		{"Acme", false},                      // uppercase
		{"1acme", false},                     // digit first
		{"-acme", false},                     // dash first
		{"acme,public", false},               // would be a second schema in set_config
		{"acme\"; drop schema x; --", false}, // quote and SQL
		{"ac me", false},
		{"acmé", false},     // non-ASCII
		{"acme\x00", false}, // NUL
		{"", false},
		{"pg_catalog", true}, // fine as a name: the schema is t_pg_catalog
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateName(tt.name)
			if got := err == nil; got != tt.ok {
				t.Fatalf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
			if err != nil && !errors.Is(err, models.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
		})
	}
}

func TestSchemaForIsAValidUnquotedIdentifier(t *testing.T) {
	tests := []struct{ name, want string }{
		{"acme", "t_acme"},
		{"acme-corp", "t_acme_corp"},
		{"a_b", "t_a_b"},
		{strings.Repeat("z", 48), "t_" + strings.Repeat("z", 48)},
	}
	for _, tt := range tests {
		got, err := SchemaFor(tt.name)
		if err != nil || got != tt.want {
			t.Errorf("SchemaFor(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
		}
		if !validSchema(got) || len(got) > 63 || strings.ContainsAny(got, `,". `) {
			t.Errorf("SchemaFor(%q) = %q is not a safe identifier", tt.name, got)
		}
	}
	if _, err := SchemaFor("Bad,Name"); !errors.Is(err, models.ErrInvalid) {
		t.Errorf("SchemaFor(invalid) err = %v, want ErrInvalid", err)
	}
}

func TestValidSchemaRejectsAnythingNotDerived(t *testing.T) {
	for _, s := range []string{"", "t_", "public", migrations.SharedSchema, "t_a,public", `t_a"`, "t_A", "pg_temp", "t_" + strings.Repeat("a", 62)} {
		if validSchema(s) {
			t.Errorf("validSchema(%q) = true, want false", s)
		}
	}
}

func TestDriftReferenceSchemaCannotBeATenants(t *testing.T) {
	const longest = schemaPrefix + "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz" // 48-char name
	if len(referenceSchema) <= len(longest) || !validSchema(referenceSchema) {
		t.Fatalf("reference schema %q (%d bytes) could collide with a tenant's (up to %d)", referenceSchema, len(referenceSchema), len(longest))
	}
}
