package registry

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/btree"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// loadEntries returns one entry per uuid, in uuid order, with every record
// of the store: node records over many publishes, heartbeat and resource
// records for some of them, and records whose uuid has no node record (a
// report left behind, an expiry record, both for one uuid), before, between
// and after the nodes, in every prefix the load reads concurrently.
func TestLoadEntriesMergesEveryRecord(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			store := storetest.Open(t, backend)
			const n = 12000 // node and heartbeat records: more than the derived RangeFunc's chunks, many node publishes
			var all []sqlkv.Entry
			put := func(key []byte, value []byte) { all = append(all, sqlkv.Entry{Key: key, Value: value}) }
			for i := range n {
				id := benchUUID(2 * i) // odd numbers are free for orphans
				put(nodeKey(id), encode(nodeRecord{IP: "10.0.0.1", Port: int32(i), Status: StatusActive, RegisteredAt: int64(i + 1), Metadata: map[string]string{"i": fmt.Sprint(i)}}))
				if i%7 != 0 {
					put(heartbeatKey(id), encode(heartbeatRecord{LastHeartbeat: int64(10 * i), HealthInfo: map[string]string{"h": fmt.Sprint(i)}}))
				}
				if i%3 == 0 {
					put(resourceKey(id), encode(resourceRecord{CPU: float64(i % 100), UpdatedAt: int64(i)}))
				}
			}
			orphans := []int{-1, 1, 2*publishEvery - 1, 2*n + 1} // first, between, between two node publishes, last
			for _, o := range orphans {
				id := benchUUID(o)
				put(resourceKey(id), encode(resourceRecord{CPU: 7, UpdatedAt: int64(o)}))
				put(expiredKey(id), encode(expiredRecord{At: int64(o)}))
			}
			put(heartbeatKey(benchUUID(3)), encode(heartbeatRecord{LastHeartbeat: 3}))
			for lo := 0; lo < len(all); lo += 2000 {
				if err := sqlkv.BatchPut(t.Context(), store, all[lo:min(len(all), lo+2000)]); err != nil {
					t.Fatal(err)
				}
			}

			t.Run("direct", func(t *testing.T) { checkLoad(t, store, store, n, len(orphans)) })
			// The node reader stops after its first record until the
			// heartbeat reader has its first: that one is ahead of every
			// node record published, and waits for them.
			t.Run("readers ahead", func(t *testing.T) {
				checkLoad(t, store, &slowNodes{Store: store, heartbeat: make(chan struct{})}, n, len(orphans))
			})
		})
	}
}

// slowNodes holds back the read of the node records after the first until
// a read of the heartbeat records has its first record.
type slowNodes struct {
	sqlkv.Store
	heartbeat chan struct{} // closed at the first heartbeat record
	once      sync.Once
}

func (s *slowNodes) RangeFunc(ctx context.Context, opts sqlkv.RangeOptions, fn func(sqlkv.Entry) error) error {
	var first sync.Once
	switch {
	case bytes.HasPrefix(opts.Start, []byte(nodePrefix)):
		return sqlkv.RangeFunc(ctx, s.Store, opts, func(e sqlkv.Entry) error {
			err := fn(e)
			first.Do(func() { <-s.heartbeat })
			return err
		})
	case bytes.HasPrefix(opts.Start, []byte(heartbeatPrefix)):
		return sqlkv.RangeFunc(ctx, s.Store, opts, func(e sqlkv.Entry) error {
			s.once.Do(func() { close(s.heartbeat) })
			return fn(e)
		})
	}
	return sqlkv.RangeFunc(ctx, s.Store, opts, fn)
}

// checkLoad loads the entries of store through via and compares them with
// every record of store decoded on its own.
func checkLoad(t *testing.T, store, via sqlkv.Store, n, orphans int) {
	got, err := loadEntries(t.Context(), via)
	if err != nil {
		t.Fatal(err)
	}
	// What each uuid should hold: every record, decoded on its own.
	want := map[string]*entry{}
	stored, err := store.Range(t.Context(), sqlkv.RangeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range stored {
		prefix, id, ok := splitKey(kv.Key)
		if !ok {
			continue
		}
		if want[id] == nil {
			want[id] = &entry{uuid: id}
		}
		if err := setRecord(want[id], prefix, kv.Key, kv.Value, kv.Version); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("loaded %d entries, want %d (%d nodes, %d orphan uuids)", len(got), len(want), n, orphans+1)
	}
	for i, e := range got {
		if i > 0 && got[i-1].uuid >= e.uuid {
			t.Fatalf("entries %d and %d out of uuid order: %s, %s", i-1, i, got[i-1].uuid, e.uuid)
		}
		w := want[e.uuid]
		if w == nil {
			t.Fatalf("loaded entry %s, which the store does not hold", e.uuid)
		}
		if !sameEntry(e, w) {
			t.Fatalf("entry %s = %s, want %s", e.uuid, describeEntry(e), describeEntry(w))
		}
	}
}

func sameEntry(a, b *entry) bool {
	eq := func(x, y any) bool { return fmt.Sprint(x) == fmt.Sprint(y) }
	return a.uuid == b.uuid && a.nv == b.nv && a.hv == b.hv && a.rv == b.rv && a.ev == b.ev &&
		a.expiredAt == b.expiredAt && a.meta == b.meta && a.health == b.health && a.resMeta == b.resMeta &&
		eq(a.node, b.node) && eq(a.hb, b.hb) && eq(a.res, b.res)
}

func describeEntry(e *entry) string {
	return fmt.Sprintf("{node %v v%d, hb %v v%d, res %v v%d, expired %d v%d}", e.node, e.nv, e.hb, e.hv, e.res, e.rv, e.expiredAt, e.ev)
}

// A packer gives the packed form packMap gives the map, whatever the order
// the pairs come in (protobuf records: key order; JSON ones: any).
func TestPackerMatchesPackMap(t *testing.T) {
	for _, pairs := range [][][2]string{
		nil,
		{{"a", "1"}},
		{{"a", "1"}, {"b", ""}, {"zone", "eu-west"}},
		{{"zone", "eu-west"}, {"a", "1"}, {"b", ""}}, // out of order
		{{"a", "1"}, {"a", "2"}},                     // a repeated key: the last wins, as in a map
	} {
		m := map[string]string{}
		var p packer
		for _, kv := range pairs {
			m[kv[0]] = kv[1]
			p.add([]byte(kv[0]), []byte(kv[1]))
		}
		if got, want := p.packed(), packMap(m); got != want {
			t.Errorf("packer of %v = %q, want %q", pairs, got, want)
		}
	}
}

// The first load's build fills the trees, counters and event ring exactly
// as a replace of each entry in descending uuid order does.
func TestBuildIsReplaceInDescendingOrder(t *testing.T) {
	var entries []*entry
	statuses := []Status{StatusActive, StatusInactive, StatusDecommissioning, "retired"}
	for i := range 3000 {
		e := &entry{uuid: benchUUID(i)}
		if i%11 != 0 { // else a report or an expiry record without a node
			e.node, e.nv = &nodeRecord{IP: "10.0.0.1", Status: statuses[i%len(statuses)], RegisteredAt: int64(i % 50)}, int64(i+1)
		}
		if i%5 != 0 && e.node != nil {
			e.hb, e.hv = &heartbeatRecord{LastHeartbeat: int64(1000 + i%70), Expired: i%13 == 0}, int64(i+2)
		}
		if i%3 == 0 {
			e.res, e.rv = &resourceRecord{CPU: float64(i % 100), Mem: 50, UpdatedAt: int64(i % 40)}, int64(i+3)
		}
		if i%11 == 0 && i%3 != 0 {
			e.expiredAt, e.ev = int64(i%30), int64(i+4)
		}
		entries = append(entries, e)
	}
	built, replaced := NewView(nil, WithWatchBuffer(100)), NewView(nil, WithWatchBuffer(100))
	built.build(entries)
	for _, e := range slices.Backward(entries) {
		replaced.replace(nil, e)
	}
	items := func(v *View) string {
		var b strings.Builder
		for _, tree := range []*btree.BTreeG[deadline]{v.byHeartbeat, v.byLastSeen, v.byReport, v.byExpiry} {
			tree.Ascend(func(d deadline) bool { fmt.Fprintf(&b, "%d/%s ", d.at, d.uuid); return true })
			b.WriteString("\n")
		}
		for _, tree := range append([]*btree.BTreeG[*entry]{v.byUUID}, v.sorted.byUUID[:]...) {
			tree.Ascend(func(e *entry) bool { fmt.Fprintf(&b, "%p ", e); return true })
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%+v seq %d head %d\n", v.stats, v.seq, v.head.Load())
		for _, ev := range v.ring {
			fmt.Fprintf(&b, "%d %v %p %p\n", ev.seq, ev.kind, ev.prev, ev.cur)
		}
		return b.String()
	}
	if got, want := items(built), items(replaced); got != want {
		t.Fatalf("built view:\n%.2000s\nwant, as replaced:\n%.2000s", got, want)
	}
}
