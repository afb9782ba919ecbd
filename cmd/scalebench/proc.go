package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantry/tenantry/internal/benchkit"
	"gorm.io/gorm"
)

// server is a `tenantry serve` child process.
type server = benchkit.Server

// memPoint is the private memory of one pool's backends.
type memPoint struct {
	Backends int     `json:"backends"`
	MaxMB    float64 `json:"max_mb"`
	MedianMB float64 `json:"median_mb"`
	SumMB    float64 `json:"sum_mb"`
}

// backendMemory reads RssAnon, the private resident memory (palloc'd
// catalog caches live there; shared buffers do not), of every backend
// whose application_name is app, from /proc/<pid>/status.
func backendMemory(ctx context.Context, conn *pgx.Conn, app string) (memPoint, error) {
	rows, err := conn.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1", app)
	if err != nil {
		return memPoint{}, err
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return memPoint{}, err
	}
	var mbs []float64
	for _, pid := range pids {
		kb, err := rssAnon(int(pid))
		if err != nil {
			continue // ended meanwhile (recycled)
		}
		mbs = append(mbs, float64(kb)/1024)
	}
	if len(mbs) == 0 {
		return memPoint{}, fmt.Errorf("%s: %w", app, errNoBackends)
	}
	slices.Sort(mbs)
	m := memPoint{Backends: len(mbs), MaxMB: mbs[len(mbs)-1], MedianMB: mbs[len(mbs)/2]}
	for _, v := range mbs {
		m.SumMB += v
	}
	return m, nil
}

func rssAnon(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("pid %d: no RssAnon", pid)
}

func closeDB(db *gorm.DB) {
	if s, err := db.DB(); err == nil {
		s.Close()
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
