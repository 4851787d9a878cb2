package registry_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

// nthUUID returns the i-th of a sequence of uuids in ascending order.
func nthUUID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

func TestListPageWalksEveryNodeOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		for i := range 25 {
			e.register(t, nthUUID(i*2), "") // even numbers: room to insert between
		}
		seen := map[string]bool{}
		var token string
		pages := 0
		for {
			nodes, next, err := e.nodes.ListPage(t.Context(), registry.ListOptions{PageSize: 4, PageToken: token})
			if err != nil {
				t.Fatalf("ListPage(page %d): %v", pages, err)
			}
			if len(nodes) > 4 {
				t.Fatalf("page %d has %d nodes, want at most 4", pages, len(nodes))
			}
			for i, n := range nodes {
				if seen[n.UUID] {
					t.Fatalf("page %d: node %s seen twice", pages, n.UUID)
				}
				seen[n.UUID] = true
				if i > 0 && nodes[i-1].UUID >= n.UUID {
					t.Fatalf("page %d not in ascending order: %s, %s", pages, nodes[i-1].UUID, n.UUID)
				}
			}
			pages++
			// Between pages: delete a node already seen, one not yet seen,
			// and register one before and one after the cursor.
			switch pages {
			case 2:
				if err := e.nodes.Delete(t.Context(), nthUUID(0)); err != nil {
					t.Fatal(err)
				}
				if err := e.nodes.Delete(t.Context(), nthUUID(30)); err != nil {
					t.Fatal(err)
				}
				e.register(t, nthUUID(1), "")  // before the cursor: not seen
				e.register(t, nthUUID(41), "") // after it: seen
			case 4:
				e.register(t, nthUUID(49), "") // the very end
			}
			if next == "" {
				break
			}
			token = next
		}
		for i := range 50 {
			id := nthUUID(i)
			want := i%2 == 0 && i != 30 || i == 41 || i == 49
			if i == 0 {
				want = true // seen on the first page, deleted after
			}
			if seen[id] != want {
				t.Errorf("node %s seen = %v, want %v", id, seen[id], want)
			}
		}
	})
}

func TestListPageFilters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		for i := range 10 {
			status := registry.StatusActive
			if i%3 == 0 {
				status = registry.StatusInactive
			}
			_, err := e.nodes.Register(t.Context(), registry.Node{
				UUID: nthUUID(i), IPAddress: "h", Port: 1, Status: status,
				Metadata: map[string]string{"zone": fmt.Sprint("z", i%2), "i": fmt.Sprint(i)},
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		opts := registry.ListOptions{Status: "online", Metadata: map[string]string{"zone": "z1"}, PageSize: 2}
		var got []string
		for {
			nodes, next, err := e.nodes.ListPage(t.Context(), opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range nodes {
				got = append(got, n.Metadata["i"])
			}
			if next == "" {
				break
			}
			opts.PageToken = next
		}
		// Odd i (zone z1) that are active (i % 3 != 0): 1, 5, 7.
		if fmt.Sprint(got) != "[1 5 7]" {
			t.Errorf("filtered pages = %v, want [1 5 7]", got)
		}
		all, err := e.nodes.List(t.Context(), registry.ListOptions{Metadata: map[string]string{"zone": "z0", "i": "4"}})
		if err != nil || len(all) != 1 || all[0].UUID != nthUUID(4) {
			t.Errorf("List(metadata zone=z0,i=4) = %v, %v; want node 4", all, err)
		}
		// PageSize 0: everything, no token.
		all, next, err := e.nodes.ListPage(t.Context(), registry.ListOptions{})
		if err != nil || len(all) != 10 || next != "" {
			t.Errorf("ListPage(PageSize 0) = %d nodes, token %q, %v; want 10, \"\"", len(all), next, err)
		}
	})
}

func TestListPageRejectsBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		for i := range 3 {
			e.register(t, nthUUID(i), "")
		}
		_, token, err := e.nodes.ListPage(t.Context(), registry.ListOptions{PageSize: 1, Status: "active"})
		if err != nil || token == "" {
			t.Fatalf("ListPage = token %q, %v", token, err)
		}
		for name, opts := range map[string]registry.ListOptions{
			"negative size":  {PageSize: -1},
			"garbage token":  {PageSize: 1, PageToken: "%%%"},
			"forged token":   {PageSize: 1, PageToken: "MTAwMDAwMDAwOm5vcGU"},
			"other filters":  {PageSize: 1, PageToken: token, Status: "inactive"},
			"unknown status": {PageSize: 1, Status: "sleepy"},
		} {
			if _, _, err := e.nodes.ListPage(t.Context(), opts); !errors.Is(err, registry.ErrInvalid) {
				t.Errorf("%s: err = %v, want ErrInvalid", name, err)
			}
		}
	})
}

func TestResourceListPage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		for i := range 7 {
			e.register(t, nthUUID(i), "")
			if _, err := e.res.Update(t.Context(), registry.Resource{NodeUUID: nthUUID(i), CPUUsagePercent: float64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		var got []float64
		token := ""
		for {
			rs, next, err := e.res.ListPage(t.Context(), 3, token)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				got = append(got, r.CPUUsagePercent)
			}
			if next == "" {
				break
			}
			token = next
		}
		if fmt.Sprint(got) != "[0 1 2 3 4 5 6]" {
			t.Errorf("pages = %v, want [0 1 2 3 4 5 6]", got)
		}
		if _, _, err := e.res.ListPage(t.Context(), -1, ""); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("ListPage(-1) err = %v, want ErrInvalid", err)
		}
		// A node token is not a resource token.
		_, nodeToken, _ := e.nodes.ListPage(t.Context(), registry.ListOptions{PageSize: 1})
		if _, _, err := e.res.ListPage(t.Context(), 1, nodeToken); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("ListPage(node token) err = %v, want ErrInvalid", err)
		}
	})
}
