package main

import (
	"context"
	"net"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	sms "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/service"
)

// nodeClient is what the workloads call: the Connect client
// (smspbconnect.NodeServiceClient) or grpcGoClient.
type nodeClient interface {
	RegisterNode(context.Context, *sms.RegisterNodeRequest) (*sms.RegisterNodeResponse, error)
	Heartbeat(context.Context, *sms.HeartbeatRequest) (*sms.HeartbeatResponse, error)
	GetNode(context.Context, *sms.GetNodeRequest) (*sms.GetNodeResponse, error)
	ListNodes(context.Context, *sms.ListNodesRequest) (*sms.ListNodesResponse, error)
	UpdateNodeResource(context.Context, *sms.UpdateNodeResourceRequest) (*sms.UpdateNodeResourceResponse, error)
	GetNodeWithResource(context.Context, *sms.GetNodeWithResourceRequest) (*sms.GetNodeWithResourceResponse, error)
	GetClusterStats(context.Context, *sms.GetClusterStatsRequest) (*sms.GetClusterStatsResponse, error)
}

// grpcGoClient is grpc-go's generated client as a nodeClient: --protocol
// grpc uses it against every server, so that gRPC figures compare servers
// (SPEAR's agents speak gRPC with their own client, tonic).
type grpcGoClient struct{ c sms.NodeServiceClient }

func (g grpcGoClient) RegisterNode(ctx context.Context, r *sms.RegisterNodeRequest) (*sms.RegisterNodeResponse, error) {
	return g.c.RegisterNode(ctx, r)
}

func (g grpcGoClient) Heartbeat(ctx context.Context, r *sms.HeartbeatRequest) (*sms.HeartbeatResponse, error) {
	return g.c.Heartbeat(ctx, r)
}

func (g grpcGoClient) GetNode(ctx context.Context, r *sms.GetNodeRequest) (*sms.GetNodeResponse, error) {
	return g.c.GetNode(ctx, r)
}

func (g grpcGoClient) ListNodes(ctx context.Context, r *sms.ListNodesRequest) (*sms.ListNodesResponse, error) {
	return g.c.ListNodes(ctx, r)
}

func (g grpcGoClient) UpdateNodeResource(ctx context.Context, r *sms.UpdateNodeResourceRequest) (*sms.UpdateNodeResourceResponse, error) {
	return g.c.UpdateNodeResource(ctx, r)
}

func (g grpcGoClient) GetNodeWithResource(ctx context.Context, r *sms.GetNodeWithResourceRequest) (*sms.GetNodeWithResourceResponse, error) {
	return g.c.GetNodeWithResource(ctx, r)
}

func (g grpcGoClient) GetClusterStats(ctx context.Context, r *sms.GetClusterStatsRequest) (*sms.GetClusterStatsResponse, error) {
	return g.c.GetClusterStats(ctx, r)
}

// newGRPCGoClient dials url (http://host:port) with grpc-go, over one
// HTTP/2 connection like the Connect client's gRPC.
func newGRPCGoClient(url string) (nodeClient, error) {
	conn, err := grpc.NewClient(strings.TrimPrefix(url, "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	return grpcGoClient{sms.NewNodeServiceClient(conn)}, nil
}

// errCode is the Connect code of a call's error from either client.
func errCode(err error) connect.Code {
	if st, ok := status.FromError(err); ok {
		return connect.Code(st.Code())
	}
	return connect.CodeOf(err)
}

// serveGRPC serves srv on a loopback port and returns its URL and a stop
// function.
func serveGRPC(srv *grpc.Server) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), srv.Stop, nil
}

// grpcNoop is the no-op handler (noop) for grpc-go: the unary methods have
// the same signatures on both stacks; WatchNodes streams the same snapshot.
type grpcNoop struct{ *noop }

// noopGRPCServer returns grpc-go's server around the no-op handler (its
// watch snapshot has watchNodes nodes): bare (grpc-go's defaults), or with
// SMS's policy (service.GRPCServerOptions).
func noopGRPCServer(pageSize, watchNodes int, policy bool) *grpc.Server {
	var opts []grpc.ServerOption
	if policy {
		opts = service.GRPCServerOptions(service.Config{})
	}
	srv := grpc.NewServer(opts...)
	sms.RegisterNodeServiceServer(srv, grpcNoop{noop: newNoop(pageSize, watchNodes)})
	return srv
}
