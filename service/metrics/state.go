package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spear-next/sms/service/registry"
)

// DefaultStateMaxAge is how long RegisterState reuses one read of the
// registries: each read lists every node and resource record, so frequent
// scrapes (or several Prometheus servers) must not each cost one.
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
	stateAgeDesc      = prometheus.NewDesc("sms_registry_state_age_seconds", "Age of the registry read the node and resource metrics come from (they are cached).", nil, nil)
	stateFailuresDesc = prometheus.NewDesc("sms_registry_state_errors_total", "Failed reads of the registries for the node and resource metrics.", nil, nil)
)

// RegisterState adds the registries' state, read at most once per maxAge
// (DefaultStateMaxAge if not positive): nodes by status, heartbeat ages,
// resource report ages. A failed read is logged and counted, and the last
// good one is served.
func (m *Metrics) RegisterState(nodes *registry.NodeRegistry, resources *registry.NodeResourceRegistry, maxAge time.Duration, logger *slog.Logger) {
	if maxAge <= 0 {
		maxAge = DefaultStateMaxAge
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m.Register(&stateCollector{nodes: nodes, resources: resources, maxAge: maxAge, logger: logger, now: time.Now})
}

// readTimeout bounds one read of the registries, so a hung database does
// not hang scrapes.
const readTimeout = 5 * time.Second

type stateCollector struct {
	nodes     *registry.NodeRegistry
	resources *registry.NodeResourceRegistry
	maxAge    time.Duration
	logger    *slog.Logger
	now       func() time.Time

	mu       sync.Mutex // serializes reads: concurrent scrapes share one
	read     time.Time  // when nodeList and resList were read; zero = never
	nodeList []registry.Node
	resList  []registry.Resource
	failures int
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{nodesDesc, heartbeatAgeDesc, oldestActiveDesc, resourcesDesc, resourceAgeDesc, stateAgeDesc, stateFailuresDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.read.IsZero() || now.Sub(c.read) >= c.maxAge {
		c.refresh(now)
	}
	ch <- prometheus.MustNewConstMetric(stateFailuresDesc, prometheus.CounterValue, float64(c.failures))
	if c.read.IsZero() {
		return // never read: better no node metrics than zeros
	}
	ch <- prometheus.MustNewConstMetric(stateAgeDesc, prometheus.GaugeValue, now.Sub(c.read).Seconds())

	statuses := []registry.Status{registry.StatusActive, registry.StatusInactive, registry.StatusUnhealthy, registry.StatusDecommissioning}
	counts := map[registry.Status]uint64{}
	ages := map[registry.Status]*histogram{}
	for _, s := range statuses {
		ages[s] = newHistogram(ageBuckets)
	}
	var oldestActive float64
	for _, n := range c.nodeList {
		age := max(0, c.read.Sub(n.LastHeartbeat).Seconds())
		counts[n.Status]++
		if h := ages[n.Status]; h != nil {
			h.observe(age)
		}
		if n.Status == registry.StatusActive {
			oldestActive = max(oldestActive, age)
		}
	}
	for _, s := range statuses {
		ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
		h := ages[s]
		ch <- prometheus.MustNewConstHistogram(heartbeatAgeDesc, h.count, h.sum, h.buckets, string(s))
	}
	ch <- prometheus.MustNewConstMetric(oldestActiveDesc, prometheus.GaugeValue, oldestActive)

	rh := newHistogram(ageBuckets)
	for _, r := range c.resList {
		rh.observe(max(0, c.read.Sub(r.UpdatedAt).Seconds()))
	}
	ch <- prometheus.MustNewConstMetric(resourcesDesc, prometheus.GaugeValue, float64(len(c.resList)))
	ch <- prometheus.MustNewConstHistogram(resourceAgeDesc, rh.count, rh.sum, rh.buckets)
}

func (c *stateCollector) refresh(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	nodes, err := c.nodes.List(ctx, registry.ListOptions{})
	if err == nil {
		var res []registry.Resource
		res, err = c.resources.List(ctx, nil)
		if err == nil {
			c.read, c.nodeList, c.resList = now, nodes, res
			return
		}
	}
	c.failures++
	c.logger.Warn("metrics: reading the registries failed; serving the previous read", "err", err)
}

// histogram accumulates a constant Prometheus histogram.
type histogram struct {
	count   uint64
	sum     float64
	bounds  []float64
	buckets map[float64]uint64 // cumulative counts by upper bound
}

func newHistogram(bounds []float64) *histogram {
	h := &histogram{bounds: bounds, buckets: make(map[float64]uint64, len(bounds))}
	for _, b := range bounds {
		h.buckets[b] = 0
	}
	return h
}

func (h *histogram) observe(v float64) {
	h.count++
	h.sum += v
	for _, b := range h.bounds {
		if v <= b {
			h.buckets[b]++
		}
	}
}
