package benchkit

import (
	"context"
	"sync"
	"sync/atomic"
)

// Parallel runs fn(0..n-1) on conc workers and returns the first error
// (or the context's, if it ended first); after an error no new index starts.
func Parallel(ctx context.Context, conc, n int, fn func(i int) error) error {
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}
