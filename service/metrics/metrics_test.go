package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/metrics"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/sqlite"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

const token = "t0ken"

// start serves SMS with metrics over a SQLite store, with a bearer token,
// and returns its URL and an authenticated client.
func start(t *testing.T) (string, smspbconnect.NodeServiceClient) {
	t.Helper()
	raw, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sms.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	m.RegisterPools("sqlite", raw)
	store := m.WrapStore("sqlite", watchstore.New(raw))
	t.Cleanup(func() { store.Close() })
	view := registry.NewView(store)
	nodes, resources := view.Nodes(), view.Resources()
	m.RegisterState(nodes, resources, 0, nil)
	srv := httptest.NewServer(service.NewHandler(service.Config{
		Nodes: nodes, Resources: resources, Store: store, AuthToken: token, Metrics: m,
	}))
	t.Cleanup(srv.Close)
	client := smspbconnect.NewNodeServiceClient(http.DefaultClient, srv.URL,
		connect.WithInterceptors(bearer{}))
	return srv.URL, client
}

// bearer adds the token to every request.
type bearer struct{}

func (bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+token)
		return next(ctx, req)
	}
}

func (bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", "Bearer "+token)
		return conn
	}
}

func (bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// scrape GETs /metrics without a token and parses it.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, want 200 without a token", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// value returns the value of the metric of family name whose labels
// include labels, and whether there is one.
func value(families map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := families[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func TestScrape(t *testing.T) {
	url, client := start(t)
	ctx := t.Context()

	var uuids []string
	for _, ip := range []string{"10.0.0.1", "10.0.0.2"} {
		resp, err := client.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: ip, Port: 1}})
		if err != nil {
			t.Fatal(err)
		}
		uuids = append(uuids, resp.GetNodeUuid())
	}
	if _, err := client.Heartbeat(ctx, &smspb.HeartbeatRequest{Uuid: uuids[0]}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.UpdateNodeResource(ctx, &smspb.UpdateNodeResourceRequest{Resource: &smspb.NodeResource{NodeUuid: uuids[1], CpuUsagePercent: 10}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Heartbeat(ctx, &smspb.HeartbeatRequest{Uuid: "00000000-0000-0000-0000-000000000001"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("Heartbeat of an unknown node: %v, want not_found", err)
	}
	// A call without the token is counted as unauthenticated.
	anon := smspbconnect.NewNodeServiceClient(http.DefaultClient, url)
	if _, err := anon.GetClusterStats(ctx, &smspb.GetClusterStatsRequest{}); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("GetClusterStats without a token: %v, want unauthenticated", err)
	}
	// A stream counts when it ends.
	wctx, cancel := context.WithCancel(ctx)
	stream, err := client.WatchNodes(wctx, &smspb.WatchNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for stream.Receive() && stream.Msg().GetKind() != smspb.WatchNodesResponse_KIND_SNAPSHOT_END {
	}
	cancel()
	stream.Close()

	families := scrape(t, url)
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sms_rpc_requests_total", map[string]string{"procedure": "/sms.NodeService/RegisterNode", "code": "ok"}, 2},
		{"sms_rpc_duration_seconds", map[string]string{"procedure": "/sms.NodeService/RegisterNode", "code": "ok"}, 2},
		{"sms_rpc_requests_total", map[string]string{"procedure": "/sms.NodeService/Heartbeat", "code": "ok"}, 1},
		{"sms_rpc_requests_total", map[string]string{"procedure": "/sms.NodeService/Heartbeat", "code": "not_found"}, 1},
		{"sms_rpc_requests_total", map[string]string{"procedure": "/sms.NodeService/GetClusterStats", "code": "unauthenticated"}, 1},
		{"sms_nodes", map[string]string{"status": "active"}, 2},
		{"sms_nodes", map[string]string{"status": "unhealthy"}, 0},
		{"sms_node_heartbeat_age_seconds", map[string]string{"status": "active"}, 2},
		{"sms_node_resources", nil, 1},
		{"sms_node_resource_age_seconds", nil, 1},
		{"sms_registry_state_errors_total", nil, 0},
		{"sms_db_max_open_connections", map[string]string{"backend": "sqlite", "pool": "writer"}, 1},
	} {
		got, ok := value(families, tt.name, tt.labels)
		if !ok || got != tt.want {
			t.Errorf("%s%v = %v (present %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}
	// A stream counts when it ends, which the server notices shortly after
	// the client cancelled it.
	watchEnded := func(families map[string]*dto.MetricFamily) bool {
		for _, m := range families["sms_rpc_requests_total"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "procedure" && l.GetValue() == "/sms.NodeService/WatchNodes" {
					return true
				}
			}
		}
		return false
	}
	for deadline := time.Now().Add(10 * time.Second); !watchEnded(scrape(t, url)); {
		if time.Now().After(deadline) {
			t.Fatal("no sms_rpc_requests_total for the ended WatchNodes stream within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, op := range []string{"apply", "get"} {
		if n, ok := value(families, "sms_store_operation_duration_seconds", map[string]string{"backend": "sqlite", "operation": op}); !ok || n == 0 {
			t.Errorf("sms_store_operation_duration_seconds{operation=%q} count = %v, want > 0", op, n)
		}
	}
	for _, name := range []string{"sms_db_wait_count_total", "sms_db_connections", "go_goroutines"} {
		if families[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}
