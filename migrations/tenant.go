package migrations

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// TenantLedger is the ledger table inside every tenant schema.
const TenantLedger = "schema_migrations"

// MigrateTo moves the schema pinned by tx to version to under plan p:
// forward with the steps' Up SQL and Go, or back with their Down SQL when
// to is below the schema's version. Each step is recorded in (or removed
// from) the schema's ledger. tx must hold the schema's lock. It returns the
// versions before and after.
func MigrateTo(tx *gorm.DB, p Plan, to int) (from, now int, err error) {
	if err := tx.Exec(ledgerDDL(TenantLedger)).Error; err != nil {
		return 0, 0, fmt.Errorf("tenant ledger: %w", err)
	}
	return migrate(tx, TenantLedger, p, to)
}

// Version reads the version of the schema pinned by tx from its ledger.
func Version(tx *gorm.DB, p Plan) (int, error) {
	var exists bool
	if err := tx.Raw("SELECT to_regclass($1) IS NOT NULL", TenantLedger).Scan(&exists).Error; err != nil {
		return 0, err
	}
	if !exists {
		return 0, nil
	}
	return readLedger(tx, TenantLedger, p)
}

// AutoMigrate builds the tenant tables in the schema pinned by tx with
// GORM's AutoMigrate, the reference path, and records every step of plan p
// as applied. Onboarding's fast path (Blueprint) must produce the same.
func AutoMigrate(tx *gorm.DB, p Plan) error {
	if len(p.Models) == 0 {
		return ErrNoModels
	}
	if err := tx.AutoMigrate(p.Models...); err != nil {
		return fmt.Errorf("automigrate tenant models: %w", err)
	}
	return tx.Exec(ledgerDDL(TenantLedger) + ";" + ledgerInserts(p)).Error
}

// ledgerInserts records every step of p as applied. The values are the
// plan's own constants, never input, and are quoted as literals so the
// whole blueprint stays one simple-protocol round trip.
func ledgerInserts(p Plan) string {
	if len(p.Steps) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("INSERT INTO " + TenantLedger + " (version, name, checksum) VALUES ")
	for i, s := range p.Steps {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%d, %s, %s)", s.Version, literal(s.Name), literal(s.Checksum()))
	}
	return b.String()
}

func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Blueprint is the DDL that builds a tenant schema at the latest version in
// one round trip: what AutoMigrate executed, captured once per process,
// plus the ledger. Replaying it skips AutoMigrate's catalog introspection,
// whose cost grows with the number of schemas in the database.
type Blueprint struct {
	Version int
	SQL     string
	// Fingerprint is the catalog fingerprint of the captured schema.
	Fingerprint string
}

// errCaptured rolls the capture transaction back on purpose.
var errCaptured = errors.New("captured")

// CaptureBlueprint runs AutoMigrate in a scratch schema inside a
// transaction that it rolls back, recording the DDL statements GORM sends.
// GORM emits them unqualified, relative to the search_path, so they replay
// in any schema. In the same transaction it replays the plan's steps into a
// second scratch schema and refuses the blueprint unless both schemas have
// one shape: the ledger records every step as applied, which is only true
// when the models and the steps agree.
//
// scratch creates a scratch schema and pins tx to it; the tenancy package
// provides it, so the pin is built in one place.
func CaptureBlueprint(ctx context.Context, db *gorm.DB, p Plan, scratch func(tx *gorm.DB, schema string) error) (Blueprint, error) {
	bp := Blueprint{Version: p.Latest()}
	if len(p.Models) == 0 {
		return bp, fmt.Errorf("capture tenant blueprint: %w", ErrNoModels)
	}
	rec := &ddlRecorder{}
	stamp := time.Now().UnixNano()
	// Longer than any tenant schema (at most 50 bytes), shaped like one.
	fromModels := fmt.Sprintf("t_tenantry_scratch_blueprint_models_%d", stamp)
	steps := fmt.Sprintf("t_tenantry_scratch_blueprint_steps__%d", stamp)
	inScratch := scratch
	var fromSteps string
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := inScratch(tx, fromModels); err != nil {
			return err
		}
		if err := tx.Session(&gorm.Session{Logger: rec}).AutoMigrate(p.Models...); err != nil {
			return fmt.Errorf("automigrate: %w", err)
		}
		if err := tx.Exec(ledgerDDL(TenantLedger)).Error; err != nil {
			return err
		}
		var err error
		if bp.Fingerprint, err = Fingerprint(tx, fromModels); err != nil {
			return err
		}
		if err := inScratch(tx, steps); err != nil {
			return err
		}
		if _, _, err := MigrateTo(tx, p, p.Latest()); err != nil {
			return fmt.Errorf("replay steps: %w", err)
		}
		if fromSteps, err = Fingerprint(tx, steps); err != nil {
			return err
		}
		return errCaptured
	})
	if !errors.Is(err, errCaptured) {
		return bp, fmt.Errorf("capture tenant blueprint: %w", err)
	}
	if bp.Fingerprint != fromSteps {
		return bp, fmt.Errorf("capture tenant blueprint: %w\nAutoMigrate of the models:\n%s\nthe steps:\n%s",
			ErrModelsDisagree, bp.Fingerprint, fromSteps)
	}
	if len(rec.ddl) == 0 {
		return bp, errors.New("capture tenant blueprint: AutoMigrate sent no DDL")
	}
	for _, stmt := range rec.ddl {
		if strings.Contains(stmt, fromModels) {
			return bp, fmt.Errorf("capture tenant blueprint: GORM qualified a statement with the scratch schema: %s", stmt)
		}
	}
	bp.SQL = strings.Join(append(rec.ddl, ledgerDDL(TenantLedger), ledgerInserts(p)), ";\n")
	return bp, nil
}

// ErrNoModels means a plan declares no models: the blueprint is captured
// from the models, and checked against the steps, so a plan needs both.
var ErrNoModels = errors.New("the migration plan declares no models")

// ErrModelsDisagree means the tenant models and the tenant plan's steps
// build different schemas: a model changed without a step, or the reverse.
var ErrModelsDisagree = errors.New("the tenant models and the migration steps build different schemas; add a step for the model change (or change the model to match)")

// ddlRecorder is a GORM logger that keeps the DDL statements it sees.
type ddlRecorder struct {
	ddl []string
}

func (r *ddlRecorder) LogMode(logger.LogLevel) logger.Interface      { return r }
func (r *ddlRecorder) Info(context.Context, string, ...interface{})  {}
func (r *ddlRecorder) Warn(context.Context, string, ...interface{})  {}
func (r *ddlRecorder) Error(context.Context, string, ...interface{}) {}
func (r *ddlRecorder) Trace(_ context.Context, _ time.Time, fc func() (string, int64), err error) {
	sql, _ := fc()
	head := strings.ToUpper(strings.TrimSpace(sql))
	if err == nil && (strings.HasPrefix(head, "CREATE ") || strings.HasPrefix(head, "ALTER ") || strings.HasPrefix(head, "COMMENT ")) {
		r.ddl = append(r.ddl, sql)
	}
}
