package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/tenantry/tenantry/tenancy"
)

// Several servers. DATABASE_URL's server is "home": it holds the registry
// and takes tenants like any other. The others are named here:
//
//	TENANT_SERVERS        b=postgres://app@host-b/db,c=postgres://app@host-c/db   (request role)
//	TENANT_SERVERS_DDL    b=postgres://ddl@host-b/db,...   (DDL role; default: the request URL)
//	TENANT_SERVER_WEIGHTS home=1,b=2                       (placement weights; default 1)
//	TENANT_MOVE_URLS      home=postgres://su@host-a/db,b=... (a superuser, for tenants move)
//
// Unset, nothing changes: one server, every tenant on it.

// serverConfig is what the TENANT_SERVERS* variables say.
type serverConfig struct {
	servers     []tenancy.Server
	homeWeight  int
	homeMoveURL string
}

func loadServers(getenv func(string) string) (serverConfig, error) {
	var sc serverConfig
	urls, err := tenancy.ParseServerURLs(getenv("TENANT_SERVERS"))
	if err != nil {
		return sc, fmt.Errorf("TENANT_SERVERS: %w", err)
	}
	ddl, err := tenancy.ParseServerURLs(getenv("TENANT_SERVERS_DDL"))
	if err != nil {
		return sc, fmt.Errorf("TENANT_SERVERS_DDL: %w", err)
	}
	move, err := tenancy.ParseServerURLs(getenv("TENANT_MOVE_URLS"))
	if err != nil {
		return sc, fmt.Errorf("TENANT_MOVE_URLS: %w", err)
	}
	weights, err := tenancy.ParseServerWeights(getenv("TENANT_SERVER_WEIGHTS"))
	if err != nil {
		return sc, fmt.Errorf("TENANT_SERVER_WEIGHTS: %w", err)
	}
	// A name in the other variables that TENANT_SERVERS lacks is a typo
	// that would otherwise be ignored.
	for what, m := range map[string]map[string]string{"TENANT_SERVERS_DDL": ddl, "TENANT_MOVE_URLS": move} {
		for n := range m {
			if _, ok := urls[n]; !ok && n != tenancy.HomeServer {
				return sc, fmt.Errorf("%s names server %q, which TENANT_SERVERS does not", what, n)
			}
		}
	}
	for n := range weights {
		if _, ok := urls[n]; !ok && n != tenancy.HomeServer {
			return sc, fmt.Errorf("TENANT_SERVER_WEIGHTS names server %q, which TENANT_SERVERS does not", n)
		}
	}
	if _, ok := ddl[tenancy.HomeServer]; ok {
		return sc, errors.New("TENANT_SERVERS_DDL: the home server's DDL URL is MIGRATION_DATABASE_URL")
	}
	names := make([]string, 0, len(urls))
	for n := range urls {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		sc.servers = append(sc.servers, tenancy.Server{Name: n, URL: urls[n], AdminURL: ddl[n], MoveURL: move[n], Weight: weights[n]})
	}
	sc.homeWeight, sc.homeMoveURL = weights[tenancy.HomeServer], move[tenancy.HomeServer]
	if err := tenancy.CheckServers(sc.servers); err != nil {
		return sc, fmt.Errorf("TENANT_SERVERS: %w", err)
	}
	return sc, nil
}

// options are the directory options that place and route over the servers.
func (sc serverConfig) options(pool tenancy.PoolConfig) []tenancy.Option {
	if len(sc.servers) == 0 && sc.homeWeight == 0 && sc.homeMoveURL == "" {
		return nil
	}
	return []tenancy.Option{tenancy.WithServers(sc.servers, pool), tenancy.WithHomeServer(sc.homeWeight, sc.homeMoveURL)}
}

// tenantsMove is `tenants move NAME --to SERVER`: an online move by
// logical replication (tenancy.Directory.Move), reported as JSON.
func tenantsMove(ctx context.Context, dir *tenancy.Directory, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tenants move", flag.ContinueOnError)
	to := fs.String("to", "", "server to move the tenant to (home or a TENANT_SERVERS name)")
	source := fs.String("source-conninfo", "", "how the target server reaches the source (default: the source's TENANT_MOVE_URLS entry)")
	if len(args) == 0 {
		return fmt.Errorf("tenants move needs NAME --to SERVER: %w", errUsage)
	}
	name := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *to == "" || fs.NArg() != 0 {
		return fmt.Errorf("tenants move needs NAME --to SERVER: %w", errUsage)
	}
	c, err := dir.Cluster(ctx)
	if err != nil {
		return err
	}
	if c.Citus { // --to names a worker node (citus.go)
		return moveToNode(ctx, dir, name, *to, stdout)
	}
	rep, err := dir.Move(ctx, name, *to, tenancy.MoveOptions{SourceConnInfo: *source})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// serverRoleCheck judges a TENANT_SERVERS server's request role as
// checkRoles judges home's: outside dev mode a finding that could cross the
// tenant boundary refuses the server's tenants (at start-up, serve itself),
// and the rest are logged.
func serverRoleCheck(cfg config, log *slog.Logger) tenancy.ServerRoleCheck {
	return func(server string, findings []tenancy.Finding) error {
		var refuse []string
		for _, f := range findings {
			if f.Crosses && !cfg.dev {
				refuse = append(refuse, f.Message)
				continue
			}
			log.Warn(f.Message, "server", server)
		}
		if len(refuse) > 0 {
			log.Error("refusing the tenants of a server whose request role could cross the tenant boundary", "server", server, "findings", refuse)
			return fmt.Errorf("the request role could cross the tenant boundary (TENANTRY_ENV=dev only warns):\n  - %s", strings.Join(refuse, "\n  - "))
		}
		return nil
	}
}

// serverCheckWait bounds the start-up check of each server: a server that
// does not answer within it is checked when its pool first opens instead,
// so a silent server delays start-up by this, not by a connect timeout per
// attempt.
const serverCheckWait = 10 * time.Second

// checkServerRoles runs the request-role check on every TENANT_SERVERS
// server at start-up (the directory was made with serverRoleCheck). A
// refused role stops serve; a server that does not answer is logged and
// checked on first use, its tenants refused then if the check fails.
func checkServerRoles(ctx context.Context, dir *tenancy.Directory, log *slog.Logger) error {
	for _, n := range dir.Servers() {
		if n == tenancy.HomeServer {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, serverCheckWait)
		_, err := dir.CheckServerRole(cctx, n)
		cancel()
		switch {
		case errors.Is(err, tenancy.ErrRoleRefused):
			return fmt.Errorf("refusing to serve: %w", err)
		case err != nil:
			log.Warn("server did not answer at start-up; its request role is checked when its pool first opens", "server", n, "error", err)
		}
	}
	return nil
}
