package api

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// metrics are the server's Prometheus series, on a registry of its own so
// that several servers (tests) can live in one process. No series carries a
// tenant label unless TenantLabelCap turns one on: tenants are unbounded,
// and every label value is a new series in the scraper.
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	inFlight   prometheus.Gauge
	scope      *prometheus.HistogramVec
	onboard    *prometheus.HistogramVec
	byTenant   *prometheus.CounterVec // nil unless enabled
	tenantCap  int
	tenantsMu  sync.Mutex
	tenantSeen map[string]bool
}

// otherTenants is the label value for tenants past the cap.
const otherTenants = "_other"

// fleetCollector reports, at scrape time, how many tenants sit at each
// schema version and how many are behind the binary's latest: the standing
// result of migrations, whichever process ran them. One indexed query of
// the registry per scrape.
type fleetCollector struct {
	db     *gorm.DB
	latest int
	byVer  *prometheus.Desc
	behind *prometheus.Desc
}

func (f *fleetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- f.byVer; ch <- f.behind }

func (f *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var rows []struct {
		SchemaVersion int
		N             int
	}
	err := f.db.WithContext(ctx).Raw("SELECT schema_version, count(*) AS n FROM tenantry.tenants GROUP BY 1").Scan(&rows).Error
	if err != nil {
		ch <- prometheus.NewInvalidMetric(f.byVer, err)
		return
	}
	behind := 0
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(f.byVer, prometheus.GaugeValue, float64(r.N), strconv.Itoa(r.SchemaVersion))
		if r.SchemaVersion < f.latest {
			behind += r.N
		}
	}
	ch <- prometheus.MustNewConstMetric(f.behind, prometheus.GaugeValue, float64(behind))
}

func newMetrics(db *gorm.DB, tenantCap, latest int) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantry_http_requests_total", Help: "HTTP requests by method, route template and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tenantry_http_request_duration_seconds", Help: "HTTP request latency by method, route template and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tenantry_http_requests_in_flight", Help: "HTTP requests being served.",
		}),
		scope: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tenantry_tenant_scope_duration_seconds", Help: "Time inside tenancy.WithTx (begin to commit or rollback) by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"outcome"}),
		onboard: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tenantry_onboarding_duration_seconds", Help: "Tenant onboarding through the API by outcome; its _count is the onboarding count.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"outcome"}),
		tenantCap:  tenantCap,
		tenantSeen: map[string]bool{},
	}
	m.reg.MustRegister(m.requests, m.latency, m.inFlight, m.scope, m.onboard,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if db != nil {
		if sqlDB, err := db.DB(); err == nil {
			m.reg.MustRegister(collectors.NewDBStatsCollector(sqlDB, "tenantry"))
		}
		m.reg.MustRegister(&fleetCollector{db: db, latest: latest,
			byVer:  prometheus.NewDesc("tenantry_tenants", "Tenants by schema version, as migrations recorded them.", []string{"schema_version"}, nil),
			behind: prometheus.NewDesc("tenantry_tenants_behind", "Tenants whose schema version is below this binary's latest.", nil, nil),
		})
	}
	if tenantCap > 0 {
		m.byTenant = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantry_tenant_requests_total",
			Help: "Tenant requests by tenant and status; tenants past the configured cap count as " + otherTenants + ".",
		}, []string{"tenant", "status"})
		m.reg.MustRegister(m.byTenant)
	}
	return m
}

// tenantLabel bounds the tenant label to the first tenantCap tenants seen.
func (m *metrics) tenantLabel(t string) string {
	m.tenantsMu.Lock()
	defer m.tenantsMu.Unlock()
	if m.tenantSeen[t] {
		return t
	}
	if len(m.tenantSeen) >= m.tenantCap {
		return otherTenants
	}
	m.tenantSeen[t] = true
	return t
}

// instrument records every request under its route template, never its raw
// path, so ids in URLs cannot explode the series count.
func (s *Server) instrument(c *gin.Context) {
	start := time.Now()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := strconv.Itoa(c.Writer.Status())
	method := methodLabel(c.Request.Method)
	s.metrics.requests.WithLabelValues(method, route, status).Inc()
	s.metrics.latency.WithLabelValues(method, route, status).Observe(time.Since(start).Seconds())
	// Only a tenant the registry resolved may take a label slot: names
	// from tokens of tenants that do not exist must not use up the cap.
	if t, ok := c.Get(tenantRowKey); ok && s.metrics.byTenant != nil {
		s.metrics.byTenant.WithLabelValues(s.metrics.tenantLabel(t.(models.Tenant).Name), status).Inc()
	}
}

// methodLabel bounds the method label: net/http accepts any token as a
// method, and each would otherwise become new series for good.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

func outcome(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

func (s *Server) handleMetrics() gin.HandlerFunc {
	h := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	return gin.WrapH(h)
}
