package migrations

import (
	"slices"
	"testing"
)

func TestPlanVersionsAndPending(t *testing.T) {
	p := Plan{Steps: []Step{
		{Version: 1, Name: "a", Up: "A"},
		{Version: 2, Name: "b", Up: "B", Compatible: true},
		{Version: 3, Name: "c", Up: "C"},
		{Version: 4, Name: "d", Up: "D", Compatible: true},
	}}
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	if p.Latest() != 4 || p.Required() != 3 {
		t.Fatalf("Latest, Required = %d, %d; want 4, 3", p.Latest(), p.Required())
	}
	versions := func(ss []Step) []int {
		var v []int
		for _, s := range ss {
			v = append(v, s.Version)
		}
		return v
	}
	tests := []struct {
		from, to int
		want     []int
	}{
		{0, 4, []int{1, 2, 3, 4}},
		{2, 4, []int{3, 4}},
		{4, 4, nil},
		{4, 1, []int{4, 3, 2}},
		{2, 0, []int{2, 1}},
	}
	for _, tt := range tests {
		if got := versions(p.Pending(tt.from, tt.to)); !slices.Equal(got, tt.want) {
			t.Errorf("Pending(%d, %d) = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
}

func TestPlanCheckRefusesGapsAndEmptySteps(t *testing.T) {
	for name, p := range map[string]Plan{
		"gap":       {Steps: []Step{{Version: 1, Up: "A"}, {Version: 3, Up: "C"}}},
		"zero":      {Steps: []Step{{Version: 0, Up: "A"}}},
		"empty SQL": {Steps: []Step{{Version: 1, Up: "  "}}},
	} {
		if err := p.Check(); err == nil {
			t.Errorf("%s: Check() = nil", name)
		}
	}
	for name, p := range map[string]Plan{"items": Items, "shared": Shared} {
		if err := p.Check(); err != nil {
			t.Errorf("shipped %s plan: %v", name, err)
		}
	}
}

func TestChecksumChangesWithTheSQL(t *testing.T) {
	a, b := Step{Up: "CREATE TABLE x (a int)"}, Step{Up: "CREATE TABLE x (a bigint)"}
	if a.Checksum() == b.Checksum() || a.Checksum() != (Step{Up: a.Up, Name: "renamed"}).Checksum() {
		t.Fatal("the checksum must follow the SQL and only the SQL")
	}
}

func TestLedgerInsertsQuoteNames(t *testing.T) {
	got := ledgerInserts(Plan{Steps: []Step{{Version: 1, Name: "it's", Up: "X"}}})
	if !slices.Contains([]string{"INSERT INTO schema_migrations (version, name, checksum) VALUES (1, 'it''s', '" + (Step{Up: "X"}).Checksum() + "')"}, got) {
		t.Fatalf("ledgerInserts = %s", got)
	}
}
