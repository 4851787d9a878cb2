package service_test

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/metrics"
)

// noopNodes answers GetNode with a canned node: the RPC cost alone.
type noopNodes struct {
	smspb.UnimplementedNodeServiceServer
	resp *smspb.GetNodeResponse
}

func (n noopNodes) GetNode(context.Context, *smspb.GetNodeRequest) (*smspb.GetNodeResponse, error) {
	return n.resp, nil
}

// BenchmarkGRPCNoop measures what SMS's grpc-go policy costs: a no-op
// GetNode on grpc-go's bare server, behind service.GRPCServerOptions, and
// behind them with metrics and a token (cmd/sms's defaults plus auth).
// Compare the sub-benchmarks of one run: go test -run '^$' -bench GRPCNoop
// -count 5 ./service/
func BenchmarkGRPCNoop(b *testing.B) {
	node := &smspb.Node{Uuid: nodeA, IpAddress: "10.0.0.1", Port: 8080, HttpPort: 8081, Status: "active",
		LastHeartbeat: 1764000000, RegisteredAt: 1764000000, Metadata: map[string]string{"zone": "a", "rack": "r1"}}
	cases := []struct {
		name string
		opts []grpc.ServerOption
		md   []string
	}{
		{"bare", nil, nil},
		{"policy", service.GRPCServerOptions(service.Config{}), nil},
		{"policy+metrics+token", service.GRPCServerOptions(service.Config{Metrics: metrics.New(), AuthToken: "tok"}),
			[]string{"authorization", "Bearer tok"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := grpc.NewServer(c.opts...)
			smspb.RegisterNodeServiceServer(srv, noopNodes{resp: &smspb.GetNodeResponse{Found: true, Node: node}})
			go srv.Serve(ln)
			defer srv.Stop()
			conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			client := smspb.NewNodeServiceClient(conn)
			ctx := context.Background()
			if c.md != nil {
				ctx = metadata.AppendToOutgoingContext(ctx, c.md...)
			}
			b.SetParallelism(8) // 16 clients on 2 cores, as smsbench
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.GetNode(ctx, &smspb.GetNodeRequest{Uuid: nodeA}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
