package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	smspb "github.com/spear-next/sms/gen/sms"
)

// listPageSize is the page size nodes list uses to fetch every page.
const listPageSize = 1000

var nodesList = command{
	name: "nodes list", summary: "list nodes in uuid order (all pages unless --page-size)",
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		status := fs.String("status", "", "only nodes with this status (active, inactive, unhealthy, decommissioning)")
		labels := pairsFlag{}
		fs.Var(labels, "label", "only nodes whose metadata has key=value (repeatable; all must match)")
		pageSize := fs.Int("page-size", 0, "fetch one page of this size and print the next page token on stderr; 0 = every page")
		pageToken := fs.String("page-token", "", "continue after the page that returned this token (with --page-size)")
		return func(ctx context.Context, c *cli, args []string) error {
			if err := exactly(args, 0, "no arguments"); err != nil {
				return err
			}
			if *pageSize < 0 {
				return usagef("--page-size %d: want >= 0", *pageSize)
			}
			req := &smspb.ListNodesRequest{StatusFilter: *status, MetadataFilter: labels, PageToken: *pageToken, PageSize: int32(*pageSize)}
			if *pageSize == 0 {
				req.PageSize = listPageSize
			}
			var nodes []*smspb.Node
			for {
				resp, err := c.client.ListNodes(ctx, req)
				if err != nil {
					return err
				}
				nodes = append(nodes, resp.GetNodes()...)
				next := resp.GetNextPageToken()
				if *pageSize > 0 {
					if next != "" {
						fmt.Fprintf(c.stderr, "next page: --page-token %s\n", next)
					}
					break
				}
				if next == "" {
					break
				}
				req.PageToken = next
			}
			if c.json {
				return writeJSONArray(c.stdout, nodes)
			}
			return writeNodes(c.stdout, nodes, time.Now())
		}
	},
}

var nodesGet = command{
	name: "nodes get", args: "UUID", summary: "show one node",
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		return func(ctx context.Context, c *cli, args []string) error {
			if err := exactly(args, 1, "one node UUID"); err != nil {
				return err
			}
			n, err := getNode(ctx, c, args[0])
			if err != nil {
				return err
			}
			if c.json {
				return writeJSON(c.stdout, n)
			}
			return writeNode(c.stdout, n, time.Now())
		}
	},
}

// getNode returns the node or errNotFound.
func getNode(ctx context.Context, c *cli, uuid string) (*smspb.Node, error) {
	resp, err := c.client.GetNode(ctx, &smspb.GetNodeRequest{Uuid: uuid})
	if err != nil {
		return nil, err
	}
	if !resp.GetFound() {
		return nil, fmt.Errorf("%w: node %s", errNotFound, uuid)
	}
	return resp.GetNode(), nil
}

// nodeFlags are the settable fields of a node, for register and update.
type nodeFlags struct {
	ip       *string
	port     *int
	httpPort *int
	status   *string
	labels   pairsFlag
}

// registerNodeFlags registers the flags of a node's fields; statusUsage
// says what an absent --status means.
func registerNodeFlags(fs *flag.FlagSet, statusUsage string) *nodeFlags {
	f := &nodeFlags{
		ip:       fs.String("ip", "", "IP address or host name"),
		port:     fs.Int("port", 0, "gRPC port, 1..65535"),
		httpPort: fs.Int("http-port", 0, "HTTP port, 0..65535 (0 = none)"),
		status:   fs.String("status", "", statusUsage),
		labels:   pairsFlag{},
	}
	fs.Var(f.labels, "label", "metadata key=value (repeatable)")
	return f
}

var nodesRegister = command{
	name: "nodes register", summary: "register a node (or re-register --uuid); prints its uuid",
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		f := registerNodeFlags(fs, "active (default), inactive, unhealthy or decommissioning")
		uuid := fs.String("uuid", "", "the node's uuid (default: the server generates one)")
		return func(ctx context.Context, c *cli, args []string) error {
			if err := exactly(args, 0, "no arguments (use --ip, --port, ...)"); err != nil {
				return err
			}
			if *f.ip == "" || *f.port == 0 {
				return usagef("nodes register needs --ip and --port")
			}
			node := &smspb.Node{Uuid: *uuid, IpAddress: *f.ip, Port: int32(*f.port), HttpPort: int32(*f.httpPort),
				Status: *f.status, Metadata: f.labels}
			resp, err := c.client.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: node})
			if err != nil {
				return err
			}
			if c.json {
				return writeJSON(c.stdout, resp)
			}
			fmt.Fprintln(c.stdout, resp.GetNodeUuid())
			return nil
		}
	},
}

var nodesUpdate = command{
	name: "nodes update", args: "UUID", summary: "change a node's address, ports, status or metadata",
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		f := registerNodeFlags(fs, "active, inactive, unhealthy or decommissioning (default: kept)")
		var unlabel listFlag
		fs.Var(&unlabel, "unlabel", "remove this metadata key (repeatable)")
		replace := fs.Bool("replace-labels", false, "replace the metadata with the --label pairs instead of merging them")
		return func(ctx context.Context, c *cli, args []string) error {
			if err := exactly(args, 1, "one node UUID"); err != nil {
				return err
			}
			// UpdateNode replaces every field: start from the current node
			// and change what the flags say.
			n, err := getNode(ctx, c, args[0])
			if err != nil {
				return err
			}
			set := map[string]bool{}
			fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
			if set["ip"] {
				n.IpAddress = *f.ip
			}
			if set["port"] {
				n.Port = int32(*f.port)
			}
			if set["http-port"] {
				n.HttpPort = int32(*f.httpPort)
			}
			if set["status"] {
				n.Status = *f.status
			}
			if *replace || n.Metadata == nil {
				n.Metadata = map[string]string{}
			}
			for k, v := range f.labels {
				n.Metadata[k] = v
			}
			for _, k := range unlabel {
				delete(n.Metadata, k)
			}
			resp, err := c.client.UpdateNode(ctx, &smspb.UpdateNodeRequest{Uuid: args[0], Node: n})
			if err != nil {
				return err
			}
			return writeResult(c, resp, resp.GetMessage())
		}
	},
}

var nodesDelete = command{
	name: "nodes delete", args: "UUID", summary: "delete a node and its resource record",
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		return func(ctx context.Context, c *cli, args []string) error {
			if err := exactly(args, 1, "one node UUID"); err != nil {
				return err
			}
			resp, err := c.client.DeleteNode(ctx, &smspb.DeleteNodeRequest{Uuid: args[0]})
			if err != nil {
				return err
			}
			return writeResult(c, resp, resp.GetMessage())
		}
	},
}

var nodesHeartbeat = command{
	name: "nodes heartbeat", args: "UUID", summary: "send a heartbeat for a node",
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		health := pairsFlag{}
		fs.Var(health, "health", "health_info key=value (repeatable)")
		return func(ctx context.Context, c *cli, args []string) error {
			if err := exactly(args, 1, "one node UUID"); err != nil {
				return err
			}
			resp, err := c.client.Heartbeat(ctx, &smspb.HeartbeatRequest{
				Uuid: args[0], Timestamp: time.Now().Unix(), HealthInfo: health})
			if err != nil {
				return err
			}
			return writeResult(c, resp, resp.GetMessage())
		}
	},
}

var nodesWatch = command{
	name: "nodes watch", summary: "print node changes as they happen, until interrupted",
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		status := fs.String("status", "", "only nodes with this status")
		labels := pairsFlag{}
		fs.Var(labels, "label", "only nodes whose metadata has key=value (repeatable)")
		heartbeats := fs.Bool("heartbeats", false, "also print heartbeats")
		return func(ctx context.Context, c *cli, uuids []string) error {
			stream, err := c.client.WatchNodes(ctx, &smspb.WatchNodesRequest{
				Uuids: uuids, StatusFilter: *status, MetadataFilter: labels, IncludeHeartbeats: *heartbeats})
			if err != nil {
				return err
			}
			defer stream.Close()
			for stream.Receive() {
				ev := stream.Msg()
				if c.json {
					err = writeJSONLine(c.stdout, ev)
				} else {
					err = writeEvent(c, ev)
				}
				if err != nil {
					return err
				}
			}
			err = stream.Err()
			if ctx.Err() != nil {
				return nil // interrupted: the normal end
			}
			if err == nil {
				return errors.New("the server ended the watch")
			}
			return err
		}
	},
}

func writeEvent(c *cli, ev *smspb.WatchNodesResponse) error {
	n := ev.GetNode()
	kind := ev.GetKind().String()
	kind = kind[len("KIND_"):]
	if ev.GetKind() == smspb.WatchNodesResponse_KIND_SNAPSHOT_END {
		_, err := fmt.Fprintf(c.stdout, "%s %s\n", time.Now().Format(time.TimeOnly), kind)
		return err
	}
	status := n.GetStatus()
	if ev.GetPreviousStatus() != "" {
		status = ev.GetPreviousStatus() + "->" + status
	}
	_, err := fmt.Fprintf(c.stdout, "%s %-14s %s %-22s %s:%d %s\n", time.Now().Format(time.TimeOnly), kind,
		n.GetUuid(), status, n.GetIpAddress(), n.GetPort(), pairs(n.GetMetadata()))
	return err
}

// writeResult prints a mutation's response: its message, or the JSON.
func writeResult(c *cli, resp interface{ GetSuccess() bool }, msg string) error {
	if c.json {
		return writeJSON(c.stdout, resp.(protoMessage))
	}
	_, err := fmt.Fprintln(c.stdout, msg)
	return err
}
