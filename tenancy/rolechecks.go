package tenancy

// The home server's request-role check (CheckRequestRole) and each other
// server's (inspectServerRole) read the same role attributes and judge
// them the same way; what differs is what each can see besides (home has
// the registry) and how its advice names the connection to fix.

// roleAttrs are the request role's own attributes, read by
// roleAttrsColumns from pg_roles r WHERE r.rolname = current_user.
type roleAttrs struct {
	Role       string
	Super      bool
	BypassRLS  bool
	Inherit    bool
	CreateRole bool
}

const roleAttrsColumns = `current_user AS role, r.rolsuper AS super, r.rolbypassrls AS bypass_rls,
		r.rolinherit AS inherit, r.rolcreaterole AS create_role`

// addFinding records one finding; each check formats its own prefix.
type addFinding func(crosses bool, format string, args ...any)

// checkBypassRLS: a role with BYPASSRLS ignores row-level security, so no
// policy on a shared table would hold for it.
func checkBypassRLS(add addFinding, r roleAttrs) {
	if r.BypassRLS {
		q := quoteIdent(r.Role)
		add(true, "request role %s has BYPASSRLS: run ALTER ROLE %s NOBYPASSRLS", q, q)
	}
}

// checkSeparateRole judges a request role that is not the DDL role: it
// must neither inherit a tenant role granted to it nor be able to grant
// itself one.
func checkSeparateRole(add addFinding, r roleAttrs) {
	q := quoteIdent(r.Role)
	if r.Inherit {
		add(true, "request role %s has INHERIT: a tenant role granted to it directly would lend it that tenant's privileges outside any scope; run ALTER ROLE %s NOINHERIT", q, q)
	}
	if r.CreateRole {
		add(true, "request role %s has CREATEROLE and could grant itself any tenant role: run ALTER ROLE %s NOCREATEROLE (only the DDL role needs it)", q, q)
	}
}
