// Package metrics collects SMS's Prometheus metrics and serves them in the
// Prometheus text format: RPCs by procedure and code, store operations by
// backend and operation, database pool statistics, and the registries'
// state (nodes by status, heartbeat age, resource report age), computed at
// scrape time from a cached read.
//
// cmd/sms builds one Metrics, wraps its store with WrapStore, passes
// Interceptor to the Connect handlers and serves Handler on GET /metrics.
package metrics

import (
	"context"
	"database/sql"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every SMS metric name.
const namespace = "sms"

// latencyBuckets are the histogram buckets of RPC and store latencies, in
// seconds: 100 µs to 10 s.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics holds SMS's metrics in their own registry (with the Go runtime
// and process collectors). The zero value is not usable; call New.
type Metrics struct {
	registry      *prometheus.Registry
	rpcs          *prometheus.CounterVec
	rpcSeconds    *prometheus.HistogramVec
	storeSeconds  *prometheus.HistogramVec
	storeFailures *prometheus.CounterVec
	authFailures  prometheus.Counter
	http          httpMetrics
}

// New returns a Metrics with the RPC and store metrics registered.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		rpcs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "rpc_requests_total",
			Help: "Calls that reached the server, by procedure and Connect code (ok for success), rejected ones included (unauthenticated, oversized, undecodable; procedure \"unknown\" for a path that names none, \"rest\" for REST routes rejected before their handler); streams count when they end.",
		}, []string{"procedure", "code"}),
		rpcSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "rpc_duration_seconds",
			Help:    "Time to handle an RPC, by procedure and code; for a stream, its whole life.",
			Buckets: latencyBuckets,
		}, []string{"procedure", "code"}),
		storeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "store_operation_duration_seconds",
			Help:    "Time of one key/value store operation, by backend and operation.",
			Buckets: latencyBuckets,
		}, []string{"backend", "operation"}),
		storeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "store_operation_errors_total",
			Help: "Store operations that returned an error other than not-found or a failed condition, by backend and operation.",
		}, []string{"backend", "operation"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "auth_failures_total",
			Help: "Calls rejected for a missing or wrong bearer token.",
		}),
	}
	m.http = newHTTPMetrics()
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.rpcs, m.rpcSeconds, m.storeSeconds, m.storeFailures, m.authFailures,
		m.http.requests, m.http.seconds,
	)
	return m
}

// Handler serves the metrics in the Prometheus text (or OpenMetrics)
// format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Register adds c to the metrics; it panics if c's metrics clash with
// others, which is a programming error.
func (m *Metrics) Register(c prometheus.Collector) { m.registry.MustRegister(c) }

// Interceptor returns the Connect interceptor that counts and times every
// RPC it wraps, unary and server-streaming, by procedure and code.
func (m *Metrics) Interceptor() connect.Interceptor { return interceptor{m} }

type interceptor struct{ m *Metrics }

func (i interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		markCounted(ctx)
		start := time.Now()
		resp, err := next(ctx, req)
		i.m.ObserveRPC(req.Spec().Procedure, err, time.Since(start))
		return resp, err
	}
}

func (i interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next // a server-side interceptor
}

func (i interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		markCounted(ctx)
		start := time.Now()
		err := next(ctx, conn)
		i.m.ObserveRPC(conn.Spec().Procedure, err, time.Since(start))
		return err
	}
}

// ObserveRPC counts and times one call of procedure that ended with err
// (nil for ok, else its Connect code), for server stacks the Interceptor
// does not wrap (grpc-go).
func (m *Metrics) ObserveRPC(procedure string, err error, d time.Duration) {
	code := "ok"
	if err != nil {
		code = connect.CodeOf(err).String()
	}
	m.observe(procedure, code, d)
}

func (m *Metrics) observe(procedure, code string, d time.Duration) {
	m.rpcs.WithLabelValues(procedure, code).Inc()
	m.rpcSeconds.WithLabelValues(procedure, code).Observe(d.Seconds())
}

// PoolStats is implemented by the SQL stores: the database/sql statistics
// of each of their connection pools, by pool name.
type PoolStats interface {
	PoolStats() map[string]sql.DBStats
}

// RegisterPools adds the connection pool statistics of backend's store,
// read at each scrape.
func (m *Metrics) RegisterPools(backend string, s PoolStats) {
	m.Register(&poolCollector{backend: backend, stats: s})
}

var (
	poolLabels     = []string{"backend", "pool"}
	poolOpenDesc   = prometheus.NewDesc("sms_db_connections", "Open connections of the pool, by state (in_use, idle).", append(poolLabels, "state"), nil)
	poolMaxDesc    = prometheus.NewDesc("sms_db_max_open_connections", "Most connections the pool may open.", poolLabels, nil)
	poolWaitsDesc  = prometheus.NewDesc("sms_db_wait_count_total", "Times a caller waited for a connection of the pool. For the SQLite writer pool (one connection), writes that queued behind another write.", poolLabels, nil)
	poolWaitedDesc = prometheus.NewDesc("sms_db_wait_duration_seconds_total", "Total time callers waited for a connection of the pool. For the SQLite writer pool, the time writes spent queued.", poolLabels, nil)
	poolClosedDesc = prometheus.NewDesc("sms_db_connections_closed_total", "Connections closed by the pool, by reason (max_idle, max_idle_time, max_lifetime).", append(poolLabels, "reason"), nil)
)

type poolCollector struct {
	backend string
	stats   PoolStats
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolOpenDesc, poolMaxDesc, poolWaitsDesc, poolWaitedDesc, poolClosedDesc} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for pool, s := range c.stats.PoolStats() {
		ch <- prometheus.MustNewConstMetric(poolOpenDesc, prometheus.GaugeValue, float64(s.InUse), c.backend, pool, "in_use")
		ch <- prometheus.MustNewConstMetric(poolOpenDesc, prometheus.GaugeValue, float64(s.Idle), c.backend, pool, "idle")
		ch <- prometheus.MustNewConstMetric(poolMaxDesc, prometheus.GaugeValue, float64(s.MaxOpenConnections), c.backend, pool)
		ch <- prometheus.MustNewConstMetric(poolWaitsDesc, prometheus.CounterValue, float64(s.WaitCount), c.backend, pool)
		ch <- prometheus.MustNewConstMetric(poolWaitedDesc, prometheus.CounterValue, s.WaitDuration.Seconds(), c.backend, pool)
		ch <- prometheus.MustNewConstMetric(poolClosedDesc, prometheus.CounterValue, float64(s.MaxIdleClosed), c.backend, pool, "max_idle")
		ch <- prometheus.MustNewConstMetric(poolClosedDesc, prometheus.CounterValue, float64(s.MaxIdleTimeClosed), c.backend, pool, "max_idle_time")
		ch <- prometheus.MustNewConstMetric(poolClosedDesc, prometheus.CounterValue, float64(s.MaxLifetimeClosed), c.backend, pool, "max_lifetime")
	}
}
