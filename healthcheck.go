package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// healthcheck probes the local /healthz; the container image has no shell
// or curl, so Docker's HEALTHCHECK runs this.
func healthcheck(ctx context.Context, cfg config) error {
	_, port, err := net.SplitHostPort(cfg.addr)
	if err != nil {
		return fmt.Errorf("ADDR %q: %w", cfg.addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+port+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %d", resp.StatusCode)
	}
	return nil
}
