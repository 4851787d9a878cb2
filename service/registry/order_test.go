package registry_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
)

var allOrders = []registry.Order{registry.OrderUUID, registry.OrderStatus, registry.OrderLastHeartbeat, registry.OrderCPU, registry.OrderMemory}

var allStatuses = []registry.Status{registry.StatusActive, registry.StatusInactive, registry.StatusUnhealthy, registry.StatusDecommissioning}

// orderedFleet registers n nodes with mixed statuses, heartbeat times
// (some equal) and resource reports (some missing, some values equal), and
// returns the resources by uuid.
func orderedFleet(t *testing.T, e *env, n int, rng *rand.Rand) map[string]registry.Resource {
	t.Helper()
	ctx := t.Context()
	res := map[string]registry.Resource{}
	perm := rng.Perm(n) // not registered in uuid order
	for i := range n {
		if rng.IntN(3) > 0 {
			e.clock.Advance(time.Duration(1+rng.IntN(5)) * time.Second)
		}
		id := nthUUID(perm[i])
		if _, err := e.nodes.Register(ctx, registry.Node{
			UUID: id, IPAddress: fmt.Sprintf("10.0.%d.%d", i/200, i%200), Port: 8080,
			Status:   allStatuses[rng.IntN(len(allStatuses))],
			Metadata: map[string]string{"zone": fmt.Sprint("z", i%3)},
		}); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(4) == 0 {
			continue // no report
		}
		r := registry.Resource{NodeUUID: id, CPUUsagePercent: float64(rng.IntN(5)) * 12.5, MemoryUsagePercent: float64(rng.IntN(200)) / 2}
		if _, err := e.res.Update(ctx, r); err != nil {
			t.Fatal(err)
		}
		res[id] = r
	}
	// Heartbeats in a random order move some nodes in the heartbeat order.
	all, err := e.nodes.List(ctx, registry.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range rng.Perm(len(all))[:len(all)/3] {
		e.clock.Advance(time.Second)
		if _, err := e.nodes.Heartbeat(ctx, all[i].UUID, nil); err != nil {
			t.Fatal(err)
		}
	}
	return res
}

// wantOrder sorts nodes the way the documentation of Order says.
func wantOrder(nodes []registry.Node, res map[string]registry.Resource, o registry.Order, desc bool) []string {
	value := func(n registry.Node) float64 {
		r, ok := res[n.UUID]
		switch {
		case o == registry.OrderCPU && ok:
			return r.CPUUsagePercent
		case o == registry.OrderMemory && ok:
			return r.MemoryUsagePercent
		case o == registry.OrderLastHeartbeat:
			return float64(n.LastHeartbeat.UnixNano())
		case o == registry.OrderCPU || o == registry.OrderMemory:
			return -1
		}
		return 0
	}
	nodes = slices.Clone(nodes)
	slices.SortFunc(nodes, func(a, b registry.Node) int {
		c := 0
		if o == registry.OrderStatus {
			c = strings.Compare(string(a.Status), string(b.Status))
		}
		c = cmp.Or(c, cmp.Compare(value(a), value(b)), strings.Compare(a.UUID, b.UUID))
		if desc {
			c = -c
		}
		return c
	})
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = n.UUID
	}
	return ids
}

// walkPages returns the uuids of every page of opts.
func walkPages(t *testing.T, nodes *registry.NodeRegistry, opts registry.ListOptions) []string {
	t.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		got, next, err := nodes.ListPage(t.Context(), opts)
		if err != nil {
			t.Fatalf("ListPage(%+v) page %d: %v", opts, pages, err)
		}
		if len(got) > opts.PageSize {
			t.Fatalf("page %d has %d nodes, want at most %d", pages, len(got), opts.PageSize)
		}
		for _, n := range got {
			ids = append(ids, n.UUID)
		}
		if next == "" {
			return ids
		}
		if pages > 1000 {
			t.Fatalf("ListPage(%+v): no end after %d pages", opts, pages)
		}
		opts.PageToken = next
	}
}

// Every order, both directions, with and without each status filter, in
// pages of several sizes, returns what sorting everything would.
func TestListPageOrders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		rng := rand.New(rand.NewPCG(7, 7))
		res := orderedFleet(t, e, 60, rng)
		all, err := e.nodes.List(t.Context(), registry.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range allOrders {
			for _, desc := range []bool{false, true} {
				for _, status := range append([]registry.Status{""}, allStatuses...) {
					var nodes []registry.Node
					for _, n := range all {
						if status == "" || n.Status == status {
							nodes = append(nodes, n)
						}
					}
					want := wantOrder(nodes, res, o, desc)
					for _, size := range []int{1, 7, 1000} {
						opts := registry.ListOptions{OrderBy: o, Descending: desc, Status: string(status), PageSize: size}
						if got := walkPages(t, e.nodes, opts); !slices.Equal(got, want) {
							t.Errorf("%v desc=%v status=%q size %d:\n got %v\nwant %v", o, desc, status, size, got, want)
						}
					}
					// page_size 0: every match at once, in the order.
					got, next, err := e.nodes.ListPage(t.Context(), registry.ListOptions{OrderBy: o, Descending: desc, Status: string(status)})
					if err != nil || next != "" || !slices.Equal(ids(got), want) {
						t.Errorf("%v desc=%v status=%q, all at once: %v, token %q, %v; want %v", o, desc, status, ids(got), next, err, want)
					}
				}
			}
		}
	})
}

func ids(nodes []registry.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.UUID
	}
	return out
}

// While other nodes are registered, deleted, heartbeat and report
// resources, paging in any order returns each node that did not change
// exactly once, in the order.
func TestListPageOrdersUnderWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		ctx := t.Context()
		const stable = 40
		for i := range stable {
			id := nthUUID(2 * i)
			if _, err := e.nodes.Register(ctx, registry.Node{UUID: id, IPAddress: "h", Port: 1, Status: allStatuses[i%4]}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.res.Update(ctx, registry.Resource{NodeUUID: id, CPUUsagePercent: float64(i % 9), MemoryUsagePercent: float64(i % 5)}); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(time.Second)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(1, 2))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				id := nthUUID(2*rng.IntN(stable+5) + 1) // odd: churn only
				var err error
				switch rng.IntN(4) {
				case 0:
					_, err = e.nodes.Register(ctx, registry.Node{UUID: id, IPAddress: "h", Port: 1, Status: allStatuses[n%4]})
				case 1:
					err = e.nodes.Delete(ctx, id)
				case 2:
					e.clock.Advance(time.Millisecond)
					_, err = e.nodes.Heartbeat(ctx, id, nil)
				case 3:
					_, err = e.res.Update(ctx, registry.Resource{NodeUUID: id, CPUUsagePercent: rng.Float64() * 100, MemoryUsagePercent: rng.Float64() * 100})
				}
				if err != nil && !errors.Is(err, registry.ErrNotFound) {
					t.Error(err)
					return
				}
			}
		})
		stopped := false
		halt := func() {
			if !stopped {
				stopped = true
				close(stop)
				wg.Wait()
			}
		}
		defer halt()
		stableNodes, err := e.nodes.List(ctx, registry.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		stableNodes = slices.DeleteFunc(stableNodes, func(n registry.Node) bool { return !isEven(n.UUID) })
		res := map[string]registry.Resource{}
		for i := range stable {
			res[nthUUID(2*i)] = registry.Resource{CPUUsagePercent: float64(i % 9), MemoryUsagePercent: float64(i % 5)}
		}
		for _, o := range allOrders {
			for _, desc := range []bool{false, true} {
				for round := range 3 {
					got := walkPages(t, e.nodes, registry.ListOptions{OrderBy: o, Descending: desc, PageSize: 3})
					got = slices.DeleteFunc(got, func(id string) bool { return !isEven(id) })
					if want := wantOrder(stableNodes, res, o, desc); !slices.Equal(got, want) {
						t.Errorf("%v desc=%v round %d: the unchanged nodes came as\n %v\nwant\n %v", o, desc, round, got, want)
					}
				}
			}
		}
		// After the churn, every order holds exactly the nodes there are:
		// no item of a deleted node or of a node's earlier state is left.
		halt()
		all, err := e.nodes.List(ctx, registry.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		reports, err := e.res.List(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		res = map[string]registry.Resource{}
		for _, r := range reports {
			res[r.NodeUUID] = r
		}
		for _, o := range allOrders {
			for _, status := range append([]registry.Status{""}, allStatuses...) {
				nodes := slices.DeleteFunc(slices.Clone(all), func(n registry.Node) bool { return status != "" && n.Status != status })
				got := walkPages(t, e.nodes, registry.ListOptions{OrderBy: o, Status: string(status), PageSize: 4})
				if want := wantOrder(nodes, res, o, false); !slices.Equal(got, want) {
					t.Errorf("after the churn, %v status=%q:\n got %v\nwant %v", o, status, got, want)
				}
			}
		}
	})
}

func isEven(id string) bool { return (id[len(id)-1]-'0')%2 == 0 }

func TestListPageSearch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		for i, m := range []map[string]string{
			{"zone": "eu-west", "name": "Alpha"},
			{"zone": "eu-east", "name": "beta"},
			{"zone": "us-west", "role": "gateway"},
		} {
			if _, err := e.nodes.Register(t.Context(), registry.Node{UUID: nthUUID(10 + i), IPAddress: fmt.Sprintf("Host%d.example", i), Port: 1, Metadata: m}); err != nil {
				t.Fatal(err)
			}
		}
		for search, want := range map[string]string{
			"":                  "[10 11 12]",
			"zone=eu":           "[10 11]",
			"ZONE=EU-W":         "[10]",
			"one=eu-w":          "[10]", // a pair: key suffix, value prefix
			"alpha":             "[10]", // case-insensitive value
			"west":              "[10 12]",
			"west  gateway":     "[12]", // every word
			"host1":             "[11]", // address
			"8000-000000000012": "[12]", // uuid
			"role":              "[12]", // key
			"=west":             "[]",   // a pair's value must start with it
			"nothing":           "[]",
		} {
			for _, o := range []registry.Order{registry.OrderUUID, registry.OrderCPU} {
				var got []string
				for _, id := range walkPages(t, e.nodes, registry.ListOptions{Search: search, OrderBy: o, PageSize: 2}) {
					got = append(got, id[len(id)-2:])
				}
				if fmt.Sprint(got) != want && !(want == "[]" && got == nil) {
					t.Errorf("search %q (%v) = %v, want %v", search, o, got, want)
				}
			}
			all, err := e.nodes.List(t.Context(), registry.ListOptions{Search: search})
			if err != nil || len(all) != strings.Count(want, " ")+1-boolInt(want == "[]") {
				t.Errorf("List(search %q) = %d nodes, %v; want %s", search, len(all), err, want)
			}
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A filter without an index looks at MaxPageScan nodes per page at most:
// a search that only the last node matches takes a page that is empty (with
// a token), then one with the node.
func TestListPageScanIsBounded(t *testing.T) {
	store := watchable(storetest.Open(t, "memory"))
	total := registry.MaxPageScan + 50
	now := time.Now()
	for lo := 0; lo < total; lo += 2000 {
		var nodes []registry.Node
		for i := lo; i < min(total, lo+2000); i++ {
			meta := map[string]string{"zone": "a"}
			if i == total-1 {
				meta["zone"] = "needle"
			}
			nodes = append(nodes, registry.Node{UUID: nthUUID(i), IPAddress: "h", Port: 1, Status: registry.StatusActive,
				RegisteredAt: now, LastHeartbeat: now, Metadata: meta})
		}
		if err := registry.BulkPut(t.Context(), store, nodes, nil); err != nil {
			t.Fatal(err)
		}
	}
	nodes := registry.NewView(store).Nodes()
	for _, opts := range []registry.ListOptions{
		{Search: "needle", PageSize: 10},
		{Metadata: map[string]string{"zone": "needle"}, PageSize: 10, OrderBy: registry.OrderLastHeartbeat},
		{Search: "needle", PageSize: 10, Descending: true, OrderBy: registry.OrderStatus},
	} {
		first, token, err := nodes.ListPage(t.Context(), opts)
		wantFirst := 0
		if opts.Descending {
			wantFirst = 1 // the needle is the last uuid: first in descending order
		}
		// The first page ends at the scan limit, with a token, either way.
		if err != nil || len(first) != wantFirst || token == "" {
			t.Fatalf("%+v: first page = %d nodes, token %q, %v; want %d nodes", opts, len(first), token, err, wantFirst)
		}
		if wantFirst == 1 {
			continue
		}
		opts.PageToken = token
		second, token, err := nodes.ListPage(t.Context(), opts)
		if err != nil || len(second) != 1 || second[0].UUID != nthUUID(total-1) || token != "" {
			t.Errorf("%+v: second page = %v, token %q, %v; want the needle and no token", opts, ids(second), token, err)
		}
	}
}

func TestListPageRejectsBadOrderInput(t *testing.T) {
	e := newEnv(watchable(storetest.Open(t, "memory")))
	for i := range 3 {
		e.register(t, nthUUID(i), "")
	}
	token := func(opts registry.ListOptions) string {
		opts.PageSize = 1
		_, next, err := e.nodes.ListPage(context.Background(), opts)
		if err != nil || next == "" {
			t.Fatalf("ListPage(%+v) = token %q, %v", opts, next, err)
		}
		return next
	}
	cpu := token(registry.ListOptions{OrderBy: registry.OrderCPU})
	uuidDesc := token(registry.ListOptions{Descending: true})
	search := token(registry.ListOptions{Search: "10.0"})
	for name, c := range map[string]struct {
		opts  registry.ListOptions
		field string
	}{
		"unknown order":         {registry.ListOptions{OrderBy: registry.OrderMemory + 1}, "order_by"},
		"negative order":        {registry.ListOptions{OrderBy: -1}, "order_by"},
		"search too long":       {registry.ListOptions{Search: strings.Repeat("x", registry.MaxSearchLength+1)}, "search"},
		"cpu token, memory":     {registry.ListOptions{OrderBy: registry.OrderMemory, PageToken: cpu}, "page_token"},
		"cpu token, descending": {registry.ListOptions{OrderBy: registry.OrderCPU, Descending: true, PageToken: cpu}, "page_token"},
		"cpu token, uuid":       {registry.ListOptions{PageToken: cpu}, "page_token"},
		"uuid desc token, asc":  {registry.ListOptions{PageToken: uuidDesc}, "page_token"},
		"uuid token, cpu":       {registry.ListOptions{OrderBy: registry.OrderCPU, PageToken: uuidDesc}, "page_token"},
		"other search":          {registry.ListOptions{Search: "x", PageToken: search}, "page_token"},
		"forged cpu token":      {registry.ListOptions{OrderBy: registry.OrderCPU, PageToken: cpu[:len(cpu)-3]}, "page_token"},
	} {
		c.opts.PageSize = 1
		_, _, err := e.nodes.ListPage(context.Background(), c.opts)
		var ve *registry.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("%s: err = %v, want a ValidationError of %s", name, err, c.field)
		}
	}
	// The tokens work for what they were issued for.
	for _, opts := range []registry.ListOptions{
		{OrderBy: registry.OrderCPU, PageToken: cpu},
		{Descending: true, PageToken: uuidDesc},
		{Search: "10.0", PageToken: search},
	} {
		opts.PageSize = 1
		if _, _, err := e.nodes.ListPage(context.Background(), opts); err != nil {
			t.Errorf("ListPage(%+v): %v", opts, err)
		}
	}
}
