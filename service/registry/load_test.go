package registry

import (
	"fmt"
	"testing"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// loadEntries returns one entry per uuid, in uuid order, with every record
// of the store: node records over several chunks, heartbeat and resource
// records for some of them, and records whose uuid has no node record (a
// report left behind, an expiry record, both for one uuid), before, between
// and after the nodes, in every prefix the load reads concurrently.
func TestLoadEntriesMergesEveryRecord(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			store := storetest.Open(t, backend)
			const n = loadChunk + 2000 // node and heartbeat records: two chunks each
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
			orphans := []int{-1, 1, 2*loadChunk + 1, 2*n + 1} // first, between, at the chunk boundary, last
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

			got, err := loadEntries(t.Context(), store)
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
				t.Fatalf("loaded %d entries, want %d (%d nodes, %d orphan uuids)", len(got), len(want), n, len(orphans)+1)
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
		})
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
