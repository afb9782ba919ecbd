package tenancy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// Directory resolves tenant names to registry rows and changes the registry.
// It caches lookups in process for TTL. Every change made through a
// Directory evicts the name first, so a tenant deleted or suspended here is
// never served from this cache; other processes see the change within TTL,
// and a scope on a dropped schema fails closed meanwhile.
type Directory struct {
	// db is the request role's handle: registry reads and scopes.
	db *gorm.DB
	// admin is the DDL role's handle: onboarding, offboarding, status
	// changes, migrations (WithAdmin; db itself in the one-URL setup).
	admin       *gorm.DB
	ttl         time.Duration
	now         func() time.Time
	plan        migrations.Plan
	app         migrations.App
	autoMigrate bool
	// limits are the limits of the scopes of the tenants it resolves.
	limits Limits

	mu    sync.RWMutex
	cache map[string]cached
	// gen counts each name's evictions. A lookup stores what it read only
	// if no eviction happened since it began: otherwise its read may
	// predate a change that evicted the name, and would cache the old row.
	gen map[string]uint64
	// afterRead, when set (tests only), runs between a lookup's read and
	// its store: the window the generation check guards.
	afterRead func(name string)

	bpMu      sync.Mutex
	blueprint *migrations.Blueprint

	depMu sync.Mutex
	dep   string

	// extra, extraPool, homeWeight and homeMoveURL are WithServers' and
	// WithHomeServer's; servers is what NewDirectory made of them
	// (servers.go), serversErr why it could not.
	extra       []Server
	extraPool   PoolConfig
	homeWeight  int
	homeMoveURL string
	servers     *servers
	serversErr  error
	roleCheck   ServerRoleCheck // WithServerRoleCheck's (serverroles.go)

	clusterMu sync.Mutex
	cluster   *Cluster
}

type cached struct {
	t     models.Tenant
	until time.Time
}

// DefaultTTL bounds how long another process may serve a tenant that was
// suspended or deleted elsewhere.
const DefaultTTL = 5 * time.Second

// Option configures a Directory.
type Option func(*Directory)

// WithTTL sets how long lookups are cached (default DefaultTTL; 0 disables
// the cache).
func WithTTL(ttl time.Duration) Option { return func(d *Directory) { d.ttl = ttl } }

// WithPlan sets the tenant migration plan alone (default
// migrations.Tenantry's); WithApp sets it with the rest of a program's
// declaration.
func WithPlan(p migrations.Plan) Option { return func(d *Directory) { d.plan = p } }

// WithAdmin sets the handle of the DDL role, which onboards, offboards,
// changes statuses and migrates; the directory's own handle (the request
// role) then only reads the registry and opens scopes. Without it, the
// handle AttachAdmin recorded on db is used, else db does both (the
// one-URL setup).
func WithAdmin(admin *gorm.DB) Option { return func(d *Directory) { d.admin = admin } }

// WithLimits sets the limits of the scopes of the tenants the directory
// resolves (default RequestLimits).
func WithLimits(l Limits) Option { return func(d *Directory) { d.limits = l } }

// WithAutoMigrate makes onboarding build schemas with GORM's AutoMigrate,
// the slow reference path, instead of replaying the captured blueprint.
func WithAutoMigrate() Option { return func(d *Directory) { d.autoMigrate = true } }

// NewDirectory returns a Directory over db's registry.
func NewDirectory(db *gorm.DB, opts ...Option) *Directory {
	d := &Directory{db: db, ttl: DefaultTTL, now: time.Now, limits: RequestLimits,
		plan: migrations.Tenantry.Tenant, app: migrations.Tenantry,
		cache: map[string]cached{}, gen: map[string]uint64{}}
	for _, o := range opts {
		o(d)
	}
	if d.admin == nil {
		d.admin = db
		if a, ok := adminOf(db); ok {
			d.admin = a
		}
	}
	if err := d.initServers(); err != nil {
		d.serversErr = err
		d.extra = nil
		_ = d.initServers() // the home server alone, so listings still work
	}
	return d
}

// Plan returns the tenant migration plan the directory serves and migrates.
func (d *Directory) Plan() migrations.Plan { return d.plan }

func (d *Directory) registry(ctx context.Context) *gorm.DB {
	return d.db.WithContext(ctx).Table(migrations.TenantsTable)
}

// Active resolves the tenant called name if it may be served (active or
// read-only, at a schema version this binary serves): the Resolved it
// returns is what opens the tenant's scope (WithTx). It returns
// ErrNotFound if there is no such tenant (or the name is not a tenant name
// at all), ErrForbidden if it is suspended; on an error the Resolved opens
// nothing, though its Row may say what was found.
func (d *Directory) Active(ctx context.Context, name string) (Resolved, error) {
	t, err := d.active(ctx, name)
	if err != nil {
		return Resolved{row: t}, err
	}
	// The pool of the tenant's server (servers.go): a server that is down
	// makes its own tenants unavailable here, and no other.
	db, err := d.pool(ctx, t.Server, false)
	if err != nil {
		return Resolved{row: t}, fmt.Errorf("tenant %q: %w", name, err)
	}
	r := d.resolve(t)
	r.db = db
	return r, nil
}

func (d *Directory) active(ctx context.Context, name string) (models.Tenant, error) {
	if ValidateName(name) != nil {
		return models.Tenant{}, fmt.Errorf("tenant %q: %w", name, models.ErrNotFound)
	}
	d.mu.RLock()
	c, ok := d.cache[name]
	gen := d.gen[name]
	d.mu.RUnlock()
	t := c.t
	if !ok || d.now().After(c.until) {
		var err error
		if t, err = d.Get(ctx, name); err != nil {
			return t, err
		}
		if d.afterRead != nil {
			d.afterRead(name)
		}
		d.mu.Lock()
		if d.gen[name] == gen {
			d.cache[name] = cached{t: t, until: d.now().Add(d.ttl)}
		}
		d.mu.Unlock()
	}
	if !t.Status.Served() {
		return t, fmt.Errorf("tenant %q is %s: %w", name, t.Status, models.ErrForbidden)
	}
	if t.SchemaVersion < d.plan.Required() {
		return t, fmt.Errorf("tenant %q: schema version %d, this binary needs %d: %w",
			name, t.SchemaVersion, d.plan.Required(), ErrBehind)
	}
	if t.SchemaVersion > d.plan.Latest() {
		// A newer binary migrated it (a rolling deploy): this one does not
		// know its tables, so it must not guess.
		return t, fmt.Errorf("tenant %q: schema version %d, this binary knows up to %d: %w",
			name, t.SchemaVersion, d.plan.Latest(), ErrAheadOfBinary)
	}
	return t, nil
}

// ErrAheadOfBinary means the tenant's schema is newer than this binary's
// migrations; a newer instance serves it. It matches models.ErrUnavailable.
var ErrAheadOfBinary = fmt.Errorf("tenant schema is ahead of this binary: %w", models.ErrUnavailable)

// ErrBehind means the tenant's schema is older than this binary can serve:
// it is waiting for (or in) a migration. It matches models.ErrUnavailable,
// so clients get 503 and retry.
var ErrBehind = fmt.Errorf("tenant schema is behind: %w", models.ErrUnavailable)

// Forget evicts name from the cache, and keeps lookups that were under
// way from storing what they read.
func (d *Directory) Forget(name string) {
	d.mu.Lock()
	delete(d.cache, name)
	d.gen[name]++
	d.mu.Unlock()
}

// Get reads the tenant called name from the registry, uncached.
func (d *Directory) Get(ctx context.Context, name string) (models.Tenant, error) {
	var t models.Tenant
	if ValidateName(name) != nil {
		return t, fmt.Errorf("tenant %q: %w", name, models.ErrNotFound)
	}
	err := d.registry(ctx).Where("name = ?", name).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return t, fmt.Errorf("tenant %q: %w", name, models.ErrNotFound)
	}
	if err != nil {
		return t, classify(fmt.Errorf("get tenant %q: %w", name, err))
	}
	return t, nil
}

// List returns every tenant ordered by name.
func (d *Directory) List(ctx context.Context) ([]models.Tenant, error) {
	ts := []models.Tenant{}
	if err := d.registry(ctx).Order("name").Find(&ts).Error; err != nil {
		return nil, classify(fmt.Errorf("list tenants: %w", err))
	}
	return ts, nil
}

// lockClass is the first key of the onboarding advisory locks ("onbd").
const lockClass = 0x6f6e6264

// lockSchema takes the transaction-scoped advisory lock of one schema name.
// Onboarding and offboarding of a schema serialise on it, and so do two names
// that derive the same schema.
func lockSchema(tx *gorm.DB, schema string) error {
	return tx.Exec("SELECT pg_advisory_xact_lock($1, hashtext($2))", lockClass, schema).Error
}

// Onboard creates tenant name: its schema, its tables at the plan's latest
// version and its registry row, in one transaction, so they appear together
// or not at all. A name (or a name deriving the same schema) that exists
// already gives ErrConflict. The tables come from the blueprint captured
// once per process (one round trip, no catalog introspection), or from
// AutoMigrate when the directory was made WithAutoMigrate.
func (d *Directory) Onboard(ctx context.Context, name string) (models.Tenant, error) {
	schema, err := SchemaFor(name)
	if err != nil {
		return models.Tenant{}, err
	}
	var bp migrations.Blueprint
	if !d.autoMigrate {
		if bp, err = d.Blueprint(ctx); err != nil {
			return models.Tenant{}, err
		}
	}
	dep, err := d.Deployment(ctx)
	if err != nil {
		return models.Tenant{}, err
	}
	group, err := GroupRole(dep)
	if err != nil {
		return models.Tenant{}, err
	}
	cluster, err := d.Cluster(ctx)
	if err != nil {
		return models.Tenant{}, err
	}
	pinned, err := pinSQL(pinSpec{Schema: schema, Limits: DDLLimits})
	if err != nil {
		return models.Tenant{}, err
	}
	srv, err := d.place(ctx)
	if err != nil {
		return models.Tenant{}, err
	}
	var remote *gorm.DB // the DDL handle of a server other than home
	if srv != HomeServer {
		if err := d.prepare(ctx, srv); err != nil {
			return models.Tenant{}, err
		}
		if remote, err = d.pool(ctx, srv, true); err != nil {
			return models.Tenant{}, err
		}
	}
	t := models.Tenant{Name: name, SchemaName: schema, Status: models.StatusActive, SchemaVersion: d.plan.Latest(), Server: srv}
	var built TenantRoles // set once a remote server committed the schema
	build := func(tx *gorm.DB) error {
		if err := tx.Exec(limitsSQL+", pg_advisory_xact_lock($4, hashtext($5))",
			ms(DDLLimits.Statement), ms(DDLLimits.Lock), ms(DDLLimits.Idle), lockClass, schema).Error; err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		// The roles are named after the registry id (RolesFor), so the id
		// is drawn here, with the existence check in the same round trip,
		// and the row is inserted with it. A conflict below wastes an id;
		// identity sequences have gaps anyway.
		var next struct {
			Taken int64
			ID    int64
		}
		if err := tx.Raw(`SELECT (SELECT count(*) FROM `+migrations.TenantsTable+` WHERE name = $1 OR schema_name = $2) AS taken,
			nextval(pg_get_serial_sequence($3, 'id')) AS id`, name, schema, migrations.TenantsTable).Scan(&next).Error; err != nil {
			return err
		}
		if next.Taken > 0 {
			return fmt.Errorf("tenant %q (schema %s) exists: %w", name, schema, models.ErrConflict)
		}
		roles, err := RolesFor(dep, next.ID)
		if err != nil {
			return err
		}
		t.ID, t.DBRole, t.DBRoleRead = next.ID, roles.Write, roles.Read
		if remote == nil {
			if err := d.buildSchema(tx, schema, roles, group, pinned, bp, cluster.Citus); err != nil {
				return err
			}
			return tx.Table(migrations.TenantsTable).Create(&t).Error
		}
		// On another server the schema commits first, in a transaction of
		// its own under the same advisory lock there, while this one holds
		// the registry's lock; if the registry row then fails, the schema
		// is dropped again below, so no tenant is left half-made.
		err = remote.WithContext(ctx).Transaction(func(rtx *gorm.DB) error {
			if err := rtx.Exec(limitsSQL+", pg_advisory_xact_lock($4, hashtext($5))",
				ms(DDLLimits.Statement), ms(DDLLimits.Lock), ms(DDLLimits.Idle), lockClass, schema).Error; err != nil {
				return fmt.Errorf("lock on server %q: %w", srv, err)
			}
			return d.buildSchema(rtx, schema, roles, group, pinned, bp, false)
		})
		if err != nil {
			return fmt.Errorf("server %q: %w", srv, err)
		}
		built = roles
		return tx.Table(migrations.TenantsTable).Create(&t).Error
	}
	if cluster.Citus && remote == nil {
		err = d.onboardCitus(ctx, name, schema, build)
	} else {
		err = d.admin.WithContext(ctx).Transaction(build)
	}
	if err != nil {
		if built.Write != "" {
			// Bounded: the request's deadline may be the reason for the
			// failure, and a server that stopped answering must not hang
			// the caller (30 s is the move's clean-up bound too).
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			uerr := dropRemote(uctx, remote, schema, built)
			cancel()
			if uerr != nil {
				err = errors.Join(err, fmt.Errorf("undo the schema on server %q: %w", srv, uerr))
			}
		}
		return models.Tenant{}, classify(fmt.Errorf("onboard %q: %w", name, err))
	}
	d.Forget(name)
	return t, nil
}

// buildSchema makes a tenant's schema, tables and roles in tx: from the
// blueprint in one round trip, or with AutoMigrate. Every name in it was
// validated and quoted by the pin builder's helpers. A role that exists
// already (a collision) fails the whole transaction with duplicate_object,
// a conflict. On Citus (citus), onboardCitus made the distributed schema
// already, the DDL goes one statement at a time and the roles may log in
// (citus.go).
func (d *Directory) buildSchema(tx *gorm.DB, schema string, roles TenantRoles, group, pinned string, bp migrations.Blueprint, citus bool) error {
	// On plain PostgreSQL the roles and their default privileges come
	// before the tables, which the defaults then cover (tenantRolesSQL says
	// why). On Citus the grants follow the tables, as they were verified on
	// a cluster: the shards on the workers take the tables' own grants.
	grants, err := tenantRolesSQL(schema, roles, group, true, citus)
	if err != nil {
		return err
	}
	before, after := grants+";\n", ""
	create := "CREATE SCHEMA " + quoteIdent(schema) + ";\n" + pinned + ";\n"
	run := func(script string) error { return tx.Exec(script).Error }
	if citus {
		before, after = "", grants+";\n"+workerLoginSQL(roles)+";\n"
		create = pinned + ";\n"
		run = func(script string) error { return execEach(tx, script) }
	}
	if !d.autoMigrate {
		if err := run(create + before + bp.SQL + ";\n" + after + revokeLedgerSQL(schema, roles) + ";\n" + unpinSQL); err != nil {
			return fmt.Errorf("build schema: %w", err)
		}
		return nil
	}
	if err := run(create + before); err != nil {
		return fmt.Errorf("build schema: %w", err)
	}
	if err := migrations.AutoMigrate(tx, d.plan); err != nil {
		return err
	}
	return run(after + revokeLedgerSQL(schema, roles) + ";\n" + unpinSQL)
}

// dropRemote drops a tenant's schema and roles on a server other than
// home, in a transaction of its own that first waits for (and queues) the
// tenant's transactions there.
func dropRemote(ctx context.Context, db *gorm.DB, schema string, roles TenantRoles) error {
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		lim := DDLLimits
		lim.Lock = offboardGrace
		if err := setLimits(tx, lim); err != nil {
			return err
		}
		if err := lockSchema(tx, schema); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if err := lockTables(tx, schema); err != nil {
			return fmt.Errorf("lock tables: %w", err)
		}
		return dropSchema(tx, schema, roles)
	})
}

// Blueprint returns the tenant schema blueprint, capturing it on first use.
// A failed capture is retried by the next call.
func (d *Directory) Blueprint(ctx context.Context) (migrations.Blueprint, error) {
	d.bpMu.Lock()
	defer d.bpMu.Unlock()
	if d.blueprint != nil {
		return *d.blueprint, nil
	}
	bp, err := migrations.CaptureBlueprint(ctx, d.admin, d.plan, scratchPin)
	if err != nil {
		return bp, classify(err)
	}
	d.blueprint = &bp
	return bp, nil
}

// Offboard drops tenant name's schema with all its data, its roles and its
// registry row. It succeeds while the tenant is busy:
//
//  1. Suspend and evict: the row turns suspended in a transaction of its
//     own, so new requests are refused (403) at once in this process and
//     within the cache TTL in others, while in-flight work runs on.
//  2. Lock the tenant's tables, in name order, before DROP SCHEMA. The
//     LOCK waits up to offboardGrace for in-flight transactions to finish,
//     and holds off new ones. DROP SCHEMA ... CASCADE alone takes the id
//     sequence before its table while an INSERT takes the table, then the
//     sequence: a deadlock that PostgreSQL settled against the drop.
//  3. If the grace runs out or a deadlock is reported anyway, cut: end the
//     backends that hold or await locks on the tenant's relations (only
//     those; a scope touches one tenant) and try again, at most
//     offboardAttempts times and never past ctx.
//
// The registry row, the schema and the roles still go in one transaction,
// so a failed offboarding leaves the tenant whole, and suspended: delete
// it again.
func (d *Directory) Offboard(ctx context.Context, name string) error {
	d.Forget(name)
	defer d.Forget(name)
	schema, err := SchemaFor(name)
	if err != nil {
		return fmt.Errorf("tenant %q: %w", name, models.ErrNotFound)
	}
	dep, err := d.Deployment(ctx)
	if err != nil {
		return err
	}
	res := d.admin.WithContext(ctx).Table(migrations.TenantsTable).Where("name = ?", name).
		Update("status", models.StatusSuspended)
	if res.Error != nil {
		return classify(fmt.Errorf("offboard %q: suspend: %w", name, res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("tenant %q: %w", name, models.ErrNotFound)
	}
	d.Forget(name)
	// The schema's server: the registry's own, or another one, whose drop
	// then commits first inside the registry's transaction (dropTenant).
	storage, remote := d.admin, (*gorm.DB)(nil)
	t, err := d.Get(ctx, name)
	if err != nil {
		return err
	}
	if t.Server != HomeServer {
		if remote, err = d.pool(ctx, t.Server, true); err != nil {
			return fmt.Errorf("offboard %q: %w", name, err)
		}
		storage = remote
	}
	for attempt := 1; ; attempt++ {
		err = d.admin.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			return dropTenant(ctx, tx, remote, name, schema, dep)
		})
		if err == nil || attempt == offboardAttempts || !lockConflict(err) || ctx.Err() != nil {
			break
		}
		if cerr := cutSchema(ctx, storage, schema); cerr != nil {
			err = errors.Join(err, cerr)
			break
		}
	}
	if err != nil {
		return classify(fmt.Errorf("offboard %q: %w", name, err))
	}
	return nil
}

// offboardGrace is how long an offboarding waits for the tenant's
// in-flight transactions before it cuts them: RequestLimits.Lock, the
// longest a request itself would wait on a lock.
var offboardGrace = RequestLimits.Lock

// offboardAttempts bounds the lock-and-drop attempts; with the cut in
// between, the second one normally succeeds.
const offboardAttempts = 4

// dropTenant is one attempt: under the schema's advisory lock, delete the
// registry row, lock the tables, drop the schema and the roles of the
// incarnation the row was (its id names them). A schema on another server
// than the registry's (remote) is dropped there in a transaction that
// commits before this one: if this one then fails, the row stays
// (suspended) and the next attempt finds nothing left to drop there.
func dropTenant(ctx context.Context, tx, remote *gorm.DB, name, schema, dep string) error {
	lim := DDLLimits
	lim.Lock = offboardGrace
	if err := setLimits(tx, lim); err != nil {
		return err
	}
	if err := lockSchema(tx, schema); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	var ids []int64
	if err := tx.Raw("DELETE FROM "+migrations.TenantsTable+" WHERE name = $1 RETURNING id", name).Scan(&ids).Error; err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("tenant %q: %w", name, models.ErrNotFound)
	}
	roles, err := RolesFor(dep, ids[0])
	if err != nil {
		return err
	}
	if remote != nil {
		return dropRemote(ctx, remote, schema, roles)
	}
	if err := lockTables(tx, schema); err != nil {
		return fmt.Errorf("lock tables: %w", err)
	}
	return dropSchema(tx, schema, roles)
}

// dropSchema drops the tenant's storage and roles; the caller holds its
// tables. The roles go in the same transaction: no half-offboarded tenant
// keeps roles that a later tenant of the same name would collide with.
func dropSchema(tx *gorm.DB, schema string, roles TenantRoles) error {
	return execEach(tx, "DROP SCHEMA IF EXISTS "+quoteIdent(schema)+" CASCADE;\n"+dropRolesSQL(roles))
}

// lockTables takes every table of schema in ACCESS EXCLUSIVE mode, in name
// order, in one statement: it waits for the transactions that use them and
// queues the ones that come after, so DROP SCHEMA then meets no holder of a
// table's sequence. Catalog names may hold any character, so pgx quotes
// them in full.
func lockTables(tx *gorm.DB, schema string) error {
	var rels []string
	err := tx.Raw(`SELECT relname FROM pg_class WHERE relnamespace = to_regnamespace($1)
		AND relkind IN ('r', 'p') ORDER BY relname`, quoteIdent(schema)).Scan(&rels).Error
	if err != nil || len(rels) == 0 {
		return err
	}
	names := make([]string, len(rels))
	for i, r := range rels {
		names[i] = pgx.Identifier{schema, r}.Sanitize()
	}
	return tx.Exec("LOCK TABLE " + strings.Join(names, ", ") + " IN ACCESS EXCLUSIVE MODE").Error
}

// lockConflict reports a lock wait that timed out or a deadlock: the cases
// a cut and a retry resolve.
func lockConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "55P03" || pgErr.Code == "40P01")
}

// cutSchema ends the backends that hold or await a lock on a relation of
// schema, other than this one: the offboarded tenant's in-flight work. It
// can end only backends it may signal (same login role, membership in
// pg_signal_backend, or a superuser's); the rest are waited out by the next
// attempt, bounded by their own statement and idle timeouts.
func cutSchema(ctx context.Context, db *gorm.DB, schema string) error {
	err := db.WithContext(ctx).Exec(`SELECT pg_terminate_backend(a.pid)
		FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid
		WHERE a.pid IN (SELECT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
			WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND c.relnamespace = to_regnamespace($1))
		AND a.pid <> pg_backend_pid()
		AND (pg_has_role(a.usesysid, 'USAGE') OR pg_has_role('pg_signal_backend', 'USAGE'))
		AND (NOT r.rolsuper OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user))`,
		quoteIdent(schema)).Error
	if err != nil {
		return fmt.Errorf("cut in-flight work of %s: %w", schema, err)
	}
	return nil
}

// SetStatus changes tenant name's status and returns the updated tenant.
func (d *Directory) SetStatus(ctx context.Context, name string, s models.Status) (models.Tenant, error) {
	d.Forget(name)
	defer d.Forget(name)
	if !s.Valid() {
		return models.Tenant{}, models.Invalid("status", "must be active, suspended or read-only")
	}
	if ValidateName(name) != nil {
		return models.Tenant{}, fmt.Errorf("tenant %q: %w", name, models.ErrNotFound)
	}
	res := d.admin.WithContext(ctx).Table(migrations.TenantsTable).Where("name = ?", name).Update("status", s)
	if res.Error != nil {
		return models.Tenant{}, classify(fmt.Errorf("set status of %q: %w", name, res.Error))
	}
	if res.RowsAffected == 0 {
		return models.Tenant{}, fmt.Errorf("tenant %q: %w", name, models.ErrNotFound)
	}
	return d.Get(ctx, name)
}

// limitsSQL sets a transaction's limits from $1..$3 (milliseconds).
const limitsSQL = `SELECT set_config('statement_timeout', $1, true),
	set_config('lock_timeout', $2, true),
	set_config('idle_in_transaction_session_timeout', $3, true)`

func setLimits(tx *gorm.DB, lim Limits) error {
	return tx.Exec(limitsSQL, ms(lim.Statement), ms(lim.Lock), ms(lim.Idle)).Error
}
