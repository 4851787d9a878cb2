package service

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/service/registry"
)

// DefaultMaxWatchers is the limit of concurrent WatchNodes streams when
// Config.MaxWatchers is not positive.
const DefaultMaxWatchers = 1024

// WatcherLimit counts the open WatchNodes streams against a limit. One
// shared by both server stacks (Config.Watchers) bounds them together.
type WatcherLimit struct {
	max  int64
	open atomic.Int64
}

// NewWatcherLimit returns a limit of n concurrent WatchNodes streams;
// DefaultMaxWatchers if n is not positive.
func NewWatcherLimit(n int) *WatcherLimit {
	if n <= 0 {
		n = DefaultMaxWatchers
	}
	return &WatcherLimit{max: int64(n)}
}

// watcherLimit is cfg's shared limit, or a new one of cfg.MaxWatchers.
func (cfg Config) watcherLimit() *WatcherLimit {
	if cfg.Watchers != nil {
		return cfg.Watchers
	}
	return NewWatcherLimit(cfg.MaxWatchers)
}

func (l *WatcherLimit) acquire() bool {
	if l.open.Add(1) > l.max {
		l.open.Add(-1)
		return false
	}
	return true
}

func (l *WatcherLimit) release() { l.open.Add(-1) }

// errShuttingDown ends watch streams when the server shuts down.
var errShuttingDown = errors.New("server shutting down; watch again")

// WatchNodes streams the matching nodes, then their changes, until the
// client goes away, falls behind (aborted) or the server shuts down
// (unavailable); see registry.NodeRegistry.Watch.
// Errors: resource_exhausted beyond Config.MaxWatchers open streams,
// invalid_argument, aborted ("watcher fell behind; watch again"),
// unavailable, unimplemented (the store cannot watch), and the store errors
// of connectError.
func (s *NodeService) WatchNodes(ctx context.Context, req *smspb.WatchNodesRequest, stream *connect.ServerStream[smspb.WatchNodesResponse]) error {
	return s.watchNodes(ctx, req, stream.Send)
}

// watchNodes is WatchNodes on either server stack: send is the stream's.
func (s *NodeService) watchNodes(ctx context.Context, req *smspb.WatchNodesRequest, send func(*smspb.WatchNodesResponse) error) error {
	if !s.watchers.acquire() {
		return connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("too many watchers: %d streams are open, the server's limit (--max-watchers); retry later", s.watchers.max))
	}
	defer s.watchers.release()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if s.stopWatches != nil {
		stop := s.stopWatches
		go func() {
			select {
			case <-stop:
				cancel(errShuttingDown)
			case <-ctx.Done():
			}
		}()
	}
	opts := registry.WatchOptions{
		UUIDs:      req.GetUuids(),
		Status:     req.GetStatusFilter(),
		Metadata:   req.GetMetadataFilter(),
		Heartbeats: req.GetIncludeHeartbeats(),
	}
	err := s.nodes.Watch(ctx, opts, func(ev registry.Event) error {
		return send(eventToProto(ev))
	})
	if errors.Is(context.Cause(ctx), errShuttingDown) {
		return connect.NewError(connect.CodeUnavailable, errShuttingDown)
	}
	return s.fail(ctx, err)
}

var eventKinds = map[registry.EventKind]smspb.WatchNodesResponse_Kind{
	registry.EventSnapshot:      smspb.WatchNodesResponse_KIND_SNAPSHOT,
	registry.EventSnapshotEnd:   smspb.WatchNodesResponse_KIND_SNAPSHOT_END,
	registry.EventRegistered:    smspb.WatchNodesResponse_KIND_REGISTERED,
	registry.EventUpdated:       smspb.WatchNodesResponse_KIND_UPDATED,
	registry.EventStatusChanged: smspb.WatchNodesResponse_KIND_STATUS_CHANGED,
	registry.EventDeleted:       smspb.WatchNodesResponse_KIND_DELETED,
	registry.EventExpired:       smspb.WatchNodesResponse_KIND_EXPIRED,
	registry.EventHeartbeat:     smspb.WatchNodesResponse_KIND_HEARTBEAT,
}

func eventToProto(ev registry.Event) *smspb.WatchNodesResponse {
	resp := &smspb.WatchNodesResponse{Kind: eventKinds[ev.Kind], PreviousStatus: string(ev.PreviousStatus)}
	if ev.Kind != registry.EventSnapshotEnd {
		resp.Node = nodeToProto(ev.Node)
	}
	return resp
}
