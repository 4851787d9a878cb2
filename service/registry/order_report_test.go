package registry_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// TestListPageOrderReport reports what a ListPage page costs in each order
// and with each filter, as a ratio to the default uuid order measured in
// the same run (interleaved rounds, medians), on a fleet of
// SMS_LISTPAGE_NODES nodes (default 100,000) with mixed statuses,
// heartbeats and resource reports. Opt-in; it asserts nothing about time:
//
//	SMS_LISTPAGE_REPORT=1 go test -run ListPageOrderReport -v ./service/registry/
func TestListPageOrderReport(t *testing.T) {
	if os.Getenv("SMS_LISTPAGE_REPORT") == "" {
		t.Skip("set SMS_LISTPAGE_REPORT=1 to measure")
	}
	total := 100_000
	if s := os.Getenv("SMS_LISTPAGE_NODES"); s != "" {
		var err error
		if total, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	store := watchable(storetest.Open(t, "memory"))
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Now().Add(-time.Hour)
	for lo := 0; lo < total; lo += 5000 {
		var nodes []registry.Node
		var res []registry.Resource
		for i := lo; i < min(total, lo+5000); i++ {
			status := registry.StatusActive
			switch r := rng.IntN(20); {
			case r < 2:
				status = registry.StatusInactive
			case r == 2:
				status = registry.StatusUnhealthy
			case r == 3:
				status = registry.StatusDecommissioning
			}
			seen := base.Add(time.Duration(rng.Int64N(int64(time.Hour))))
			nodes = append(nodes, registry.Node{UUID: nthUUID(i), IPAddress: "10.0.0.1", Port: 8080, Status: status,
				RegisteredAt: base, LastHeartbeat: seen, Metadata: map[string]string{"zone": fmt.Sprint("z", i%100)}})
			if rng.IntN(10) > 0 {
				res = append(res, registry.Resource{CPUUsagePercent: rng.Float64() * 100, MemoryUsagePercent: rng.Float64() * 100, UpdatedAt: seen})
			} else {
				res = append(res, registry.Resource{UpdatedAt: seen}) // 0 %: ties
			}
		}
		if err := registry.BulkPut(t.Context(), store, nodes, res); err != nil {
			t.Fatal(err)
		}
	}
	view := registry.NewView(store)
	defer view.Close()
	start := time.Now()
	if err := view.WaitLoaded(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d nodes loaded in %s", total, time.Since(start).Round(time.Millisecond))
	nodes := view.Nodes()

	cases := []struct {
		name string
		opts registry.ListOptions
	}{
		{"uuid (default)", registry.ListOptions{}},
		{"uuid descending", registry.ListOptions{Descending: true}},
		{"status", registry.ListOptions{OrderBy: registry.OrderStatus}},
		{"last heartbeat", registry.ListOptions{OrderBy: registry.OrderLastHeartbeat}},
		{"cpu", registry.ListOptions{OrderBy: registry.OrderCPU}},
		{"cpu descending", registry.ListOptions{OrderBy: registry.OrderCPU, Descending: true}},
		{"memory", registry.ListOptions{OrderBy: registry.OrderMemory}},
		{"status=inactive, by uuid", registry.ListOptions{Status: "inactive"}},
		{"status=inactive, by cpu", registry.ListOptions{Status: "inactive", OrderBy: registry.OrderCPU}},
		{"search zone=z7 (11 %, scanned)", registry.ListOptions{Search: "zone=z7 "}},
		{"metadata zone=z7 (1 %, scanned), by cpu", registry.ListOptions{Metadata: map[string]string{"zone": "z7"}, OrderBy: registry.OrderCPU}},
	}
	for _, size := range []int{100, 1000} {
		// The tokens of every page of each case: the timed reads start
		// anywhere in the order, not only at its beginning.
		tokens := make([][]string, len(cases))
		for i, c := range cases {
			opts := c.opts
			opts.PageSize = size
			tokens[i] = []string{""}
			for {
				_, next, err := nodes.ListPage(t.Context(), opts)
				if err != nil {
					t.Fatal(err)
				}
				if next == "" {
					break
				}
				tokens[i] = append(tokens[i], next)
				opts.PageToken = next
			}
		}
		const rounds, perRound = 5, 100
		perPage := make([][]float64, len(cases))
		returned := make([]int, len(cases))
		for round := range rounds {
			for i, c := range cases {
				opts := c.opts
				opts.PageSize = size
				n := 0
				began := time.Now()
				for k := range perRound {
					opts.PageToken = tokens[i][(k*7919+round)%len(tokens[i])]
					got, _, err := nodes.ListPage(t.Context(), opts)
					if err != nil {
						t.Fatal(err)
					}
					n += len(got)
				}
				perPage[i] = append(perPage[i], float64(time.Since(began).Microseconds())/perRound)
				returned[i] += n
			}
		}
		load, _ := os.ReadFile("/proc/loadavg")
		var b strings.Builder
		fmt.Fprintf(&b, "pages of %d of %d nodes (load %s):\n", size, total, strings.Join(strings.Fields(string(load))[:3], " "))
		baseline := median(perPage[0])
		for i, c := range cases {
			m := median(perPage[i])
			fmt.Fprintf(&b, "  %-42s %8.0f µs/page  %5.2fx of uuid  %6.0f nodes/page, %d pages in the order\n",
				c.name, m, m/baseline, float64(returned[i])/rounds/perRound, len(tokens[i]))
		}
		t.Log(b.String())
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
