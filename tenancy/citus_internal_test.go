package tenancy

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
)

func TestParseNodeAcceptsIDsAndHostPorts(t *testing.T) {
	tests := []struct {
		in   string
		want nodeRef
	}{
		{"2", nodeRef{id: 2}},
		{"127.0.0.1:9701", nodeRef{host: "127.0.0.1", port: 9701}},
		{"worker-2.internal:5432", nodeRef{host: "worker-2.internal", port: 5432}},
		{"[::1]:5432", nodeRef{host: "::1", port: 5432}},
	}
	for _, tt := range tests {
		got, err := parseNode(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseNode(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseNodeRefusesAnythingElse(t *testing.T) {
	for _, in := range []string{
		"", "0", "-1", "x", "host", "host:", ":5432", "host:0", "host:65536", "host:port",
		"a b:5432", "h\x00:1", "user@host:5432", "host/db:5432", "127.0.0.1:9701; DROP TABLE x",
		strings.Repeat("h", maxHostLen+1) + ":5432",
	} {
		if got, err := parseNode(in); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("parseNode(%q) = %+v, %v; want ErrInvalid", in, got, err)
		}
	}
}

// TestCitusScriptsAreOneStatementEach checks the SQL that onboarding sends
// one statement at a time on Citus: each piece must be a single statement,
// or a worker refuses it.
func TestCitusScriptsAreOneStatementEach(t *testing.T) {
	r, err := RolesFor("0123456789", 42)
	if err != nil {
		t.Fatal(err)
	}
	grants, err := tenantRolesSQL("t_acme", r, "tr0123456789_app", true, true)
	if err != nil {
		t.Fatal(err)
	}
	pin, err := pinSQL(pinSpec{Schema: "t_acme", Limits: DDLLimits})
	if err != nil {
		t.Fatal(err)
	}
	script := pin + ";\n" + grants + ";\n" + workerLoginSQL(r) + ";\n" + revokeLedgerSQL("t_acme", r) + ";\n" + unpinSQL
	got := migrations.SplitStatements(script)
	want := []string{
		pin,
		`CREATE ROLE "tr0123456789_w42" NOLOGIN NOINHERIT`,
		`CREATE ROLE "tr0123456789_r42" NOLOGIN NOINHERIT`,
		`GRANT "tr0123456789_w42", "tr0123456789_r42" TO "tr0123456789_app"`,
		`GRANT USAGE ON SCHEMA "t_acme" TO "tr0123456789_w42", "tr0123456789_r42"`,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "t_acme" TO "tr0123456789_w42"`,
		`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "t_acme" TO "tr0123456789_w42"`,
		`GRANT SELECT ON ALL TABLES IN SCHEMA "t_acme" TO "tr0123456789_r42"`,
		`ALTER DEFAULT PRIVILEGES IN SCHEMA "t_acme" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "tr0123456789_w42"`,
		`ALTER DEFAULT PRIVILEGES IN SCHEMA "t_acme" GRANT USAGE, SELECT ON SEQUENCES TO "tr0123456789_w42"`,
		`ALTER DEFAULT PRIVILEGES IN SCHEMA "t_acme" GRANT SELECT ON TABLES TO "tr0123456789_r42"`,
		`ALTER ROLE "tr0123456789_w42" LOGIN`,
		`ALTER ROLE "tr0123456789_r42" LOGIN`,
		`REVOKE ALL ON TABLE "t_acme"."schema_migrations" FROM "tr0123456789_w42", "tr0123456789_r42"`,
		unpinSQL,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("onboarding statements on Citus (-want +got):\n%s", diff)
	}
}

func TestClusterNamesItsMode(t *testing.T) {
	if got := (Cluster{}).String(); got != "postgresql" {
		t.Errorf("plain: %q", got)
	}
	got := Cluster{Citus: true, Version: "13.2-1", Workers: 2}.String()
	if !strings.Contains(got, "citus 13.2-1") || !strings.Contains(got, "2 workers") {
		t.Errorf("citus: %q", got)
	}
}

// TestCitusSQLNamesOnlyCatalogColumnsItReads guards the Citus catalog SQL
// against a typo that only a Citus cluster would reveal: every pg_dist_node
// column it names exists in Citus 13's pg_dist_node.
func TestCitusSQLNamesOnlyCatalogColumnsItReads(t *testing.T) {
	columns := []string{"nodeid", "groupid", "nodename", "nodeport", "noderack", "hasmetadata", "isactive",
		"noderole", "nodecluster", "metadatasynced", "shouldhaveshards"}
	for name, sql := range map[string]string{"nodeSQL": nodeSQL, "citusFactsSQL": citusFactsSQL} {
		for _, w := range strings.FieldsFunc(sql, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z') }) {
			if strings.HasPrefix(w, "node") || w == "isactive" || w == "shouldhaveshards" || w == "groupid" {
				found := false
				for _, c := range columns {
					found = found || c == w
				}
				if !found {
					t.Errorf("%s names %q, not a pg_dist_node column", name, w)
				}
			}
		}
	}
}
