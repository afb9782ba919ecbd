package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"
)

// Machine is where a run happened.
type Machine struct {
	CPU        string `json:"cpu"`
	CPUs       int    `json:"cpus"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	PostgreSQL string `json:"postgresql"`
	Commit     string `json:"commit"`
	Date       string `json:"date"`
}

// Round is one variant's figures in one round.
type Round struct {
	RPS            num      `json:"rps"`                       // closed loop, answered correctly per second
	ServerCPUus    num      `json:"server_cpu_us"`             // per request
	PgCPUus        num      `json:"pg_cpu_us"`                 // per request, whole cluster
	AllocsPerReq   num      `json:"allocs_per_req"`            // go_memstats_mallocs_total delta per request
	PoolCloses     num      `json:"pool_closes_per_1000"`      // closed loop: connections the server's pool closed itself
	OfferedRate    num      `json:"offered_rate"`              // open loop, requests per second
	OpenPoolCloses num      `json:"open_pool_closes_per_1000"` // the same in the open loop
	P50ms          num      `json:"p50_ms"`
	P99ms          num      `json:"p99_ms"`
	Requests       int64    `json:"requests"` // closed + open, measured
	Failed         int64    `json:"failed"`
	WrongTenant    int64    `json:"wrong_tenant"`
	Errors         []string `json:"errors,omitempty"`
}

// Account is what the counting proxy saw, per request.
type Account struct {
	Requests        int     `json:"requests"`
	RoundTrips      float64 `json:"round_trips"`
	Statements      float64 `json:"statements"`
	Parses          float64 `json:"parses"`
	SessionsPer1000 float64 `json:"new_sessions_per_1000"`
	Failed          int64   `json:"failed"`
	WrongTenant     int64   `json:"wrong_tenant"`
}

// Cell is one variant at one tenant count on one endpoint.
type Cell struct {
	Tenants  int      `json:"tenants"`
	Endpoint string   `json:"endpoint"`
	Variant  string   `json:"variant"`
	Rounds   []Round  `json:"rounds"`
	Account  *Account `json:"account,omitempty"`
	// Summaries over rounds: ratios to the same round's (b) and (c).
	RPSvsB         Summary `json:"rps_vs_b"`
	RPSvsC         Summary `json:"rps_vs_c"`
	P99vsB         Summary `json:"p99_vs_b"`
	RPS            Summary `json:"rps"`
	P50ms          Summary `json:"p50_ms"`
	P99ms          Summary `json:"p99_ms"`
	ServerCPUus    Summary `json:"server_cpu_us"`
	PgCPUus        Summary `json:"pg_cpu_us"`
	AllocsPerReq   Summary `json:"allocs_per_req"`
	PoolCloses     Summary `json:"pool_closes_per_1000"`
	OpenPoolCloses Summary `json:"open_pool_closes_per_1000"`
}

type report struct {
	Command   string            `json:"command"`
	Machine   Machine           `json:"machine"`
	Settings  map[string]any    `json:"settings"`
	Cells     []*Cell           `json:"cells"`
	Misplaced map[string]int64  `json:"misplaced_rows_by_variant"` // rows found in another tenant's schema, by the variant that wrote them
	AllocsNA  map[string]string `json:"allocs_unmeasured,omitempty"`
	index     map[string]*Cell
	o         options
}

func newReport(e *env, o options) *report {
	r := &report{
		Command: strings.Join(os.Args, " "),
		Machine: machine(context.Background(), e),
		Settings: map[string]any{
			"tenants": o.tenants, "items_per_tenant": o.items, "rounds": o.rounds,
			"duration": o.duration.String(), "warmup": o.warmup.String(), "concurrency": o.concurrency,
			"load_fraction": o.loadFraction, "baseline_pool": o.pool, "account_requests": o.account,
		},
		Misplaced: map[string]int64{},
		AllocsNA:  e.noAllocs,
		index:     map[string]*Cell{},
		o:         o,
	}
	for _, t := range o.tenants {
		for _, ep := range o.endpoints {
			for _, v := range variants {
				c := &Cell{Tenants: t, Endpoint: ep, Variant: v, Rounds: make([]Round, o.rounds)}
				for i := range c.Rounds {
					nan := num(math.NaN())
					c.Rounds[i] = Round{RPS: nan, ServerCPUus: nan, PgCPUus: nan, AllocsPerReq: nan, PoolCloses: nan,
						OfferedRate: nan, P50ms: nan, P99ms: nan, OpenPoolCloses: nan}
				}
				r.Cells = append(r.Cells, c)
				r.index[fmt.Sprint(t, ep, v)] = c
			}
		}
	}
	return r
}

func (r *report) cell(t int, ep, v string) *Cell { return r.index[fmt.Sprint(t, ep, v)] }

func (c *Cell) addClosed(round int, res closedResult) {
	x := &c.Rounds[round]
	x.RPS, x.ServerCPUus, x.PgCPUus, x.AllocsPerReq = num(res.rps), num(res.serverCPU), num(res.pgCPU), num(res.allocs)
	x.PoolCloses = num(res.closes)
	c.count(x, res.tally)
}

func (c *Cell) addOpen(round int, rate float64, t *tally, lat []time.Duration, closes float64) {
	x := &c.Rounds[round]
	x.OpenPoolCloses = num(closes)
	ms := durationsMs(lat)
	x.OfferedRate, x.P50ms, x.P99ms = num(rate), num(percentile(ms, 50)), num(percentile(ms, 99))
	c.count(x, t)
}

func (c *Cell) count(x *Round, t *tally) {
	x.Requests += t.done()
	x.Failed += t.failed.Load()
	x.WrongTenant += t.wrong.Load()
	for _, e := range t.firstErrs {
		if len(x.Errors) < 3 {
			x.Errors = append(x.Errors, e)
		}
	}
}

func (c *Cell) setAccount(d counts, n int, t *tally) {
	f := float64(n)
	c.Account = &Account{Requests: n, RoundTrips: float64(d.RoundTrips) / f, Statements: float64(d.Statements()) / f,
		Parses: float64(d.Parses) / f, SessionsPer1000: 1000 * float64(d.Conns) / f,
		Failed: t.failed.Load(), WrongTenant: t.wrong.Load()}
}

func series(c *Cell, f func(Round) num) []float64 {
	out := make([]float64, len(c.Rounds))
	for i, x := range c.Rounds {
		out[i] = float64(f(x))
	}
	return out
}

// finish computes every cell's summaries and per-round ratios.
func (r *report) finish() {
	rps := func(x Round) num { return x.RPS }
	p99 := func(x Round) num { return x.P99ms }
	for _, c := range r.Cells {
		b, cc := r.cell(c.Tenants, c.Endpoint, "b"), r.cell(c.Tenants, c.Endpoint, "c")
		c.RPSvsB = summarize(ratios(series(c, rps), series(b, rps)))
		c.RPSvsC = summarize(ratios(series(c, rps), series(cc, rps)))
		c.P99vsB = summarize(ratios(series(c, p99), series(b, p99)))
		c.RPS = summarize(series(c, rps))
		c.P50ms = summarize(series(c, func(x Round) num { return x.P50ms }))
		c.P99ms = summarize(series(c, p99))
		c.ServerCPUus = summarize(series(c, func(x Round) num { return x.ServerCPUus }))
		c.PgCPUus = summarize(series(c, func(x Round) num { return x.PgCPUus }))
		c.AllocsPerReq = summarize(series(c, func(x Round) num { return x.AllocsPerReq }))
		c.PoolCloses = summarize(series(c, func(x Round) num { return x.PoolCloses }))
		c.OpenPoolCloses = summarize(series(c, func(x Round) num { return x.OpenPoolCloses }))
	}
}

func fmtNum(x num, prec int) string {
	if math.IsNaN(float64(x)) {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, float64(x))
}

func fmtRange(s Summary, prec int) string {
	if s.N == 0 {
		return "–"
	}
	if s.N == 1 {
		return fmtNum(s.Median, prec)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtNum(s.Median, prec), fmtNum(s.Min, prec), fmtNum(s.Max, prec))
}

func (r *report) markdown() string {
	var b strings.Builder
	o := r.o
	m := r.Machine
	fmt.Fprintf(&b, "Command: `%s`\n\n", r.Command)
	fmt.Fprintf(&b, "Machine: %s, %d CPUs, Linux %s; %s; PostgreSQL %s (one durable cluster, fsync on, for every variant); tenantry %s; %s.\n\n",
		orDash(m.CPU), m.CPUs, orDash(m.Kernel), m.Go, orDash(m.PostgreSQL), orDash(m.Commit), m.Date)
	fmt.Fprintf(&b, "Settings: %d interleaved rounds (a b c d, a b c d, ...); closed loop at %d concurrent requests for %s after a %s warm-up; "+
		"open loop at %.0f %% of the round's slowest closed-loop throughput for %s; %d items per tenant; baselines' pool %d; accounting pass %d requests (at least the tenant count) per cell.\n\n",
		o.rounds, o.concurrency, o.duration, o.warmup, 100*o.loadFraction, o.duration, o.items, o.pool, o.account)
	b.WriteString("Ratios are medians over rounds of each round's ratio to the same round's baseline, with the range (min–max). " +
		"req/s: closed loop, correct answers only. p50/p99: open loop, from each request's scheduled send time. " +
		"CPU: server process and whole PostgreSQL cluster (postmaster, its reaped and live children), µs per request. " +
		"allocs: `go_memstats_mallocs_total` of the server per request. Round trips, statements (Execute messages plus statements in simple Query messages), " +
		"parses (Parse messages) and new PostgreSQL sessions come from a separate pass through a counting proxy, at the same concurrency; " +
		"round trips include those of the sessions a pool opened during the pass. " +
		"pool closes: connections the server's database/sql pool closed by itself (max idle, idle time, lifetime) per 1,000 requests, in the closed and the open loop; " +
		"under steady load each is followed by a new PostgreSQL session (– for pgxpool, which exports no such series).\n\n")
	for v, why := range r.AllocsNA {
		fmt.Fprintf(&b, "Allocations of %s not measured: %s\n\n", variantNames[v], why)
	}
	for _, t := range o.tenants {
		fmt.Fprintf(&b, "### %d tenant%s\n\n", t, map[bool]string{true: "", false: "s"}[t == 1])
		b.WriteString("| endpoint | variant | req/s | × (b) | × (c) | p50 ms | p99 ms | p99 × (b) | server µs/req | PostgreSQL µs/req | allocs/req | pool closes /1k req, closed / open | round trips/req | statements/req | parses/req | new sessions /1k req | failed | wrong tenant |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, ep := range o.endpoints {
			for _, v := range variants {
				c := r.cell(t, ep, v)
				var failed, wrong int64
				for _, x := range c.Rounds {
					failed += x.Failed
					wrong += x.WrongTenant
				}
				rt, st, pa, se := "–", "–", "–", "–"
				if a := c.Account; a != nil {
					rt, st, pa, se = fmt.Sprintf("%.2f", a.RoundTrips), fmt.Sprintf("%.2f", a.Statements), fmt.Sprintf("%.2f", a.Parses), fmt.Sprintf("%.1f", a.SessionsPer1000)
					failed += a.Failed
					wrong += a.WrongTenant
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s | %s | %d | %d |\n",
					endpointPaths[ep], variantNames[v], fmtNum(c.RPS.Median, 0), fmtRange(c.RPSvsB, 2), fmtRange(c.RPSvsC, 2),
					fmtNum(c.P50ms.Median, 2), fmtNum(c.P99ms.Median, 2), fmtRange(c.P99vsB, 2),
					fmtNum(c.ServerCPUus.Median, 0), fmtNum(c.PgCPUus.Median, 0), fmtNum(c.AllocsPerReq.Median, 0),
					fmtNum(c.PoolCloses.Median, 1), fmtNum(c.OpenPoolCloses.Median, 1),
					rt, st, pa, se, failed, wrong)
			}
		}
		b.WriteString("\nOpen-loop offered load, median over rounds:")
		for i, ep := range o.endpoints {
			rate := summarize(series(r.cell(t, ep, "a"), func(x Round) num { return x.OfferedRate }))
			fmt.Fprintf(&b, "%s %s %s req/s", map[bool]string{true: "", false: ";"}[i == 0], endpointPaths[ep], fmtNum(rate.Median, 0))
		}
		b.WriteString(".\n\n")
	}
	b.WriteString("Rows found after the run in another tenant's schema, by the variant that wrote them: ")
	if len(r.Misplaced) == 0 {
		b.WriteString("none.\n")
	} else {
		keys := make([]string, 0, len(r.Misplaced))
		for k := range r.Misplaced {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %d", k, r.Misplaced[k])
		}
		b.WriteString(".\n")
	}
	var errs []string
	for _, c := range r.Cells {
		for _, x := range c.Rounds {
			for _, e := range x.Errors {
				errs = append(errs, fmt.Sprintf("- %d tenants, %s, %s: %s", c.Tenants, endpointPaths[c.Endpoint], variantNames[c.Variant], e))
			}
		}
	}
	if len(errs) > 0 {
		b.WriteString("\nFirst failures seen:\n\n")
		for _, e := range errs[:min(len(errs), 20)] {
			b.WriteString(strings.ReplaceAll(e, "\n", " ") + "\n")
		}
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// The generated part of the -out file sits between these markers, so the
// prose around it (what the numbers mean, what stands in the way) survives
// a re-run.
const (
	beginMarker = "<!-- benchhttp:begin (generated by make bench-http; edits inside are overwritten) -->"
	endMarker   = "<!-- benchhttp:end -->"
)

// writeOut replaces the generated part of path, or writes a new file with
// only a title and the generated part.
func writeOut(path, generated string) error {
	old, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		old, err = []byte("# Performance\n\n"+beginMarker+"\n"+endMarker+"\n"), nil
	}
	if err != nil {
		return err
	}
	s, err := spliceGenerated(string(old), generated)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func spliceGenerated(doc, generated string) (string, error) {
	i := strings.Index(doc, beginMarker)
	j := strings.Index(doc, endMarker)
	if i < 0 || j < i {
		return "", errors.New("no benchhttp:begin / benchhttp:end markers, in that order")
	}
	return doc[:i+len(beginMarker)] + "\n" + generated + doc[j:], nil
}
