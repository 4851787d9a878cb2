package service

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
)

// WatchNodes streams node changes; see the proto.
func (s *NodeService) WatchNodes(ctx context.Context, req *smspb.WatchNodesRequest, stream *connect.ServerStream[smspb.WatchNodesResponse]) error {
	return connect.NewError(connect.CodeUnimplemented, errors.New("not yet"))
}
