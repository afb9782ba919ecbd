package api

import (
	"database/sql"

	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector exports the tenant pool's database/sql figures under the
// go_sql_* names Go services conventionally use, so dashboards and the
// request-path benchmark read them unchanged. It asks tenancy for the
// figures (stats) rather than holding the pool itself.
type poolCollector struct {
	stats  func() (sql.DBStats, error)
	series []poolSeries
}

type poolSeries struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(sql.DBStats) float64
}

func newPoolCollector(dbName string, stats func() (sql.DBStats, error)) *poolCollector {
	labels := prometheus.Labels{"db_name": dbName}
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	s := func(name, help string, kind prometheus.ValueType, v func(sql.DBStats) float64) poolSeries {
		return poolSeries{desc: prometheus.NewDesc("go_sql_"+name, help, nil, labels), kind: kind, value: v}
	}
	return &poolCollector{stats: stats, series: []poolSeries{
		s("max_open_connections", "Maximum number of open connections to the database.", gauge,
			func(st sql.DBStats) float64 { return float64(st.MaxOpenConnections) }),
		s("open_connections", "The number of established connections both in use and idle.", gauge,
			func(st sql.DBStats) float64 { return float64(st.OpenConnections) }),
		s("in_use_connections", "The number of connections currently in use.", gauge,
			func(st sql.DBStats) float64 { return float64(st.InUse) }),
		s("idle_connections", "The number of idle connections.", gauge,
			func(st sql.DBStats) float64 { return float64(st.Idle) }),
		s("wait_count_total", "The total number of connections waited for.", counter,
			func(st sql.DBStats) float64 { return float64(st.WaitCount) }),
		s("wait_duration_seconds_total", "The total time blocked waiting for a new connection.", counter,
			func(st sql.DBStats) float64 { return st.WaitDuration.Seconds() }),
		s("max_idle_closed_total", "The total number of connections closed due to SetMaxIdleConns.", counter,
			func(st sql.DBStats) float64 { return float64(st.MaxIdleClosed) }),
		s("max_idle_time_closed_total", "The total number of connections closed due to SetConnMaxIdleTime.", counter,
			func(st sql.DBStats) float64 { return float64(st.MaxIdleTimeClosed) }),
		s("max_lifetime_closed_total", "The total number of connections closed due to SetConnMaxLifetime.", counter,
			func(st sql.DBStats) float64 { return float64(st.MaxLifetimeClosed) }),
	}}
}

func (p *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range p.series {
		ch <- s.desc
	}
}

func (p *poolCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := p.stats()
	if err != nil {
		return
	}
	for _, s := range p.series {
		ch <- prometheus.MustNewConstMetric(s.desc, s.kind, s.value(st))
	}
}
