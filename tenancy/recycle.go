package tenancy

// A PostgreSQL backend caches the catalog entries (relcache, catcache) of
// every relation it has touched and frees them only when it exits: about
// 15 KB per tenant schema of the shipped models, measured up to 10,000
// tenants (docs/SCALE.md). A pooled connection that serves requests
// of every tenant therefore grows towards tenants × 15 KB, and a pool holds
// that many times over. The limits below bound it: a connection that has
// pinned ConnMaxSchemas distinct tenant schemas, or served
// ConnMaxTransactions transactions, is closed when it returns to the pool
// (database/sql asks driver.Validator.IsValid there), never in the middle
// of a transaction, and the pool opens a fresh backend when next needed.

// DefaultConnMaxSchemas is the default ConnMaxSchemas. Measured at 10,000
// tenants (docs/SCALE.md), a backend that served them all holds 166 MB
// private, 25 MB after 1,000, 11 MB after 100: 2,000 schemas keep
// it near 40 MB whatever the tenant count, and a deployment of fewer
// tenants never renews a connection at all. A lower limit saves more
// memory but renews more often, and a renewal is dear at this scale: a new
// backend starts with a cold cache and, on PostgreSQL 15, rebuilds the
// request role's membership of every tenant role on its first request.
const DefaultConnMaxSchemas = 2000

// connLimits is the recycling policy of one pool's connections; zero
// fields mean no limit.
type connLimits struct {
	schemas      int
	transactions int
}

func (l connLimits) budget() *connBudget {
	if l.schemas <= 0 && l.transactions <= 0 {
		return nil
	}
	return &connBudget{limits: l}
}

// connBudget tallies what one connection has served. database/sql uses a
// driver connection from one goroutine at a time and calls BeginTx and
// IsValid under the connection's lock, so it needs no lock of its own.
type connBudget struct {
	limits  connLimits
	txs     int
	schemas map[string]struct{}
}

// began records a transaction about to begin, and the schema its pin names
// (req is nil for a transaction without a scope, and done for a second
// transaction begun with a scope's context, whose schema is counted).
func (b *connBudget) began(req *pinRequest) {
	if b == nil {
		return
	}
	b.txs++
	if b.limits.schemas <= 0 || req == nil || req.done || req.spec.Schema == "" {
		return
	}
	if b.schemas == nil {
		b.schemas = make(map[string]struct{})
	}
	if len(b.schemas) < b.limits.schemas {
		b.schemas[req.spec.Schema] = struct{}{}
	}
}

// spent reports whether the connection has served its share.
func (b *connBudget) spent() bool {
	if b == nil {
		return false
	}
	return (b.limits.schemas > 0 && len(b.schemas) >= b.limits.schemas) ||
		(b.limits.transactions > 0 && b.txs >= b.limits.transactions)
}

// IsValid implements driver.Validator: database/sql asks it as the
// connection returns to the pool and closes a connection that answers
// false, so a spent connection ends between transactions, never inside
// one.
func (c *pinConn) IsValid() bool {
	return !c.Conn.Conn().IsClosed() && !c.budget.spent()
}
