package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestImportArrowsPointOneWay guards the house layout: models is the floor,
// tenancy never imports Gin or JWT code, token (the JWT code) never imports
// Gin, problem neither, ginmw (Gin + token + tenancy + problem) never
// tenantry's own routes in api, and the fleet runner sits above tenancy
// (which knows nothing of it) and below api.
func TestImportArrowsPointOneWay(t *testing.T) {
	forbidden := map[string][]string{
		"models":          {"github.com/gin-gonic/gin", "github.com/golang-jwt/jwt", "github.com/tenantry/tenantry/tenancy", "github.com/tenantry/tenantry/api", "github.com/tenantry/tenantry/migrations"},
		"migrations":      {"github.com/gin-gonic/gin", "github.com/golang-jwt/jwt", "github.com/tenantry/tenantry/tenancy", "github.com/tenantry/tenantry/api"},
		"tenancy":         {"github.com/gin-gonic/gin", "github.com/golang-jwt/jwt", "github.com/tenantry/tenantry/api", "github.com/tenantry/tenantry/token", "github.com/tenantry/tenantry/fleet"},
		"fleet":           {"github.com/gin-gonic/gin", "github.com/golang-jwt/jwt", "github.com/tenantry/tenantry/api", "github.com/tenantry/tenantry/token"},
		"problem":         {"github.com/gin-gonic/gin", "github.com/golang-jwt/jwt", "github.com/tenantry/tenantry/api"},
		"ginmw":           {"github.com/tenantry/tenantry/api"},
		"examples/orders": {"github.com/tenantry/tenantry/api"},
		"token":           {"github.com/gin-gonic/gin", "github.com/tenantry/tenantry/tenancy", "github.com/tenantry/tenantry/api", "github.com/tenantry/tenantry/migrations"},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", "./"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range bad {
				if strings.HasPrefix(dep, b) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}

// TestExamplesUseOnlyThePublicPackages: a program built on the library
// imports tenantry's public packages and nothing of tenantry's own service
// (its routes, metrics and OpenAPI document in api, its Item model in
// models) nor anything internal.
func TestExamplesUseOnlyThePublicPackages(t *testing.T) {
	public := map[string]bool{"tenancy": true, "migrations": true, "token": true, "ginmw": true, "problem": true}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}: {{join .Imports \" \"}}", "./examples/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ": ")
		for _, imp := range strings.Fields(imports) {
			if rest, ok := strings.CutPrefix(imp, "github.com/tenantry/tenantry/"); ok && !public[rest] {
				t.Errorf("%s imports %s, which is not a public package", pkg, imp)
			}
		}
	}
}

// TestTenancyHoldsNoInfrastructure: tenancy is schemas, scopes and the
// directory. A throwaway cluster, a test-server provider, a fault proxy or
// a benchmark command has a home of its own (internal/..., cmd/...), and
// tenancy's only subpackage is the test helper for its users.
func TestTenancyHoldsNoInfrastructure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./tenancy").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/tenantry/tenantry/internal/") || strings.HasPrefix(dep, "github.com/ory/dockertest") {
			t.Errorf("tenancy depends on %s", dep)
		}
	}
	entries, err := os.ReadDir("tenancy")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != "tenancytest" && e.Name() != "testdata" {
			t.Errorf("tenancy/%s: infrastructure belongs under internal/ or cmd/", e.Name())
		}
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".go") && !strings.HasSuffix(e.Name(), "_test.go") {
			b, err := os.ReadFile(filepath.Join("tenancy", e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "\npackage main\n") {
				t.Errorf("tenancy/%s is a command", e.Name())
			}
		}
	}
}

// TestNoSessionLevelSearchPath: a session SET search_path leaks to the next
// user of a pooled connection. Only set_config(..., true) inside a scope
// may change it.
func TestNoSessionLevelSearchPath(t *testing.T) {
	session := regexp.MustCompile(`(?i)\bSET\s+(SESSION\s+)?(search_path|schema)\b|set_config\('search_path',[^)]*false\)`)
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		// The benchmark's variant (d) reproduces, on purpose, the
		// session-level SET of the service tenantry replaces, to measure
		// what it costs and how often it leaks.
		if filepath.ToSlash(path) == "cmd/benchhttp/seed.go" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			// ALTER ROLE ... SET search_path sets a role's default for new
			// sessions (advice in a warning), not a running session's path.
			code := strings.TrimSpace(line)
			if session.MatchString(code) && !strings.HasPrefix(code, "//") && !strings.Contains(code, "ALTER ROLE") {
				t.Errorf("%s:%d sets search_path for the session: %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
