package tenancy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// A move copies a tenant's schema to another server with PostgreSQL's
// logical replication while the tenant is served, then switches it:
//
//  1. On the target, the schema, its tables at the tenant's version (the
//     plan's steps) and its roles; the ledger is emptied, since the copy
//     brings the source's.
//  2. On the source, a publication FOR TABLES IN SCHEMA; on the target, a
//     subscription that copies every table and then streams changes.
//  3. Catch-up: the target confirms the source's position as of the end
//     of the copy.
//  4. The switch, the only write pause: the source's tables are locked
//     EXCLUSIVE (reads go on, writes wait), the position after the last
//     committed write is taken, and once the target confirms it the
//     sequences are set to the source's values (logical replication does
//     not carry them) and the registry row names the target. This
//     process's cache forgets the tenant at once; other instances within
//     the cache TTL find the source gone and evict it (Directory.WithTx).
//  5. The source schema and roles are dropped, still under the lock, so a
//     write that waited on the source fails (503, retried on the target)
//     instead of landing where nobody reads; then the subscription (and
//     with it the slot) and the publication.
//
// Until the registry switch commits, any failure leaves the tenant whole
// on the source and removes what the move made on the target.
//
// Requirements (PostgreSQL 15): the source runs with wal_level=logical and
// has a free replication slot and WAL sender; publishing FOR TABLES IN
// SCHEMA and creating a subscription take a superuser on both servers (the
// servers' move URLs); the target must reach the source at the source's
// move URL. Move checks the first and the superuser before it changes
// anything.

// MoveOptions tune a move.
type MoveOptions struct {
	// CopyTimeout bounds the copy and the catch-up; 0 means 30 minutes.
	CopyTimeout time.Duration
	// SwitchTimeout bounds the write pause: the target must confirm the
	// final position within it, else the move gives up and the tenant
	// stays on the source. 0 means DefaultSwitchTimeout.
	SwitchTimeout time.Duration
	// SourceConnInfo is how the target server reaches the source (a libpq
	// connection string or URL); empty means the source's move URL.
	SourceConnInfo string
}

// DefaultSwitchTimeout is the longest write pause a move accepts by
// default. A paused write waits on the source's lock for at most
// RequestLimits.Lock (2 s) and is then answered 503, so a longer pause only
// turns waits into refusals; 3 s leaves the target room to confirm under
// load, and a move that cannot is better abandoned and run again.
const DefaultSwitchTimeout = 3 * time.Second

// MoveReport says how a move went.
type MoveReport struct {
	Tenant string `json:"tenant"`
	From   string `json:"from"`
	To     string `json:"to"`
	// Copy is the copy and catch-up; Switch the write pause, from locking
	// the source's tables to the registry switch; Total the whole move.
	Copy   time.Duration `json:"copy_ns"`
	Switch time.Duration `json:"switch_ns"`
	Total  time.Duration `json:"total_ns"`
	// Paused is when the source's writes were paused, Released when the
	// source let the paused ones go (to fail: the schema is gone), Pause
	// the time between: the longest a write waited on the source.
	Paused   time.Time     `json:"paused"`
	Released time.Time     `json:"released"`
	Pause    time.Duration `json:"pause_ns"`
	// Cleanup is what could not be removed after the switch (the move
	// itself succeeded): an operator drops it by hand.
	Cleanup string `json:"cleanup,omitempty"`
}

// ErrMoveUnsupported means a server lacks what a move needs; the message
// says what.
var ErrMoveUnsupported = errors.New("tenant move not possible")

// movePoll is how often a move polls replication progress: short against
// the write pause it measures.
const movePoll = 5 * time.Millisecond

// Move moves tenant name to server to, online (see above).
func (d *Directory) Move(ctx context.Context, name, to string, o MoveOptions) (MoveReport, error) {
	start := time.Now()
	rep := MoveReport{Tenant: name, To: to}
	if o.CopyTimeout <= 0 {
		o.CopyTimeout = 30 * time.Minute
	}
	if o.SwitchTimeout <= 0 {
		o.SwitchTimeout = DefaultSwitchTimeout
	}
	if err := ValidateServerName(to); err != nil {
		return rep, err
	}
	if _, err := d.server(to); err != nil {
		return rep, models.Invalid("to", fmt.Sprintf("server %q is not configured", to))
	}
	t, err := d.Get(ctx, name)
	if err != nil {
		return rep, err
	}
	rep.From = t.Server
	if t.Server == to {
		return rep, models.Invalid("to", fmt.Sprintf("tenant %q is on server %q already", name, to))
	}
	if t.DBRole == "" || t.DBRoleRead == "" {
		return rep, fmt.Errorf("tenant %q: %w", name, ErrNoRole)
	}
	roles := TenantRoles{Write: t.DBRole, Read: t.DBRoleRead}
	dep, err := d.Deployment(ctx)
	if err != nil {
		return rep, err
	}
	group, err := GroupRole(dep)
	if err != nil {
		return rep, err
	}
	// Publication, subscription and slot share one name, unique to the
	// deployment and the tenant incarnation; it is made of validated parts
	// (the deployment id is hex, the id a number).
	repl := "tenantry_move_" + dep + "_" + strconv.FormatInt(t.ID, 10)

	src, srcURL, err := d.moveHandle(ctx, t.Server)
	if err != nil {
		return rep, err
	}
	dst, _, err := d.moveHandle(ctx, to)
	if err != nil {
		return rep, err
	}
	dstAdmin, err := d.pool(ctx, to, true)
	if err != nil {
		return rep, err
	}
	if err := moveChecks(ctx, src, t.Server, dst, to); err != nil {
		return rep, err
	}
	if err := d.prepare(ctx, to); err != nil {
		return rep, err
	}
	conninfo := o.SourceConnInfo
	if conninfo == "" {
		conninfo = srcURL
	}

	// undo removes what the move made, newest first; after the switch it
	// is the source's copy that goes instead (step 5).
	var undo []func(context.Context) error
	cleanup := func() error {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			errs = append(errs, undo[i](cctx))
		}
		return errors.Join(errs...)
	}
	fail := func(err error) (MoveReport, error) {
		if cerr := cleanup(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up server %q: %w", to, cerr))
		}
		return rep, classify(fmt.Errorf("move %q to %q: %w", name, to, err))
	}

	// The source transaction holds the schema's advisory lock for the
	// whole move, so no migration or offboarding of the tenant runs
	// meanwhile (either would break the replication or race the switch),
	// and later takes the write pause's table locks. It assigns no
	// transaction id until the end, so slot creation does not wait for it.
	var switched bool
	err = src.WithContext(ctx).Transaction(func(stx *gorm.DB) error {
		if err := stx.Exec(`SELECT set_config('statement_timeout', '0', true),
			set_config('idle_in_transaction_session_timeout', '0', true),
			set_config('lock_timeout', $1, true), pg_advisory_xact_lock($2, hashtext($3))`,
			ms(DDLLimits.Lock), lockClass, t.SchemaName).Error; err != nil {
			return fmt.Errorf("lock the tenant on the source: %w", err)
		}
		version, err := sourceVersion(stx, t.SchemaName, d.plan)
		if err != nil {
			return err
		}
		if err := replicaIdentities(stx, t.SchemaName); err != nil {
			return err
		}
		// 1. The target schema at the tenant's version.
		if err := buildTarget(ctx, dstAdmin, t.SchemaName, roles, group, d.plan, version); err != nil {
			return fmt.Errorf("build on the target: %w", err)
		}
		undo = append(undo, func(ctx context.Context) error { return dropRemote(ctx, dstAdmin, t.SchemaName, roles) })
		// 2. Publication and subscription.
		if err := src.WithContext(ctx).Exec("CREATE PUBLICATION " + quoteIdent(repl) +
			" FOR TABLES IN SCHEMA " + quoteIdent(t.SchemaName)).Error; err != nil {
			return fmt.Errorf("publish on the source: %w", err)
		}
		undo = append(undo, func(ctx context.Context) error {
			return src.WithContext(ctx).Exec("DROP PUBLICATION IF EXISTS " + quoteIdent(repl)).Error
		})
		copyStart := time.Now()
		// synchronous_commit on: the target then confirms a position as
		// soon as it applied it, not after its WAL writer's next round,
		// which would lengthen the write pause.
		if err := dst.WithContext(ctx).Exec("CREATE SUBSCRIPTION " + quoteIdent(repl) +
			" CONNECTION " + literal(conninfo) + " PUBLICATION " + quoteIdent(repl) +
			" WITH (copy_data = true, synchronous_commit = 'on')").Error; err != nil {
			return fmt.Errorf("subscribe on the target: %w", err)
		}
		undo = append(undo, func(ctx context.Context) error { return dropSubscription(ctx, dst, src, repl) })
		// 3. Copy and catch-up.
		cctx, cancel := context.WithTimeout(ctx, o.CopyTimeout)
		defer cancel()
		if err := waitCopied(cctx, dst, repl); err != nil {
			return err
		}
		lsn, err := markPosition(ctx, src)
		if err != nil {
			return err
		}
		if err := waitConfirmed(cctx, src, repl, lsn); err != nil {
			return fmt.Errorf("catch up: %w", err)
		}
		rep.Copy = time.Since(copyStart)
		// 4. The switch.
		pause := time.Now()
		rep.Paused = pause
		if err := lockTablesMode(stx, t.SchemaName, "EXCLUSIVE"); err != nil {
			return fmt.Errorf("pause writes: %w", err)
		}
		if lsn, err = markPosition(ctx, src); err != nil {
			return err
		}
		sctx, scancel := context.WithTimeout(ctx, o.SwitchTimeout)
		defer scancel()
		if err := waitConfirmed(sctx, src, repl, lsn); err != nil {
			return fmt.Errorf("final position %s: %w", lsn, err)
		}
		if err := copySequences(sctx, stx, dstAdmin, t.SchemaName); err != nil {
			return err
		}
		res := d.admin.WithContext(sctx).Table(migrations.TenantsTable).
			Where("id = ? AND server = ?", t.ID, t.Server).Update("server", to)
		if res.Error != nil {
			// The commit's outcome is unknown: the registry decides.
			gctx, gcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			now, gerr := d.Get(gctx, name)
			gcancel()
			if gerr != nil {
				// The registry may name the target already: dropping the
				// target's copy could lose the live one. Keep both and the
				// replication; the operator reads the registry and drops
				// the copy it does not name.
				undo = nil
				return fmt.Errorf("switch the registry: outcome unknown (reading it back: %v); kept the schema on both %q and %q and the publication and subscription %s: %w",
					gerr, t.Server, to, repl, res.Error)
			}
			if now.Server != to {
				return fmt.Errorf("switch the registry: %w", res.Error)
			}
		} else if res.RowsAffected != 1 {
			return fmt.Errorf("switch the registry: the tenant changed meanwhile: %w", models.ErrConflict)
		}
		switched = true
		d.Forget(name)
		rep.Switch = time.Since(pause)
		// 5. Drop the source's copy, still under the lock: the writes that
		// waited on it then fail (the schema is gone: 503) and their
		// retries find the tenant on the target. Replication goes after.
		undo = nil
		if err := stx.Exec("DROP SCHEMA " + quoteIdent(t.SchemaName) + " CASCADE;\n" + dropRolesSQL(roles)).Error; err != nil {
			// The transaction is aborted: the schema stays until the
			// operator drops it (nothing reads it any more).
			rep.Cleanup = fmt.Sprintf("schema %s and its roles on %q: %v", t.SchemaName, t.Server, err)
			return errSwitchedLeftovers
		}
		return nil
	})
	rep.Released = time.Now()
	if !rep.Paused.IsZero() {
		rep.Pause = rep.Released.Sub(rep.Paused)
	}
	if switched {
		d.Forget(name)
		left := []error{}
		if rep.Cleanup != "" {
			left = append(left, errors.New(rep.Cleanup))
		} else if err != nil && !errors.Is(err, errSwitchedLeftovers) {
			// The source's commit failed: its copy stays behind.
			left = append(left, fmt.Errorf("schema %s and its roles on %q: %w", t.SchemaName, t.Server, err))
		}
		// The subscription first: it drops its slot on the source, and the
		// publication can go only once nothing streams it.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := dropSubscription(cctx, dst, src, repl); err != nil {
			left = append(left, fmt.Errorf("subscription %s on %q: %w", repl, to, err))
		}
		if err := src.WithContext(cctx).Exec("DROP PUBLICATION IF EXISTS " + quoteIdent(repl)).Error; err != nil {
			left = append(left, fmt.Errorf("publication %s on %q: %w", repl, t.Server, err))
		}
		if len(left) > 0 {
			rep.Cleanup = errors.Join(left...).Error()
		}
		rep.Total = time.Since(start)
		return rep, nil
	}
	if err != nil {
		return fail(err)
	}
	return rep, nil
}

// errSwitchedLeftovers rolls the source's transaction back after a switch
// whose clean-up failed; the report says what stayed.
var errSwitchedLeftovers = errors.New("moved; clean-up incomplete")

// moveChecks says what a server lacks for a move before anything changes.
func moveChecks(ctx context.Context, src *gorm.DB, srcName string, dst *gorm.DB, dstName string) error {
	var s struct {
		WalLevel string
		Super    bool
		Version  int
		Slots    int
	}
	q := `SELECT current_setting('wal_level') AS wal_level,
		(SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS super,
		current_setting('server_version_num')::int AS version,
		current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots) AS slots`
	if err := src.WithContext(ctx).Raw(q).Scan(&s).Error; err != nil {
		return classify(fmt.Errorf("inspect server %q: %w", srcName, err))
	}
	switch {
	case s.Version < 150000:
		return fmt.Errorf("server %q runs PostgreSQL %d; moves need 15 or newer (FOR TABLES IN SCHEMA): %w", srcName, s.Version/10000, ErrMoveUnsupported)
	case s.WalLevel != "logical":
		return fmt.Errorf("server %q has wal_level=%s; moves need wal_level=logical there (set it and restart the server): %w", srcName, s.WalLevel, ErrMoveUnsupported)
	case !s.Super:
		return fmt.Errorf("server %q: publishing a schema takes a superuser in PostgreSQL 15; give the move a superuser's URL there (TENANT_MOVE_URLS): %w", srcName, ErrMoveUnsupported)
	case s.Slots < 1:
		return fmt.Errorf("server %q has no free replication slot (max_replication_slots): %w", srcName, ErrMoveUnsupported)
	}
	if err := dst.WithContext(ctx).Raw(q).Scan(&s).Error; err != nil {
		return classify(fmt.Errorf("inspect server %q: %w", dstName, err))
	}
	if !s.Super {
		return fmt.Errorf("server %q: creating a subscription takes a superuser in PostgreSQL 15; give the move a superuser's URL there (TENANT_MOVE_URLS): %w", dstName, ErrMoveUnsupported)
	}
	return nil
}

// sourceVersion reads the schema's version from its own ledger, the truth
// the target is built to.
func sourceVersion(stx *gorm.DB, schema string, p migrations.Plan) (int, error) {
	var v int
	err := stx.Raw("SELECT coalesce(max(version), 0) FROM " + quoteIdent(schema) + "." + quoteIdent(migrations.TenantLedger)).Scan(&v).Error
	if err != nil {
		return 0, fmt.Errorf("read the source's ledger: %w", err)
	}
	if v < 1 || v > p.Latest() {
		return 0, fmt.Errorf("schema %s is at version %d, this binary knows 1 to %d; run tenantry migrate first: %w", schema, v, p.Latest(), ErrMoveUnsupported)
	}
	return v, nil
}

// replicaIdentities refuses a move of a schema with a table that has
// neither a primary key nor a replica identity: once it is published,
// PostgreSQL fails every UPDATE and DELETE on it (55000) for as long as the
// copy and catch-up last. A program's own models may lack a primary key.
func replicaIdentities(stx *gorm.DB, schema string) error {
	var bare []string
	err := stx.Raw(`SELECT c.relname::text FROM pg_class c
		WHERE c.relnamespace = to_regnamespace($1) AND c.relkind = 'r'
		AND (c.relreplident = 'n' OR (c.relreplident = 'd'
			AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
		ORDER BY 1`, quoteIdent(schema)).Scan(&bare).Error
	if err != nil {
		return fmt.Errorf("check replica identities: %w", err)
	}
	if len(bare) > 0 {
		return fmt.Errorf("schema %s: tables %s have no primary key or replica identity, so their updates and deletes would fail while they are published; add one (ALTER TABLE ... REPLICA IDENTITY FULL at least): %w",
			schema, strings.Join(bare, ", "), ErrMoveUnsupported)
	}
	return nil
}

// buildTarget makes the schema, its tables at version and its roles on the
// target, with an empty ledger: the copy brings the source's rows.
func buildTarget(ctx context.Context, admin *gorm.DB, schema string, roles TenantRoles, group string, p migrations.Plan, version int) error {
	pinned, err := pinSQL(pinSpec{Schema: schema, Limits: DDLLimits})
	if err != nil {
		return err
	}
	grants, err := tenantRolesSQL(schema, roles, group, true, true)
	if err != nil {
		return err
	}
	return admin.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := setLimits(tx, DDLLimits); err != nil {
			return err
		}
		if err := lockSchema(tx, schema); err != nil {
			return err
		}
		if err := tx.Exec("CREATE SCHEMA " + quoteIdent(schema) + ";\n" + pinned).Error; err != nil {
			return err
		}
		if _, _, err := migrations.MigrateTo(tx, p, version); err != nil {
			return err
		}
		return tx.Exec("TRUNCATE " + quoteIdent(migrations.TenantLedger) + ";\n" + unpinSQL + ";\n" +
			grants + ";\n" + revokeLedgerSQL(schema, roles)).Error
	})
}

// markPosition returns a source position after every write committed
// before it: a WAL message in a transaction of its own that commits with
// synchronous_commit on. A WAL sender sends only flushed WAL, and on a
// server with synchronous_commit off the position would wait for the WAL
// writer's next round (up to wal_writer_delay), lengthening the pause.
func markPosition(ctx context.Context, src *gorm.DB) (string, error) {
	var lsn string
	err := src.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return tx.Raw("SELECT set_config('synchronous_commit', 'on', true), pg_logical_emit_message(true, 'tenantry', 'move')::text").
			Row().Scan(new(string), &lsn)
	})
	if err != nil {
		return "", fmt.Errorf("mark the source position: %w", err)
	}
	return lsn, nil
}

// waitCopied waits until every table of the subscription finished its
// initial copy and joined the stream ('r', ready), and fails early when
// the target reports a copy or apply error.
func waitCopied(ctx context.Context, dst *gorm.DB, sub string) error {
	for {
		var s struct {
			Tables, Ready, Errors int
		}
		err := dst.WithContext(ctx).Raw(`SELECT count(r.srrelid) AS tables,
			count(r.srrelid) FILTER (WHERE r.srsubstate = 'r') AS ready,
			coalesce((SELECT apply_error_count + sync_error_count FROM pg_stat_subscription_stats WHERE subname = $1), 0) AS errors
			FROM pg_subscription s LEFT JOIN pg_subscription_rel r ON r.srsubid = s.oid
			WHERE s.subname = $1`, sub).Scan(&s).Error
		if err != nil {
			return fmt.Errorf("copy progress: %w", err)
		}
		if s.Errors > 0 {
			return fmt.Errorf("the target reports %d replication errors (see its log)", s.Errors)
		}
		if s.Tables > 0 && s.Ready == s.Tables {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("copy: %d of %d tables ready: %w", s.Ready, s.Tables, ctx.Err())
		case <-time.After(movePoll):
		}
	}
}

// waitConfirmed waits until the subscriber confirmed (applied and
// reported) the source's position lsn on the slot.
func waitConfirmed(ctx context.Context, src *gorm.DB, slot, lsn string) error {
	for {
		var ok *bool
		err := src.WithContext(ctx).Raw(`SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1`,
			slot, lsn).Scan(&ok).Error
		if err != nil {
			return err
		}
		if ok == nil {
			return fmt.Errorf("replication slot %s is gone", slot)
		}
		if *ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the target did not confirm %s: %w", lsn, ctx.Err())
		case <-time.After(movePoll):
		}
	}
}

// copySequences sets every sequence of the schema on the target to its
// value on the source, which the write pause holds still.
func copySequences(ctx context.Context, stx, dst *gorm.DB, schema string) error {
	var seqs []string
	if err := stx.Raw(`SELECT relname FROM pg_class WHERE relnamespace = to_regnamespace($1) AND relkind = 'S' ORDER BY relname`,
		quoteIdent(schema)).Scan(&seqs).Error; err != nil {
		return fmt.Errorf("list sequences: %w", err)
	}
	for _, seq := range seqs {
		// Catalog names may hold any character, so pgx quotes them in full.
		q := pgx.Identifier{schema, seq}.Sanitize()
		var v struct {
			LastValue int64
			IsCalled  bool
		}
		if err := stx.Raw("SELECT last_value, is_called FROM " + q).Scan(&v).Error; err != nil {
			return fmt.Errorf("read sequence %s: %w", q, err)
		}
		if err := dst.WithContext(ctx).Exec("SELECT setval($1::regclass, $2, $3)", q, v.LastValue, v.IsCalled).Error; err != nil {
			return fmt.Errorf("set sequence %s on the target: %w", q, err)
		}
	}
	return nil
}

// dropSubscription drops the move's subscription on the target, which also
// drops its slot on the source. When the source cannot be reached, the
// subscription is detached from the slot and dropped, and the slot is
// dropped on the source if that answers.
func dropSubscription(ctx context.Context, dst, src *gorm.DB, name string) error {
	q := quoteIdent(name)
	var exists bool
	if err := dst.WithContext(ctx).Raw("SELECT EXISTS (SELECT FROM pg_subscription WHERE subname = $1)", name).Scan(&exists).Error; err != nil {
		return err
	}
	if !exists {
		return nil
	}
	err := dst.WithContext(ctx).Exec("DROP SUBSCRIPTION " + q).Error
	if err == nil {
		return nil
	}
	if derr := dst.WithContext(ctx).Exec("ALTER SUBSCRIPTION " + q + " DISABLE").Error; derr != nil {
		return errors.Join(err, derr)
	}
	if derr := dst.WithContext(ctx).Exec("ALTER SUBSCRIPTION " + q + " SET (slot_name = NONE)").Error; derr != nil {
		return errors.Join(err, derr)
	}
	if derr := dst.WithContext(ctx).Exec("DROP SUBSCRIPTION " + q).Error; derr != nil {
		return errors.Join(err, derr)
	}
	return src.WithContext(ctx).Exec("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", name).Error
}

// lockTablesMode is lockTables in a chosen mode: EXCLUSIVE holds writes
// and lets reads through.
func lockTablesMode(tx *gorm.DB, schema, mode string) error {
	if mode != "EXCLUSIVE" && mode != "ACCESS EXCLUSIVE" {
		return fmt.Errorf("lock mode %q: %w", mode, models.ErrInvalid)
	}
	var rels []string
	err := tx.Raw(`SELECT relname FROM pg_class WHERE relnamespace = to_regnamespace($1)
		AND relkind IN ('r', 'p') ORDER BY relname`, quoteIdent(schema)).Scan(&rels).Error
	if err != nil || len(rels) == 0 {
		return err
	}
	names := ""
	for i, r := range rels {
		if i > 0 {
			names += ", "
		}
		names += pgx.Identifier{schema, r}.Sanitize()
	}
	return tx.Exec("LOCK TABLE " + names + " IN " + mode + " MODE").Error
}
