package tenancy

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// On a Citus cluster (schema-based sharding), tenantry connects to the
// coordinator. Each tenant schema is a distributed schema: its tables are
// single-shard tables that live whole on one worker, and the schema moves
// between workers with citus_schema_move. The shared registry (schema
// tenantry) is a plain table on the coordinator, outside the distribution:
// every request resolves its tenant there, onboarding writes the row in
// the same transaction that creates the schema (Citus commits the workers'
// part with two-phase commit, so the tenant still appears whole or not at
// all), and no schema move can carry it away. A reference table would copy
// it to every worker for nothing: only the coordinator reads it.

// Cluster says what the directory's database is.
type Cluster struct {
	// Citus is set when the database has the citus extension; tenantry
	// then requires it to be the coordinator.
	Citus bool
	// Version is the citus extension's version.
	Version string
	// Workers counts the active primary nodes that may hold tenant
	// schemas.
	Workers int
}

// String names the mode for the start-up log.
func (c Cluster) String() string {
	if !c.Citus {
		return "postgresql"
	}
	return fmt.Sprintf("citus %s coordinator, %d workers, schema-based sharding", c.Version, c.Workers)
}

// ErrNotCoordinator means the database has Citus but is not its
// coordinator: tenant DDL and the registry must go through the coordinator.
var ErrNotCoordinator = errors.New("the database is a Citus worker: point DATABASE_URL and MIGRATION_DATABASE_URL at the coordinator")

// clusterSQL reads whether citus is installed and, if so, the coordinator
// facts; pg_dist_* exist only with the extension, so this is two queries.
const clusterSQL = `SELECT coalesce((SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'citus'), '')`

// citusFactsSQL is run only where the citus extension exists.
const citusFactsSQL = `SELECT citus_is_coordinator() AS coordinator,
	(SELECT count(*) FROM pg_dist_node WHERE isactive AND noderole = 'primary' AND shouldhaveshards AND groupid <> 0) AS workers,
	EXISTS (SELECT 1 FROM pg_dist_schema WHERE schemaid = to_regnamespace($1)) AS shared_distributed`

// Cluster detects once whether the database is a Citus coordinator.
// Start-up logs the answer; onboarding and tenant moves act on it.
func (d *Directory) Cluster(ctx context.Context) (Cluster, error) {
	d.clusterMu.Lock()
	defer d.clusterMu.Unlock()
	if d.cluster != nil {
		return *d.cluster, nil
	}
	c, err := detectCluster(ctx, d.admin)
	if err != nil {
		return c, err
	}
	d.cluster = &c
	return c, nil
}

func detectCluster(ctx context.Context, db *gorm.DB) (Cluster, error) {
	var c Cluster
	if err := db.WithContext(ctx).Raw(clusterSQL).Scan(&c.Version).Error; err != nil {
		return c, classify(fmt.Errorf("detect citus: %w", err))
	}
	if c.Version == "" {
		return c, nil
	}
	c.Citus = true
	var f struct {
		Coordinator       bool
		Workers           int
		SharedDistributed bool
	}
	if err := db.WithContext(ctx).Raw(citusFactsSQL, migrations.SharedSchema).Scan(&f).Error; err != nil {
		return c, classify(fmt.Errorf("inspect the citus cluster: %w", err))
	}
	if !f.Coordinator {
		return c, ErrNotCoordinator
	}
	if f.SharedDistributed {
		// Made by a run that predates this check, with schema-based
		// sharding on: the registry would live on one worker and move
		// with a tenant's schema.
		return c, fmt.Errorf("the shared schema %s is a distributed schema; run SELECT citus_schema_undistribute('%s') on the coordinator", migrations.SharedSchema, migrations.SharedSchema)
	}
	c.Workers = f.Workers
	return c, nil
}

// distributeSQL makes the schema that onboarding creates next a distributed
// schema whatever the cluster's default, LOCAL to the transaction.
const distributeSQL = "SELECT set_config('citus.enable_schema_based_sharding', 'on', true)"

// localSchemaSQL keeps scratch schemas (the blueprint capture, the drift
// reference) on the coordinator: they are built and rolled back in one
// transaction, and distributing them would make workers build and drop
// them too. On plain PostgreSQL the setting is an unused placeholder.
const localSchemaSQL = "SELECT set_config('citus.enable_schema_based_sharding', 'off', true)"

// onboardCitus runs an onboarding whose schema is a Citus distributed
// schema. Citus 13 cannot create a distributed schema and a table with a
// serial column in one transaction as a role that is not a superuser: it
// records the table's id sequence on the workers over a separate superuser
// connection, which cannot see the schema the transaction has not committed
// (the worker answers "schema ... does not exist"). So the schema comes
// first, empty, in a transaction of its own, and build (tables, roles and
// the registry row, as on plain PostgreSQL) runs in a second one. The tenant
// still appears whole or not at all: only the registry row makes a tenant,
// and it commits with the tables; if build fails, a third transaction drops
// the empty schema again. One connection holds the schema's advisory lock
// at session level across the three, so no other onboarding or offboarding
// of the name runs in between. An empty schema left by a process that died
// between them belongs to no tenant, and the next onboarding of the name
// replaces it.
func (d *Directory) onboardCitus(ctx context.Context, name, schema string, build func(tx *gorm.DB) error) (err error) {
	sqlDB, err := d.admin.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	db := d.admin.WithContext(ctx).Session(&gorm.Session{})
	db.Statement.ConnPool = conn
	defer func() {
		// The lock is the session's, so it must not go back to the pool
		// with the connection: unlock, or else discard the connection,
		// which ends the session and the lock with it.
		uctx, cancel := rollbackContext(ctx)
		defer cancel()
		if uerr := db.WithContext(uctx).Exec("SELECT pg_advisory_unlock_all()").Error; uerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	err = db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(limitsSQL+", pg_advisory_lock($4, hashtext($5))",
			ms(DDLLimits.Statement), ms(DDLLimits.Lock), ms(DDLLimits.Idle), lockClass, schema).Error; err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		var st struct {
			Taken     int64
			Exists    bool
			Relations int64
		}
		if err := tx.Raw(`SELECT (SELECT count(*) FROM `+migrations.TenantsTable+` WHERE name = $1 OR schema_name = $2) AS taken,
			to_regnamespace($3) IS NOT NULL AS exists,
			(SELECT count(*) FROM pg_class WHERE relnamespace = to_regnamespace($3)) AS relations`,
			name, schema, quoteIdent(schema)).Scan(&st).Error; err != nil {
			return err
		}
		if st.Taken > 0 || st.Relations > 0 {
			return fmt.Errorf("tenant %q (schema %s) exists: %w", name, schema, models.ErrConflict)
		}
		script := distributeSQL + ";\n"
		if st.Exists {
			script += "DROP SCHEMA " + quoteIdent(schema) + " CASCADE;\n"
		}
		return execEach(tx, script+"CREATE SCHEMA "+quoteIdent(schema))
	})
	if err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if err = db.Transaction(build); err == nil {
		return nil
	}
	// A cancelled request still takes its empty schema back.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DDLLimits.Statement)
	defer cancel()
	cerr := db.WithContext(cctx).Transaction(func(tx *gorm.DB) error {
		if err := setLimits(tx, DDLLimits); err != nil {
			return err
		}
		// Only if build did not commit after all (a COMMIT whose answer
		// was lost): then the schema is a tenant's.
		var rows int64
		if err := tx.Table(migrations.TenantsTable).Where("schema_name = ?", schema).Count(&rows).Error; err != nil || rows > 0 {
			return err
		}
		return tx.Exec("DROP SCHEMA IF EXISTS " + quoteIdent(schema) + " CASCADE").Error
	})
	if cerr != nil {
		return errors.Join(err, fmt.Errorf("drop the empty schema again: %w", cerr))
	}
	return err
}

// workerLoginSQL lets a tenant's roles log in. Citus runs a query on a
// worker over a connection it opens as the current role, which inside a
// scope is the tenant role (SET LOCAL ROLE), so a NOLOGIN tenant role fails
// there with "role ... is not permitted to log in". The roles still have no
// password: a password or SCRAM line of pg_hba.conf refuses them, and only
// the lines that admit the coordinator's connections to the workers
// (trust from its address, or a certificate mapped to them) let them in.
func workerLoginSQL(r TenantRoles) string {
	return "ALTER ROLE " + quoteIdent(r.Write) + " LOGIN;\nALTER ROLE " + quoteIdent(r.Read) + " LOGIN"
}

// loginMissingSQL lists the tenant roles that cannot log in yet: those of
// tenants onboarded before the cluster ran Citus.
const loginMissingSQL = `SELECT r.rolname FROM pg_roles r
	JOIN ` + migrations.TenantsTable + ` t ON r.rolname IN (t.db_role, t.db_role_read)
	WHERE NOT r.rolcanlogin ORDER BY 1`

// ensureWorkerLogins gives LOGIN to the tenant roles that lack it, on a
// Citus cluster; EnsureRoles runs it.
func (d *Directory) ensureWorkerLogins(ctx context.Context) error {
	c, err := d.Cluster(ctx)
	if err != nil || !c.Citus {
		return err
	}
	var names []string
	if err := d.admin.WithContext(ctx).Raw(loginMissingSQL).Scan(&names).Error; err != nil {
		return classify(fmt.Errorf("tenant roles without login: %w", err))
	}
	for _, n := range names {
		if !validRole(n) {
			return fmt.Errorf("tenant role %q: %w", n, models.ErrInvalid)
		}
		if err := d.admin.WithContext(ctx).Exec("ALTER ROLE " + quoteIdent(n) + " LOGIN").Error; err != nil {
			return classify(fmt.Errorf("let tenant role %q log in to the workers: %w", n, err))
		}
	}
	return nil
}

// execEach runs a script one statement at a time (migrations.SplitStatements
// says why Citus needs that). Inside a transaction, a failing statement
// still undoes all of it.
func execEach(tx *gorm.DB, script string) error {
	for _, stmt := range migrations.SplitStatements(script) {
		if err := tx.Exec(stmt).Error; err != nil {
			return err
		}
	}
	return nil
}

// Node is a Citus worker as pg_dist_node records it.
type Node struct {
	ID   int    `json:"id"`
	Host string `json:"host"`
	Port int    `json:"port"`
}

func (n Node) String() string {
	return fmt.Sprintf("%s (node %d)", net.JoinHostPort(n.Host, strconv.Itoa(n.Port)), n.ID)
}

// nodeRef is a node as a user names it: an id, or a host and port.
type nodeRef struct {
	id   int
	host string
	port int
}

// maxHostLen is pg_dist_node.nodename's limit (text, but a DNS name is at
// most 253 bytes, and no longer name can match a node).
const maxHostLen = 253

// parseNode reads NODE of `tenants move NAME --to NODE`: a pg_dist_node id
// (a positive integer) or host:port ([v6]:port for IPv6).
func parseNode(s string) (nodeRef, error) {
	if id, err := strconv.Atoi(s); err == nil {
		if id < 1 {
			return nodeRef{}, models.Invalid("node", "id must be a positive integer")
		}
		return nodeRef{id: id}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || len(host) > maxHostLen || strings.ContainsAny(host, " \t\r\n\x00/@") {
		return nodeRef{}, models.Invalid("node", "must be a pg_dist_node id or host:port")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return nodeRef{}, models.Invalid("node", "port must be a number from 1 to 65535")
	}
	return nodeRef{host: host, port: p}, nil
}

// nodeSQL finds a node that may take a tenant schema: an active primary
// that accepts shards, never the coordinator's group 0.
const nodeSQL = `SELECT nodeid AS id, nodename AS host, nodeport AS port FROM pg_dist_node
	WHERE isactive AND noderole = 'primary' AND shouldhaveshards AND groupid <> 0
	AND (nodeid = $1 OR (nodename = $2 AND nodeport = $3))`

// placementSQL lists the nodes that hold a schema's shards: one, for a
// distributed schema.
const placementSQL = `SELECT DISTINCT n.nodeid AS id, n.nodename AS host, n.nodeport AS port
	FROM pg_dist_partition p
	JOIN pg_class c ON c.oid = p.logicalrelid
	JOIN pg_dist_shard s ON s.logicalrelid = p.logicalrelid
	JOIN pg_dist_placement pl ON pl.shardid = s.shardid
	JOIN pg_dist_node n ON n.groupid = pl.groupid
	WHERE c.relnamespace = to_regnamespace($1) AND n.noderole = 'primary'
	ORDER BY 1`

// moveSQL moves a distributed schema's shards to a node, online: the
// default transfer mode copies them with logical replication and blocks
// writes only for the final switch (wal_level = logical on every node).
const moveSQL = `SELECT citus_schema_move($1::regnamespace, $2::int)`

// ErrNotCitus means a Citus-only operation was asked of plain PostgreSQL.
var ErrNotCitus = fmt.Errorf("the database is not a Citus coordinator: %w", models.ErrInvalid)

// Placement returns the nodes that hold tenant name's schema: one on a
// Citus cluster, none on plain PostgreSQL.
func (d *Directory) Placement(ctx context.Context, name string) ([]Node, error) {
	t, err := d.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	c, err := d.Cluster(ctx)
	if err != nil || !c.Citus {
		return nil, err
	}
	var nodes []Node
	if err := d.admin.WithContext(ctx).Raw(placementSQL, quoteIdent(t.SchemaName)).Scan(&nodes).Error; err != nil {
		return nil, classify(fmt.Errorf("placement of %q: %w", name, err))
	}
	return nodes, nil
}

// MoveToNode moves tenant name's schema, with its data, to the Citus
// worker node names (a pg_dist_node id or host:port), online, with
// citus_schema_move: the tenant keeps being served, and writes wait only
// for the final switch. A node that is not an active primary worker taking
// shards is refused with ErrInvalid before anything runs; so is plain
// PostgreSQL (ErrNotCitus). Moving to the node that holds it already does
// nothing. It returns the node the tenant is on afterwards.
func (d *Directory) MoveToNode(ctx context.Context, name, node string) (Node, error) {
	ref, err := parseNode(node)
	if err != nil {
		return Node{}, err
	}
	c, err := d.Cluster(ctx)
	if err != nil {
		return Node{}, err
	}
	if !c.Citus {
		return Node{}, ErrNotCitus
	}
	t, err := d.Get(ctx, name)
	if err != nil {
		return Node{}, err
	}
	var target []Node
	if err := d.admin.WithContext(ctx).Raw(nodeSQL, ref.id, ref.host, ref.port).Scan(&target).Error; err != nil {
		return Node{}, classify(fmt.Errorf("find node %s: %w", node, err))
	}
	if len(target) != 1 {
		return Node{}, models.Invalid("node", fmt.Sprintf("%s is not an active primary worker that takes shards (see pg_dist_node)", node))
	}
	from, err := d.Placement(ctx, name)
	if err != nil {
		return Node{}, err
	}
	if len(from) == 1 && from[0].ID == target[0].ID {
		return target[0], nil
	}
	// Not in a transaction of ours: citus_schema_move commits on the
	// workers as it goes, and a transaction block makes it block writes
	// for the whole copy.
	if err := d.admin.WithContext(ctx).Exec(moveSQL, quoteIdent(t.SchemaName), target[0].ID).Error; err != nil {
		return Node{}, classify(fmt.Errorf("move %q to %s: %w", name, target[0], err))
	}
	return target[0], nil
}
