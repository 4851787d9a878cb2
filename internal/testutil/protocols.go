package testutil

import "connectrpc.com/connect"

// Protocol is one way a test client reaches SMS: a wire protocol, and the
// server stack it talks to.
type Protocol struct {
	Name string
	Opts []connect.ClientOption
	// GRPCGo marks gRPC to grpc-go's server (service.NewGRPCServer, the
	// --grpc-addr listener); the others go to the http.Handler.
	GRPCGo bool
}

// Protocols are the wire protocols a client can speak to the http.Handler
// (Connect, gRPC through connect-go, gRPC-web), then gRPC to grpc-go's
// server. Tests of the HTTP surface take Protocols[0].
var Protocols = []Protocol{
	{Name: "connect"},
	{Name: "grpc", Opts: []connect.ClientOption{connect.WithGRPC()}},
	{Name: "grpcweb", Opts: []connect.ClientOption{connect.WithGRPCWeb()}},
	{Name: "grpc-go", Opts: []connect.ClientOption{connect.WithGRPC()}, GRPCGo: true},
}
