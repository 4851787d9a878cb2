package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/service/registry"
)

// NodeService implements sms.NodeService over the node and resource
// registries. Each method converts the request, makes one registry call (two
// for GetNodeWithResource) and converts the result; errors are mapped to
// Connect codes by connectError. Create it with NewNodeService.
type NodeService struct {
	nodes       *registry.NodeRegistry
	resources   *registry.NodeResourceRegistry
	logger      *slog.Logger
	stopWatches <-chan struct{} // Config.StopWatches
	watchers    *WatcherLimit   // Config.Watchers, or one of Config.MaxWatchers
}

var _ smspbconnect.NodeServiceHandler = (*NodeService)(nil)

// NewNodeService returns a NodeService over nodes and resources, which must
// share one store. A nil logger discards logs.
func NewNodeService(nodes *registry.NodeRegistry, resources *registry.NodeResourceRegistry, logger *slog.Logger) *NodeService {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &NodeService{nodes: nodes, resources: resources, logger: logger, watchers: NewWatcherLimit(0)}
}

// errMissing is the invalid_argument answer to a request without its
// required message.
func errMissing(field string) error {
	return connect.NewError(connect.CodeInvalidArgument, errors.New(field+": required"))
}

func (s *NodeService) fail(ctx context.Context, err error) error {
	return connectError(ctx, s.logger, err)
}

// RegisterNode registers or re-registers req.node and returns its uuid.
// Errors: invalid_argument, and the store errors of connectError.
func (s *NodeService) RegisterNode(ctx context.Context, req *smspb.RegisterNodeRequest) (*smspb.RegisterNodeResponse, error) {
	if req.GetNode() == nil {
		return nil, errMissing("node")
	}
	n, err := s.nodes.Register(ctx, nodeFromProto(req.GetNode()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &smspb.RegisterNodeResponse{Success: true, Message: "node registered", NodeUuid: n.UUID}, nil
}

// UpdateNode replaces an existing node's registration with req.node.
// Errors: not_found, invalid_argument, and the store errors of connectError.
func (s *NodeService) UpdateNode(ctx context.Context, req *smspb.UpdateNodeRequest) (*smspb.UpdateNodeResponse, error) {
	if req.GetNode() == nil {
		return nil, errMissing("node")
	}
	if _, err := s.nodes.Update(ctx, req.GetUuid(), nodeFromProto(req.GetNode())); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &smspb.UpdateNodeResponse{Success: true, Message: "node updated"}, nil
}

// DeleteNode removes a node and its resource record.
// Errors: not_found, invalid_argument, and the store errors of connectError.
func (s *NodeService) DeleteNode(ctx context.Context, req *smspb.DeleteNodeRequest) (*smspb.DeleteNodeResponse, error) {
	if err := s.nodes.Delete(ctx, req.GetUuid()); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &smspb.DeleteNodeResponse{Success: true, Message: "node deleted"}, nil
}

// Heartbeat records a heartbeat at server time and returns that time. The
// request's own timestamp is informational and ignored.
// Errors: not_found, invalid_argument, and the store errors of connectError.
func (s *NodeService) Heartbeat(ctx context.Context, req *smspb.HeartbeatRequest) (*smspb.HeartbeatResponse, error) {
	at, err := s.nodes.Heartbeat(ctx, req.GetUuid(), req.GetHealthInfo())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &smspb.HeartbeatResponse{Success: true, Message: "heartbeat recorded", ServerTimestamp: unixSeconds(at)}, nil
}

// ListNodes returns the nodes, optionally only those with one status, some
// metadata and matching a search, all of them or one page, in the order
// asked for.
// Errors: invalid_argument (unknown status or order, negative page size,
// search too long, bad page token), and the store errors of connectError.
func (s *NodeService) ListNodes(ctx context.Context, req *smspb.ListNodesRequest) (*smspb.ListNodesResponse, error) {
	order, err := orderFromProto(req.GetOrderBy())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	nodes, next, err := s.nodes.ListPage(ctx, registry.ListOptions{
		Status:     req.GetStatusFilter(),
		Metadata:   req.GetMetadataFilter(),
		PageSize:   int(req.GetPageSize()),
		PageToken:  req.GetPageToken(),
		Search:     req.GetSearch(),
		OrderBy:    order,
		Descending: req.GetDescending(),
	})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &smspb.ListNodesResponse{Nodes: nodesToProto(nodes), NextPageToken: next}, nil
}

// orderFromProto maps ListNodesRequest.order_by to the registry's order.
// Errors: a *registry.ValidationError for a value this server does not know.
func orderFromProto(o smspb.ListNodesRequest_Order) (registry.Order, error) {
	switch o {
	case smspb.ListNodesRequest_ORDER_UNSPECIFIED, smspb.ListNodesRequest_ORDER_UUID:
		return registry.OrderUUID, nil
	case smspb.ListNodesRequest_ORDER_STATUS:
		return registry.OrderStatus, nil
	case smspb.ListNodesRequest_ORDER_LAST_HEARTBEAT:
		return registry.OrderLastHeartbeat, nil
	case smspb.ListNodesRequest_ORDER_CPU:
		return registry.OrderCPU, nil
	case smspb.ListNodesRequest_ORDER_MEMORY:
		return registry.OrderMemory, nil
	}
	return 0, &registry.ValidationError{Field: "order_by", Reason: fmt.Sprintf("unknown order %d", int32(o))}
}

// GetNode returns one node.
// Errors: not_found, invalid_argument, and the store errors of connectError.
func (s *NodeService) GetNode(ctx context.Context, req *smspb.GetNodeRequest) (*smspb.GetNodeResponse, error) {
	n, err := s.nodes.Get(ctx, req.GetUuid())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &smspb.GetNodeResponse{Found: true, Node: nodeToProto(n)}, nil
}

// UpdateNodeResource stores req.resource as the node's latest report.
// Errors: not_found (no such node), invalid_argument, and the store errors of
// connectError.
func (s *NodeService) UpdateNodeResource(ctx context.Context, req *smspb.UpdateNodeResourceRequest) (*smspb.UpdateNodeResourceResponse, error) {
	if req.GetResource() == nil {
		return nil, errMissing("resource")
	}
	if _, err := s.resources.Update(ctx, resourceFromProto(req.GetResource())); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &smspb.UpdateNodeResourceResponse{Success: true, Message: "resource updated"}, nil
}

// GetNodeResource returns a node's latest report, or found=false when there
// is none, also when the node itself does not exist.
// Errors: invalid_argument, and the store errors of connectError.
func (s *NodeService) GetNodeResource(ctx context.Context, req *smspb.GetNodeResourceRequest) (*smspb.GetNodeResourceResponse, error) {
	res, found, err := s.resources.Get(ctx, req.GetNodeUuid())
	if errors.Is(err, registry.ErrNotFound) {
		return &smspb.GetNodeResourceResponse{}, nil
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if !found {
		return &smspb.GetNodeResourceResponse{}, nil
	}
	return &smspb.GetNodeResourceResponse{Found: true, Resource: resourceToProto(res)}, nil
}

// ListNodeResources returns all reports (empty node_uuids; all at once or
// one page) or those of the listed nodes that have one, in request order.
// Errors: invalid_argument, and the store errors of connectError.
func (s *NodeService) ListNodeResources(ctx context.Context, req *smspb.ListNodeResourcesRequest) (*smspb.ListNodeResourcesResponse, error) {
	if len(req.GetNodeUuids()) > 0 {
		if req.GetPageSize() != 0 || req.GetPageToken() != "" {
			return nil, connect.NewError(connect.CodeInvalidArgument,
				errors.New("page_size, page_token: only allowed with an empty node_uuids"))
		}
		rs, err := s.resources.List(ctx, req.GetNodeUuids())
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		return &smspb.ListNodeResourcesResponse{Resources: resourcesToProto(rs)}, nil
	}
	rs, next, err := s.resources.ListPage(ctx, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &smspb.ListNodeResourcesResponse{Resources: resourcesToProto(rs), NextPageToken: next}, nil
}

// GetClusterStats summarises the nodes and their resource reports.
// Errors: the store errors of connectError.
func (s *NodeService) GetClusterStats(ctx context.Context, _ *smspb.GetClusterStatsRequest) (*smspb.GetClusterStatsResponse, error) {
	st, err := s.resources.ClusterStats(ctx)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	byStatus := make(map[string]int64, len(st.NodesByStatus))
	for status, n := range st.NodesByStatus {
		byStatus[string(status)] = n
	}
	return &smspb.GetClusterStatsResponse{
		TotalNodes:                st.TotalNodes,
		NodesByStatus:             byStatus,
		NodesWithResources:        st.NodesWithResources,
		AverageCpuUsagePercent:    st.AverageCPUPercent,
		AverageMemoryUsagePercent: st.AverageMemoryPercent,
		TotalMemoryBytes:          st.TotalMemoryBytes,
		UsedMemoryBytes:           st.UsedMemoryBytes,
		HighLoadNodes:             st.HighLoadNodes,
	}, nil
}

// GetNodeWithResource returns a node and its latest report: found=false when
// the node does not exist, resource unset when it has no report. The two
// are one snapshot of the registry, read after one read fence.
// Errors: invalid_argument, and the store errors of connectError.
func (s *NodeService) GetNodeWithResource(ctx context.Context, req *smspb.GetNodeWithResourceRequest) (*smspb.GetNodeWithResourceResponse, error) {
	n, res, found, err := s.nodes.GetWithResource(ctx, req.GetUuid())
	if errors.Is(err, registry.ErrNotFound) {
		return &smspb.GetNodeWithResourceResponse{}, nil
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	resp := &smspb.GetNodeWithResourceResponse{Found: true, Node: nodeToProto(n)}
	if found {
		resp.Resource = resourceToProto(res)
	}
	return resp, nil
}
