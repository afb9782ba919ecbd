package tenancy

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// Each server of TENANT_SERVERS has a request role of its own, and the
// tenant boundary on that server holds only if that role is as narrow as
// the home server's. CheckRequestRole needs the registry, which only home
// has; inspectServerRole checks, on another server, what can be seen there:
// the role's attributes, its membership of the group role, CREATE on the
// database or any schema, and reach into tenant schemas (by their prefix).

// ErrRoleRefused marks a server whose request role could cross the tenant
// boundary: its tenants are refused (503) until the role is fixed and the
// process restarted.
var ErrRoleRefused = errors.New("request role refused")

// ServerRoleCheck judges the findings about server's request role when its
// request pool first opens; a non-nil error refuses the server's tenants
// (wrapped with ErrRoleRefused and ErrUnavailable).
type ServerRoleCheck func(server string, findings []Finding) error

// WithServerRoleCheck makes every server other than home have its request
// role inspected when its request pool first opens, before any tenant of
// it is served: at start-up for a server that answers then, else on first
// use.
func WithServerRoleCheck(check ServerRoleCheck) Option {
	return func(d *Directory) { d.roleCheck = check }
}

// CheckServerRole opens server name's request pool (not home), which runs
// the WithServerRoleCheck judgement, and returns what the inspection found.
// An error wrapping ErrRoleRefused means the judgement refused the server;
// ErrUnavailable alone, that it did not answer.
func (d *Directory) CheckServerRole(ctx context.Context, name string) ([]Finding, error) {
	s, err := d.server(name)
	if err != nil {
		return nil, err
	}
	if s.home {
		return nil, fmt.Errorf("server %q: the home server's request role is CheckRequestRole's: %w", name, models.ErrInvalid)
	}
	db, err := d.pool(ctx, name, false)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	f := s.findings
	s.mu.Unlock()
	if f != nil || d.roleCheck != nil {
		return f, nil
	}
	return d.inspectServerRole(ctx, s, db)
}

// vetServerPool runs the role check on a request pool just opened for s;
// an error refuses the pool (the caller closes it).
func (d *Directory) vetServerPool(ctx context.Context, s *server, db *gorm.DB) (refused bool, err error) {
	if d.roleCheck == nil {
		return false, nil
	}
	f, err := d.inspectServerRole(ctx, s, db)
	if err != nil {
		return false, classify(fmt.Errorf("inspect the request role: %w", err))
	}
	if f == nil {
		f = []Finding{}
	}
	s.mu.Lock()
	s.findings = f
	s.mu.Unlock()
	if err := d.roleCheck(s.spec.Name, f); err != nil {
		return true, fmt.Errorf("%w: %w (%w)", ErrRoleRefused, err, models.ErrUnavailable)
	}
	return false, nil
}

// inspectServerRole inspects the role s's request pool db logs in as.
// separate says whether the server has a DDL role of its own
// (TENANT_SERVERS_DDL with another user); without one the request role
// owns the tenant schemas there, which is warned about as on home.
func (d *Directory) inspectServerRole(ctx context.Context, s *server, db *gorm.DB) ([]Finding, error) {
	group, err := d.groupRole(ctx)
	if err != nil {
		return nil, err
	}
	req, err := pgx.ParseConfig(s.spec.URL)
	if err != nil {
		return nil, fmt.Errorf("server %q: parse URL: %w", s.spec.Name, models.ErrInvalid)
	}
	separate := false
	if s.spec.AdminURL != "" {
		adm, err := pgx.ParseConfig(s.spec.AdminURL)
		if err != nil {
			return nil, fmt.Errorf("server %q: parse TENANT_SERVERS_DDL URL: %w", s.spec.Name, models.ErrInvalid)
		}
		separate = adm.User != req.User
	}
	var r struct {
		Attrs         roleAttrs `gorm:"embedded"` // a named field: GORM skips unexported embedded ones
		GroupExists   bool
		Member        bool
		CreateDB      bool
		CreateSchemas int64
		Reachable     int64
		Owned         int64
		Schemas       int64
	}
	// Tenant schemas are known here by their prefix only (starts_with,
	// not LIKE, whose _ matches any character); the system
	// schemas (pg_*, information_schema) are left out of CREATE.
	err = db.WithContext(ctx).Raw(`SELECT `+roleAttrsColumns+`,
		g.oid IS NOT NULL AS group_exists,
		g.oid IS NOT NULL AND pg_has_role(current_user, g.oid, 'MEMBER') AS member,
		has_database_privilege(current_user, current_database(), 'CREATE') AS create_db,
		(SELECT count(*) FROM pg_catalog.pg_namespace n WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
			AND has_schema_privilege(current_user, n.oid, 'CREATE')) AS create_schemas,
		(SELECT count(*) FROM pg_catalog.pg_namespace n WHERE starts_with(n.nspname, $2)
			AND has_schema_privilege(current_user, n.oid, 'USAGE')) AS reachable,
		(SELECT count(*) FROM pg_catalog.pg_namespace n WHERE starts_with(n.nspname, $2)
			AND pg_has_role(current_user, n.nspowner, 'USAGE')) AS owned,
		(SELECT count(*) FROM pg_catalog.pg_namespace n WHERE starts_with(n.nspname, $2)) AS schemas
		FROM pg_catalog.pg_roles r LEFT JOIN pg_catalog.pg_roles g ON g.rolname = $1
		WHERE r.rolname = current_user`, group, schemaPrefix).Scan(&r).Error
	if err != nil {
		return nil, fmt.Errorf("server %q: inspect the request role: %w", s.spec.Name, err)
	}
	q, name := quoteIdent(r.Attrs.Role), s.spec.Name
	var f []Finding
	add := func(crosses bool, format string, args ...any) {
		f = append(f, Finding{Crosses: crosses, Message: fmt.Sprintf("server %q: "+format, append([]any{name}, args...)...)})
	}
	if r.Attrs.Super {
		add(true, "request role %s is a SUPERUSER, which ignores every grant and can RESET ROLE to anything: connect its TENANT_SERVERS URL as a role without it (ALTER ROLE %s NOSUPERUSER; SECURITY.md)", q, q)
	}
	checkBypassRLS(add, r.Attrs)
	// No group role yet: no tenant was placed here, and the first
	// onboarding makes it and grants it to the request role.
	if r.GroupExists && !r.Member && !r.Attrs.Super {
		add(true, "request role %s is not a member of the deployment's group role %s, so scopes cannot switch to tenant roles: GRANT %s TO %s", q, quoteIdent(group), quoteIdent(group), q)
	}
	if !separate {
		add(false, "request role %s is also the DDL role (no TENANT_SERVERS_DDL entry with another user): it owns the tenant schemas there and can create roles, so SQL injected past the API could RESET ROLE and reach every tenant of that server; set TENANT_SERVERS_DDL (SECURITY.md)", q)
		return f, nil
	}
	checkSeparateRole(add, r.Attrs)
	if r.Attrs.Super {
		return f, nil // every check below is void for a superuser, already refused
	}
	if r.CreateDB {
		add(true, "request role %s may CREATE schemas in the database, and so own one named like a future tenant's: run REVOKE CREATE ON DATABASE ... FROM %s (and from PUBLIC)", q, q)
	}
	if r.CreateSchemas > 0 {
		add(true, "request role %s may CREATE in %d schemas, and so plant objects the DDL role or a scope might resolve: run REVOKE CREATE ON SCHEMA ... FROM %s (and from PUBLIC)", q, r.CreateSchemas, q)
	}
	if r.Owned > 0 {
		add(true, "request role %s owns %d of %d tenant schemas: they must belong to the TENANT_SERVERS_DDL role (ALTER SCHEMA ... OWNER TO it)", q, r.Owned, r.Schemas)
	}
	if r.Reachable > 0 {
		add(true, "request role %s can use %d of %d tenant schemas outside a scope (it owns them, was granted them, or inherits pg_read_all_data): run REVOKE ALL ON SCHEMA ... FROM %s", q, r.Reachable, r.Schemas, q)
	}
	return f, nil
}
