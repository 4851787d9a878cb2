package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	smspb "github.com/spear-next/sms/gen/sms"
)

type protoMessage = proto.Message

var resourcesGet = command{
	name: "resources get", args: "UUID", summary: "show a node's latest resource report",
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		return func(ctx context.Context, c *cli, args []string) error {
			if err := exactly(args, 1, "one node UUID"); err != nil {
				return err
			}
			resp, err := c.client.GetNodeResource(ctx, &smspb.GetNodeResourceRequest{NodeUuid: args[0]})
			if err != nil {
				return err
			}
			if !resp.GetFound() {
				return fmt.Errorf("%w: no resource report for node %s", errNotFound, args[0])
			}
			if c.json {
				return writeJSON(c.stdout, resp.GetResource())
			}
			return writeResources(c.stdout, []*smspb.NodeResource{resp.GetResource()}, time.Now())
		}
	},
}

var resourcesList = command{
	name: "resources list", args: "[UUID...]", summary: "list resource reports (all, or of the given nodes)",
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		return func(ctx context.Context, c *cli, uuids []string) error {
			req := &smspb.ListNodeResourcesRequest{NodeUuids: uuids}
			if len(uuids) == 0 {
				req.PageSize = listPageSize // pages are only for "all records"
			}
			var rs []*smspb.NodeResource
			for {
				resp, err := c.client.ListNodeResources(ctx, req)
				if err != nil {
					return err
				}
				rs = append(rs, resp.GetResources()...)
				if resp.GetNextPageToken() == "" {
					break
				}
				req.PageToken = resp.GetNextPageToken()
			}
			if c.json {
				return writeJSONArray(c.stdout, rs)
			}
			return writeResources(c.stdout, rs, time.Now())
		}
	},
}

var resourcesUpdate = command{
	name: "resources update", args: "UUID", summary: "report a node's resource usage (fields not given are 0)",
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		r := &smspb.NodeResource{}
		fs.Float64Var(&r.CpuUsagePercent, "cpu", 0, "CPU usage, percent")
		fs.Float64Var(&r.MemoryUsagePercent, "memory", 0, "memory usage, percent")
		fs.Int64Var(&r.TotalMemoryBytes, "memory-total", 0, "total memory, bytes")
		fs.Int64Var(&r.UsedMemoryBytes, "memory-used", 0, "used memory, bytes")
		fs.Int64Var(&r.AvailableMemoryBytes, "memory-available", 0, "available memory, bytes")
		fs.Float64Var(&r.DiskUsagePercent, "disk", 0, "disk usage, percent")
		fs.Int64Var(&r.TotalDiskBytes, "disk-total", 0, "total disk, bytes")
		fs.Int64Var(&r.UsedDiskBytes, "disk-used", 0, "used disk, bytes")
		fs.Int64Var(&r.NetworkRxBytesPerSec, "net-rx", 0, "network receive, bytes/s")
		fs.Int64Var(&r.NetworkTxBytesPerSec, "net-tx", 0, "network transmit, bytes/s")
		fs.Float64Var(&r.LoadAverage_1M, "load1", 0, "load average, 1 minute")
		fs.Float64Var(&r.LoadAverage_5M, "load5", 0, "load average, 5 minutes")
		fs.Float64Var(&r.LoadAverage_15M, "load15", 0, "load average, 15 minutes")
		meta := pairsFlag{}
		fs.Var(meta, "meta", "resource_metadata key=value (repeatable)")
		return func(ctx context.Context, c *cli, args []string) error {
			if err := exactly(args, 1, "one node UUID"); err != nil {
				return err
			}
			r.NodeUuid = args[0]
			r.ResourceMetadata = meta
			resp, err := c.client.UpdateNodeResource(ctx, &smspb.UpdateNodeResourceRequest{Resource: r})
			if err != nil {
				return err
			}
			return writeResult(c, resp, resp.GetMessage())
		}
	},
}

var stats = command{
	name: "stats", summary: "show cluster statistics",
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		return func(ctx context.Context, c *cli, args []string) error {
			if err := exactly(args, 0, "no arguments"); err != nil {
				return err
			}
			s, err := c.client.GetClusterStats(ctx, &smspb.GetClusterStatsRequest{})
			if err != nil {
				return err
			}
			if c.json {
				return writeJSON(c.stdout, s)
			}
			tw := newTable(c.stdout)
			fmt.Fprintf(tw, "nodes:\t%d\n", s.GetTotalNodes())
			for _, st := range []string{"active", "inactive", "unhealthy", "decommissioning"} {
				fmt.Fprintf(tw, "  %s:\t%d\n", st, s.GetNodesByStatus()[st])
			}
			fmt.Fprintf(tw, "nodes with resources:\t%d\n", s.GetNodesWithResources())
			fmt.Fprintf(tw, "average cpu:\t%.1f%%\n", s.GetAverageCpuUsagePercent())
			fmt.Fprintf(tw, "average memory:\t%.1f%%\n", s.GetAverageMemoryUsagePercent())
			fmt.Fprintf(tw, "memory used/total:\t%s/%s\n", bytesIEC(s.GetUsedMemoryBytes()), bytesIEC(s.GetTotalMemoryBytes()))
			fmt.Fprintf(tw, "high-load nodes:\t%d\n", s.GetHighLoadNodes())
			return tw.Flush()
		}
	},
}
