package main

import (
	"encoding/binary"
	"testing"
)

func TestCountStatementsSplitsOnlyOutsideLiteralsAndComments(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want int
	}{
		{"", 0},
		{"\x00", 0},
		{"BEGIN", 1},
		{"BEGIN;", 1},
		{"BEGIN; SELECT 1", 2},
		{"BEGIN;;  ; SELECT 1;\x00", 2},
		{"SELECT ';'", 1},
		{"SELECT 'it''s; fine'; SELECT 2", 2},
		{`SELECT E'a\'; b'; SELECT 2`, 2},
		{`SELECT "a;b" FROM t`, 1},
		{"SELECT 1 -- ; not a statement\n; SELECT 2", 2},
		{"/* ; /* nested ; */ still ; */ SELECT 1", 1},
		{"/* only a comment; */", 0},
		{"SELECT $$a;b$$; SELECT $x$ $$ ; $x$", 2},
		{"SELECT $1; SELECT 2", 2},
		{"SELECT set_config('search_path', '\"t_a\"', true); SELECT 1", 2},
	} {
		if got := countStatements(tc.sql); got != tc.want {
			t.Errorf("countStatements(%q) = %d, want %d", tc.sql, got, tc.want)
		}
	}
}

// wire builds the client side of a session: the SSL probe pgx may send, a
// startup message, then typed messages.
func wire() []byte {
	var b []byte
	untyped := func(code uint32, body []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(8+len(body)))
		b = binary.BigEndian.AppendUint32(b, code)
		b = append(b, body...)
	}
	typed := func(t byte, body string) {
		b = append(b, t)
		b = binary.BigEndian.AppendUint32(b, uint32(4+len(body)))
		b = append(b, body...)
	}
	untyped(codeSSLRequest, nil)
	untyped(196608, []byte("user\x00postgres\x00database\x00bench\x00\x00"))
	typed('p', "password\x00")
	typed('Q', "BEGIN; SELECT set_config('search_path', '\"t_a\"', true)\x00")
	typed('P', "\x00SELECT * FROM items WHERE id = $1\x00\x00\x00")
	typed('B', "\x00\x00\x00\x00\x00\x01\x00\x00\x00\x011\x00\x00")
	typed('D', "P\x00")
	typed('E', "\x00\x00\x00\x00\x00")
	typed('S', "")
	typed('Q', "COMMIT\x00")
	typed('E', "\x00\x00\x00\x00\x00") // an Execute of a prepared statement: no Parse
	typed('S', "")
	typed('X', "")
	return b
}

func TestMessageParserCountsWhateverTheChunking(t *testing.T) {
	want := counts{Executes: 2, Queries: 2, SimpleStmt: 3, Parses: 1}
	data := wire()
	for _, size := range []int{1, 2, 3, 5, 7, 13, 64, len(data)} {
		var p msgParser
		var got counts
		for i := 0; i < len(data); i += size {
			p.feed(data[i:min(i+size, len(data))], &got)
		}
		if got != want {
			t.Errorf("chunks of %d: got %+v, want %+v", size, got, want)
		}
		if got.Statements() != 5 {
			t.Errorf("chunks of %d: %d statements, want 5", size, got.Statements())
		}
	}
}

func TestRoundTripIsAClientSendAfterAnAnswer(t *testing.T) {
	var tt turnTaker
	var trips int
	send := func() {
		if tt.clientSent() {
			trips++
		}
	}
	send()          // startup: first trip
	tt.serverSent() // auth ok, ready
	send()          // Parse/Bind/Execute/Sync
	send()          // pipelined more without waiting: same trip
	tt.serverSent()
	tt.serverSent() // answers in several segments
	send()          // COMMIT
	if trips != 3 {
		t.Fatalf("got %d round trips, want 3", trips)
	}
}
