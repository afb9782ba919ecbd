package migrations

import (
	"context"
	"sync"
	"time"

	"gorm.io/gorm"
)

// Target is one tenant schema to migrate.
type Target struct {
	Tenant string
	Schema string
}

// Result is the outcome of migrating one tenant.
type Result struct {
	Tenant   string        `json:"tenant"`
	Schema   string        `json:"schema"`
	Err      error         `json:"-"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Scope runs fn in a transaction pinned to schema. The tenancy package
// provides it, so this package needs no knowledge of how pinning is done.
type Scope func(ctx context.Context, schema string, fn func(tx *gorm.DB) error) error

// UpgradeTenants brings every target up to date with at most concurrency
// tenants at once, each in its own transaction. A failing tenant is
// reported and rolled back; the others go on. Results keep the targets'
// order.
func UpgradeTenants(ctx context.Context, targets []Target, scope Scope, concurrency int) []Result {
	if concurrency < 1 {
		concurrency = 1
	}
	results := make([]Result, len(targets))
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			start := time.Now()
			err := scope(ctx, t.Schema, BuildTenant)
			results[i] = Result{Tenant: t.Tenant, Schema: t.Schema, Err: err, Duration: time.Since(start)}
			if err != nil {
				results[i].Error = err.Error()
			}
		}()
	}
	wg.Wait()
	return results
}
