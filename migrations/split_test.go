package migrations

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitStatementsCutsOnlyTopLevelSemicolons(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"one", "SELECT 1", []string{"SELECT 1"}},
		{"two with blanks", " SELECT 1 ;\n\n SELECT 2 ;; ", []string{"SELECT 1", "SELECT 2"}},
		{"empty", " ; ;\n", nil},
		{"string", "SELECT 'a;b'; SELECT 2", []string{"SELECT 'a;b'", "SELECT 2"}},
		{"doubled quote", "SELECT 'it''s; here'; SELECT 2", []string{"SELECT 'it''s; here'", "SELECT 2"}},
		{"backslash is plain in a standard string", `SELECT 'a\'; SELECT 2`, []string{`SELECT 'a\'`, "SELECT 2"}},
		{"escape string", `SELECT E'a\'; b'; SELECT 2`, []string{`SELECT E'a\'; b'`, "SELECT 2"}},
		{"lower-case escape string", `SELECT e'\\'; SELECT 2`, []string{`SELECT e'\\'`, "SELECT 2"}},
		{"word ending in e is no escape prefix", `SELECT 1 AS some'x\'; SELECT 2`, []string{`SELECT 1 AS some'x\'`, "SELECT 2"}},
		{"quoted identifier", `CREATE TABLE "a;b" (x int); SELECT 2`, []string{`CREATE TABLE "a;b" (x int)`, "SELECT 2"}},
		{"doubled identifier quote", `SELECT 1 AS "a"";"; SELECT 2`, []string{`SELECT 1 AS "a"";"`, "SELECT 2"}},
		{"line comment", "SELECT 1 -- a; b\n; SELECT 2", []string{"SELECT 1 -- a; b", "SELECT 2"}},
		{"comment-only statement dropped", "SELECT 1; -- done;\n", []string{"SELECT 1"}},
		{"block comment", "SELECT /* ; */ 1; SELECT 2", []string{"SELECT /* ; */ 1", "SELECT 2"}},
		{"nested block comment", "SELECT /* a /* ; */ ; */ 1; SELECT 2", []string{"SELECT /* a /* ; */ ; */ 1", "SELECT 2"}},
		{"dollar quote", "DO $$ BEGIN PERFORM 1; END $$; SELECT 2", []string{"DO $$ BEGIN PERFORM 1; END $$", "SELECT 2"}},
		{"tagged dollar quote", "DO $f$ BEGIN RAISE NOTICE '$$;'; END $f$; SELECT 2", []string{"DO $f$ BEGIN RAISE NOTICE '$$;'; END $f$", "SELECT 2"}},
		{"other tag inside", "SELECT $a$ $b$; $a$; SELECT 2", []string{"SELECT $a$ $b$; $a$", "SELECT 2"}},
		{"parameter is no dollar quote", "SELECT $1; SELECT $2", []string{"SELECT $1", "SELECT $2"}},
		{"dollar inside identifier", "SELECT a$b$ FROM t; SELECT $x$;$x$", []string{"SELECT a$b$ FROM t", "SELECT $x$;$x$"}},
		{"unterminated string stays whole", "SELECT 'a; SELECT 2", []string{"SELECT 'a; SELECT 2"}},
		{"unterminated dollar quote stays whole", "DO $$ BEGIN; END", []string{"DO $$ BEGIN; END"}},
		{"the shipped tenant step", Items.Steps[0].Up, []string{
			`CREATE TABLE IF NOT EXISTS "items" ("id" bigserial,"name" varchar(200) NOT NULL,"description" varchar(2000) NOT NULL DEFAULT '',"created_at" timestamptz,"updated_at" timestamptz,PRIMARY KEY ("id"))`,
			`CREATE INDEX IF NOT EXISTS "idx_items_name" ON "items" ("name")`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, SplitStatements(tt.in)); diff != "" {
				t.Errorf("SplitStatements(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestSplitStatementsOfTheSharedPlan cuts the shipped shared steps, whose
// step 3 holds a DO block with semicolons and a comment: the block stays
// one statement, and every statement is whole (cutting it again gives it).
func TestSplitStatementsOfTheSharedPlan(t *testing.T) {
	var dos []string
	for _, st := range Shared.Steps {
		stmts := SplitStatements(st.Up)
		if len(stmts) == 0 {
			t.Fatalf("step %d (%s) has no statement", st.Version, st.Name)
		}
		for _, stmt := range stmts {
			if again := SplitStatements(stmt); len(again) != 1 || again[0] != stmt {
				t.Fatalf("step %d: %q cuts again into %q", st.Version, stmt, again)
			}
			if strings.HasPrefix(stmt, "DO ") {
				dos = append(dos, stmt)
			}
		}
	}
	if len(dos) != 1 || !strings.HasPrefix(dos[0], "DO $$ BEGIN") || !strings.HasSuffix(dos[0], "END $$") ||
		!strings.Contains(dos[0], "EXECUTE format(") {
		t.Fatalf("the DO block of step 3 was cut: %q", dos)
	}
}

// FuzzSplitStatements checks what must hold for any input: the statements
// are trimmed, non-empty, in order and apart, what lies between them is only
// blanks, semicolons and comments, and cutting a statement again gives
// itself.
func FuzzSplitStatements(f *testing.F) {
	for _, s := range []string{
		"SELECT 1; SELECT 2", "SELECT 'a;b'", `E'\';'`, `"a;""b"`, "DO $t$ ; $t$;", "/* /* ; */ */;",
		"-- x;\nSELECT 1", "SELECT $1;", "a$b$;$b$", "/**/;*", Items.Steps[0].Up, Shared.Steps[2].Up,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		spans := statementSpans(in)
		stmts := SplitStatements(in)
		if len(stmts) != len(spans) {
			t.Fatalf("%d statements, %d spans", len(stmts), len(spans))
		}
		prev := 0
		for i, sp := range spans {
			s := stmts[i]
			if sp[0] < prev || sp[1] <= sp[0] || in[sp[0]:sp[1]] != s {
				t.Fatalf("span %v of %q does not hold statement %q after %d", sp, in, s, prev)
			}
			// PostgreSQL's blanks only: U+2001 is an identifier's byte.
			if s != strings.Trim(s, blanks) {
				t.Fatalf("statement %q is untrimmed", s)
			}
			if gap := in[prev:sp[0]]; !separatorOnly(gap) {
				t.Fatalf("between statements lies %q", gap)
			}
			prev = sp[1]
			if again := SplitStatements(s); len(again) != 1 || again[0] != s {
				t.Fatalf("SplitStatements(%q) = %q, want itself", s, again)
			}
		}
		if rest := in[prev:]; !separatorOnly(rest) {
			t.Fatalf("after the last statement lies %q", rest)
		}
	})
}

// separatorOnly reports whether s holds only semicolons, blanks and
// comments.
func separatorOnly(s string) bool {
	return onlyComments(strings.ReplaceAll(s, ";", " "))
}
