package fleet_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/fleet"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/migrations/migrationstest"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// The fleet's one catalog query gives every schema the fingerprint a
// query inside that schema's own scope gives, for clean schemas and for
// each kind of drift, so the drift check did not change by getting faster.
func TestFleetFingerprintsEqualPerSchemaFingerprints(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	ctx := context.Background()
	e.onboard(t, "clean", "column", "table", "index", "fkey", "shared", "default")
	e.admin(t, `ALTER TABLE t_column.items ADD COLUMN rogue integer NOT NULL DEFAULT 7`)
	e.admin(t, `CREATE TABLE t_table.extra (id serial PRIMARY KEY, note text CHECK (note <> ''))`)
	e.admin(t, `CREATE UNIQUE INDEX rogue_idx ON t_index.items (lower(name))`)
	e.admin(t, `CREATE TABLE t_fkey.child (id bigint PRIMARY KEY, item_id bigint REFERENCES t_fkey.items (id))`)
	// A name from another schema stays qualified in both views.
	e.admin(t, `CREATE TABLE public.lookup (id int PRIMARY KEY);
		CREATE TABLE t_shared.ref (id int REFERENCES public.lookup (id))`)
	e.admin(t, `ALTER TABLE t_default.items ALTER COLUMN description SET DEFAULT 'none'`)
	ts, err := e.dir.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fleetFPs, unreadable, err := e.dir.Fingerprints(ctx, ts)
	if err != nil || len(unreadable) != 0 {
		t.Fatalf("fingerprints: %v, unreadable %v", err, unreadable)
	}
	perSchema := map[string]string{}
	for _, ten := range ts {
		err := tenancy.InSchema(ctx, e.ddl, ten.SchemaName, tenancy.DDLLimits, func(tx *gorm.DB) error {
			var err error
			perSchema[ten.SchemaName], err = migrations.Fingerprint(tx, ten.SchemaName)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, ten := range ts {
		s := ten.SchemaName
		if got, want := fleetFPs[s], perSchema[s]; got != want {
			t.Errorf("%s: fleet fingerprint differs from the per-schema one:\nfleet:\n%s\nper schema:\n%s", s, got, want)
		}
		if strings.Contains(fleetFPs[s], s) {
			t.Errorf("%s: the fingerprint still names its own schema:\n%s", s, fleetFPs[s])
		}
		if s != "t_clean" && fleetFPs[s] == fleetFPs["t_clean"] {
			t.Errorf("%s: drifted schema fingerprints like a clean one", s)
		}
	}
	if !strings.Contains(fleetFPs["t_shared"], "public.lookup") {
		t.Errorf("the reference to public.lookup lost its schema:\n%s", fleetFPs["t_shared"])
	}
	if fleetFPs["t_clean"] == "" {
		t.Fatal("a clean tenant schema has an empty fingerprint")
	}
}

// Inspect reports every tenant: clean ones without drift, each kind of
// drift, and a registry that lags the ledger.
func TestInspectReportsEveryKindOfDrift(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	ctx := context.Background()
	e.onboard(t, "clean", "tampered", "lagging", "edited")
	e.admin(t, `ALTER TABLE t_tampered.items ADD COLUMN rogue integer`)
	e.admin(t, `UPDATE `+migrations.TenantsTable+` SET schema_version = 0 WHERE name = 'lagging'`)
	e.admin(t, `UPDATE t_edited.schema_migrations SET checksum = 'x' WHERE version = 1`)
	st, err := fleet.Inspect(ctx, e.dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]fleet.SchemaReport{}
	for _, s := range st {
		got[s.Tenant] = s
	}
	latest := migrations.Items.Latest()
	for name, check := range map[string]func(fleet.SchemaReport) bool{
		"clean":    func(s fleet.SchemaReport) bool { return s.Drift == "" && s.Version == latest && s.Recorded == latest },
		"tampered": func(s fleet.SchemaReport) bool { return strings.Contains(s.Drift, "tables differ") },
		"lagging":  func(s fleet.SchemaReport) bool { return s.Drift == "registry records version 0" && s.Version == latest },
		"edited": func(s fleet.SchemaReport) bool {
			return strings.Contains(s.Drift, "unreadable") && strings.Contains(s.Drift, "edited")
		},
	} {
		if s, ok := got[name]; !ok || !check(s) {
			t.Errorf("%s: report %+v", name, s)
		}
	}
	if len(st) != 4 {
		t.Fatalf("%d reports for 4 tenants", len(st))
	}
}

// The fleet query sees what the former per-schema query saw, line for line
// (once both drop the schema's own name and sort), on clean and drifted
// schemas alike.
func TestFleetFingerprintsMatchTheFormerQuery(t *testing.T) {
	e := newEnv(t, tenancy.DefaultPool)
	ctx := context.Background()
	e.onboard(t, "clean", "drifted")
	e.admin(t, `ALTER TABLE t_drifted.items ADD COLUMN rogue integer NOT NULL DEFAULT 7;
		CREATE UNIQUE INDEX rogue_idx ON t_drifted.items (lower(name));
		CREATE TABLE t_drifted.child (id bigint PRIMARY KEY, item_id bigint REFERENCES t_drifted.items (id));
		CREATE VIEW t_drifted.v AS SELECT id FROM t_drifted.items`)
	ts, err := e.dir.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fleetFPs, unreadable, err := e.dir.Fingerprints(ctx, ts)
	if err != nil || len(unreadable) != 0 {
		t.Fatalf("fingerprints: %v, unreadable %v", err, unreadable)
	}
	for _, ten := range ts {
		s := ten.SchemaName
		var former *string
		err := tenancy.InSchema(ctx, e.ddl, s, tenancy.DDLLimits, func(tx *gorm.DB) error {
			return tx.Raw(migrationstest.FormerFingerprintSQL, `"`+s+`"`, s).Scan(&former).Error
		})
		if err != nil || former == nil {
			t.Fatalf("%s: the former query: %v (%v)", s, err, former)
		}
		lines := strings.Split(strings.NewReplacer(`"`+s+`".`, "", s+".", "").Replace(*former), "\n")
		sort.Strings(lines)
		if got, want := fleetFPs[s], strings.Join(lines, "\n"); got != want {
			t.Errorf("%s: the fleet query and the former one disagree:\nfleet:\n%s\nformer:\n%s", s, got, want)
		}
	}
}
