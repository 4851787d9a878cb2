package metrics

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spear-next/sms/service/registry"
)

// DefaultStateMaxAge is how long RegisterState reuses one pass over the
// registry view for the age histograms: a pass visits every node (without
// reading the store or allocating, but O(nodes)), so frequent scrapes, or
// several Prometheus servers, share one.
const DefaultStateMaxAge = 10 * time.Second

// ageBuckets are the buckets of the heartbeat and resource report age
// histograms, in seconds: around the default heartbeat timeout (90 s).
var ageBuckets = []float64{5, 10, 15, 30, 60, 90, 120, 300, 600, 1800, 3600}

var (
	nodesDesc         = prometheus.NewDesc("sms_nodes", "Registered nodes, by status.", []string{"status"}, nil)
	heartbeatAgeDesc  = prometheus.NewDesc("sms_node_heartbeat_age_seconds", "Time since each node's last heartbeat, over all nodes, by status.", []string{"status"}, nil)
	oldestActiveDesc  = prometheus.NewDesc("sms_node_heartbeat_oldest_active_age_seconds", "Time since the last heartbeat of the active node heard from least recently (0 with no active node).", nil, nil)
	resourcesDesc     = prometheus.NewDesc("sms_node_resources", "Nodes with a resource report.", nil, nil)
	resourceAgeDesc   = prometheus.NewDesc("sms_node_resource_age_seconds", "Time since each resource report was received, over all reports.", nil, nil)
	stateAgeDesc      = prometheus.NewDesc("sms_registry_state_age_seconds", "Age of the pass over the registry the age histograms and the oldest active age come from (they are cached; the node and report counts are not).", nil, nil)
	stateFailuresDesc = prometheus.NewDesc("sms_registry_state_errors_total", "Scrapes that found the registry view behind the store (its change feed failing): the node metrics are then those of what it last applied.", nil, nil)
)

// RegisterState adds the registries' state, from their view: nodes by
// status and nodes with a resource report, from the view's counters at
// every scrape (O(1)); the heartbeat and report age histograms and the
// oldest active heartbeat's age, from one pass over the view at most once
// per maxAge (DefaultStateMaxAge if not positive). Until the view is loaded
// the node metrics are left out (better none than zeros). resources is
// unused: the node registry's view holds the reports too.
func (m *Metrics) RegisterState(nodes *registry.NodeRegistry, resources *registry.NodeResourceRegistry, maxAge time.Duration, logger *slog.Logger) {
	if maxAge <= 0 {
		maxAge = DefaultStateMaxAge
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m.Register(&stateCollector{view: nodes.View(), maxAge: maxAge, logger: logger, now: time.Now})
}

type stateCollector struct {
	view   *registry.View
	maxAge time.Duration
	logger *slog.Logger
	now    func() time.Time

	mu           sync.Mutex // serializes passes: concurrent scrapes share one
	read         time.Time  // when the histograms below were computed; zero = never
	heartbeats   map[registry.Status]*histogram
	oldestActive float64
	reports      *histogram
	failures     int
}

var statuses = []registry.Status{registry.StatusActive, registry.StatusInactive, registry.StatusUnhealthy, registry.StatusDecommissioning}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{nodesDesc, heartbeatAgeDesc, oldestActiveDesc, resourcesDesc, resourceAgeDesc, stateAgeDesc, stateFailuresDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	st, behind, loaded := c.view.Counts()
	if behind != nil {
		c.failures++
		c.logger.Warn("metrics: the registry view is behind the store; serving what it holds", "err", behind)
	}
	ch <- prometheus.MustNewConstMetric(stateFailuresDesc, prometheus.CounterValue, float64(c.failures))
	if !loaded {
		return // not loaded yet: better no node metrics than zeros
	}
	if c.read.IsZero() || now.Sub(c.read) >= c.maxAge {
		c.refresh(now)
	}
	ch <- prometheus.MustNewConstMetric(stateAgeDesc, prometheus.GaugeValue, now.Sub(c.read).Seconds())
	for _, s := range statuses {
		ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(st.NodesByStatus[s]), string(s))
		h := c.heartbeats[s]
		ch <- prometheus.MustNewConstHistogram(heartbeatAgeDesc, h.count, h.sum, h.buckets(), string(s))
	}
	ch <- prometheus.MustNewConstMetric(oldestActiveDesc, prometheus.GaugeValue, c.oldestActive)
	ch <- prometheus.MustNewConstMetric(resourcesDesc, prometheus.GaugeValue, float64(st.NodesWithResources))
	ch <- prometheus.MustNewConstHistogram(resourceAgeDesc, c.reports.count, c.reports.sum, c.reports.buckets())
}

// refresh computes the histograms from one pass over the view, as of now.
func (c *stateCollector) refresh(now time.Time) {
	heartbeats := make(map[registry.Status]*histogram, len(statuses))
	for _, s := range statuses {
		heartbeats[s] = newHistogram(ageBuckets)
	}
	reports := newHistogram(ageBuckets)
	var oldestActive float64
	at := now.UnixNano()
	age := func(t int64) float64 { return max(0, float64(at-t)/1e9) }
	if !c.view.EachAge(func(s registry.Status, lastSeen int64) {
		a := age(lastSeen)
		if h := heartbeats[s]; h != nil {
			h.observe(a)
		}
		if s == registry.StatusActive {
			oldestActive = max(oldestActive, a)
		}
	}, func(updatedAt int64) { reports.observe(age(updatedAt)) }) {
		return // not loaded: Collect does not call it then
	}
	c.read, c.heartbeats, c.oldestActive, c.reports = now, heartbeats, oldestActive, reports
}

// histogram accumulates a constant Prometheus histogram: observe counts
// each value in the first bucket that holds it (a pass observes every
// node), buckets makes them cumulative, as Prometheus wants them.
type histogram struct {
	count  uint64
	sum    float64
	bounds []float64 // ascending
	counts []uint64  // counts[i]: values in (bounds[i-1], bounds[i]]
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds))}
}

func (h *histogram) observe(v float64) {
	h.count++
	h.sum += v
	if i, _ := slices.BinarySearch(h.bounds, v); i < len(h.bounds) {
		h.counts[i]++
	}
}

// buckets returns the cumulative counts by upper bound.
func (h *histogram) buckets() map[float64]uint64 {
	out := make(map[float64]uint64, len(h.bounds))
	var total uint64
	for i, b := range h.bounds {
		total += h.counts[i]
		out[b] = total
	}
	return out
}
