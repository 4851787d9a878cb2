package metrics

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/memory"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// BenchmarkStateCollect is one scrape of the state collector at 100,000
// nodes (each with a report), against the baseline of what the collector
// did before it read the view's counters, in the same run: list every node
// and every report (List, which builds each one) and count them.
//
//	go test -run '^$' -bench StateCollect -benchmem ./service/metrics/
//
// "counts" is a scrape within --metrics-max-age (the counters only),
// "pass" one that also recomputes the histograms from a pass over the view.
func BenchmarkStateCollect(b *testing.B) {
	const n = 100_000
	store := watchstore.New(memory.New())
	b.Cleanup(func() { store.Close() })
	now := time.Now().UTC()
	for lo := 0; lo < n; lo += 2000 {
		var nodes []registry.Node
		var res []registry.Resource
		for i := lo; i < min(n, lo+2000); i++ {
			nodes = append(nodes, registry.Node{UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), IPAddress: "10.0.0.1", Port: 1,
				Status: registry.StatusActive, RegisteredAt: now, LastHeartbeat: now, Metadata: map[string]string{"zone": "a"}})
			res = append(res, registry.Resource{CPUUsagePercent: 50, UpdatedAt: now})
		}
		if err := registry.BulkPut(b.Context(), store, nodes, res); err != nil {
			b.Fatal(err)
		}
	}
	view := registry.NewView(store)
	b.Cleanup(view.Close)
	if err := view.WaitLoaded(b.Context()); err != nil {
		b.Fatal(err)
	}
	collect := func(b *testing.B, maxAge time.Duration) {
		c := &stateCollector{view: view, maxAge: maxAge, now: time.Now}
		drain := make(chan prometheus.Metric, 64)
		c.Collect(drain) // the first scrape passes over the view
		ch := make(chan prometheus.Metric, 64)
		for b.Loop() {
			go func() { c.Collect(ch); close(ch) }()
			count := 0
			for range ch {
				count++
			}
			if count == 0 {
				b.Fatal("no metrics")
			}
			ch = make(chan prometheus.Metric, 64)
		}
	}
	b.Run("counts", func(b *testing.B) { collect(b, time.Hour) })
	b.Run("pass", func(b *testing.B) { collect(b, time.Nanosecond) })
	b.Run("list-baseline", func(b *testing.B) {
		for b.Loop() {
			nodes, err := view.Nodes().List(b.Context(), registry.ListOptions{})
			if err != nil {
				b.Fatal(err)
			}
			reports, err := view.Resources().List(b.Context(), nil)
			if err != nil {
				b.Fatal(err)
			}
			counts := map[registry.Status]int{}
			for _, n := range nodes {
				counts[n.Status]++
			}
			if counts[registry.StatusActive]+len(reports) != 2*n {
				b.Fatalf("%d active nodes, %d reports; want %d each", counts[registry.StatusActive], len(reports), n)
			}
		}
	})
}
