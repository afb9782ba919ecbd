package tenancy

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// execBytes returns what pgx's exec mode writes for query: an unnamed
// Parse, Bind, Describe of the portal, Execute and Sync.
func execBytes(t *testing.T, query string, arg string) []byte {
	t.Helper()
	var b []byte
	var err error
	for _, m := range []pgproto3.FrontendMessage{
		&pgproto3.Parse{Query: query, ParameterOIDs: []uint32{20}},
		&pgproto3.Bind{Parameters: [][]byte{[]byte(arg)}},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
	} {
		if b, err = m.Encode(b); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// The cache's maps and its LRU list always agree and never hold more than
// its size, through random hits, misses, failures and evictions over
// schemas that empty and fill again, and through rests (12 keys for 4
// places: fewer than half the lookups hit); a named statement goes out as
// the same statement pgx meant, under its name; and a full cache takes one
// miss in admitEvery, leaving the others unnamed.
func TestStatementCacheKeepsItsBooks(t *testing.T) {
	const size = 4
	c := newStmtCache(size)
	queries := []string{"SELECT * FROM items WHERE id = $1", "SELECT * FROM items LIMIT $1"}
	var admittedFull int
	defer func() {
		if c.fullMisses == 0 || admittedFull != c.fullMisses/admitEvery {
			t.Errorf("a full cache admitted %d of %d misses, want one in %d", admittedFull, c.fullMisses, admitEvery)
		}
	}()
	for i := range 5000 {
		schema := fmt.Sprintf("t_%d", rand.IntN(6))
		b := execBytes(t, queries[rand.IntN(len(queries))], fmt.Sprint(i))
		full, resting := c.lru.Len() >= size, c.resting > 0
		pl := c.plan(schema, b)
		if pl == nil {
			if !full && !resting {
				t.Fatalf("step %d: a miss went unnamed while the cache had room and worked", i)
			}
			continue
		}
		if full && pl.parse {
			admittedFull++
		}
		out := pl.append(c.appendCloses(nil))
		var msgs []pgproto3.FrontendMessage
		be := pgproto3.NewBackend(&sliceReader{b: out}, nil)
		for {
			m, err := be.Receive()
			if err != nil {
				break
			}
			msgs = append(msgs, m)
			if _, ok := m.(*pgproto3.Sync); ok {
				break
			}
		}
		var bound string
		for _, m := range msgs {
			switch m := m.(type) {
			case *pgproto3.Parse:
				if m.Name != pl.entry.name || !pl.parse {
					t.Fatalf("step %d: Parse %q, entry %q, new %v", i, m.Name, pl.entry.name, pl.parse)
				}
			case *pgproto3.Bind:
				if m.DestinationPortal != "" || string(m.Parameters[0]) != fmt.Sprint(i) {
					t.Fatalf("step %d: Bind %+v", i, m)
				}
				bound = m.PreparedStatement
			}
		}
		if bound != pl.entry.name {
			t.Fatalf("step %d: bound %q, want %q", i, bound, pl.entry.name)
		}
		switch rand.IntN(5) {
		case 4: // a refusal: nothing of the cache is trusted
			c.reset()
			if c.lru.Len() != 0 || len(c.bySchema) != 0 {
				t.Fatalf("step %d: reset kept %d entries", i, c.lru.Len())
			}
		case 0: // the Parse failed
			if !pl.entry.ready {
				c.drop(pl.entry, false)
			}
		case 1: // the plan no longer fits
			c.drop(pl.entry, true)
		default:
			pl.entry.ready = true
		}
		n := 0
		for _, keys := range c.bySchema {
			if len(keys) == 0 {
				t.Fatalf("step %d: an empty schema map is kept", i)
			}
			n += len(keys)
		}
		if n != c.lru.Len() || n > size {
			t.Fatalf("step %d: %d entries in the maps, %d in the list, size %d", i, n, c.lru.Len(), size)
		}
	}
}

// Bytes that are not one exec-mode statement go out untouched.
func TestStatementCacheLeavesOtherBytesAlone(t *testing.T) {
	c := newStmtCache(4)
	good := execBytes(t, "SELECT 1 WHERE $1 = 1", "1")
	named, _ := (&pgproto3.Parse{Name: "mine", Query: "SELECT 1"}).Encode(nil)
	for name, b := range map[string][]byte{
		"simple query": func() []byte { q, _ := (&pgproto3.Query{String: "SELECT 1"}).Encode(nil); return q }(),
		"truncated":    good[:len(good)-3],
		"two syncs":    append(append([]byte(nil), good...), good[len(good)-5:]...),
		"named parse":  append(named, good[len(good)-5:]...),
		// Named, the Parse would leave this Describe of the unnamed
		// statement to describe whatever unnamed statement the connection
		// last parsed (another scope's, perhaps another tenant's), or
		// none: pgx would decode the rows by a description not theirs.
		"describe statement": describeStatement(t, good),
	} {
		if pl := c.plan("t_a", b); pl != nil {
			t.Errorf("%s: planned", name)
		}
	}
}

// describeStatement returns exec-mode bytes b with their Describe of the
// portal turned into a Describe of the unnamed statement.
func describeStatement(t *testing.T, b []byte) []byte {
	t.Helper()
	out := append([]byte(nil), b...)
	for i := 0; i+5 <= len(out); {
		n := int(out[i+1])<<24 | int(out[i+2])<<16 | int(out[i+3])<<8 | int(out[i+4])
		if out[i] == 'D' {
			out[i+5] = 'S'
			return out
		}
		i += 1 + n
	}
	t.Fatal("no Describe")
	return nil
}

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, fmt.Errorf("eof")
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// Only whole extended-protocol messages ending in their one Sync go out
// behind a Sync-less pin: a second Sync would end the pinned transaction
// midway, a simple Query would commit it or hang after a failed pin.
func TestExtendedWithSyncTakesOneSyncAtTheEnd(t *testing.T) {
	one := execBytes(t, "SELECT 1 WHERE $1 = 1", "1")
	query, _ := (&pgproto3.Query{String: "SELECT 1"}).Encode(nil)
	for name, c := range map[string]struct {
		b    []byte
		want bool
	}{
		"one statement":           {one, true},
		"two statements, 2 syncs": {append(append([]byte(nil), one...), one...), false},
		"a simple query":          {query, false},
		"query then statement":    {append(append([]byte(nil), query...), one...), false},
		"no sync":                 {one[:len(one)-5], false},
		"truncated":               {one[:len(one)-2], false},
		"empty":                   {nil, false},
	} {
		if got := extendedWithSync(c.b); got != c.want {
			t.Errorf("%s: %v, want %v", name, got, c.want)
		}
	}
}

// A full cache whose lookups mostly miss closes its statements and rests,
// reading unprepared, then fills again; its rests double while it keeps
// failing, and shrink to one window once it pays again. One whose working
// set fits is never judged and keeps serving hits.
func TestStatementCacheRestsWhenItDoesNotPay(t *testing.T) {
	const size = 4
	c := newStmtCache(size)
	stmt := execBytes(t, "SELECT 1 WHERE $1 = 1", "1")
	// lookups runs n lookups over keys schemas in turn, as scopes would,
	// and returns how many went out unnamed.
	next := 0
	lookups := func(n, keys int) (unnamed int) {
		for range n {
			next++
			pl := c.plan(fmt.Sprintf("t_%d", next%keys), stmt)
			if pl == nil {
				unnamed++
			} else {
				pl.entry.ready = true
			}
			c.appendCloses(nil) // as each scope's write does
		}
		return unnamed
	}
	// Too many keys: every window ends in a rest twice as long, up to
	// the cap.
	want := 1
	for failure := range 8 {
		for c.resting == 0 {
			lookups(1, 100)
		}
		if c.rest != want || c.lru.Len() != 0 || len(c.bySchema) != 0 {
			t.Fatalf("failure %d: rest %d (want %d), %d entries, %d schemas", failure, c.rest, want, c.lru.Len(), len(c.bySchema))
		}
		if u := lookups(c.resting*payWindow, 100); u != c.rest*payWindow {
			t.Fatalf("failure %d: %d of the rest's %d lookups went unnamed", failure, u, c.rest*payWindow)
		}
		want = min(2*want, maxRestWindows)
	}
	// The load narrows to keys that fit: the cache fills again and pays,
	// and the next failure rests one window only.
	lookups(3*payWindow, size)
	if c.rest != 0 || c.resting != 0 || c.lru.Len() != size {
		t.Fatalf("after a load that fits: rest %d, resting %d, %d entries", c.rest, c.resting, c.lru.Len())
	}
	for c.resting == 0 {
		lookups(1, 100)
	}
	if c.rest != 1 {
		t.Fatalf("the first failure after paying rests %d windows, want 1", c.rest)
	}

	fits := newStmtCache(size)
	for i := range 10 * payWindow {
		pl := fits.plan(fmt.Sprintf("t_%d", i%size), stmt)
		if pl == nil {
			t.Fatalf("lookup %d of a working set that fits went unnamed", i)
		}
		pl.entry.ready = true
	}
	if fits.resting != 0 || fits.lru.Len() != size {
		t.Fatalf("a cache whose working set fits: resting %d, %d entries", fits.resting, fits.lru.Len())
	}
}
