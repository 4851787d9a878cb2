package registry

import (
	"testing"

	"github.com/spear-next/sms/internal/records"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// BenchmarkRecordFormat reads nodes through the registry from stores filled
// with the same nodes in each record format, in one run: json is what SMS
// stored before records v2 (readers still accept it), proto what it stores
// now. It isolates what the format costs per GetNode and per page.
//
//	go test -run '^$' -bench RecordFormat -benchmem ./service/registry/
func BenchmarkRecordFormat(b *testing.B) {
	formats := []struct {
		name   string
		encode func(n *records.Node, h *records.Heartbeat) ([]byte, []byte)
	}{
		{"json", func(n *records.Node, h *records.Heartbeat) ([]byte, []byte) {
			return n.AppendJSON(nil), h.AppendJSON(nil)
		}},
		{"proto", func(n *records.Node, h *records.Heartbeat) ([]byte, []byte) {
			return n.AppendProto(nil), h.AppendProto(nil)
		}},
	}
	const nodes = 10_000
	for _, backend := range []string{"memory", "sqlite"} {
		for _, f := range formats {
			store := storetest.Open(b, backend)
			fillFormat(b, store, nodes, f.encode)
			view := NewView(store)
			b.Cleanup(view.Close)
			r := view.Nodes()
			b.Run("GetNode/"+backend+"/"+f.name, func(b *testing.B) {
				i := 0
				for b.Loop() {
					if _, err := r.Get(b.Context(), benchUUID(i%nodes)); err != nil {
						b.Fatal(err)
					}
					i += 7
				}
			})
			b.Run("ListPage1000/"+backend+"/"+f.name, func(b *testing.B) {
				for b.Loop() {
					page, _, err := r.ListPage(b.Context(), ListOptions{PageSize: 1000})
					if err != nil || len(page) != 1000 {
						b.Fatal(len(page), err)
					}
				}
			})
		}
	}
}

func fillFormat(b *testing.B, store sqlkv.Store, n int, encode func(*records.Node, *records.Heartbeat) ([]byte, []byte)) {
	b.Helper()
	var entries []sqlkv.Entry
	for i := range n {
		id := benchUUID(i)
		nv, hv := encode(
			&records.Node{IP: "10.0.0.1", Port: 8080, HTTPPort: 8081, Status: "active", RegisteredAt: 1764000000000000000, Metadata: map[string]string{"zone": "a", "rack": "r1"}},
			&records.Heartbeat{LastHeartbeat: 1764000000000000000, HealthInfo: map[string]string{"disk": "ok", "agent": "1.4.2"}},
		)
		entries = append(entries, sqlkv.Entry{Key: nodeKey(id), Value: nv}, sqlkv.Entry{Key: heartbeatKey(id), Value: hv})
		if len(entries) == 2000 || i == n-1 {
			if err := sqlkv.BatchPut(b.Context(), store, entries); err != nil {
				b.Fatal(err)
			}
			entries = entries[:0]
		}
	}
}
