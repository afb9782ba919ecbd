package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tenantry/tenantry/internal/benchkit"
)

// server is one HTTP server under test, a child process of the benchmark:
// Name is "a", "b", ... ("a-acct" for an accounting instance).
type server struct {
	*benchkit.Server
	metricsURL   string
	metricsToken string
}

// startServer starts a server under test (see benchkit.StartServer), its
// metrics at /metrics on the same address unless the caller moves them.
func startServer(ctx context.Context, dir, name, bin string, args, env []string, addr string) (*server, error) {
	s, err := benchkit.StartServer(ctx, dir, name, bin, args, env, addr)
	if err != nil {
		return nil, err
	}
	return &server{Server: s, metricsURL: s.Base + "/metrics"}, nil
}

// poolCloseSeries are database/sql's counts of connections its pool closed
// by itself (prometheus' DBStatsCollector, which tenantry and baselines (b)
// and (d) export): under steady load each such close is followed by a new
// PostgreSQL session, a fork and a cold catalog cache.
var poolCloseSeries = []string{"go_sql_max_idle_closed_total", "go_sql_max_idle_time_closed_total", "go_sql_max_lifetime_closed_total"}

// scrapeResult holds the counters read from a server's metrics.
type scrapeResult struct {
	mallocs    float64 // go_memstats_mallocs_total: heap objects allocated since start
	poolCloses float64 // sum of poolCloseSeries; NaN when the server exports none
}

// scrape reads the server's metrics.
func (s *server) scrape(ctx context.Context) (scrapeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.metricsURL, nil)
	if err != nil {
		return scrapeResult{}, err
	}
	if s.metricsToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.metricsToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return scrapeResult{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return scrapeResult{}, fmt.Errorf("%s: status %d (set -metrics-token or -metrics-addr?)", s.metricsURL, resp.StatusCode)
	}
	m, err := parseMetrics(bufio.NewScanner(resp.Body))
	if err != nil {
		return scrapeResult{}, err
	}
	r := scrapeResult{poolCloses: math.NaN()}
	var ok bool
	if r.mallocs, ok = m["go_memstats_mallocs_total"]; !ok {
		return scrapeResult{}, errors.New("go_memstats_mallocs_total not found in " + s.metricsURL)
	}
	for _, name := range poolCloseSeries {
		if v, ok := m[name]; ok {
			if math.IsNaN(r.poolCloses) {
				r.poolCloses = 0
			}
			r.poolCloses += v
		}
	}
	return r, nil
}

// parseMetrics reads Prometheus text format into the sum of each metric's
// samples over their labels.
func parseMetrics(sc *bufio.Scanner) (map[string]float64, error) {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	m := map[string]float64{}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '{'); i >= 0 && i < len(name) {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("malformed sample %q", line)
			}
			name, rest = line[:i], line[j+1:]
		}
		f := strings.Fields(rest) // value, then an optional timestamp
		if len(f) == 0 {
			return nil, fmt.Errorf("sample without a value %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("sample %q: %w", line, err)
		}
		m[name] += v
	}
	return m, sc.Err()
}
