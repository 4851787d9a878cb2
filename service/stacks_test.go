// The test asks for server reflection v1alpha on purpose: the server serves
// it for the clients that still use it, so its deprecation is no finding.
//
//lint:file-ignore SA1019 v1alpha reflection is tested on purpose (NewGRPCServer serves it)

package service_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/metrics"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/memory"
)

// grpcGoConn dials url (http://host:port) with grpc-go's own client, the
// way a SPEAR agent (tonic) or grpcurl talks to SMS.
func grpcGoConn(t *testing.T, url string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(strings.TrimPrefix(url, "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestGRPCGoClient drives both gRPC servers (connect-go's on the HTTP
// listener and grpc-go's) with grpc-go's generated client, and expects the
// same answers from each.
func TestGRPCGoClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, watchableStore(t, "memory"), connectHTTP, func(c *service.Config) { c.AuthToken = "tok" })
	for name, url := range map[string]string{"http listener": e.url, "grpc-go listener": e.grpcURL} {
		t.Run(name, func(t *testing.T) {
			conn := grpcGoConn(t, url)
			ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer tok")
			c := smspb.NewNodeServiceClient(conn)

			_, err := c.ListNodes(t.Context(), &smspb.ListNodesRequest{})
			if got, want := status.Code(err), codes.Unauthenticated; got != want {
				t.Errorf("ListNodes without a token: %v, want %v", err, want)
			}
			reg, err := c.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.9", Port: 7000, Status: "online"}})
			if err != nil {
				t.Fatalf("RegisterNode: %v", err)
			}
			hb, err := c.Heartbeat(ctx, &smspb.HeartbeatRequest{Uuid: reg.GetNodeUuid(), HealthInfo: map[string]string{"disk": "ok"}})
			if err != nil || !hb.GetSuccess() || hb.GetServerTimestamp() == 0 {
				t.Errorf("Heartbeat = %v, %v; want success with a server timestamp", hb, err)
			}
			got, err := c.GetNode(ctx, &smspb.GetNodeRequest{Uuid: reg.GetNodeUuid()})
			if err != nil || got.GetNode().GetStatus() != "active" {
				t.Errorf("GetNode = %v, %v; want the node, status active", got, err)
			}
			_, err = c.GetNode(ctx, &smspb.GetNodeRequest{Uuid: "not-a-uuid"})
			if got, want := status.Code(err), codes.InvalidArgument; got != want {
				t.Errorf("GetNode(not-a-uuid): %v, want %v", err, want)
			}
			_, err = c.Heartbeat(ctx, &smspb.HeartbeatRequest{Uuid: nodeA})
			if got, want := status.Code(err), codes.NotFound; got != want {
				t.Errorf("Heartbeat of an absent node: %v, want %v", err, want)
			}

			stream, err := c.WatchNodes(ctx, &smspb.WatchNodesRequest{Uuids: []string{reg.GetNodeUuid()}})
			if err != nil {
				t.Fatalf("WatchNodes: %v", err)
			}
			for _, want := range []smspb.WatchNodesResponse_Kind{smspb.WatchNodesResponse_KIND_SNAPSHOT, smspb.WatchNodesResponse_KIND_SNAPSHOT_END} {
				ev, err := stream.Recv()
				if err != nil || ev.GetKind() != want {
					t.Fatalf("WatchNodes event = %v, %v; want %v", ev, err, want)
				}
			}

			health, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: "sms.NodeService"})
			if err != nil || health.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("health Check without a token = %v, %v; want SERVING", health, err)
			}
			refl, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if err := refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
				t.Fatal(err)
			}
			resp, err := refl.Recv()
			if err != nil {
				t.Fatalf("v1alpha ListServices without a token: %v", err)
			}
			var names []string
			for _, svc := range resp.GetListServicesResponse().GetService() {
				names = append(names, svc.GetName())
			}
			slices.Sort(names)
			if got, want := strings.Join(names, " "), "grpc.health.v1.Health sms.NodeService sms.PlacementService"; got != want {
				t.Errorf("v1alpha ListServices = %q, want %q (the same on both stacks)", got, want)
			}
		})
	}
}

// panickingStore panics on every point read (which writes make; reads are
// served by the registry view).
type panickingStore struct{ sqlkv.Store }

func (panickingStore) GetMany(context.Context, ...[]byte) ([]sqlkv.Entry, error) { panic("boom") }
func (panickingStore) Get(context.Context, []byte) (sqlkv.Entry, error)          { panic("boom") }

func TestPanicRecovered(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			var logs testutil.SyncBuffer
			e := newEnv(t, panickingStore{memory.New()}, p, func(c *service.Config) { c.Logger = slogTo(&logs) })
			for range 2 { // the server survives the first
				_, err := e.client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{Uuid: nodeA, IpAddress: "10.0.0.1", Port: 1}})
				wantCode(t, err, connect.CodeInternal)
				if strings.Contains(err.Error(), "boom") {
					t.Errorf("error %q shows the panic", err)
				}
			}
			if !strings.Contains(logs.String(), "rpc panic") || !strings.Contains(logs.String(), "procedure=/sms.NodeService/RegisterNode") {
				t.Errorf("logs do not report the panic and its procedure:\n%s", logs.String())
			}
		})
	}
}

// TestMetricsOnBothStacks checks that each stack counts its RPCs in the same
// metric with the same labels, rejected calls included, and leaves health
// out.
func TestMetricsOnBothStacks(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, openStore(t, "memory"), p, func(c *service.Config) {
				c.Metrics = metrics.New()
				c.AuthToken = "tok"
			})
			_, err := e.client.ListNodes(t.Context(), &smspb.ListNodesRequest{})
			wantCode(t, err, connect.CodeUnauthenticated)
			authed := p
			authed.Opts = append(authed.Opts[:len(authed.Opts):len(authed.Opts)], connect.WithInterceptors(bearerHeader("Bearer tok")))
			_, err = newClient(e, authed).GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: nodeA})
			wantCode(t, err, connect.CodeNotFound)

			resp, err := http.Get(e.url + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			parser := expfmt.NewTextParser(model.UTF8Validation)
			families, err := parser.TextToMetricFamilies(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, m := range families["sms_rpc_requests_total"].GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				got[labels["procedure"]+" "+labels["code"]] = m.GetCounter().GetValue()
			}
			want := map[string]float64{
				"/sms.NodeService/ListNodes unauthenticated": 1,
				"/sms.NodeService/GetNode not_found":         1,
			}
			if len(got) != len(want) || got["/sms.NodeService/ListNodes unauthenticated"] != 1 || got["/sms.NodeService/GetNode not_found"] != 1 {
				t.Errorf("sms_rpc_requests_total = %v, want %v", got, want)
			}
		})
	}
}

// bearerHeader sets the Authorization header of every unary call.
func bearerHeader(value string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", value)
			return next(ctx, req)
		}
	}
}

// TestGRPCGoAuthBeforeBody: grpc-go's server refuses a call without the
// token on its headers alone: the answer comes while the request body has
// not sent a byte (and never will).
func TestGRPCGoAuthBeforeBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, func(c *service.Config) { c.AuthToken = "tok" })
	body, w := io.Pipe()
	defer w.Close()
	// A bound, not a timing assertion: a server that waited for the body
	// would never answer.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.grpcURL+"/sms.NodeService/ListNodes", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	resp, err := testutil.H2CClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got, want := resp.Header.Get("Grpc-Status"), "16"; got != want { // unauthenticated, trailers-only
		t.Errorf("grpc-status = %q, want %q (unauthenticated) before any body byte", got, want)
	}
}

// envKeepaliveTest runs TestGRPCGoKeepaliveIdleAgent, which idles for 35 s.
const envKeepaliveTest = "SMS_KEEPALIVE_TEST"

// TestGRPCGoKeepaliveIdleAgent: an agent whose client pings every 10 s
// (grpc-go's shortest) keeps its connection through 35 s without a call:
// no GOAWAY "too_many_pings", and the next call goes out on the same
// connection. Slow, so it runs only with SMS_KEEPALIVE_TEST=1.
func TestGRPCGoKeepaliveIdleAgent(t *testing.T) {
	if os.Getenv(envKeepaliveTest) == "" {
		t.Skip("idles for 35 s; set " + envKeepaliveTest + "=1 to run it")
	}
	e := newEnv(t, openStore(t, "memory"), connectHTTP, nil)
	conn, err := grpc.NewClient(strings.TrimPrefix(e.grpcURL, "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := smspb.NewNodeServiceClient(conn)
	if _, err := c.ListNodes(t.Context(), &smspb.ListNodesRequest{}); err != nil {
		t.Fatal(err)
	}
	changed := make(chan connectivity.State, 16)
	go func() {
		for st := conn.GetState(); conn.WaitForStateChange(t.Context(), st); st = conn.GetState() {
			changed <- conn.GetState()
		}
	}()
	time.Sleep(35 * time.Second)
	select {
	case st := <-changed:
		t.Errorf("the idle connection changed state to %v, want it kept READY", st)
	default:
	}
	if _, err := c.ListNodes(t.Context(), &smspb.ListNodesRequest{}); err != nil {
		t.Errorf("call after 35 s idle: %v", err)
	}
}

// TestGRPCGoHealthWatch: grpc-go's health Watch (which the Connect stack
// does not implement) reports SERVING, then NOT_SERVING once shutdown
// begins (Config.StopWatches closed).
func TestGRPCGoHealthWatch(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	e := newEnv(t, openStore(t, "memory"), connectHTTP, func(c *service.Config) { c.StopWatches = stop })
	watch, err := healthpb.NewHealthClient(grpcGoConn(t, e.grpcURL)).Watch(t.Context(), &healthpb.HealthCheckRequest{Service: "sms.NodeService"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := watch.Recv(); err != nil || got.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first Watch answer = %v, %v; want SERVING", got, err)
	}
	close(stop)
	if got, err := watch.Recv(); err != nil || got.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch answer after shutdown began = %v, %v; want NOT_SERVING", got, err)
	}
}
