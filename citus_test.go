package main

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// TestTenantsMoveNeedsANameAndANode checks the command line before any
// database is opened: every malformed form is a usage error.
func TestTenantsMoveNeedsANameAndANode(t *testing.T) {
	for _, args := range [][]string{
		{"tenants", "move"},
		{"tenants", "move", "acme"},
		{"tenants", "move", "acme", "--to"},
		{"tenants", "move", "acme", "--to", ""},
		{"tenants", "move", "acme", "--to", "2", "extra"},
		{"tenants", "move", "acme", "--node", "2"},
	} {
		if err := run(context.Background(), args, envOf(), &bytes.Buffer{}); !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}
