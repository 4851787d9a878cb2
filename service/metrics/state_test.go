package metrics_test

import (
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/spear-next/sms/service/metrics"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/sqlite"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// The node metrics match the registry after every kind of transition:
// registered, heartbeat, marked unhealthy by a sweep, set inactive and
// decommissioning, back to active, deleted, reports added and removed with
// their node; the counts and the age histograms (recomputed every scrape
// here) agree with List and the resource reports.
func TestStateMetricsMatchTheRegistry(t *testing.T) {
	raw, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sms.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := watchstore.New(raw)
	t.Cleanup(func() { store.Close() })
	// The registry's clock runs 2 minutes behind the collector's (the
	// wall clock), and the test moves it 100 s on.
	now := time.Now().Add(-2 * time.Minute)
	clock := func() time.Time { return now }
	view := registry.NewView(store, registry.WithClock(clock))
	t.Cleanup(view.Close)
	nodes, resources := view.Nodes(), view.Resources()
	m := metrics.New()
	m.RegisterState(nodes, resources, time.Nanosecond, nil)
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	ctx := t.Context()

	check := func(step string) {
		t.Helper()
		all, err := nodes.List(ctx, registry.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		reports, err := resources.List(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		byStatus := map[registry.Status]float64{}
		for _, n := range all {
			byStatus[n.Status]++
		}
		withReport := 0.0
		for _, r := range reports {
			if _, err := nodes.Get(ctx, r.NodeUUID); err == nil {
				withReport++
			}
		}
		families := scrape(t, srv.URL)
		for _, s := range []registry.Status{registry.StatusActive, registry.StatusInactive, registry.StatusUnhealthy, registry.StatusDecommissioning} {
			labels := map[string]string{"status": string(s)}
			if got, _ := value(families, "sms_nodes", labels); got != byStatus[s] {
				t.Errorf("%s: sms_nodes{status=%q} = %v, want %v", step, s, got, byStatus[s])
			}
			if got, _ := value(families, "sms_node_heartbeat_age_seconds", labels); got != byStatus[s] {
				t.Errorf("%s: sms_node_heartbeat_age_seconds{status=%q} count = %v, want %v", step, s, got, byStatus[s])
			}
		}
		if got, _ := value(families, "sms_node_resources", nil); got != withReport {
			t.Errorf("%s: sms_node_resources = %v, want %v", step, got, withReport)
		}
		if got, _ := value(families, "sms_node_resource_age_seconds", nil); got != withReport {
			t.Errorf("%s: sms_node_resource_age_seconds count = %v, want %v", step, got, withReport)
		}
	}

	var ids []string
	for i := range 6 {
		n, err := nodes.Register(ctx, registry.Node{IPAddress: "10.0.0.1", Port: int32(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, n.UUID)
		if i%2 == 0 {
			if _, err := resources.Update(ctx, registry.Resource{NodeUUID: n.UUID, CPUUsagePercent: 50}); err != nil {
				t.Fatal(err)
			}
		}
	}
	check("registered")

	now = now.Add(time.Minute)
	for _, id := range ids[:3] {
		if _, err := nodes.Heartbeat(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(40 * time.Second) // ids[3:] silent for 100 s
	if _, err := nodes.Sweep(ctx, registry.Liveness{HeartbeatTimeout: 90 * time.Second}); err != nil {
		t.Fatal(err)
	}
	check("swept")
	// The active nodes heartbeat 40 s before the registry's now, which
	// is 20 s or more before the collector's.
	if got, _ := value(scrape(t, srv.URL), "sms_node_heartbeat_oldest_active_age_seconds", nil); got < 60 || got > 3600 {
		t.Errorf("oldest active heartbeat age = %v s, want 60 or a little more", got)
	}

	for id, s := range map[string]registry.Status{ids[0]: registry.StatusInactive, ids[1]: registry.StatusDecommissioning, ids[4]: registry.StatusActive} {
		if _, err := nodes.Update(ctx, id, registry.Node{IPAddress: "10.0.0.1", Port: 9, Status: s}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nodes.Heartbeat(ctx, ids[3], nil); err != nil { // unhealthy to active
		t.Fatal(err)
	}
	check("updated")

	for _, id := range []string{ids[2], ids[5]} { // one with a report, one without
		if err := nodes.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	check("deleted")
}
