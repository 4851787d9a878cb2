package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
)

// WatchKind says what a WatchEvent reports (WatchNodesResponse.Kind in
// node.proto, lower case without the KIND_ prefix).
type WatchKind string

// The kinds of WatchEvent.
const (
	WatchSnapshot      WatchKind = "snapshot"       // a node that matched when the watch began (or resynced)
	WatchSnapshotEnd   WatchKind = "snapshot_end"   // the snapshot is complete; Node is zero
	WatchRegistered    WatchKind = "registered"     // a node registered since
	WatchUpdated       WatchKind = "updated"        // address, ports or metadata changed
	WatchStatusChanged WatchKind = "status_changed" // PreviousStatus says from what
	WatchDeleted       WatchKind = "deleted"        // Node is its last known state
	WatchExpired       WatchKind = "expired"        // deleted by the liveness sweeper
	WatchHeartbeat     WatchKind = "heartbeat"      // only with WatchOptions.Heartbeats
)

// WatchEvent is one event of a watch: one node, whether the server sent
// the snapshot in batches or one node per message.
type WatchEvent struct {
	Kind           WatchKind
	Node           Node   // zero for WatchSnapshotEnd
	PreviousStatus Status // for WatchStatusChanged
	// Version identifies the server's state after the event; pass the
	// last one seen as WatchOptions.ResumeVersion to continue after it.
	Version uint64
	// Resumed is set on the WatchSnapshotEnd of a resumed watch: no
	// snapshot came, the changes since ResumeVersion follow.
	Resumed bool
	// Resync is set on the snapshot events and the WatchSnapshotEnd of a
	// fresh snapshot sent because the watch fell behind: at its
	// WatchSnapshotEnd, its nodes are all the matching nodes, and any other
	// the caller held is gone.
	Resync bool
}

// WatchOptions filter Client.Watch; a node is watched while it matches
// every filter set, before or after a change.
type WatchOptions struct {
	UUIDs    []string          // only these nodes
	Status   Status            // only nodes with this status
	Metadata map[string]string // only nodes with these metadata pairs
	// Heartbeats also reports heartbeats that change nothing but the
	// heartbeat time and health info (WatchHeartbeat).
	Heartbeats bool
	// ResumeVersion, if not zero, is the Version of the last event a
	// previous watch with the same filters got: the server sends only the
	// changes since if it still holds them, and a fresh snapshot otherwise.
	ResumeVersion uint64
	// OnePerMessage asks for the snapshot one node per message, as servers
	// before batch_snapshot sent it; by default the Watcher asks for
	// batches (far faster for a large fleet) and hands their nodes out one
	// by one, so Next returns the same events either way.
	OnePerMessage bool
	// AbortOnLag ends the watch with an aborted error when it falls
	// behind the server's buffer of changes; by default the server resyncs
	// it in the stream (events marked Resync).
	AbortOnLag bool
}

// Watcher is an open WatchNodes stream; read it with Next, end it with
// Close. It is not safe for concurrent use.
type Watcher struct {
	stream *connect.ServerStreamForClient[smspb.WatchNodesResponse]
	batch  *smspb.WatchNodesResponse // the snapshot batch being handed out
	next   int                       // its next node
}

// Watch opens a WatchNodes stream with opts: first one WatchSnapshot event
// per matching node (ascending uuid) and a WatchSnapshotEnd, then an event
// per change. The watch has no deadline but ctx's; cancel ctx or call
// Close to end it. Errors (from Next): invalid_argument (a bad uuid or
// status), aborted (AbortOnLag, and fell behind), unavailable (the server
// is shutting down: watch again with ResumeVersion).
func (c *Client) Watch(ctx context.Context, opts WatchOptions) (*Watcher, error) {
	stream, err := c.service.WatchNodes(ctx, &smspb.WatchNodesRequest{
		Uuids: opts.UUIDs, StatusFilter: string(opts.Status), MetadataFilter: opts.Metadata,
		IncludeHeartbeats: opts.Heartbeats, ResumeVersion: opts.ResumeVersion,
		BatchSnapshot: !opts.OnePerMessage, ResyncOnLag: !opts.AbortOnLag,
	})
	if err != nil {
		return nil, fmt.Errorf("watch nodes: %w", err)
	}
	return &Watcher{stream: stream}, nil
}

// errStreamEnded is Next's error when the server ended the stream without
// an error, which it does not do.
var errStreamEnded = errors.New("watch nodes: the server ended the stream")

// Next returns the next event, waiting for it. After an error the watch
// is over; Close it.
func (w *Watcher) Next() (WatchEvent, error) {
	for {
		if w.batch != nil {
			nodes := w.batch.GetSnapshotNodes()
			if w.next < len(nodes) {
				n := nodes[w.next]
				w.next++
				return WatchEvent{Kind: WatchSnapshot, Node: nodeFromProto(n), Version: w.batch.GetVersion(), Resync: w.batch.GetResync()}, nil
			}
			w.batch = nil
		}
		if !w.stream.Receive() {
			if err := w.stream.Err(); err != nil {
				return WatchEvent{}, fmt.Errorf("watch nodes: %w", err)
			}
			return WatchEvent{}, errStreamEnded
		}
		m := w.stream.Msg()
		if m.GetKind() == smspb.WatchNodesResponse_KIND_SNAPSHOT && m.GetNode() == nil {
			w.batch, w.next = m, 0 // a batch (possibly empty): hand its nodes out
			continue
		}
		ev := WatchEvent{
			Kind:           WatchKind(strings.ToLower(strings.TrimPrefix(m.GetKind().String(), "KIND_"))),
			PreviousStatus: Status(m.GetPreviousStatus()),
			Version:        m.GetVersion(),
			Resumed:        m.GetResumed(),
			Resync:         m.GetResync(),
		}
		if m.GetNode() != nil {
			ev.Node = nodeFromProto(m.GetNode())
		}
		return ev, nil
	}
}

// Close ends the watch.
func (w *Watcher) Close() error { return w.stream.Close() }
