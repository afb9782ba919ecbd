package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/tenantry/tenantry/tenancy"
)

// logCluster says at start-up which kind of database serve runs on: plain
// PostgreSQL, or a Citus coordinator whose tenant schemas are distributed.
func logCluster(ctx context.Context, dir *tenancy.Directory, log *slog.Logger) error {
	c, err := dir.Cluster(ctx)
	if err != nil {
		return err
	}
	log.Info("database mode", "mode", c.String(), "citus", c.Citus, "workers", c.Workers)
	return nil
}

// moveToNode is `tenants move NAME --to NODE` on a Citus cluster: it moves
// the tenant's schema to another worker, online (tenancy.MoveToNode). NODE is
// a pg_dist_node id or host:port.
func moveToNode(ctx context.Context, dir *tenancy.Directory, name, node string, stdout io.Writer) error {
	n, err := dir.MoveToNode(ctx, name, node)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\ton %s\n", name, n)
	return nil
}
