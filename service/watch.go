package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// WatchNodes streams the matching nodes (in batches with batch_snapshot),
// then their changes, until the client goes away, falls behind (aborted,
// or a fresh snapshot in the stream with resync_on_lag) or the server
// shuts down (unavailable); see registry.NodeRegistry.Watch.
// Errors: resource_exhausted beyond Config.MaxWatchers open streams,
// invalid_argument, aborted ("watcher fell behind; watch again ..."),
// unavailable, unimplemented (the store cannot watch), and the store errors
// of connectError.
func (s *NodeService) WatchNodes(ctx context.Context, req *smspb.WatchNodesRequest, stream *connect.ServerStream[smspb.WatchNodesResponse]) error {
	return s.watchNodes(ctx, req, !isJSON(stream.Conn().RequestHeader().Get("Content-Type")), stream.Send)
}

// isJSON says a request's content type names the JSON codec
// (application/json, application/connect+json, application/grpc+json,
// application/grpc-web+json).
func isJSON(contentType string) bool {
	ct, _, _ := strings.Cut(contentType, ";")
	return ct == "application/json" || strings.HasSuffix(ct, "+json")
}

// watchNodes is WatchNodes on either server stack: send is the stream's.
// wire says the client speaks binary protobuf, not JSON.
func (s *NodeService) watchNodes(ctx context.Context, req *smspb.WatchNodesRequest, wire bool, send func(*smspb.WatchNodesResponse) error) error {
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
		UUIDs:         req.GetUuids(),
		Status:        req.GetStatusFilter(),
		Metadata:      req.GetMetadataFilter(),
		Heartbeats:    req.GetIncludeHeartbeats(),
		ResumeVersion: req.GetResumeVersion(),
		ResyncOnLag:   req.GetResyncOnLag(),
	}
	forward := forwarder(&opts, req.GetBatchSnapshot(), wire, send)
	err := s.nodes.Watch(ctx, opts, forward)
	if errors.Is(context.Cause(ctx), errShuttingDown) {
		return connect.NewError(connect.CodeUnavailable, errShuttingDown)
	}
	return s.fail(ctx, err)
}

// forwarder returns the function that sends each registry event of a
// watch as its message: one per event, or with batch (batch_snapshot) the
// snapshot in batches, for which it sets opts.SnapshotRefs.
func forwarder(opts *registry.WatchOptions, batch, wire bool, send func(*smspb.WatchNodesResponse) error) func(registry.Event) error {
	if !batch {
		return func(ev registry.Event) error { return send(eventToProto(ev)) }
	}
	opts.SnapshotRefs = true
	return (&snapshotBatcher{send: send, wire: wire}).event
}

// The limits of one batch of a batch_snapshot watch: it is sent when it
// holds snapshotBatchNodes nodes or about snapshotBatchBytes of them,
// whichever comes first (and before any other event). A batch of bytes
// stays well below the 4 MiB a gRPC client accepts by default; a node at
// the metadata limits (about 560 KiB) goes in a batch of its own.
const (
	snapshotBatchNodes = 1024
	snapshotBatchBytes = 512 << 10
)

// snapshotBatcher turns the snapshot events of a watch (SnapshotRefs) into
// batches of snapshot_nodes (batch_snapshot); every other event passes as
// it is, after the batch before it. With wire (the client speaks binary
// protobuf) each node is encoded straight from the view (wireBatch);
// otherwise (JSON) it is built as a message.
type snapshotBatcher struct {
	send func(*smspb.WatchNodesResponse) error
	wire bool

	head  *smspb.WatchNodesResponse // the batch's kind, version and resync
	raw   wireBatch
	nodes []*smspb.Node
	bytes int
}

func (b *snapshotBatcher) event(ev registry.Event) error {
	if ev.Kind != registry.EventSnapshot {
		if err := b.flush(); err != nil {
			return err
		}
		// An idle watcher keeps no batch buffer: the next snapshot, if
		// any (a resync), grows one again.
		b.raw = wireBatch{}
		return b.send(eventToProto(ev))
	}
	var node *smspb.Node
	size := 0
	if b.wire {
		size = len(b.raw.buf)
	} else {
		n := ev.Ref.Node()
		node = nodeToProto(n)
		size = b.bytes + approxNodeSize(n)
	}
	if b.head != nil && size > snapshotBatchBytes {
		if err := b.flush(); err != nil {
			return err
		}
	}
	if b.head == nil {
		b.head = &smspb.WatchNodesResponse{Kind: smspb.WatchNodesResponse_KIND_SNAPSHOT, Version: ev.Version, Resync: ev.Resync}
	}
	n := 0
	if b.wire {
		b.raw.add(ev.Ref)
		n = b.raw.nodes
	} else {
		b.nodes = append(b.nodes, node)
		b.bytes = size
		n = len(b.nodes)
	}
	if n == snapshotBatchNodes {
		return b.flush()
	}
	return nil
}

// approxNodeSize is about the encoded size of n, without encoding it (a
// batch's byte limit needs no more).
func approxNodeSize(n registry.Node) int {
	size := 48 + len(n.UUID) + len(n.IPAddress) + len(n.Status)
	for k, v := range n.Metadata {
		size += 8 + len(k) + len(v)
	}
	for k, v := range n.HealthInfo {
		size += 8 + len(k) + len(v)
	}
	return size
}

// flush sends the batch, if any.
func (b *snapshotBatcher) flush() error {
	if b.head == nil {
		return nil
	}
	resp := b.head
	if b.wire {
		b.raw.into(resp)
	} else {
		resp.SnapshotNodes = b.nodes
		b.nodes, b.bytes = nil, 0
	}
	b.head = nil
	return b.send(resp)
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
	resp := &smspb.WatchNodesResponse{
		Kind:           eventKinds[ev.Kind],
		PreviousStatus: string(ev.PreviousStatus),
		Version:        ev.Version,
		Resumed:        ev.Resumed,
		Resync:         ev.Resync,
	}
	if ev.Kind != registry.EventSnapshotEnd {
		resp.Node = nodeToProto(ev.Node)
	}
	return resp
}
