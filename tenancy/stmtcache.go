package tenancy

import (
	"container/list"
	"encoding/binary"
	"strconv"

	"github.com/jackc/pgx/v5/pgproto3"
)

// A ReadOnce scope's statement is prepared once per connection and tenant
// schema, and bound thereafter.
//
// pgx runs in exec mode: every statement is parsed, analysed and planned
// anew, which is most of what PostgreSQL spends on a scoped point read once
// its pin is prepared. pgx's own statement cache cannot be used: it is
// keyed by SQL text alone, so one prepared statement would serve every
// tenant, and PostgreSQL analyses and plans a prepared statement again
// whenever it runs under another search_path than last time, which on a
// pooled connection is nearly every time; and a tenant whose table shape
// differs (a fleet migration under way) would fail with "cached plan must
// not change result type" (0A000).
//
// So the pipe keeps its own cache, keyed by tenant schema, SQL text and
// parameter types. A statement prepared for schema s only ever runs
// pinned to s, so PostgreSQL keeps its plan. When the scope's statement is
// one unnamed Parse, Bind, Describe, Execute and Sync (pgx's exec mode),
// the pipe names it: a Parse of the named statement the first time, then
// only the Bind. pgx still reads the ParseComplete it expects: the pipe
// holds back the real one and passes one ParseComplete ahead of the
// BindComplete.
//
// A cached statement can still meet a table whose shape changed under it
// (a migration of that very tenant): PostgreSQL refuses the Bind with
// 0A000 before anything ran, as it does a statement that is gone (26000,
// DEALLOCATE ALL) or a name already taken (42P05, a pooler). The pipe then
// drops the entry, closes the statement, and sends the scope again with
// pgx's own unnamed statement, so the scope succeeds and sees the new
// shape. The cache holds at most stmtCacheSize statements per connection,
// closing the least recently used.

// DefaultStatementCache is the default PoolConfig.StatementCache. A cached
// point read or page of the shipped models holds about 8.5 KB of backend
// memory (one backend's RssAnon grew 3.4 MB with 400 of them, PostgreSQL
// 15), so 512 statements add at most about 4.4 MB per connection, 87 MB
// for DefaultPool's 20, beside the catalog cache that DefaultConnMaxSchemas
// bounds. Every read of the shipped handlers stays cached up to 256 tenant
// schemas per connection; past that the least recently used make room, and
// an uncached read costs what every read cost before the cache.
const DefaultStatementCache = 512

// stmtCache is one connection's cache.
type stmtCache struct {
	size    int
	seq     int
	byKey   map[string]*list.Element
	lru     list.List // of *stmtEntry, most recent first
	closing []string  // names evicted, to close with the next scope
}

type stmtEntry struct {
	key, name string
	// ready: PostgreSQL answered the Parse; until then a failure before
	// it means the statement may not exist.
	ready bool
}

func newStmtCache(size int) *stmtCache {
	if size <= 0 {
		return nil
	}
	return &stmtCache{size: size, byKey: make(map[string]*list.Element)}
}

// stmtPlan is one scope's statement, named from the cache.
type stmtPlan struct {
	entry *stmtEntry
	// parse: a new entry, whose named Parse goes out.
	parse bool
	p     pgproto3.Parse
	b     pgproto3.Bind
	rest  [][]byte // pgx's Describe, Execute and Sync, as they were
}

// plan returns how b's statement is to be named for schema, or nil when b
// is not exactly one unnamed Parse, Bind, Describe, Execute and Sync
// (pgx's exec mode), which then goes out as it is.
func (c *stmtCache) plan(schema string, b []byte) *stmtPlan {
	if c == nil {
		return nil
	}
	msgs, ok := splitMessages(b)
	if !ok || len(msgs) != 5 || msgs[0][0] != 'P' || msgs[1][0] != 'B' || msgs[2][0] != 'D' ||
		msgs[3][0] != 'E' || msgs[4][0] != 'S' {
		return nil
	}
	pl := &stmtPlan{rest: msgs[2:]}
	if pl.p.Decode(msgs[0][5:]) != nil || pl.b.Decode(msgs[1][5:]) != nil ||
		pl.p.Name != "" || pl.b.PreparedStatement != "" {
		return nil
	}
	key := stmtKey(schema, &pl.p)
	if el, hit := c.byKey[key]; hit && el.Value.(*stmtEntry).ready {
		c.lru.MoveToFront(el)
		pl.entry = el.Value.(*stmtEntry)
		return pl
	} else if hit {
		c.drop(el.Value.(*stmtEntry), true)
	}
	for c.lru.Len() >= c.size {
		c.drop(c.lru.Back().Value.(*stmtEntry), true)
	}
	c.seq++
	pl.entry = &stmtEntry{key: key, name: "tenantry_s" + strconv.Itoa(c.seq)}
	c.byKey[key] = c.lru.PushFront(pl.entry)
	pl.parse = true
	return pl
}

// append appends the statement named: its Parse when new, the Bind of the
// named statement, then pgx's Describe, Execute and Sync.
func (pl *stmtPlan) append(dst []byte) []byte {
	if pl.parse {
		pl.p.Name = pl.entry.name
		dst, _ = pl.p.Encode(dst)
	}
	pl.b.PreparedStatement = pl.entry.name
	dst, _ = pl.b.Encode(dst)
	for _, m := range pl.rest {
		dst = append(dst, m...)
	}
	pl.rest = nil // pgx's buffer, which it reuses
	return dst
}

// appendCloses appends a Close of every statement evicted since the last
// scope.
func (c *stmtCache) appendCloses(dst []byte) []byte {
	if c == nil {
		return dst
	}
	for _, name := range c.closing {
		dst, _ = (&pgproto3.Close{ObjectType: 'S', Name: name}).Encode(dst)
	}
	c.closing = c.closing[:0]
	return dst
}

// drop removes e; exists: PostgreSQL may hold it, so it is closed with the
// next scope (closing a statement that is gone is no error).
func (c *stmtCache) drop(e *stmtEntry, exists bool) {
	if el, ok := c.byKey[e.key]; ok && el.Value.(*stmtEntry) == e {
		c.lru.Remove(el)
		delete(c.byKey, e.key)
	}
	if exists {
		c.closing = append(c.closing, e.name)
	}
}

// stmtKey keys a statement by schema, parameter types and text.
func stmtKey(schema string, p *pgproto3.Parse) string {
	b := make([]byte, 0, len(schema)+len(p.Query)+4*len(p.ParameterOIDs)+2)
	b = append(b, schema...)
	b = append(b, 0)
	for _, oid := range p.ParameterOIDs {
		b = binary.BigEndian.AppendUint32(b, oid)
	}
	b = append(b, 0)
	b = append(b, p.Query...)
	return string(b)
}

// splitMessages splits b into whole frontend messages (type byte, length,
// body); ok is false when b does not end at a message boundary.
func splitMessages(b []byte) (msgs [][]byte, ok bool) {
	for len(b) > 0 {
		if len(b) < 5 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint32(b[1:5])) + 1
		if n < 5 || n > len(b) {
			return nil, false
		}
		msgs, b = append(msgs, b[:n]), b[n:]
	}
	return msgs, true
}
