package tenancy

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// A whole-database pg_dump runs in one transaction and takes an ACCESS SHARE
// lock on every table and sequence it dumps, holding them all to the end.
// PostgreSQL keeps those locks in one shared table sized at start-up to
// max_locks_per_transaction × (max_connections + max_prepared_transactions)
// entries; a dump that needs more fails with "out of shared memory" (53200)
// and the hint to raise max_locks_per_transaction. Each tenant brings three
// such relations with the shipped models (items, its id sequence and the
// migration ledger), so a server with the defaults (64 × (100 + 0)) stops
// dumping at a little over 2,000 tenants. BackupLocks says so before the
// backup fails, and with the setting that fixes it.

// lockReserve is how many lock table entries per connection BackupLocks
// leaves to the other sessions while a dump holds its locks. Most of a
// session's relation locks take no entry: its first 16 weak locks sit in
// its own fast-path slots. Sixteen entries each on top of those is room for
// DDL, migrations and sessions that lock more than usual at the same time.
const lockReserve = 16

// LockBudget compares the relation locks a whole-database pg_dump takes
// with the size of the server's shared lock table.
type LockBudget struct {
	// Relations is what pg_dump locks: tables, partitioned tables and
	// sequences outside PostgreSQL's own schemas.
	Relations int `json:"relations"`
	// MaxLocks, MaxConnections and MaxPrepared are the server's
	// max_locks_per_transaction, max_connections and
	// max_prepared_transactions.
	MaxLocks       int `json:"max_locks_per_transaction"`
	MaxConnections int `json:"max_connections"`
	MaxPrepared    int `json:"max_prepared_transactions"`
}

// Slots is the size of the shared lock table.
func (b LockBudget) Slots() int { return b.MaxLocks * (b.MaxConnections + b.MaxPrepared) }

// Needed is the smallest max_locks_per_transaction, rounded up to a
// multiple of 64 (PostgreSQL's default, so a setting reads as a multiple
// of it), whose lock table holds a dump of every relation plus the
// reserve of every other session. It never goes below the current value.
func (b LockBudget) Needed() int {
	backends := max(1, b.MaxConnections+b.MaxPrepared)
	want := b.Relations + lockReserve*b.MaxConnections
	n := (want + backends - 1) / backends
	n = (n + 63) / 64 * 64
	return max(n, b.MaxLocks)
}

// Fits reports whether a whole-database pg_dump fits the lock table as
// the server is configured.
func (b LockBudget) Fits() bool { return b.Needed() <= b.MaxLocks }

// Advice says what to set when the dump does not fit, and is empty when it
// does.
func (b LockBudget) Advice() string {
	if b.Fits() {
		return ""
	}
	return fmt.Sprintf("a whole-database pg_dump must lock %d tables and sequences, more than the lock table holds "+
		"(max_locks_per_transaction %d × (max_connections %d + max_prepared_transactions %d) = %d, less a reserve for other sessions): "+
		"it would fail with \"out of shared memory\"; set max_locks_per_transaction = %d (a restart applies it), "+
		"or back up with pg_basebackup and WAL archiving, which lock no tables (docs/SCALE.md, Backups)",
		b.Relations, b.MaxLocks, b.MaxConnections, b.MaxPrepared, b.Slots(), b.Needed())
}

// BackupLocks reads the figures of LockBudget from the server: one count
// over pg_class and three settings.
func BackupLocks(ctx context.Context, db *gorm.DB) (LockBudget, error) {
	var b LockBudget
	err := db.WithContext(ctx).Raw(`SELECT
		(SELECT count(*) FROM pg_catalog.pg_class c
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'p', 'S')
			AND n.nspname NOT IN ('pg_catalog', 'information_schema')
			AND n.nspname NOT LIKE 'pg\_toast%'
			AND n.nspname NOT LIKE 'pg\_temp\_%') AS relations,
		current_setting('max_locks_per_transaction')::int AS max_locks,
		current_setting('max_connections')::int AS max_connections,
		current_setting('max_prepared_transactions')::int AS max_prepared`).Row().
		Scan(&b.Relations, &b.MaxLocks, &b.MaxConnections, &b.MaxPrepared)
	if err != nil {
		return b, fmt.Errorf("backup lock budget: %w", classify(err))
	}
	return b, nil
}
