package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
)

// tenantCommand is one subcommand of `tenantry tenants`.
type tenantCommand struct {
	name string
	// args is the synopsis of its arguments; names is how many positional
	// arguments it takes, checked before the database is opened (-1: run
	// checks its own arguments, as one with flags would).
	args  string
	names int
	// readOnly commands open the database without applying the shared
	// migrations or readying roles.
	readOnly bool
	run      func(ctx context.Context, inv invocation, dir *tenancy.Directory, args []string) error
}

// tenantCommands lists the subcommands of `tenantry tenants`; a new one is
// one entry here.
var tenantCommands = []tenantCommand{
	{name: "create", args: "NAME", names: 1, run: printTenant(func(ctx context.Context, dir *tenancy.Directory, name string) (models.Tenant, error) {
		return dir.Onboard(ctx, name)
	})},
	{name: "list", readOnly: true, run: listTenants},
	{name: "delete", args: "NAME", names: 1, run: func(ctx context.Context, inv invocation, dir *tenancy.Directory, args []string) error {
		if err := dir.Offboard(ctx, args[0]); err != nil {
			return err
		}
		fmt.Fprintf(inv.stdout, "deleted %s\n", args[0])
		return nil
	}},
	{name: "suspend", args: "NAME", names: 1, run: setStatus(models.StatusSuspended)},
	{name: "resume", args: "NAME", names: 1, run: setStatus(models.StatusActive)},
	{name: "read-only", args: "NAME", names: 1, run: setStatus(models.StatusReadOnly)},
	{name: "move", args: "NAME --to SERVER|NODE", names: -1, run: func(ctx context.Context, inv invocation, dir *tenancy.Directory, args []string) error {
		return tenantsMove(ctx, dir, args, inv.stdout)
	}},
}

// tenantsSynopsis is the usage of `tenantry tenants`, from the table.
func tenantsSynopsis() string {
	subs := make([]string, len(tenantCommands))
	for i, c := range tenantCommands {
		subs[i] = strings.TrimSpace(c.name + " " + c.args)
	}
	return strings.Join(subs, " | ")
}

// tenants runs one subcommand of `tenantry tenants` on a directory that
// never caches (every command reads the registry afresh).
func tenants(ctx context.Context, inv invocation, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("tenants needs a subcommand: %w", errUsage)
	}
	name, args := args[0], args[1:]
	for _, c := range tenantCommands {
		if c.name != name {
			continue
		}
		if c.names >= 0 && len(args) != c.names {
			return fmt.Errorf("tenants %s takes %d argument(s) (%s), got %d: %w", name, c.names, c.args, len(args), errUsage)
		}
		openFn := openDB
		if c.readOnly {
			openFn = openReadOnly
		}
		h, err := openFn(ctx, inv.cfg, serveAdminPool)
		if err != nil {
			return err
		}
		defer h.close()
		dir := h.directory(tenancy.WithTTL(0))
		defer dir.Close()
		return c.run(ctx, inv, dir, args)
	}
	return fmt.Errorf("unknown tenants command %q: %w", name, errUsage)
}

func listTenants(ctx context.Context, inv invocation, dir *tenancy.Directory, _ []string) error {
	ts, err := dir.List(ctx)
	if err != nil {
		return err
	}
	for _, t := range ts {
		fmt.Fprintf(inv.stdout, "%-48s %-52s %-9s %s\n", t.Name, t.SchemaName, t.Status, t.CreatedAt.Format(time.RFC3339))
	}
	return nil
}

func setStatus(s models.Status) func(context.Context, invocation, *tenancy.Directory, []string) error {
	return printTenant(func(ctx context.Context, dir *tenancy.Directory, name string) (models.Tenant, error) {
		return dir.SetStatus(ctx, name, s)
	})
}

// printTenant runs fn on the one NAME argument and prints the tenant it
// returns.
func printTenant(fn func(ctx context.Context, dir *tenancy.Directory, name string) (models.Tenant, error)) func(context.Context, invocation, *tenancy.Directory, []string) error {
	return func(ctx context.Context, inv invocation, dir *tenancy.Directory, args []string) error {
		t, err := fn(ctx, dir, args[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(inv.stdout, "%s\t%s\t%s\n", t.Name, t.SchemaName, t.Status)
		return nil
	}
}
