package registry_test

import (
	"testing"
	"time"

	"github.com/spear-next/sms/internal/records"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

// Records in the JSON format of SMS before records v2 (what a store holds
// until the records migration has rewritten it, or after its down step)
// read like the protobuf ones, and a write over one stores protobuf.
func TestReadsJSONRecords(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		const id = "00000000-0000-4000-8000-0000000000aa"
		at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		node := records.Node{IP: "10.0.0.7", Port: 9000, HTTPPort: 9001, Status: "active", RegisteredAt: at.UnixNano(), Metadata: map[string]string{"zone": "b"}}
		hb := records.Heartbeat{LastHeartbeat: at.Add(time.Minute).UnixNano(), HealthInfo: map[string]string{"disk": "ok"}, Expired: true}
		res := records.Resource{CPU: 12.5, MemTotal: 1 << 30, UpdatedAt: at.UnixNano()}
		if err := sqlkv.BatchPut(t.Context(), store, []sqlkv.Entry{
			{Key: []byte(records.NodePrefix + id), Value: node.AppendJSON(nil)},
			{Key: []byte(records.HeartbeatPrefix + id), Value: hb.AppendJSON(nil)},
			{Key: []byte(records.ResourcePrefix + id), Value: res.AppendJSON(nil)},
		}); err != nil {
			t.Fatal(err)
		}

		got := e.get(t, id)
		if got.IPAddress != "10.0.0.7" || got.Port != 9000 || got.HTTPPort != 9001 || got.Metadata["zone"] != "b" ||
			got.Status != registry.StatusUnhealthy || !got.RegisteredAt.Equal(at) || !got.LastHeartbeat.Equal(at.Add(time.Minute)) ||
			got.HealthInfo["disk"] != "ok" {
			t.Errorf("Get of a JSON record = %+v", got)
		}
		r, found, err := e.res.Get(t.Context(), id)
		if err != nil || !found || r.CPUUsagePercent != 12.5 || r.TotalMemoryBytes != 1<<30 {
			t.Errorf("resource Get of a JSON record = %+v, %v, %v", r, found, err)
		}

		if _, err := e.nodes.Heartbeat(t.Context(), id, nil); err != nil {
			t.Fatal(err)
		}
		stored, err := store.Get(t.Context(), []byte(records.HeartbeatPrefix+id))
		if err != nil {
			t.Fatal(err)
		}
		if stored.Value[0] != records.FormatProto {
			t.Errorf("heartbeat record after a heartbeat = %q, want protobuf", stored.Value)
		}
		if got := e.get(t, id); got.Status != registry.StatusActive {
			t.Errorf("status after a heartbeat = %s, want active", got.Status)
		}
	})
}
