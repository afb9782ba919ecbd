package tenancy

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

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

// A full cache must pay its way. Preparing a statement costs PostgreSQL
// more than parsing it unnamed (it keeps the parse and the plan, and the
// statement evicted is closed), and every cached plan is one more that
// each backend checks when a table's catalog entry changes (an ANALYZE, a
// migration). So a full cache admits only one miss in admitEvery and lets
// the others go out unnamed, as pgx sent them; and once full, it is judged
// every payWindow lookups: when fewer than half of them hit, it closes all
// its statements and rests, reading unprepared, before it fills again. The
// rest is one window after a cache that paid, and doubles with each
// failure in a row up to maxRestWindows: a connection that serves more
// tenants than it can cache for long refills rarely, and one whose load
// narrows again (a burst over every tenant, then the usual few) is caching
// again within about a window. Measured with the request-path bench at 1,000
// tenants (about 2,000 statement keys per connection against 512 places),
// the cache admitting every miss made PostgreSQL's CPU per read 335 µs
// against 282 without a cache, and a cache admitting one miss in 8 but
// kept full still 311 µs, with p99 at 28 ms against 10. At 100 tenants
// every key fits, nearly every lookup hits, and it is never judged.
const (
	admitEvery     = 8
	payWindow      = 1024
	maxRestWindows = 64
)

// stmtCache is one connection's cache.
type stmtCache struct {
	size int
	// fullMisses counts misses while the cache was full (admitEvery);
	// lookups and hits, those of the window being judged (payWindow);
	// resting, the windows left before the cache fills again; rest, the
	// length of the next rest.
	fullMisses, lookups, hits, resting, rest int
	// bySchema maps a schema, then a statement's Parse body after its
	// name (text, parameter types), to its entry.
	bySchema map[string]map[string]*list.Element
	lru      list.List // of *stmtEntry, most recent first
	closing  []string  // names evicted, to close with the next scope
}

type stmtEntry struct {
	schema, key, name string
	// ready: PostgreSQL answered the Parse; until then a failure before
	// it means the statement may not exist.
	ready bool
}

func newStmtCache(size int) *stmtCache {
	if size <= 0 {
		return nil
	}
	return &stmtCache{size: size, bySchema: make(map[string]map[string]*list.Element)}
}

// stmtPlan is one scope's statement, named from the cache. Its byte
// slices point into pgx's buffer, which is only read while the scope's
// write is being built.
type stmtPlan struct {
	entry *stmtEntry
	// parse: a new entry, whose named Parse goes out.
	parse bool
	// parseRest and bindRest are the Parse and Bind bodies after their
	// empty names; tail is pgx's Describe, Execute and Sync.
	parseRest, bindRest, tail []byte
}

// plan returns how b's statement is to be named for schema, or nil when b
// is not exactly one unnamed Parse, Bind of the unnamed portal, Describe,
// Execute and Sync (pgx's exec mode), which then goes out as it is.
func (c *stmtCache) plan(schema string, b []byte) *stmtPlan {
	if c == nil {
		return nil
	}
	var msgs [5][]byte
	rest := b
	for i := range msgs {
		if len(rest) < 5 {
			return nil
		}
		n := int(binary.BigEndian.Uint32(rest[1:5])) + 1
		if n < 5 || n > len(rest) || rest[0] != "PBDES"[i] {
			return nil
		}
		msgs[i], rest = rest[:n], rest[n:]
	}
	parse, bind, desc, exec := msgs[0][5:], msgs[1][5:], msgs[2][5:], msgs[3][5:]
	// An unnamed statement bound to the unnamed portal: both names empty.
	if len(rest) != 0 || len(parse) < 1 || parse[0] != 0 || len(bind) < 2 || bind[0] != 0 || bind[1] != 0 {
		return nil
	}
	// The Describe and Execute are of that portal. A Describe of the
	// unnamed statement, once the Parse is named, would describe whatever
	// unnamed statement the connection parsed last, or none.
	if len(desc) != 2 || desc[0] != 'P' || desc[1] != 0 || len(exec) < 1 || exec[0] != 0 {
		return nil
	}
	if c.resting > 0 {
		if c.lookups++; c.lookups == payWindow {
			c.lookups, c.resting = 0, c.resting-1
		}
		return nil
	}
	pl := &stmtPlan{parseRest: parse[1:], bindRest: bind[2:], tail: b[len(msgs[0])+len(msgs[1]):]}
	keys := c.bySchema[schema]
	el, hit := keys[string(pl.parseRest)]
	if c.lru.Len() >= c.size && c.judge(hit) {
		return nil
	}
	if hit && el.Value.(*stmtEntry).ready {
		c.lru.MoveToFront(el)
		pl.entry = el.Value.(*stmtEntry)
		return pl
	} else if hit {
		c.drop(el.Value.(*stmtEntry), true)
	}
	if c.lru.Len() >= c.size {
		// Full: admit one miss in admitEvery, and let the others go out
		// unnamed, as pgx sent them.
		if c.fullMisses++; c.fullMisses%admitEvery != 0 {
			return nil
		}
	}
	for c.lru.Len() >= c.size {
		c.evict(c.lru.Back())
	}
	// Looked up again: the drops above may have removed the schema's map.
	keys = c.bySchema[schema]
	if keys == nil {
		keys = make(map[string]*list.Element)
		c.bySchema[schema] = keys
	}
	pl.entry = &stmtEntry{schema: schema, key: string(pl.parseRest)}
	pl.entry.name = stmtName(schema, pl.entry.key)
	keys[pl.entry.key] = c.lru.PushFront(pl.entry)
	pl.parse = true
	return pl
}

// stmtName names the statement of key (a Parse body after its name) for
// schema by what it is, not by when this connection met it. Behind a
// transaction-mode pooler a connection's transactions land on server
// connections that other client connections use too, and a name counted
// per connection (tenantry_s1, tenantry_s2 ...) there names another
// client's statement: a Bind of it ran that statement, a DELETE in place
// of a SELECT. A name drawn from the schema and the statement means that a
// statement found under it, whoever prepared it, is the same SQL with the
// same parameter types for the same schema (128 bits of SHA-256: a
// collision, even a sought one, is out of reach). A statement of another
// schema never shares a name, so one connection never needs two under one.
func stmtName(schema, key string) string {
	h := sha256.New()
	h.Write([]byte(schema))
	h.Write([]byte{0}) // a schema name holds no NUL: the split is unambiguous
	h.Write([]byte(key))
	var sum [sha256.Size]byte
	return "tenantry_s" + hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// judge counts one lookup of a full cache, a hit or not, and at the end
// of a window closes every statement and rests when fewer than half hit;
// it reports whether the cache just went to rest.
func (c *stmtCache) judge(hit bool) bool {
	c.lookups++
	if hit {
		c.hits++
	}
	if c.lookups < payWindow {
		return false
	}
	paid := 2*c.hits >= c.lookups
	c.lookups, c.hits = 0, 0
	if paid {
		c.rest = 0
		return false
	}
	c.rest = min(max(1, 2*c.rest), maxRestWindows)
	c.reset()
	c.resting = c.rest
	return true
}

// append appends the statement named: its Parse when new, the Bind of the
// named statement, then pgx's Describe, Execute and Sync.
func (pl *stmtPlan) append(dst []byte) []byte {
	name := pl.entry.name
	if pl.parse {
		dst = appendMessage(dst, 'P', "", name, pl.parseRest)
	}
	// The Bind names the unnamed portal (empty), then the statement.
	dst = appendMessage(dst, 'B', "\x00", name, pl.bindRest)
	dst = append(dst, pl.tail...)
	pl.parseRest, pl.bindRest, pl.tail = nil, nil, nil
	return dst
}

// appendMessage appends a message of type typ whose body is head, name,
// name's NUL terminator, then rest.
func appendMessage(dst []byte, typ byte, head, name string, rest []byte) []byte {
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint32(dst, uint32(4+len(head)+len(name)+1+len(rest)))
	dst = append(dst, head...)
	dst = append(dst, name...)
	dst = append(dst, 0)
	return append(dst, rest...)
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

// evict drops the entry of el, the least recently used.
func (c *stmtCache) evict(el *list.Element) {
	e := el.Value.(*stmtEntry)
	c.drop(e, true)
	c.lru.Remove(el) // a no-op when drop found it; bounds the list whatever the maps say
}

// reset forgets every entry and closes its statement with the next scope:
// after a refusal that shows the connection's statements are not what the
// cache thinks (DEALLOCATE ALL, a pooler), none of them is trusted.
func (c *stmtCache) reset() {
	if c == nil {
		return
	}
	for el := c.lru.Front(); el != nil; el = el.Next() {
		c.closing = append(c.closing, el.Value.(*stmtEntry).name)
	}
	c.lru.Init()
	clear(c.bySchema)
}

// drop removes e; exists: PostgreSQL may hold it, so it is closed with the
// next scope (closing a statement that is gone is no error).
func (c *stmtCache) drop(e *stmtEntry, exists bool) {
	if keys := c.bySchema[e.schema]; keys != nil {
		if el, ok := keys[e.key]; ok && el.Value.(*stmtEntry) == e {
			c.lru.Remove(el)
			delete(keys, e.key)
			if len(keys) == 0 {
				delete(c.bySchema, e.schema)
			}
		}
	}
	if exists {
		c.closing = append(c.closing, e.name)
	}
}
