package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/tenantry/tenantry/tenancy"
	authtoken "github.com/tenantry/tenantry/token"
)

// token mints a development token. A tenant token carries the tenant's
// registry id, looked up in DATABASE_URL, so it dies with this incarnation
// of the tenant; --no-lookup skips the database and binds the token by its
// iat alone (it is refused if the tenant was created after it).
func token(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "tenant the token is for")
	admin := fs.Bool("admin", false, "issue a platform-admin token")
	ttl := fs.Duration("ttl", time.Hour, "lifetime (at most JWT_MAX_LIFETIME)")
	noLookup := fs.Bool("no-lookup", false, "do not look the tenant up; bind the token by iat only")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.authErr != nil {
		return cfg.authErr
	}
	if *tenant == "" && !*admin {
		return fmt.Errorf("token needs --tenant NAME or --admin: %w", errUsage)
	}
	if *ttl <= 0 {
		return fmt.Errorf("--ttl must be positive: %w", errUsage)
	}
	var tok string
	var err error
	if *tenant != "" && !*admin && !*noLookup {
		tok, err = tenantToken(ctx, cfg, *tenant, *ttl)
	} else {
		role := authtoken.RoleTenant
		if *admin {
			role = authtoken.RoleAdmin
		}
		tok, err = authtoken.IssueToken(cfg.auth, *tenant, role, *ttl)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// tenantToken looks tenant up and mints a token bound to its registry id.
func tenantToken(ctx context.Context, cfg config, tenant string, ttl time.Duration) (string, error) {
	h, err := openReadOnly(ctx, cfg, tenancy.DefaultPool)
	if err != nil {
		return "", fmt.Errorf("look up tenant %q (--no-lookup skips it): %w", tenant, err)
	}
	defer h.close()
	t, err := h.directory(tenancy.WithTTL(0)).Get(ctx, tenant)
	if err != nil {
		return "", fmt.Errorf("look up tenant %q: %w", tenant, err)
	}
	return authtoken.IssueTenantToken(cfg.auth, t, ttl)
}
