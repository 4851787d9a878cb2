// Package client is the Go client of SMS: a [Client] over the generated
// Connect client of sms.NodeService, speaking Connect, gRPC or gRPC-web, with
// a bearer token, TLS or mutual TLS, a deadline on every call, and retries of
// idempotent calls while the server is unavailable; and an [Agent] that keeps
// one node registered, heartbeating and reporting its resources.
//
// The typed methods (Register, Heartbeat, GetNode, ListNodes, ReportResource,
// ...) take and return plain Go types ([Node], [Resource], [ClusterStats]);
// [Client.NodeService] gives the generated client, with the same deadline,
// retry and token policy, for everything else (WatchNodes, paging by hand);
// [Client.PlacementService] gives sms.PlacementService's.
//
// Errors: every error of a call carries a Connect code, so
// connect.CodeOf(err) works on it (connect.CodeNotFound for an absent node,
// connect.CodeUnavailable for a server that cannot be reached, ...); the
// message says what the call was doing. Two mistakes of configuration are
// named: [ErrServerSpeaksTLS] and [ErrClientCertRequired].
//
// Retries: only calls that can be repeated without changing their outcome
// are retried, and only when they failed with unavailable: GetNode,
// ListNodes, GetNodeResource, ListNodeResources, GetNodeWithResource,
// GetClusterStats, Heartbeat, UpdateNode, UpdateNodeResource, and
// RegisterNode with a uuid (an upsert). RegisterNode without a uuid (the
// server would create a second node) and DeleteNode (a repeat would answer
// not_found) are never retried. Retries wait a jittered exponential backoff
// and end at the call's deadline.
package client
