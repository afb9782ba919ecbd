package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/fleet"
	"github.com/tenantry/tenantry/internal/pglocal"
	"github.com/tenantry/tenantry/internal/pgtest"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/tenancy/tenancytest"
	"gorm.io/gorm"
)

// servers is a home server (the registry) and a second server "b", each a
// throwaway cluster of the test's own.
type servers struct {
	home, b pgtest.Server
	dir     *tenancy.Directory
}

var fleetPool = tenancy.PoolConfig{MaxOpen: 8, MaxIdle: 2, MaxLifetime: time.Minute}

func newFleet(t *testing.T, bLogical bool) *servers {
	t.Helper()
	ctx := context.Background()
	f := &servers{
		home: pgtest.NewServer(t, pglocal.Options{Logical: true}),
		b:    pgtest.NewServer(t, pglocal.Options{Logical: bLogical}),
	}
	admin := openTB(t, f.home.Roles.DDLURL)
	if err := migrations.ApplyShared(ctx, admin); err != nil {
		t.Fatalf("shared migrations: %v", err)
	}
	db := openTB(t, f.home.Roles.AppURL)
	f.dir = tenancy.NewDirectory(db, tenancy.WithAdmin(admin), tenancy.WithTTL(time.Minute),
		tenancy.WithHomeServer(0, f.home.SuperURL),
		tenancy.WithServers([]tenancy.Server{{Name: "b", URL: f.b.Roles.AppURL, AdminURL: f.b.Roles.DDLURL, MoveURL: f.b.SuperURL}}, fleetPool))
	t.Cleanup(func() {
		if err := f.dir.Close(); err != nil {
			t.Errorf("close directory: %v", err)
		}
	})
	if err := f.dir.EnsureRoles(ctx, f.home.Roles.AppRole); err != nil {
		t.Fatalf("ready the request role: %v", err)
	}
	return f
}

func openTB(t *testing.T, url string) *gorm.DB {
	t.Helper()
	return tenancytest.Connect(t, url, fleetPool)
}

// query runs sql as the superuser of a server and returns the first column
// of every row as text.
func query(t *testing.T, s pgtest.Server, sql string, args ...any) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.SuperURL)
	if err != nil {
		t.Fatalf("connect to port %d: %v", s.Cluster.Port, err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func hasSchema(t *testing.T, s pgtest.Server, schema string) bool {
	t.Helper()
	return len(query(t, s, "SELECT nspname::text FROM pg_namespace WHERE nspname = $1", schema)) == 1
}

func (f *servers) insert(ctx context.Context, name, item string) (int64, error) {
	tn, err := f.dir.Active(ctx, name)
	if err != nil {
		return 0, err
	}
	it := models.Item{Name: item}
	err = tenancy.WithTx(ctx, tn, func(tx *gorm.DB) error { return tx.Create(&it).Error })
	return it.ID, err
}

func TestParseServerURLsKeepsMultiHostURLsWhole(t *testing.T) {
	got, err := tenancy.ParseServerURLs("b=postgres://u@h1:5432,h2:5432/db?x=1,c_2=postgresql://u@h3/db")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"b": "postgres://u@h1:5432,h2:5432/db?x=1", "c_2": "postgresql://u@h3/db"}
	if len(got) != len(want) || got["b"] != want["b"] || got["c_2"] != want["c_2"] {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"B=postgres://x/y", "b=postgres://x/y,b=postgres://z/w", "postgres://x/y", "home-1=postgres://x/y",
		"a234567890123456789012345678901234=postgres://x/y"} {
		if _, err := tenancy.ParseServerURLs(bad); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("ParseServerURLs(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	// After a first good entry, a badly named one is refused, not glued
	// onto the previous URL as if it were another host of it.
	for _, bad := range []string{"b=postgres://u@h/db,Cx=postgres://u@h2/db", "b=postgres://u@h/db, c-2=postgresql://u@h2/db",
		"b=postgres://u@h1,h2/db,c d=postgres://u@h3/db"} {
		if got, err := tenancy.ParseServerURLs(bad); !errors.Is(err, models.ErrInvalid) {
			t.Errorf("ParseServerURLs(%q) = %v, %v, want ErrInvalid", bad, got, err)
		}
	}
	// A parameter holding '=' after a host list stays part of the URL.
	if got, err := tenancy.ParseServerURLs("b=postgres://u@h1,h2/db?sslmode=require,c=postgres://u@h3/db"); err != nil ||
		got["b"] != "postgres://u@h1,h2/db?sslmode=require" || got["c"] != "postgres://u@h3/db" {
		t.Errorf("multi-host URL with a parameter: got %v, %v", got, err)
	}
	// A malformed entry is named by position, never echoed: it may hold a
	// password.
	for _, bad := range []string{"B=postgres://u:s3cret@h/db", "postgres://u:s3cret@h/db", "b=postgres://u@h/db,Cx=postgres://u:s3cret@h2/db"} {
		_, err := tenancy.ParseServerURLs(bad)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ParseServerURLs(%q) = %v, want an error without the password", bad, err)
		}
	}
	if err := tenancy.CheckServers([]tenancy.Server{{Name: tenancy.HomeServer, URL: "postgres://x/y"}}); !errors.Is(err, models.ErrInvalid) {
		t.Errorf("a second server named %q: got %v, want ErrInvalid", tenancy.HomeServer, err)
	}
	w, err := tenancy.ParseServerWeights("home=1,b=3")
	if err != nil || w["home"] != 1 || w["b"] != 3 {
		t.Fatalf("weights: got %v, %v", w, err)
	}
	if _, err := tenancy.ParseServerWeights("b=0"); !errors.Is(err, models.ErrInvalid) {
		t.Errorf("weight 0: got %v, want ErrInvalid", err)
	}
}

func TestTenantsArePlacedOnTheServerWithFewestAndServedThere(t *testing.T) {
	f := newFleet(t, false)
	ctx := context.Background()
	names := []string{"p1", "p2", "p3", "p4"}
	for _, n := range names {
		if _, err := f.dir.Onboard(ctx, n); err != nil {
			t.Fatalf("onboard %s: %v", n, err)
		}
	}
	per := map[string]int{}
	for _, n := range names {
		tn, err := f.dir.Get(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		per[tn.Server]++
		on, off := f.home, f.b
		if tn.Server == "b" {
			on, off = f.b, f.home
		}
		if !hasSchema(t, on, tn.SchemaName) || hasSchema(t, off, tn.SchemaName) {
			t.Errorf("%s: schema %s should be on server %q only", n, tn.SchemaName, tn.Server)
		}
		if _, err := f.insert(ctx, n, "x-"+n); err != nil {
			t.Errorf("write to %s on %q: %v", n, tn.Server, err)
		}
	}
	if per[tenancy.HomeServer] != 2 || per["b"] != 2 {
		t.Fatalf("tenants per server: got %v, want 2 and 2", per)
	}
	// The item went to the tenant's own server and nowhere else.
	tb, err := f.dir.Get(ctx, "p2")
	if err != nil {
		t.Fatal(err)
	}
	if tb.Server != "b" {
		t.Fatalf("p2 on %q, want b (placement alternates, home first)", tb.Server)
	}
	if got := query(t, f.b, "SELECT name::text FROM "+pgx.Identifier{tb.SchemaName, "items"}.Sanitize()); len(got) != 1 || got[0] != "x-p2" {
		t.Fatalf("items of p2 on b: got %v", got)
	}
	// Offboarding a tenant on b drops its schema and roles there.
	if err := f.dir.Offboard(ctx, "p2"); err != nil {
		t.Fatalf("offboard p2: %v", err)
	}
	if hasSchema(t, f.b, tb.SchemaName) {
		t.Errorf("schema %s still on b after offboarding", tb.SchemaName)
	}
	if got := query(t, f.b, "SELECT rolname::text FROM pg_roles WHERE rolname IN ($1, $2)", tb.DBRole, tb.DBRoleRead); len(got) != 0 {
		t.Errorf("roles %v still on b after offboarding", got)
	}
	// Migrations and their status reach the tenants on b.
	st, err := fleet.Inspect(ctx, f.dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Drift != "" || s.Version != f.dir.Plan().Latest() {
			t.Errorf("status of %s: version %d drift %q", s.Tenant, s.Version, s.Drift)
		}
	}
	if len(st) != 3 {
		t.Errorf("status lists %d tenants, want 3", len(st))
	}
	// A real migration step reaches the tenants on b, and the registry on
	// home records their new version.
	plan := f.dir.Plan()
	plan.Steps = append(append([]migrations.Step{}, plan.Steps...), migrations.Step{Version: plan.Latest() + 1,
		Name: "extra column", Up: "ALTER TABLE items ADD COLUMN extra integer", Compatible: true})
	migrating := tenancy.NewDirectory(openTB(t, f.home.Roles.AppURL), tenancy.WithAdmin(openTB(t, f.home.Roles.DDLURL)), tenancy.WithPlan(plan),
		tenancy.WithServers([]tenancy.Server{{Name: "b", URL: f.b.Roles.AppURL, AdminURL: f.b.Roles.DDLURL}}, fleetPool))
	t.Cleanup(func() {
		if err := migrating.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	sum, err := fleet.Migrate(ctx, migrating, fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	results := sum.Results
	if len(results) != 3 {
		t.Fatalf("migrated %d tenants, want 3", len(results))
	}
	for _, r := range results {
		if r.Err != nil || r.To != plan.Latest() {
			t.Errorf("migrate %s: to %d, %v", r.Tenant, r.To, r.Err)
		}
	}
	p4, err := f.dir.Get(ctx, "p4")
	if err != nil {
		t.Fatal(err)
	}
	if p4.Server != "b" || p4.SchemaVersion != plan.Latest() {
		t.Errorf("p4: server %q, recorded version %d; want b and %d", p4.Server, p4.SchemaVersion, plan.Latest())
	}
	if got := query(t, f.b, "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'extra'",
		pgx.Identifier{p4.SchemaName, "items"}.Sanitize()); len(got) != 1 {
		t.Errorf("column extra missing on b's %s", p4.SchemaName)
	}
	// Weights: with b at 3, home's 2 tenants weigh like b's 6, so the next
	// four (b holds 1) all go to b.
	admin := openTB(t, f.home.Roles.DDLURL)
	weighted := tenancy.NewDirectory(openTB(t, f.home.Roles.AppURL), tenancy.WithAdmin(admin),
		tenancy.WithServers([]tenancy.Server{{Name: "b", URL: f.b.Roles.AppURL, AdminURL: f.b.Roles.DDLURL, Weight: 3}}, fleetPool))
	t.Cleanup(func() {
		if err := weighted.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	for _, n := range []string{"w1", "w2", "w3", "w4"} {
		tn, err := weighted.Onboard(ctx, n)
		if err != nil {
			t.Fatalf("onboard %s: %v", n, err)
		}
		if tn.Server != "b" {
			t.Errorf("%s placed on %q, want b (weight 3)", n, tn.Server)
		}
	}
}

func TestServerDownMakesOnlyItsTenantsUnavailable(t *testing.T) {
	f := newFleet(t, false)
	ctx := context.Background()
	for _, n := range []string{"up", "down"} {
		if _, err := f.dir.Onboard(ctx, n); err != nil {
			t.Fatalf("onboard %s: %v", n, err)
		}
		if _, err := f.insert(ctx, n, "before"); err != nil {
			t.Fatalf("write to %s: %v", n, err)
		}
	}
	if tn, err := f.dir.Get(ctx, "down"); err != nil || tn.Server != "b" {
		t.Fatalf("tenant down: server %q, %v; want b", tn.Server, err)
	}
	if err := f.b.Cluster.Stop(); err != nil {
		t.Fatalf("stop b: %v", err)
	}
	for i := 0; i < 3; i++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := f.insert(cctx, "down", "during")
		cancel()
		if !errors.Is(err, models.ErrUnavailable) {
			t.Fatalf("write to a tenant on the stopped server: got %v, want ErrUnavailable", err)
		}
		if _, err := f.insert(ctx, "up", "during"); err != nil {
			t.Fatalf("write to a tenant on the home server while b is down: %v", err)
		}
	}
	ping := f.dir.Ping(ctx)
	if ping[tenancy.HomeServer] != nil || !errors.Is(ping["b"], models.ErrUnavailable) {
		t.Fatalf("ping: got %v, want home up and b unavailable", ping)
	}
}

// TestMoveUnderWritesKeepsEveryAcknowledgedWriteExactlyOnce moves a tenant
// from home to b while writers insert without pause: every acknowledged
// write must be on b exactly once, nothing else may be there, and a write
// may fail only with ErrUnavailable (503) and only inside the switch.
func TestMoveUnderWritesKeepsEveryAcknowledgedWriteExactlyOnce(t *testing.T) {
	f := newFleet(t, true)
	ctx := context.Background()
	src, err := f.dir.Onboard(ctx, "mover")
	if err != nil {
		t.Fatal(err)
	}
	if src.Server != tenancy.HomeServer {
		t.Fatalf("mover placed on %q, want home", src.Server)
	}
	// A neighbour on the source, written to throughout, must not notice.
	if _, err := f.dir.Onboard(ctx, "stayer"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.dir.Onboard(ctx, "stayer2"); err != nil {
		t.Fatal(err)
	}
	if tn, _ := f.dir.Get(ctx, "stayer2"); tn.Server != tenancy.HomeServer {
		t.Fatalf("stayer2 on %q, want home", tn.Server)
	}
	acked := map[string]int64{}
	for i := 0; i < 300; i++ {
		n := fmt.Sprintf("seed-%d", i)
		id, err := f.insert(ctx, "mover", n)
		if err != nil {
			t.Fatal(err)
		}
		acked[n] = id
	}
	type failure struct {
		at  time.Time
		err error
	}
	var (
		mu       sync.Mutex
		failures []failure
		ackTimes []time.Time
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	const writers = 3
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := fmt.Sprintf("w%d-%d", w, i)
				id, err := f.insert(ctx, "mover", n)
				mu.Lock()
				if err != nil {
					failures = append(failures, failure{time.Now(), err})
				} else {
					acked[n] = id
					ackTimes = append(ackTimes, time.Now())
				}
				mu.Unlock()
				if _, err := f.insert(ctx, "stayer2", n); err != nil {
					mu.Lock()
					failures = append(failures, failure{time.Now(), fmt.Errorf("%w: %w", errNeighbour, err)})
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	rep, err := f.dir.Move(ctx, "mover", "b", tenancy.MoveOptions{})
	time.Sleep(300 * time.Millisecond) // writes go on, on b
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("move: %v", err)
	}
	t.Logf("move: copy %v, switch %v (pause to registry switch), writes held on the source %v, total %v; %d acknowledged writes, %d refused",
		rep.Copy, rep.Switch, rep.Pause, rep.Total, len(acked), len(failures))
	// The window a client sees: the longest stretch without an
	// acknowledged write of the moving tenant, around the switch.
	var gap time.Duration
	sort.Slice(ackTimes, func(i, j int) bool { return ackTimes[i].Before(ackTimes[j]) })
	for i := 1; i < len(ackTimes); i++ {
		if ackTimes[i].After(rep.Paused.Add(-time.Second)) && ackTimes[i-1].Before(rep.Released.Add(time.Second)) {
			gap = max(gap, ackTimes[i].Sub(ackTimes[i-1]))
		}
	}
	t.Logf("longest stretch without an acknowledged write around the switch: %v", gap)
	if rep.Cleanup != "" {
		t.Errorf("move left behind: %s", rep.Cleanup)
	}
	for _, fl := range failures {
		if !errors.Is(fl.err, models.ErrUnavailable) || errors.Is(fl.err, errNeighbour) {
			t.Errorf("write refused with %v, want only ErrUnavailable", fl.err)
		}
		// Refusals come from writes that waited on the paused source and
		// fail when it is released, so they fall between the pause and
		// shortly after the release (the time to return the error).
		if fl.at.Before(rep.Paused) || fl.at.After(rep.Released.Add(500*time.Millisecond)) {
			t.Errorf("write refused at %v, outside the switch [%v, %v]", fl.at.Format(time.StampMicro),
				rep.Paused.Format(time.StampMicro), rep.Released.Format(time.StampMicro))
		}
	}
	tn, err := f.dir.Get(ctx, "mover")
	if err != nil || tn.Server != "b" {
		t.Fatalf("registry: mover on %q, %v; want b", tn.Server, err)
	}
	// Every acknowledged write is on b exactly once, under the id it was
	// acknowledged with, and nothing else is.
	rows := query(t, f.b, "SELECT name || ' ' || id FROM "+pgx.Identifier{tn.SchemaName, "items"}.Sanitize()+" ORDER BY id")
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r] {
			t.Errorf("row %q twice on b", r)
		}
		seen[r] = true
	}
	for n, id := range acked {
		if !seen[fmt.Sprintf("%s %d", n, id)] {
			t.Errorf("acknowledged write %s (id %d) is not on b", n, id)
		}
	}
	if len(rows) != len(acked) {
		t.Errorf("b holds %d rows, %d writes were acknowledged", len(rows), len(acked))
	}
	// Writes after the switch continued past the source's ids (the
	// sequence was carried over): a collision would have failed them.
	var afterSwitch int
	for _, at := range ackTimes {
		if at.After(rep.Released) {
			afterSwitch++
		}
	}
	if afterSwitch == 0 {
		t.Fatal("no concurrent write was acknowledged after the switch: the test proved nothing about writes on b")
	}
	post, err := f.insert(ctx, "mover", "after")
	if err != nil {
		t.Fatalf("write after the move: %v", err)
	}
	var maxID int64
	for _, id := range acked {
		maxID = max(maxID, id)
	}
	if post <= maxID {
		t.Errorf("write after the move got id %d, not past the source's %d", post, maxID)
	}
	// Nothing of the move stays: source schema and roles, publication,
	// slot, subscription.
	if hasSchema(t, f.home, tn.SchemaName) {
		t.Error("the source schema is still on home")
	}
	for _, q := range []struct {
		s   pgtest.Server
		sql string
	}{
		{f.home, "SELECT pubname::text FROM pg_publication"},
		{f.home, "SELECT slot_name::text FROM pg_replication_slots"},
		{f.b, "SELECT subname::text FROM pg_subscription"},
	} {
		if got := query(t, q.s, q.sql); len(got) != 0 {
			t.Errorf("%s: left %v", q.sql, got)
		}
	}
	if got := query(t, f.home, "SELECT rolname::text FROM pg_roles WHERE rolname IN ($1, $2)", tn.DBRole, tn.DBRoleRead); len(got) != 0 {
		t.Errorf("roles %v still on home", got)
	}
	// The tenant reads on b what it wrote on home.
	var n int64
	moved, err := f.dir.Active(ctx, "mover")
	if err != nil {
		t.Fatal(err)
	}
	if err := tenancy.WithTx(ctx, moved, func(tx *gorm.DB) error { return tx.Model(&models.Item{}).Count(&n).Error }); err != nil {
		t.Fatal(err)
	}
	if n != int64(len(acked))+1 {
		t.Errorf("the tenant counts %d items on b, want %d", n, len(acked)+1)
	}
}

var errNeighbour = errors.New("neighbour")

func TestFailedMoveLeavesTheTenantWholeOnTheSource(t *testing.T) {
	f := newFleet(t, false)
	ctx := context.Background()
	tn, err := f.dir.Onboard(ctx, "keeper")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.insert(ctx, "keeper", "kept"); err != nil {
		t.Fatal(err)
	}
	// The target cannot reach the source at this address (nothing listens
	// on port 1), so the subscription fails after the target schema exists.
	_, err = f.dir.Move(ctx, "keeper", "b", tenancy.MoveOptions{SourceConnInfo: "host=127.0.0.1 port=1 dbname=x connect_timeout=2"})
	if err == nil {
		t.Fatal("move through an unreachable source succeeded")
	}
	t.Logf("move failed as it should: %v", err)
	now, err := f.dir.Get(ctx, "keeper")
	if err != nil || now.Server != tenancy.HomeServer {
		t.Fatalf("keeper on %q, %v; want home", now.Server, err)
	}
	if hasSchema(t, f.b, tn.SchemaName) {
		t.Error("the target schema was left on b")
	}
	if got := query(t, f.b, "SELECT rolname::text FROM pg_roles WHERE rolname IN ($1, $2)", tn.DBRole, tn.DBRoleRead); len(got) != 0 {
		t.Errorf("roles %v left on b", got)
	}
	if got := query(t, f.home, "SELECT pubname::text FROM pg_publication"); len(got) != 0 {
		t.Errorf("publication %v left on home", got)
	}
	if _, err := f.insert(ctx, "keeper", "after"); err != nil {
		t.Fatalf("write after the failed move: %v", err)
	}
	// A table without a primary key or replica identity would fail its
	// updates and deletes once published: the move refuses before it
	// publishes or builds anything.
	query(t, f.home, "CREATE TABLE "+pgx.Identifier{tn.SchemaName, "notes"}.Sanitize()+" (body text)")
	_, err = f.dir.Move(ctx, "keeper", "b", tenancy.MoveOptions{})
	if !errors.Is(err, tenancy.ErrMoveUnsupported) || !strings.Contains(err.Error(), "notes") {
		t.Fatalf("move with a table lacking a replica identity: got %v, want ErrMoveUnsupported naming notes", err)
	}
	if hasSchema(t, f.b, tn.SchemaName) {
		t.Error("the refused move built the schema on b")
	}
	if got := query(t, f.home, "SELECT pubname::text FROM pg_publication"); len(got) != 0 {
		t.Errorf("the refused move left publication %v on home", got)
	}
	// b runs with wal_level=replica: a move from it says so, and changes
	// nothing.
	other, err := f.dir.Onboard(ctx, "onb")
	if err != nil || other.Server != "b" {
		t.Fatalf("onboard onb: %q, %v; want b", other.Server, err)
	}
	_, err = f.dir.Move(ctx, "onb", tenancy.HomeServer, tenancy.MoveOptions{})
	if !errors.Is(err, tenancy.ErrMoveUnsupported) {
		t.Fatalf("move from a wal_level=replica server: got %v, want ErrMoveUnsupported", err)
	}
	t.Logf("move from b refused: %v", err)
	if hasSchema(t, f.home, other.SchemaName) || !hasSchema(t, f.b, other.SchemaName) {
		t.Error("the refused move changed where onb's schema is")
	}
}

// TestRequestsQueuedBehindASilentServerFailAtTheirOwnDeadline: while one
// caller waits to open the pool of a server that accepts connections and
// never answers (a dead network path), another caller with a short
// deadline must fail at that deadline, not wait out the first one's
// connect. The bound below is many times the short deadline and far under
// the first caller's wait, so it tests the queueing, not the machine.
func TestRequestsQueuedBehindASilentServerFailAtTheirOwnDeadline(t *testing.T) {
	db, _ := tenancytest.Open(t, fleetPool)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 16)
	var held []net.Conn
	var heldMu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, c)
			heldMu.Unlock()
			accepted <- struct{}{}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		heldMu.Lock()
		defer heldMu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	url := fmt.Sprintf("postgres://app:pw@%s/db?connect_timeout=10&sslmode=disable", ln.Addr())
	dir := tenancy.NewDirectory(db, tenancy.WithServers([]tenancy.Server{{Name: "b", URL: url}}, fleetPool))
	t.Cleanup(func() { _ = dir.Close() })

	const firstWait = 8 * time.Second
	first := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), firstWait)
		defer cancel()
		first <- dir.Ping(ctx)["b"]
	}()
	select {
	case <-accepted: // the first caller is opening b's pool now
	case <-time.After(firstWait):
		t.Fatal("the first caller never connected to the silent server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = dir.Ping(ctx)["b"]
	waited := time.Since(start)
	if !errors.Is(err, models.ErrUnavailable) {
		t.Errorf("second caller: got %v, want ErrUnavailable", err)
	}
	if waited > 3*time.Second {
		t.Errorf("second caller with a 300ms deadline waited %v behind the first caller's open", waited)
	}
	if err := <-first; !errors.Is(err, models.ErrUnavailable) {
		t.Errorf("first caller: got %v, want ErrUnavailable", err)
	}
}

// TestRemoteMigrationRecordsItsVersionThroughARegistryBlip: a tenant on b
// is migrated there (committed), then its version is written in the
// registry on home; that write fails once (a trigger stands in for a
// failover or lock timeout). The write is retried, so the run succeeds and
// the tenant is served at the new version. Before, the registry stayed
// behind the ledger and the tenant was answered ErrBehind (503) until the
// next run.
func TestRemoteMigrationRecordsItsVersionThroughARegistryBlip(t *testing.T) {
	f := newFleet(t, false)
	ctx := context.Background()
	for _, n := range []string{"h1", "r1"} {
		if _, err := f.dir.Onboard(ctx, n); err != nil {
			t.Fatalf("onboard %s: %v", n, err)
		}
	}
	if tn, err := f.dir.Get(ctx, "r1"); err != nil || tn.Server != "b" {
		t.Fatalf("r1: server %q, %v; want b", tn.Server, err)
	}
	query(t, f.home, `CREATE SEQUENCE public.registry_blip`)
	query(t, f.home, `CREATE FUNCTION public.registry_blip() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
	IF NEW.server <> 'home' AND nextval('public.registry_blip') = 1 THEN
		RAISE EXCEPTION 'injected registry fault';
	END IF;
	RETURN NEW;
END $$`)
	query(t, f.home, `CREATE TRIGGER registry_blip BEFORE UPDATE OF schema_version ON `+migrations.TenantsTable+
		` FOR EACH ROW EXECUTE FUNCTION public.registry_blip()`)
	plan := f.dir.Plan()
	plan.Steps = append(append([]migrations.Step{}, plan.Steps...), migrations.Step{Version: plan.Latest() + 1,
		Name: "needed column", Up: "ALTER TABLE items ADD COLUMN needed integer"})
	newer := tenancy.NewDirectory(openTB(t, f.home.Roles.AppURL), tenancy.WithAdmin(openTB(t, f.home.Roles.DDLURL)), tenancy.WithPlan(plan),
		tenancy.WithTTL(0), tenancy.WithServers([]tenancy.Server{{Name: "b", URL: f.b.Roles.AppURL, AdminURL: f.b.Roles.DDLURL}}, fleetPool))
	t.Cleanup(func() {
		if err := newer.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	sum, err := fleet.Migrate(ctx, newer, fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Results) != 2 {
		t.Fatalf("migrated %d tenants, want 2", len(sum.Results))
	}
	for _, r := range sum.Results {
		if r.Err != nil || r.To != plan.Latest() {
			t.Errorf("migrate %s: to %d, %v", r.Tenant, r.To, r.Err)
		}
	}
	// 1 was the failed write, 2 the retry: the fault fired, once.
	if got := query(t, f.home, "SELECT nextval('public.registry_blip')::text"); len(got) != 1 || got[0] != "3" {
		t.Fatalf("sequence at %v, want 3 (one failed write, one retry)", got)
	}
	if _, err := newer.Active(ctx, "r1"); err != nil {
		t.Fatalf("r1 after its migration: %v", err)
	}
}
