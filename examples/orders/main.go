// Command orders is a small multi-tenant service built only on tenantry's
// public packages: its own models (orders and their lines) in a schema per
// tenant, its own migration steps, tokens checked and tenants resolved by
// the Gin middleware, every query in its tenant's scope.
//
// Environment: DATABASE_URL, JWT_SECRET (at least 32 bytes), ADDR (default
// :8081).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tenantry/tenantry/ginmw"
	"github.com/tenantry/tenantry/tenancy"
	"github.com/tenantry/tenantry/token"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	db, err := tenancy.Open(ctx, getenv("DATABASE_URL"), tenancy.DefaultPool)
	if err != nil {
		return err
	}
	dir := tenancy.NewDirectory(db, tenancy.WithApp(app))
	if err := dir.Setup(ctx); err != nil {
		return err
	}
	verifier, err := token.NewVerifier(token.Config{Secret: []byte(getenv("JWT_SECRET"))})
	if err != nil {
		return err
	}
	mw, err := ginmw.New(ginmw.Config{Verifier: verifier, Directory: dir})
	if err != nil {
		return err
	}
	addr := getenv("ADDR")
	if addr == "" {
		addr = ":8081"
	}
	// Timeouts as any Internet-facing server needs them; the handlers'
	// own work is bounded by the scopes' statement timeouts.
	srv := &http.Server{Addr: addr, Handler: newRouter(dir, mw), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	errs := make(chan error, 1)
	go func() { errs <- srv.ListenAndServe() }()
	fmt.Println("orders listening on", addr)
	select {
	case err := <-errs:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
