// Command tenantry serves many tenants from one deployment, each in its own
// PostgreSQL schema. Package main is the only place that reads the
// environment, calls os.Exit or wires concrete types; each command lives in
// its own file, and the commands table below is the one list that run
// dispatches on and that usage prints (`tenantry help`).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tenantry:", err)
		if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// errUsage marks a command line the binary does not accept; run then
// prints the usage on stderr and main exits with status 2.
var errUsage = errors.New("bad usage (tenantry help lists the commands)")

// invocation is what every command gets from run.
type invocation struct {
	cfg            config
	getenv         func(string) string
	stdout, stderr io.Writer
}

// command is one subcommand of the binary.
type command struct {
	name string
	// args is the synopsis of its arguments, summary what it does; usage
	// prints both.
	args, summary string
	run           func(ctx context.Context, inv invocation, args []string) error
}

// commands lists every subcommand in the order usage shows them. A new
// subcommand is one entry here; its code goes in a file of its own.
var commands = []command{
	{name: "serve", summary: "run the HTTP API (the default command)",
		run: func(ctx context.Context, inv invocation, args []string) error {
			if err := noArgs("serve", args); err != nil {
				return err
			}
			return serve(ctx, inv.cfg, inv.stdout, nil)
		}},
	{name: "dev", summary: "local PostgreSQL under ./.data, demo tenants, tokens, then serve (make run)",
		run: func(ctx context.Context, inv invocation, args []string) error {
			if err := noArgs("dev", args); err != nil {
				return err
			}
			return dev(ctx, inv.cfg, inv.getenv, inv.stdout)
		}},
	{name: "migrate", args: "[--to N] [--tenants a,b] [--concurrency N] [--dry-run] [--json] | status [--concurrency N] [--json]",
		summary: "migrate the shared schema and every tenant schema, or report each schema's version and drift",
		run: func(ctx context.Context, inv invocation, args []string) error {
			return migrate(ctx, inv.cfg, args, inv.stdout, inv.stderr)
		}},
	{name: "tenants", args: tenantsSynopsis(), summary: "onboard, list, offboard, move or change the status of tenants",
		run: tenants},
	{name: "token", args: "--tenant NAME [--no-lookup] | --admin [--ttl 1h]", summary: "mint a development token",
		run: func(ctx context.Context, inv invocation, args []string) error {
			return token(ctx, inv.cfg, args, inv.stdout, inv.stderr)
		}},
	{name: "healthcheck", summary: "probe /healthz on ADDR (the container's HEALTHCHECK; the image has no shell)",
		run: func(ctx context.Context, inv invocation, args []string) error {
			if err := noArgs("healthcheck", args); err != nil {
				return err
			}
			return healthcheck(ctx, inv.cfg)
		}},
}

// run dispatches args[0] (serve when there are none) through commands.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	name := "serve"
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	switch name {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage())
		return nil
	}
	inv := invocation{cfg: loadConfig(getenv), getenv: getenv, stdout: stdout, stderr: stderr}
	err := fmt.Errorf("unknown command %q: %w", name, errUsage)
	for _, c := range commands {
		if c.name == name {
			err = c.run(ctx, inv, args)
			break
		}
	}
	if errors.Is(err, errUsage) {
		fmt.Fprint(stderr, usage())
	}
	return err
}

// usage lists the commands from the table.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: tenantry COMMAND [ARGUMENTS]\n\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  tenantry %s", c.name)
		if c.args != "" {
			b.WriteString(" " + c.args)
		}
		fmt.Fprintf(&b, "\n      %s\n", c.summary)
	}
	b.WriteString("\nConfiguration comes from the environment (README.md lists the variables).\n")
	return b.String()
}

func noArgs(name string, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments (got %q): %w", name, args, errUsage)
	}
	return nil
}
