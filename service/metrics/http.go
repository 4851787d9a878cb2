package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics count and time the requests of the SPEAR HTTP gateway, which
// are plain HTTP handlers and so pass no Connect interceptor.
type httpMetrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
}

func newHTTPMetrics() httpMetrics {
	return httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "Requests of the SPEAR HTTP gateway (/api/v1/...), by method, route pattern and HTTP status; rejected ones included.",
		}, []string{"method", "route", "status"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "Time to answer a request of the SPEAR HTTP gateway, by method, route pattern and HTTP status.",
			Buckets: latencyBuckets,
		}, []string{"method", "route", "status"}),
	}
}

// ObserveHTTP records one gateway request: route is its pattern
// ("/api/v1/nodes/{uuid}"), not its path, so uuids do not multiply the
// series.
func (m *Metrics) ObserveHTTP(method, route string, status int, d time.Duration) {
	code := strconv.Itoa(status)
	m.http.requests.WithLabelValues(method, route, code).Inc()
	m.http.seconds.WithLabelValues(method, route, code).Observe(d.Seconds())
}
