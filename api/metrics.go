package api

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tenantry/tenantry/ginmw"
	"github.com/tenantry/tenantry/problem"
	"github.com/tenantry/tenantry/tenancy"
)

// metrics are the server's Prometheus series, on a registry of its own so
// that several servers (tests) can live in one process. No series carries a
// tenant label unless TenantLabelCap turns one on: tenants are unbounded,
// and every label value is a new series in the scraper.
type metrics struct {
	reg *prometheus.Registry
	// private holds the series that name tenants; only a caller with the
	// metrics token, or on the internal metrics address, sees them.
	private    *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	inFlight   prometheus.Gauge
	scope      *prometheus.HistogramVec
	onboard    *prometheus.HistogramVec
	byTenant   *prometheus.CounterVec // nil unless enabled
	tenantCap  int
	tenantsMu  sync.Mutex
	tenantSeen map[string]bool
	// scopeOK and scopeErr are scope's two children, looked up once.
	scopeOK, scopeErr prometheus.Observer
	// series caches each (method, route, status)'s children of requests and
	// latency: a vector's lookup formats and hashes the labels on every
	// request. It holds no more entries than the vectors hold series, which
	// methodLabel and route templates bound.
	seriesMu sync.RWMutex
	series   map[seriesKey]requestSeries
}

type seriesKey struct {
	method, route string
	status        int
}

type requestSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// otherTenants is the label value for tenants past the cap.
const otherTenants = "_other"

// fleetCollector reports, at scrape time, how many tenants sit at each
// schema version and how many are behind the binary's latest: the standing
// result of migrations, whichever process ran them. One indexed query of
// the registry per scrape, on the monitor's own pool. When the query fails
// (the database is away) the scrape still succeeds: the fleet series are
// missing and tenantry_collector_up{collector="fleet"} says 0, so the
// outage shows on a dashboard instead of as a failed scrape.
type fleetCollector struct {
	mon    *tenancy.Monitor
	latest int
	byVer  *prometheus.Desc
	behind *prometheus.Desc
	up     *prometheus.Desc
}

// collectTimeout keeps a scrape well inside Prometheus' default 10 s
// scrape timeout even when the database does not answer.
const collectTimeout = time.Second

func (f *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- f.byVer
	ch <- f.behind
	ch <- f.up
}

func (f *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	byVersion, err := f.mon.Fleet(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(f.up, prometheus.GaugeValue, 0, "fleet")
		return
	}
	ch <- prometheus.MustNewConstMetric(f.up, prometheus.GaugeValue, 1, "fleet")
	behind := 0
	for v, n := range byVersion {
		ch <- prometheus.MustNewConstMetric(f.byVer, prometheus.GaugeValue, float64(n), strconv.Itoa(v))
		if v < f.latest {
			behind += n
		}
	}
	ch <- prometheus.MustNewConstMetric(f.behind, prometheus.GaugeValue, float64(behind))
}

func newMetrics(pool func() (sql.DBStats, error), mon *tenancy.Monitor, tenantCap, latest int) *metrics {
	m := &metrics{
		reg:     prometheus.NewRegistry(),
		private: prometheus.NewRegistry(),
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
		series:     map[seriesKey]requestSeries{},
	}
	m.scopeOK, m.scopeErr = m.scope.WithLabelValues("ok"), m.scope.WithLabelValues("error")
	m.reg.MustRegister(m.requests, m.latency, m.inFlight, m.scope, m.onboard,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if pool != nil {
		// Pool figures are read in process (sql.DB.Stats): no query.
		m.reg.MustRegister(newPoolCollector("tenantry", pool))
		m.reg.MustRegister(&fleetCollector{mon: mon, latest: latest,
			byVer:  prometheus.NewDesc("tenantry_tenants", "Tenants by schema version, as migrations recorded them.", []string{"schema_version"}, nil),
			behind: prometheus.NewDesc("tenantry_tenants_behind", "Tenants whose schema version is below this binary's latest.", nil, nil),
			up:     prometheus.NewDesc("tenantry_collector_up", "1 if the collector's last scrape read its source, 0 if it failed (the database did not answer).", []string{"collector"}, nil),
		})
	}
	if tenantCap > 0 {
		m.byTenant = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantry_tenant_requests_total",
			Help: "Tenant requests by tenant and status; tenants past the configured cap count as " + otherTenants + ".",
		}, []string{"tenant", "status"})
		m.private.MustRegister(m.byTenant)
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
	rs := s.metrics.requestSeries(methodLabel(c.Request.Method), route, c.Writer.Status())
	rs.requests.Inc()
	rs.latency.Observe(time.Since(start).Seconds())
	// Only a tenant the registry resolved may take a label slot: names
	// from tokens of tenants that do not exist must not use up the cap.
	if t, ok := ginmw.Tenant(c); ok && s.metrics.byTenant != nil {
		s.metrics.byTenant.WithLabelValues(s.metrics.tenantLabel(t.Name()), strconv.Itoa(c.Writer.Status())).Inc()
	}
}

// requestSeries returns the request counter and latency histogram of one
// method, route and status.
func (m *metrics) requestSeries(method, route string, status int) requestSeries {
	k := seriesKey{method, route, status}
	m.seriesMu.RLock()
	rs, ok := m.series[k]
	m.seriesMu.RUnlock()
	if ok {
		return rs
	}
	code := strconv.Itoa(status)
	rs = requestSeries{m.requests.WithLabelValues(method, route, code), m.latency.WithLabelValues(method, route, code)}
	m.seriesMu.Lock()
	m.series[k] = rs
	m.seriesMu.Unlock()
	return rs
}

// scopeObserver is the scope histogram's child for err's outcome.
func (m *metrics) scopeObserver(err error) prometheus.Observer {
	if err != nil {
		return m.scopeErr
	}
	return m.scopeOK
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

// metricsOpts serve what could be gathered even if a collector failed: a
// scrape that fails whole hides every other series exactly when they
// matter (a database outage).
func (s *Server) metricsOpts() promhttp.HandlerOpts {
	return promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, ErrorLog: slogPrinter{s.log}}
}

// MetricsHandler serves every series, tenant-labelled ones included, for
// an internal address (METRICS_ADDR); with a metrics token it asks for it.
func (s *Server) MetricsHandler() http.Handler {
	full := promhttp.HandlerFor(prometheus.Gatherers{s.metrics.reg, s.metrics.private}, s.metricsOpts())
	if s.metricsToken == "" {
		return full
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.metricsAuthorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tenantry-metrics"`)
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"type":"` + problem.Type("invalid-token") + `","title":"Invalid or missing token","status":401,"detail":"the metrics token is required"}`))
			return
		}
		full.ServeHTTP(w, r)
	})
}

// metricsAuthorized compares the bearer token in constant time.
func (s *Server) metricsAuthorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.metricsToken)) == 1
}

// handleMetrics serves /metrics on the API's own listener. With a metrics
// token it requires it and serves every series; without one it serves the
// anonymous view, which never names a tenant.
func (s *Server) handleMetrics() gin.HandlerFunc {
	if s.metricsToken != "" {
		h := s.MetricsHandler()
		return func(c *gin.Context) {
			if !s.metricsAuthorized(c.Request) {
				s.fail(c, &clientError{Kind: errUnauthorized, Detail: "the metrics token is required"})
				return
			}
			h.ServeHTTP(c.Writer, c.Request)
		}
	}
	return gin.WrapH(promhttp.HandlerFor(s.metrics.reg, s.metricsOpts()))
}

// slogPrinter lets promhttp log collector errors through the server's
// logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics: " + fmt.Sprint(v...)) }
