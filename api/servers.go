package api

import (
	"context"
	"database/sql"
	"sync"
	"time"

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

// serverPingWait bounds the ping of each server other than home in
// /readyz. The probe must answer within kubelet's default one-second probe
// timeout, and the home ping takes its share of that second; a server that
// does not answer within a quarter of it is reported down, so a silent
// server adds at most this to a probe, however many servers there are.
const serverPingWait = 250 * time.Millisecond

// serverStates says, for a deployment with several servers, which answer.
// Readiness itself follows the home server only: it holds the registry
// every request needs, while a server that is down makes only its own
// tenants unavailable (503 from their scopes), so taking the instance out
// of the load balancer for it would fail every other tenant too. The
// servers are pinged at once, each other than home within serverPingWait.
func serverStates(ctx context.Context, dir *tenancy.Directory) map[string]string {
	names := dir.Servers()
	if len(names) < 2 {
		return nil
	}
	up := make([]bool, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx := ctx
			if n != tenancy.HomeServer {
				var cancel context.CancelFunc
				pctx, cancel = context.WithTimeout(ctx, serverPingWait)
				defer cancel()
			}
			up[i] = dir.PingServer(pctx, n) == nil
		}()
	}
	wg.Wait()
	out := make(map[string]string, len(names))
	for i, n := range names {
		out[n] = "down"
		if up[i] {
			out[n] = "up"
		}
	}
	return out
}
