package registry

import (
	"context"
	"fmt"

	"github.com/spear-next/sms/sqlkv"
)

// BulkPut writes nodes, each with its heartbeat record and, when
// resources[i] is given (same index, any NodeUUID), its resource report,
// straight into store with one BatchPut per call: the fast way to seed a
// store with many nodes for benchmarks and tests (cmd/smsbench --workload
// seed). Unlike Register it is unconditional (an existing node of the same
// uuid is overwritten), keeps the nodes' RegisteredAt and LastHeartbeat as
// given (zero: the clock of the store's first reader, so set them), and,
// being writes the store's change feed reports like any other, is meant for
// a store no watcher is following yet. resources may be nil or shorter.
// Split a large fleet into calls of a few thousand nodes.
//
// Errors: a *ValidationError (ErrInvalid) naming the first bad node, before
// anything is written; store errors, wrapped.
func BulkPut(ctx context.Context, store sqlkv.Store, nodes []Node, resources []Resource) error {
	entries := make([]sqlkv.Entry, 0, 3*len(nodes))
	for i, n := range nodes {
		id, err := canonicalUUID("node.uuid", n.UUID)
		if err != nil {
			return err
		}
		status, err := validateNode(n)
		if err != nil {
			return err
		}
		stored, expired := storedStatus(status)
		entries = append(entries,
			sqlkv.Entry{Key: nodeKey(id), Value: encode(nodeRecord{
				IP: n.IPAddress, Port: n.Port, HTTPPort: n.HTTPPort, Status: stored,
				RegisteredAt: unixNano(n.RegisteredAt), Metadata: n.Metadata,
			})},
			sqlkv.Entry{Key: heartbeatKey(id), Value: encode(heartbeatRecord{
				LastHeartbeat: unixNano(n.LastHeartbeat), HealthInfo: n.HealthInfo, Expired: expired,
			})},
		)
		if i < len(resources) {
			res := resources[i]
			if err := validateResource(res); err != nil {
				return err
			}
			entries = append(entries, sqlkv.Entry{Key: resourceKey(id), Value: encode(resourceToRecord(res))})
		}
	}
	if err := sqlkv.BatchPut(ctx, store, entries); err != nil {
		return fmt.Errorf("bulk put %d nodes: %w", len(nodes), err)
	}
	return nil
}
