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
// tenancy never imports Gin or JWT code, token (the only JWT code besides
// the commands) never imports Gin, and api builds on both.
func TestImportArrowsPointOneWay(t *testing.T) {
	forbidden := map[string][]string{
		"models":     {"github.com/gin-gonic/gin", "github.com/golang-jwt/jwt", "github.com/tenantry/tenantry/tenancy", "github.com/tenantry/tenantry/api", "github.com/tenantry/tenantry/migrations"},
		"migrations": {"github.com/gin-gonic/gin", "github.com/golang-jwt/jwt", "github.com/tenantry/tenantry/tenancy", "github.com/tenantry/tenantry/api"},
		"tenancy":    {"github.com/gin-gonic/gin", "github.com/golang-jwt/jwt", "github.com/tenantry/tenantry/api", "github.com/tenantry/tenantry/token"},
		"token":      {"github.com/gin-gonic/gin", "github.com/tenantry/tenantry/tenancy", "github.com/tenantry/tenantry/api", "github.com/tenantry/tenantry/migrations"},
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

// TestNoSessionLevelSearchPath: a session SET search_path leaks to the next
// user of a pooled connection. Only set_config(..., true) inside a scope
// may change it.
func TestNoSessionLevelSearchPath(t *testing.T) {
	session := regexp.MustCompile(`(?i)\bSET\s+(SESSION\s+)?(search_path|schema)\b|set_config\('search_path',[^)]*false\)`)
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		// The benchmark's variant (d) reproduces the seed's session-level
		// SET on purpose, to measure what it costs and how often it leaks.
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
