// Package fleet migrates and checks every tenant schema of a deployment:
// it selects the tenants a run must visit, migrates them concurrently, each
// in its own transaction that the tenancy Directory opens, and reports the
// whole fleet; and it compares every schema's version and shape with the
// Directory's plan.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// Options control a run. The plan is always the Directory's: the one it
// serves and onboards with.
type Options struct {
	// To is the version to reach, 1..latest; 0 means the plan's latest.
	// Below a schema's version, steps are undone with their Down SQL.
	To int
	// Tenants limits the run to these names; empty means every tenant
	// whose recorded version differs from the target.
	Tenants []string
	// Concurrency is how many tenants migrate at once (at least 1).
	Concurrency int
	// DryRun reports what would run and changes nothing.
	DryRun bool
	// Progress, if set, is called after each visited tenant, from one
	// goroutine at a time.
	Progress func(Progress)
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

// Progress is reported after each visited tenant.
type Progress struct {
	Done, Failed, Total int
	Elapsed             time.Duration
}

// Summary is a run's account of the whole fleet: every tenant in the
// registry is counted once, as current, migrated, failed or skipped.
type Summary struct {
	Target int  `json:"target"`
	DryRun bool `json:"dry_run"`
	// Tenants is the number of tenants in the registry.
	Tenants int `json:"tenants"`
	// Current were at the target already: not selected, or visited with
	// nothing to do.
	Current int `json:"current"`
	// Migrated reached the target (with DryRun: would run steps).
	Migrated int `json:"migrated"`
	// Failed were rolled back to their old version, or never started
	// because the run was cancelled.
	Failed int `json:"failed"`
	// Skipped are off the target but not named in Options.Tenants.
	Skipped int           `json:"skipped"`
	Elapsed time.Duration `json:"-"`
	Seconds float64       `json:"seconds"`
	// Results has one entry per visited tenant, by name.
	Results []Result `json:"results"`
}

// ErrNotStarted marks tenants a cancelled run never reached.
var ErrNotStarted = errors.New("not started: the run was cancelled")

// errDryRun rolls a dry run's transaction back.
var errDryRun = errors.New("dry run")

// Migrate brings the tenants' schemas to the target version, at most
// Concurrency at once, each in its own transaction under its schema's
// lock (Directory.MigrateSchema): a failing tenant is rolled back to its
// old version and reported, and the others go on. Without Tenants it
// visits only the tenants whose recorded version differs from the target,
// so a run with nothing to do touches no tenant schema. A cancelled run
// stops starting tenants; running it again resumes, since finished tenants
// have nothing pending. The error is for a run that could not start (bad
// options, an unknown tenant, an unreadable registry); tenants that failed
// are counted in the summary.
func Migrate(ctx context.Context, dir *tenancy.Directory, o Options) (Summary, error) {
	plan := dir.Plan()
	to := o.To
	if to == 0 {
		to = plan.Latest()
	}
	if to < 1 || to > plan.Latest() {
		return Summary{}, fmt.Errorf("migrate to version %d: want 1..%d: %w", o.To, plan.Latest(), models.ErrInvalid)
	}
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	start := time.Now()
	all, err := dir.List(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("list tenants: %w", err)
	}
	targets, err := selectTargets(all, o.Tenants, to)
	if err != nil {
		return Summary{}, err
	}
	s := Summary{Target: to, DryRun: o.DryRun, Tenants: len(all)}
	// Tenants the run does not visit are current when the registry says
	// they are at the target; the others were left out by Tenants.
	visited := make(map[string]bool, len(targets))
	for _, t := range targets {
		visited[t.Name] = true
	}
	for _, t := range all {
		switch {
		case visited[t.Name]:
		case t.SchemaVersion == to:
			s.Current++
		default:
			s.Skipped++
		}
	}
	s.Results = run(ctx, dir, targets, to, o)
	for _, r := range s.Results {
		switch {
		case r.Err != nil:
			s.Failed++
		case len(r.Steps) > 0:
			s.Migrated++
		default:
			s.Current++
		}
	}
	s.Elapsed = time.Since(start)
	s.Seconds = s.Elapsed.Seconds()
	return s, nil
}

// selectTargets picks the tenants a run visits, by name: those named, or
// else those whose recorded version is not the target.
func selectTargets(all []models.Tenant, names []string, to int) ([]models.Tenant, error) {
	var out []models.Tenant
	if len(names) == 0 {
		for _, t := range all {
			if t.SchemaVersion != to {
				out = append(out, t)
			}
		}
		return out, nil
	}
	byName := make(map[string]models.Tenant, len(all))
	for _, t := range all {
		byName[t.Name] = t
	}
	seen := map[string]bool{}
	for _, n := range names {
		t, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("tenant %q: %w", n, models.ErrNotFound)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, t)
		}
	}
	return out, nil
}

// run migrates targets and returns their results in the targets' order.
func run(ctx context.Context, dir *tenancy.Directory, targets []models.Tenant, to int, o Options) []Result {
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
				// may still commit after Migrate returned.
				results[i] = one(context.WithoutCancel(ctx), dir, targets[i], to, o.DryRun)
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
		t := targets[i]
		results[i] = Result{Tenant: t.Name, Schema: t.SchemaName, From: t.SchemaVersion, To: t.SchemaVersion,
			Err: ErrNotStarted, Error: ErrNotStarted.Error()}
	}
	return results
}

func one(ctx context.Context, dir *tenancy.Directory, t models.Tenant, to int, dryRun bool) Result {
	r := Result{Tenant: t.Name, Schema: t.SchemaName, From: t.SchemaVersion, To: t.SchemaVersion}
	plan := dir.Plan()
	start := time.Now()
	err := dir.MigrateSchema(ctx, t, func(tx *gorm.DB) (int, error) {
		if dryRun {
			v, err := migrations.Version(tx, plan)
			if err != nil {
				return 0, err
			}
			r.From, r.To = v, v
			for _, s := range plan.Pending(v, to) {
				if to < v && strings.TrimSpace(s.Down) == "" {
					return 0, fmt.Errorf("step %d (%s): %w", s.Version, s.Name, migrations.ErrNoDown)
				}
				r.Steps = append(r.Steps, s.Version)
			}
			return 0, errDryRun
		}
		from, now, err := migrations.MigrateTo(tx, plan, to)
		if from > 0 { // 0 is also what a ledger that could not be read gives
			r.From, r.To = from, from
		}
		if err != nil {
			return 0, err
		}
		for _, s := range plan.Pending(from, now) {
			r.Steps = append(r.Steps, s.Version)
		}
		r.To = now
		return now, nil
	})
	r.Duration = time.Since(start)
	if err != nil && !errors.Is(err, errDryRun) {
		r.Err, r.Error, r.Steps = err, err.Error(), nil
		r.To = r.From
	}
	return r
}
