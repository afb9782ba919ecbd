package tenancy

import (
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tenantry/tenantry/models"
)

// The pin is the most security-relevant string in the project: it decides
// which schema a transaction's unqualified names reach, which role its
// privileges are checked against, and how long it may run. It is built here
// and nowhere else: the connector's BEGIN, the scope's fallback, onboarding,
// the migration runner and the drift check all take their SQL from pinSQL,
// and every identifier or literal it holds goes through quoteIdent and
// literal below.

// pinSpec is what one transaction is pinned to.
type pinSpec struct {
	// Schema is the only schema on the search_path.
	Schema string
	// Role, when set, is the tenant role the transaction switches to
	// (SET LOCAL ROLE): privileges are then checked against it, so other
	// tenants' schemas, the registry and public tables are permission
	// denied. Empty keeps the login role: DDL (onboarding, migrations)
	// runs as the owner.
	Role   string
	Limits Limits
}

// pinSQL returns the SELECT that pins an open transaction. Every setting is
// made with set_config(..., true), the function form of SET LOCAL, so it
// ends with the transaction whatever way it ends. The schema and role are
// validated again here, whatever their source, before they are spliced.
func pinSQL(p pinSpec) (string, error) {
	if !validSchema(p.Schema) {
		return "", fmt.Errorf("tenancy: pin schema %q: %w", p.Schema, models.ErrInvalid)
	}
	if p.Role != "" && !validRole(p.Role) {
		return "", fmt.Errorf("tenancy: pin role %q: %w", p.Role, models.ErrInvalid)
	}
	q := literal(quoteIdent(p.Schema))
	var b strings.Builder
	b.WriteString("SELECT set_config('search_path', " + q + ", true)")
	if p.Role != "" {
		// set_config's value is a role name, not an identifier: no quotes.
		// PostgreSQL checks the session user's membership in it; the
		// request role is a member through the deployment's group role.
		b.WriteString(", set_config('role', " + literal(p.Role) + ", true)")
	}
	b.WriteString(", set_config('statement_timeout', " + literal(ms(p.Limits.Statement)) + ", true)" +
		", set_config('lock_timeout', " + literal(ms(p.Limits.Lock)) + ", true)" +
		", set_config('idle_in_transaction_session_timeout', " + literal(ms(p.Limits.Idle)) + ", true)" +
		// PostgreSQL skips a missing schema in search_path silently; the
		// cast fails instead (3F000), so the scope fails closed.
		", " + q + "::regnamespace")
	return b.String(), nil
}

// unpinSQL empties the search_path again inside a transaction that pinned
// one for a while (onboarding builds a schema, then writes the registry).
const unpinSQL = "SELECT set_config('search_path', '', true)"

// quoteIdent quotes an identifier. Callers pass only names validated
// (validSchema, validRole), which hold no quote; the doubling is there so
// that stays harmless if a future caller forgets. Quoting keeps the name an
// identifier (never a keyword) and keeps set_config from splitting it.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// literal quotes s as an SQL string literal. standard_conforming_strings is
// on (PostgreSQL's default since 9.1, and pgx requires it), so a backslash
// is an ordinary character and doubling the quote is the whole job.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// appPinSQL pins an open transaction to a program's shared schema (one
// validAppSchema accepted) with limits lim, as the login role. The schema
// must exist: the cast fails otherwise, as the tenant pin's does.
func appPinSQL(schema string, lim Limits) string {
	q := literal(quoteIdent(schema))
	return "SELECT set_config('search_path', " + q + ", true)" +
		", set_config('statement_timeout', " + literal(ms(lim.Statement)) + ", true)" +
		", set_config('lock_timeout', " + literal(ms(lim.Lock)) + ", true)" +
		", set_config('idle_in_transaction_session_timeout', " + literal(ms(lim.Idle)) + ", true)" +
		", " + q + "::regnamespace"
}

// The pin of a tenant scope is one prepared statement, not an SQL string
// built per scope: the schema, the role and the limits travel as its
// parameters. PostgreSQL parses and plans a prepared statement once per
// connection; parsing and planning the spliced pin took about a fifth of a
// scoped point read's backend CPU. A ReadOnce scope's pin also makes the
// transaction read-only (transaction_read_only, the setting SET
// TRANSACTION READ ONLY makes), which PostgreSQL lets no later statement
// of the transaction undo. Nothing of the pins' text comes from a request.
//
// The names carry a version suffix that changes with the text, so a
// connection never binds a pin of another text prepared under the same
// name.
const (
	// pinSettings are the settings both pins make, from their parameters.
	pinSettings = "SELECT set_config('search_path', $1, true)" +
		", set_config('role', $2, true)" +
		", set_config('statement_timeout', $3, true)" +
		", set_config('lock_timeout', $4, true)" +
		", set_config('idle_in_transaction_session_timeout', $5, true)"
	// pinCheck ends both: the cast fails for a missing schema (3F000), as
	// pinSQL's does.
	pinCheck     = ", $1::regnamespace"
	writePinName = "tenantry_pin_v1"
	writePinSQL  = pinSettings + pinCheck
	readPinName  = "tenantry_read_pin_v1"
	readPinSQL   = pinSettings + ", set_config('transaction_read_only', 'on', true)" + pinCheck
	// beginName is the prepared BEGIN of a WithTx scope.
	beginName = "tenantry_begin_v1"
)

// pinBind is the prepared pin of one tenant scope spec: the statement's
// name and text, its parameters, and its Bind of the named statement,
// encoded.
type pinBind struct {
	name, sql string
	params    [][]byte
	named     []byte
}

// pinBinds keeps each spec's pinBind, so a scope encodes nothing of its
// pin. A spec names a schema, a role and limits; the map is emptied when
// it reaches maxPinBinds (a bound on memory, about 300 bytes an entry, far
// above any tenant count a server holds: entries are rebuilt as used).
var pinBinds = pinBindCache{m: make(map[pinBindKey]*pinBind)}

const maxPinBinds = 100_000

type pinBindKey struct {
	spec pinSpec
	read bool
}

type pinBindCache struct {
	mu sync.RWMutex
	m  map[pinBindKey]*pinBind
}

// get returns the pinBind of p, the read pin's when read. Like pinSQL it
// validates the schema and role, whatever their source, and refuses a
// spec without a role: the prepared pins are tenant scopes'.
func (c *pinBindCache) get(p pinSpec, read bool) (*pinBind, error) {
	k := pinBindKey{p, read}
	c.mu.RLock()
	b := c.m[k]
	c.mu.RUnlock()
	if b != nil {
		return b, nil
	}
	if !validSchema(p.Schema) {
		return nil, fmt.Errorf("tenancy: pin schema %q: %w", p.Schema, models.ErrInvalid)
	}
	if !validRole(p.Role) {
		return nil, fmt.Errorf("tenancy: pin role %q: %w", p.Role, models.ErrInvalid)
	}
	b = &pinBind{name: writePinName, sql: writePinSQL, params: [][]byte{
		[]byte(quoteIdent(p.Schema)),
		[]byte(p.Role),
		[]byte(ms(p.Limits.Statement)),
		[]byte(ms(p.Limits.Lock)),
		[]byte(ms(p.Limits.Idle)),
	}}
	if read {
		b.name, b.sql = readPinName, readPinSQL
	}
	b.named, _ = (&pgproto3.Bind{PreparedStatement: b.name, Parameters: b.params}).Encode(nil)
	c.mu.Lock()
	if len(c.m) >= maxPinBinds {
		clear(c.m)
	}
	c.m[k] = b
	c.mu.Unlock()
	return b, nil
}
