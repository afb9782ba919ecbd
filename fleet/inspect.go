package fleet

import (
	"context"
	"fmt"
	"sync"

	"github.com/tenantry/tenantry/tenancy"
)

// SchemaReport is one tenant schema's migration state and drift.
type SchemaReport struct {
	Tenant string `json:"tenant"`
	Schema string `json:"schema"`
	// Version is what the schema's ledger says; Recorded what the
	// registry says.
	Version  int   `json:"version"`
	Recorded int   `json:"recorded"`
	Pending  []int `json:"pending,omitempty"`
	// Drift is set when the schema's tables differ from what its version
	// should look like, the registry records another version, or the
	// ledger cannot be trusted.
	Drift string `json:"drift,omitempty"`
}

// Inspect reads every tenant's ledger, at most concurrency at once, and
// compares each schema's shape with a reference schema built at the same
// version by replaying the plan's steps in a scratch schema that is rolled
// back. The shapes of all schemas come from one catalog query, so the cost
// grows linearly with the fleet. Reports are in the registry's order (by
// name).
func Inspect(ctx context.Context, dir *tenancy.Directory, concurrency int) ([]SchemaReport, error) {
	ts, err := dir.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	fps, unreadable, err := dir.Fingerprints(ctx, ts)
	if err != nil {
		return nil, err
	}
	out := make([]SchemaReport, len(ts))
	readErrs := make([]error, len(ts))
	forEach(ctx, len(ts), max(concurrency, 1), func(i int) {
		t := ts[i]
		out[i] = SchemaReport{Tenant: t.Name, Schema: t.SchemaName, Recorded: t.SchemaVersion}
		if readErrs[i] = unreadable[t.SchemaName]; readErrs[i] == nil {
			out[i].Version, readErrs[i] = dir.SchemaVersion(ctx, t)
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	plan := dir.Plan()
	refs := map[int]string{}
	for i := range out {
		r := &out[i]
		if readErrs[i] != nil {
			r.Version = 0
			r.Drift = "unreadable: " + readErrs[i].Error()
			continue
		}
		for _, s := range plan.Pending(r.Version, plan.Latest()) {
			r.Pending = append(r.Pending, s.Version)
		}
		ref, ok := refs[r.Version]
		if !ok {
			if ref, err = dir.ReferenceFingerprint(ctx, r.Version); err != nil {
				return nil, err
			}
			refs[r.Version] = ref
		}
		switch {
		case fps[r.Schema] != ref:
			r.Drift = fmt.Sprintf("tables differ from version %d", r.Version)
		case r.Recorded != r.Version:
			r.Drift = fmt.Sprintf("registry records version %d", r.Recorded)
		}
	}
	return out, nil
}

// forEach calls fn(0..n-1) from at most workers goroutines, and stops
// handing out indexes once ctx ends.
func forEach(ctx context.Context, n, workers int, fn func(i int)) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				fn(i)
			}
		}()
	}
feed:
	for i := range n {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
}
