package api

import (
	"context"
	"database/sql"

	"github.com/tenantry/tenantry/tenancy"
)

// Several servers (TENANT_SERVERS): each server other than home has a
// request pool of its own, exported like the home pool's under
// db_name="tenantry_<server>", and /readyz lists whether each answers.

// registerServerPools adds a pool collector per server other than home.
// A pool opens on its server's first tenant request; until then, and
// while the server is down before that, it has no figures and exports
// nothing.
func registerServerPools(m *metrics, dir *tenancy.Directory) {
	for _, n := range dir.Servers() {
		if n == tenancy.HomeServer {
			continue
		}
		m.reg.MustRegister(newPoolCollector("tenantry_"+n, func() (sql.DBStats, error) { return dir.ServerPoolStats(n) }))
	}
}

// serverStates says, for a deployment with several servers, which answer.
// Readiness itself follows the home server only: it holds the registry
// every request needs, while a server that is down makes only its own
// tenants unavailable (503 from their scopes), so taking the instance out
// of the load balancer for it would fail every other tenant too.
func serverStates(ctx context.Context, dir *tenancy.Directory) map[string]string {
	if len(dir.Servers()) < 2 {
		return nil
	}
	out := map[string]string{}
	for n, err := range dir.Ping(ctx) {
		out[n] = "up"
		if err != nil {
			out[n] = "down"
		}
	}
	return out
}
