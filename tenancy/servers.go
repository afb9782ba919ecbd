package tenancy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// Tenant schemas may live on several PostgreSQL servers. The registry stays
// on one of them, the home server (the directory's own handles); every
// tenant row names its server, and the directory routes each scope,
// migration and drift check to that server's pool. Pools of the other
// servers open on first use, so a server that is down makes only its own
// tenants unavailable, and a single-server deployment opens nothing extra.

// HomeServer names the server that holds the registry: the registry
// column's default, so a deployment with one server never names one.
const HomeServer = "home"

// maxServerName is the registry column's width (varchar(32)).
const maxServerName = 32

var serverNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// entryLikeRE is what follows "NAME=" in an entry of ParseServerURLs: a
// URL scheme (RFC 3986: a letter, then letters, digits, '+', '-', '.').
var entryLikeRE = regexp.MustCompile(`^\s*[A-Za-z][A-Za-z0-9+.-]*://`)

// ValidateServerName checks a server name from configuration: a lowercase
// letter first, then lowercase letters, digits or '_', at most 32 bytes
// (the registry column). Names end up in the registry, in metrics labels
// and in replication object names, so they stay plain.
func ValidateServerName(name string) error {
	if len(name) == 0 || len(name) > maxServerName || !serverNameRE.MatchString(name) {
		return models.Invalid("server", fmt.Sprintf("%q must be a lowercase letter, then lowercase letters, digits or _, at most %d characters", name, maxServerName))
	}
	return nil
}

// Server is one PostgreSQL server tenant schemas may be placed on.
type Server struct {
	Name string
	// URL logs in as the request role, AdminURL as the DDL role (URL when
	// empty), MoveURL as a role that may publish and subscribe, which is a
	// superuser in PostgreSQL 15 (AdminURL when empty); only tenant moves
	// use it.
	URL, AdminURL, MoveURL string
	// Weight scales the share of new tenants the server takes; 0 means 1.
	Weight int
}

// ParseServerURLs parses "name=url,name=url". A URL may itself hold
// commas (a multi-host URL), so a comma starts a new entry only when what
// follows is name=scheme://.
func ParseServerURLs(spec string) (map[string]string, error) {
	out := map[string]string{}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return out, nil
	}
	var cur string
	for i, part := range strings.Split(spec, ",") {
		name, rest, ok := strings.Cut(part, "=")
		if ok && serverNameRE.MatchString(strings.TrimSpace(name)) && strings.Contains(rest, "://") && !strings.Contains(name, "/") {
			cur = strings.TrimSpace(name)
			if err := ValidateServerName(cur); err != nil {
				return nil, err
			}
			if _, dup := out[cur]; dup {
				return nil, models.Invalid("server", fmt.Sprintf("%q is named twice", cur))
			}
			out[cur] = strings.TrimSpace(rest)
			continue
		}
		// After the first entry a part that does not start a new entry
		// continues a multi-host URL ("h2:5432/db"); one shaped like
		// NAME=scheme:// with a bad NAME is a typo, which gluing on would
		// hide inside the previous server's URL.
		if cur == "" || (ok && entryLikeRE.MatchString(rest) && !strings.ContainsAny(name, ":/@?&")) {
			// The entry is not echoed: it is a URL that may hold a
			// password, and this error reaches stderr and logs.
			what := fmt.Sprintf("entry %d", i+1)
			if ok && !strings.ContainsAny(name, ":/@") {
				what += fmt.Sprintf(" (name %q)", strings.TrimSpace(name))
			}
			return nil, models.Invalid("server", what+" is not name=postgres://... with a lowercase name")
		}
		out[cur] += "," + part
	}
	return out, nil
}

// ParseServerWeights parses "name=2,name=1".
func ParseServerWeights(spec string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(spec, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		name, w, _ := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if err := ValidateServerName(name); err != nil {
			return nil, err
		}
		// 1000 bounds a weight far above any sensible ratio between servers.
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 1 || n > 1000 {
			return nil, models.Invalid("server", fmt.Sprintf("weight of %q must be a whole number from 1 to 1000", name))
		}
		out[name] = n
	}
	return out, nil
}

// serverPoolAdmin sizes the DDL and move pools of non-home servers:
// onboarding, migrations and moves are rare and short.
var serverPoolAdmin = PoolConfig{MaxOpen: 4, MaxIdle: 1, MaxLifetime: DefaultPool.MaxLifetime}

// downFor is how long a server whose pool failed to open is reported
// unavailable before the next attempt: its tenants' requests fail at once
// instead of each waiting out a connect timeout.
const downFor = time.Second

// server is one server's lazily opened pools. The home server's request
// and DDL pools are the directory's own handles (pool), never opened here.
type server struct {
	spec Server
	home bool

	// opening admits one pool opener at a time; unlike mu it is left at
	// the waiter's deadline, so requests queued behind a server that does
	// not answer fail at their own deadline, not one connect timeout each
	// after another.
	opening chan struct{}

	mu        sync.Mutex
	db, admin *gorm.DB
	move      *gorm.DB
	opened    []*gorm.DB // what this process opened, to close
	downUntil time.Time
	lastErr   error
	prepared  bool
	// findings are what the role check (serverroles.go) found when the
	// request pool opened; refused, set when it refused the server, stays
	// for the process's life: a role is fixed by an operator, then the
	// process restarted.
	findings []Finding
	refused  error
}

// servers is a directory's set of servers.
type servers struct {
	pool  PoolConfig
	names []string // sorted, home first
	by    map[string]*server
}

// WithServers places and routes tenants over the home server (the
// directory's handles) and the other servers listed; pool sizes each
// other server's request pool. homeMoveURL, when set, is the URL moves use
// on the home server (else moves there use the DDL handle).
func WithServers(list []Server, pool PoolConfig) Option {
	return func(d *Directory) { d.extra, d.extraPool = list, pool }
}

// WithHomeServer sets the home server's placement weight and the URL
// moves use there (a role allowed to publish and subscribe).
func WithHomeServer(weight int, moveURL string) Option {
	return func(d *Directory) { d.homeWeight, d.homeMoveURL = weight, moveURL }
}

// CheckServers validates a server list as WithServers takes it.
func CheckServers(list []Server) error {
	d := &Directory{extra: list}
	return d.initServers()
}

func (d *Directory) initServers() error {
	s := &servers{pool: d.extraPool, by: map[string]*server{}}
	d.servers = s
	home := &server{spec: Server{Name: HomeServer, Weight: d.homeWeight, MoveURL: d.homeMoveURL}, home: true}
	s.by[HomeServer] = home
	for _, sv := range d.extra {
		if err := ValidateServerName(sv.Name); err != nil {
			return err
		}
		if sv.Name == HomeServer {
			return models.Invalid("server", fmt.Sprintf("%q is the server of DATABASE_URL; name the others differently", HomeServer))
		}
		if _, dup := s.by[sv.Name]; dup {
			return models.Invalid("server", fmt.Sprintf("%q is named twice", sv.Name))
		}
		if sv.URL == "" {
			return models.Invalid("server", fmt.Sprintf("%q has no URL", sv.Name))
		}
		if sv.Weight < 0 {
			return models.Invalid("server", fmt.Sprintf("%q has a negative weight", sv.Name))
		}
		s.by[sv.Name] = &server{spec: sv, opening: make(chan struct{}, 1)}
	}
	for n := range s.by {
		if n != HomeServer {
			s.names = append(s.names, n)
		}
	}
	sort.Strings(s.names)
	s.names = append([]string{HomeServer}, s.names...)
	d.servers = s
	return nil
}

// Servers lists the configured server names, the home server first.
func (d *Directory) Servers() []string { return append([]string(nil), d.servers.names...) }

func (d *Directory) server(name string) (*server, error) {
	if d.serversErr != nil {
		return nil, d.serversErr
	}
	if name == "" {
		name = HomeServer
	}
	s, ok := d.servers.by[name]
	if !ok {
		return nil, fmt.Errorf("server %q is not configured here (TENANT_SERVERS): %w", name, models.ErrUnavailable)
	}
	return s, nil
}

// pool returns server name's request pool, or its DDL pool, opening it on
// first use. The request path asks for the request pool only, so a DDL
// URL that fails never stops a server's tenants from being served.
func (d *Directory) pool(ctx context.Context, name string, admin bool) (*gorm.DB, error) {
	s, err := d.server(name)
	if err != nil {
		return nil, err
	}
	if s.home {
		if admin {
			return d.admin, nil
		}
		return d.db, nil
	}
	slot, url, cfg := &s.db, s.spec.URL, d.servers.pool
	if admin {
		slot, url, cfg = &s.admin, s.spec.AdminURL, serverPoolAdmin
		if url == "" {
			// One URL for both roles, as DATABASE_URL alone is on home.
			slot, url, cfg = &s.db, s.spec.URL, d.servers.pool
		}
	}
	ready := func() (*gorm.DB, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.refused != nil {
			return nil, fmt.Errorf("server %q: %w", s.spec.Name, s.refused)
		}
		if *slot != nil {
			return *slot, nil
		}
		if d.now().Before(s.downUntil) {
			return nil, fmt.Errorf("server %q: %w", s.spec.Name, s.lastErr)
		}
		return nil, nil
	}
	if db, err := ready(); db != nil || err != nil {
		return db, err
	}
	// Opening pings the server (up to its connect timeout): one opener at
	// a time, outside mu, and the others wait only as long as their ctx.
	select {
	case s.opening <- struct{}{}:
	case <-ctx.Done():
		return nil, classify(fmt.Errorf("server %q: wait for its pool to open: %w", s.spec.Name, ctx.Err()))
	}
	defer func() { <-s.opening }()
	if db, err := ready(); db != nil || err != nil {
		return db, err
	}
	db, err := Open(ctx, url, cfg)
	if err == nil && slot == &s.db {
		// The request role is checked before the pool serves anything.
		var refused bool
		if refused, err = d.vetServerPool(ctx, s, db); err != nil {
			if sq, e := db.DB(); e == nil {
				sq.Close()
			}
			if refused {
				s.mu.Lock()
				s.refused = err
				s.mu.Unlock()
				return nil, fmt.Errorf("server %q: %w", s.spec.Name, err)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		// Only a failure the server caused marks it down: an opener that
		// gave up at its own deadline (a /readyz probe's short bound, a
		// hurried request) learned nothing about the server, and marking
		// it would fail the next callers for a server that may be fine.
		if ctx.Err() == nil {
			s.downUntil, s.lastErr = d.now().Add(downFor), classify(err)
		}
		return nil, fmt.Errorf("server %q: %w", s.spec.Name, classify(err))
	}
	*slot = db
	s.opened = append(s.opened, db)
	return db, nil
}

// moveHandle returns the handle moves use on server name: its MoveURL's
// pool, else its DDL handle.
func (d *Directory) moveHandle(ctx context.Context, name string) (*gorm.DB, string, error) {
	s, err := d.server(name)
	if err != nil {
		return nil, "", err
	}
	admin, err := d.pool(ctx, name, true)
	if err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	url := s.spec.MoveURL
	if url == "" && s.home {
		return nil, "", fmt.Errorf("server %q: no move URL (TENANT_MOVE_URLS home=...): the other server must connect to it: %w", name, ErrMoveUnsupported)
	}
	if url == "" {
		url = s.spec.AdminURL
		if url == "" {
			url = s.spec.URL
		}
		s.move = admin
	}
	if s.move == nil {
		m, err := Open(ctx, url, serverPoolAdmin)
		if err != nil {
			return nil, "", classify(fmt.Errorf("server %q: open the move URL: %w", name, err))
		}
		s.move = m
		s.opened = append(s.opened, m)
	}
	return s.move, url, nil
}

// Close closes the pools the directory opened for servers other than the
// home server (the caller owns the home handles).
func (d *Directory) Close() error {
	var errs []error
	for _, s := range d.servers.by {
		s.mu.Lock()
		for _, db := range s.opened {
			if sq, err := db.DB(); err == nil {
				errs = append(errs, sq.Close())
			}
		}
		s.opened, s.db, s.admin, s.move = nil, nil, nil, nil
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Ping checks every configured server, all at once, and reports the ones
// that do not answer, by name; servers not yet used are opened here.
func (d *Directory) Ping(ctx context.Context) map[string]error {
	errs := make([]error, len(d.servers.names))
	var wg sync.WaitGroup
	for i, n := range d.servers.names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.PingServer(ctx, n)
		}()
	}
	wg.Wait()
	out := make(map[string]error, len(errs))
	for i, n := range d.servers.names {
		out[n] = errs[i]
	}
	return out
}

// PingServer checks that server name answers on its request pool, opening
// the pool if it is not open yet.
func (d *Directory) PingServer(ctx context.Context, name string) error {
	db, err := d.pool(ctx, name, false)
	if err != nil {
		return err
	}
	sq, err := db.DB()
	if err != nil {
		return err
	}
	return classify(sq.PingContext(ctx))
}

// place chooses the server of a new tenant: the one with the fewest
// tenants per unit of weight, ties to the first in name order (home
// first). Concurrent onboardings may choose alike; the next ones even it
// out, which is all placement promises.
func (d *Directory) place(ctx context.Context) (string, error) {
	if len(d.servers.names) == 1 {
		return HomeServer, nil
	}
	var rows []struct {
		Server string
		N      int64
	}
	if err := d.admin.WithContext(ctx).Raw("SELECT server, count(*) AS n FROM " + migrations.TenantsTable + " GROUP BY server").
		Scan(&rows).Error; err != nil {
		return "", classify(fmt.Errorf("count tenants per server: %w", err))
	}
	counts := map[string]int64{}
	for _, r := range rows {
		counts[r.Server] = r.N
	}
	best, bestLoad := "", 0.0
	for _, n := range d.servers.names {
		w := d.servers.by[n].spec.Weight
		if w <= 0 {
			w = 1
		}
		load := float64(counts[n]) / float64(w)
		if best == "" || load < bestLoad {
			best, bestLoad = n, load
		}
	}
	return best, nil
}

// prepare readies server name for tenants of this deployment, once per
// process: the deployment's group role exists there and the server's
// request role is a member. Roles are server-wide, so the group role the
// home server's shared migration made does not exist on the others.
func (d *Directory) prepare(ctx context.Context, name string) error {
	s, err := d.server(name)
	if err != nil || s.home {
		return err
	}
	admin, err := d.pool(ctx, name, true)
	if err != nil {
		return err
	}
	s.mu.Lock()
	done := s.prepared
	s.mu.Unlock()
	if done {
		return nil
	}
	group, err := d.groupRole(ctx)
	if err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig(s.spec.URL)
	if err != nil {
		return fmt.Errorf("server %q: parse URL: %w", name, err)
	}
	requestRole := cfg.User
	if requestRole == "" || len(requestRole) > maxIdentifier || strings.ContainsRune(requestRole, 0) {
		return fmt.Errorf("server %q: request role %q: %w", name, requestRole, models.ErrInvalid)
	}
	err = admin.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := setLimits(tx, DDLLimits); err != nil {
			return err
		}
		// Two instances may prepare a server at once: the advisory lock
		// makes the second find the role the first made.
		if err := tx.Exec("SELECT pg_advisory_xact_lock($1, hashtext($2))", lockClass, group).Error; err != nil {
			return err
		}
		var exists bool
		if err := tx.Raw("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", group).Scan(&exists).Error; err != nil {
			return err
		}
		stmts := "GRANT " + quoteIdent(group) + " TO " + quoteIdent(requestRole)
		if !exists {
			stmts = "CREATE ROLE " + quoteIdent(group) + " NOLOGIN NOINHERIT;\n" + stmts
		}
		return tx.Exec(stmts).Error
	})
	if err != nil {
		return classify(fmt.Errorf("server %q: ready the group role: %w", name, err))
	}
	s.mu.Lock()
	s.prepared = true
	s.mu.Unlock()
	return nil
}

// ServerPoolStats reports the request pool figures of server name, read in
// process (no query); ErrUnavailable for a server whose pool is not open
// (not used yet, or down).
func (d *Directory) ServerPoolStats(name string) (sql.DBStats, error) {
	s, err := d.server(name)
	if err != nil {
		return sql.DBStats{}, err
	}
	if s.home {
		return d.PoolStats()
	}
	s.mu.Lock()
	db := s.db
	s.mu.Unlock()
	if db == nil {
		return sql.DBStats{}, fmt.Errorf("server %q: pool not open: %w", name, models.ErrUnavailable)
	}
	sq, err := db.DB()
	if err != nil {
		return sql.DBStats{}, err
	}
	return sq.Stats(), nil
}
