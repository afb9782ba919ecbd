package migrations

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"gorm.io/gorm"
)

// Step is one versioned migration: SQL run with the search_path pinned to
// the schema it migrates, so it names tables unqualified.
type Step struct {
	Version int
	Name    string
	// Up moves a schema from Version-1 to Version.
	Up string
	// Go, when set, runs after Up (which may then be empty) in the same
	// transaction: for backfills that need code rather than SQL.
	Go func(tx *gorm.DB) error
	// Down, when set, moves it back; `migrate --to` uses it.
	Down string
	// Compatible says this binary can serve a schema that lacks the step
	// (an added column the code does not read yet, an index). A tenant
	// behind an incompatible step is answered 503 until it is migrated.
	Compatible bool
}

// Checksum is the hex SHA-256 of the step's Up SQL. An applied step whose
// checksum changed was edited after it ran somewhere, and is refused. Code
// cannot be hashed, so a step with Go also hashes its name: rename a Go
// step when its code changes meaning.
func (s Step) Checksum() string {
	text := s.Up
	if s.Go != nil {
		text = "go:" + s.Name + "\n" + s.Up
	}
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// Plan is a schema's history: steps numbered 1, 2, 3, ... in order, and
// the GORM models those steps build. The models are what onboarding's
// blueprint is captured from; the steps are what migrates schemas that
// exist; CaptureBlueprint refuses a plan whose two disagree.
type Plan struct {
	// Models are pointers to the structs whose tables the steps build, in
	// the order AutoMigrate creates them (a table before those that refer
	// to it).
	Models []any
	Steps  []Step
}

// Latest is the version a schema has once every step ran.
func (p Plan) Latest() int { return len(p.Steps) }

// Required is the lowest version this binary can serve: the version of the
// newest step that is not Compatible.
func (p Plan) Required() int {
	for i := len(p.Steps) - 1; i >= 0; i-- {
		if !p.Steps[i].Compatible {
			return p.Steps[i].Version
		}
	}
	return 0
}

// Check verifies that versions run 1..n without gaps.
func (p Plan) Check() error {
	for i, s := range p.Steps {
		if s.Version != i+1 {
			return fmt.Errorf("migration plan: step %d (%s) has version %d, want %d", i, s.Name, s.Version, i+1)
		}
		if strings.TrimSpace(s.Up) == "" && s.Go == nil {
			return fmt.Errorf("migration plan: step %d has neither Up SQL nor Go", s.Version)
		}
	}
	return nil
}

// Pending lists the steps between versions from and to, in the order they
// would run (descending when to < from).
func (p Plan) Pending(from, to int) []Step {
	var out []Step
	if to >= from {
		for v := from + 1; v <= to && v <= len(p.Steps); v++ {
			out = append(out, p.Steps[v-1])
		}
		return out
	}
	for v := from; v > to && v >= 1; v-- {
		out = append(out, p.Steps[v-1])
	}
	return out
}

// Errors of the ledger.
var (
	// ErrEdited means an applied step's SQL changed after it was applied.
	ErrEdited = errors.New("applied migration step was edited (checksum mismatch)")
	// ErrAhead means the schema has steps this binary does not know.
	ErrAhead = errors.New("schema is ahead of this binary's migrations")
	// ErrNoDown means a step to be undone has no Down SQL.
	ErrNoDown = errors.New("migration step has no down SQL")
)

func ledgerDDL(table string) string {
	return `CREATE TABLE IF NOT EXISTS ` + table + ` (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	checksum   text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`
}

type ledgerRow struct {
	Version  int
	Checksum string
}

// readLedger returns the schema's version and refuses edited or unknown
// steps.
func readLedger(tx *gorm.DB, ledger string, p Plan) (int, error) {
	var rows []ledgerRow
	if err := tx.Raw("SELECT version, checksum FROM " + ledger + " ORDER BY version").Scan(&rows).Error; err != nil {
		return 0, fmt.Errorf("read %s: %w", ledger, err)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Version < rows[j].Version })
	for i, r := range rows {
		if r.Version > p.Latest() {
			return 0, fmt.Errorf("version %d: %w", r.Version, ErrAhead)
		}
		if r.Version != i+1 {
			return 0, fmt.Errorf("%s has a gap before version %d", ledger, r.Version)
		}
		if s := p.Steps[r.Version-1]; s.Checksum() != r.Checksum {
			return 0, fmt.Errorf("step %d (%s): %w", s.Version, s.Name, ErrEdited)
		}
	}
	return len(rows), nil
}

// migrate moves the schema whose ledger is ledger to version to, 0 (an
// empty schema) to the plan's latest, inside tx, recording each step. It
// returns the versions before and after. Callers name the version: a
// default ("latest when unset") is the command line's business, decided
// once where the flag is read.
func migrate(tx *gorm.DB, ledger string, p Plan, to int) (from, now int, err error) {
	if err := p.Check(); err != nil {
		return 0, 0, err
	}
	if to < 0 || to > p.Latest() {
		return 0, 0, fmt.Errorf("migrate to version %d: the plan has versions 0..%d", to, p.Latest())
	}
	from, err = readLedger(tx, ledger, p)
	if err != nil {
		return from, from, err
	}
	now = from
	for _, s := range p.Pending(from, to) {
		if to > from {
			if err := execScript(tx, s.Up); err != nil {
				return from, now, fmt.Errorf("step %d (%s): %w", s.Version, s.Name, err)
			}
			if s.Go != nil {
				if err := s.Go(tx); err != nil {
					return from, now, fmt.Errorf("step %d (%s): %w", s.Version, s.Name, err)
				}
			}
			if err := tx.Exec("INSERT INTO "+ledger+" (version, name, checksum) VALUES ($1, $2, $3)",
				s.Version, s.Name, s.Checksum()).Error; err != nil {
				return from, now, fmt.Errorf("record step %d: %w", s.Version, err)
			}
			now = s.Version
			continue
		}
		if strings.TrimSpace(s.Down) == "" {
			return from, now, fmt.Errorf("step %d (%s): %w", s.Version, s.Name, ErrNoDown)
		}
		if err := execScript(tx, s.Down); err != nil {
			return from, now, fmt.Errorf("undo step %d (%s): %w", s.Version, s.Name, err)
		}
		if err := tx.Exec("DELETE FROM "+ledger+" WHERE version = $1", s.Version).Error; err != nil {
			return from, now, err
		}
		now = s.Version - 1
	}
	return from, now, nil
}

// execScript runs a step's SQL one statement at a time (SplitStatements
// says why). A step runs inside its schema's transaction, so a failing
// statement still undoes the whole step.
func execScript(tx *gorm.DB, script string) error {
	for _, stmt := range SplitStatements(script) {
		if err := tx.Exec(stmt).Error; err != nil {
			return err
		}
	}
	return nil
}
