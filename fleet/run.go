package migrations

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// Target is one tenant schema to migrate.
type Target struct {
	Tenant string
	Schema string
	// Version is the registry's record, reported as the tenant's version
	// when the run fails before reading its ledger.
	Version int
	// Record, when set, records the new version in the registry after the
	// schema's transaction committed, instead of inside it: the schema
	// lives on another server than the registry. If it fails, the registry
	// lags the ledger (migrate status says so) until the next run.
	Record func(ctx context.Context, version int) error
}

// Result is the outcome of migrating one tenant.
type Result struct {
	Tenant string `json:"tenant"`
	Schema string `json:"schema"`
	// From and To are the schema's versions before and after; a failed
	// tenant keeps From.
	From     int           `json:"from"`
	To       int           `json:"to"`
	Steps    []int         `json:"steps,omitempty"` // applied, or that would be with DryRun
	Err      error         `json:"-"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Progress is reported after each tenant.
type Progress struct {
	Done, Failed, Total int
	Elapsed             time.Duration
}

// Options control a run.
type Options struct {
	Plan Plan
	// To is the version to reach; 0 means the plan's latest. Below a
	// schema's version, steps are undone with their Down SQL.
	To int
	// Concurrency is how many tenants migrate at once (at least 1).
	Concurrency int
	// DryRun reports what would run and changes nothing.
	DryRun bool
	// Progress, if set, is called after each tenant, from one goroutine
	// at a time.
	Progress func(Progress)
}

// Scope runs fn in a transaction pinned to schema, holding that schema's
// migration lock. The tenancy package provides it, so this package needs no
// knowledge of how pinning is done.
type Scope func(ctx context.Context, schema string, fn func(tx *gorm.DB) error) error

// errDryRun rolls a dry run's transaction back.
var errDryRun = errors.New("dry run")

// ErrNotStarted marks tenants a cancelled run never reached.
var ErrNotStarted = errors.New("not started: the run was cancelled")

// Run migrates every target, at most Concurrency at once, each in its own
// transaction: a failing tenant is rolled back to its old version and
// reported, and the others go on. Each tenant's registry row learns its new
// version in the same transaction. A cancelled run stops starting tenants;
// running it again resumes, since finished tenants have nothing pending.
// Results keep the targets' order.
func Run(ctx context.Context, targets []Target, scope Scope, o Options) []Result {
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	to := o.To
	if to <= 0 || to > o.Plan.Latest() {
		to = o.Plan.Latest()
	}
	results := make([]Result, len(targets))
	jobs := make(chan int)
	var done, failed atomic.Int64
	var progressMu sync.Mutex
	start := time.Now()
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				// A started tenant finishes (its transaction is bounded by
				// the scope's statement and lock timeouts): cancelling it
				// mid-COMMIT would report a failure for a tenant the server
				// may still commit after Run returned.
				results[i] = one(context.WithoutCancel(ctx), targets[i], scope, o.Plan, to, o.DryRun)
				if results[i].Err != nil {
					failed.Add(1)
				}
				n := done.Add(1)
				if o.Progress != nil {
					progressMu.Lock()
					o.Progress(Progress{Done: int(n), Failed: int(failed.Load()), Total: len(targets), Elapsed: time.Since(start)})
					progressMu.Unlock()
				}
			}
		}()
	}
	next := 0
feed:
	for ; next < len(targets); next++ {
		select {
		case jobs <- next:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	for i := next; i < len(targets); i++ {
		results[i] = Result{Tenant: targets[i].Tenant, Schema: targets[i].Schema, Err: ErrNotStarted, Error: ErrNotStarted.Error()}
	}
	return results
}

func one(ctx context.Context, t Target, scope Scope, p Plan, to int, dryRun bool) Result {
	r := Result{Tenant: t.Tenant, Schema: t.Schema, From: t.Version, To: t.Version}
	start := time.Now()
	err := scope(ctx, t.Schema, func(tx *gorm.DB) error {
		if dryRun {
			v, err := Version(tx, p)
			if err != nil {
				return err
			}
			r.From, r.To = v, v
			for _, s := range p.Pending(v, to) {
				if to < v && strings.TrimSpace(s.Down) == "" {
					return fmt.Errorf("step %d (%s): %w", s.Version, s.Name, ErrNoDown)
				}
				r.Steps = append(r.Steps, s.Version)
			}
			return errDryRun
		}
		from, now, err := Upgrade(tx, p, to)
		if from > 0 {
			r.From, r.To = from, from
		}
		if err != nil {
			return err
		}
		for _, s := range p.Pending(from, now) {
			r.Steps = append(r.Steps, s.Version)
		}
		if t.Record == nil {
			if err := tx.Exec("UPDATE "+TenantsTable+" SET schema_version = $1 WHERE schema_name = $2", now, t.Schema).Error; err != nil {
				return fmt.Errorf("record version: %w", err)
			}
		}
		r.To = now
		return nil
	})
	if err == nil && !dryRun && t.Record != nil {
		if rerr := t.Record(ctx, r.To); rerr != nil {
			err = fmt.Errorf("record version: %w", rerr)
		}
	}
	r.Duration = time.Since(start)
	if err != nil && !errors.Is(err, errDryRun) {
		r.Err, r.Error, r.Steps = err, err.Error(), nil
		r.To = r.From
	}
	return r
}
