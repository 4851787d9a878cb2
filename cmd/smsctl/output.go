package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	smspb "github.com/spear-next/sms/gen/sms"
)

// jsonOptions spell fields as in node.proto (snake_case) and include zero
// values, so scripts can rely on every field being there.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// writeJSON writes one message as indented JSON.
func writeJSON(w io.Writer, m proto.Message) error {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// writeJSONArray writes messages as one indented JSON array.
func writeJSONArray[M proto.Message](w io.Writer, ms []M) error {
	var raw bytes.Buffer
	raw.WriteByte('[')
	for i, m := range ms {
		if i > 0 {
			raw.WriteByte(',')
		}
		b, err := jsonOptions.Marshal(m)
		if err != nil {
			return err
		}
		raw.Write(b)
	}
	raw.WriteByte(']')
	var out bytes.Buffer
	if err := json.Indent(&out, raw.Bytes(), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

// writeJSONLine writes one message as compact JSON on one line (a stream of
// them is NDJSON).
func writeJSONLine(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	// protojson may add spaces at random; compact them away.
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// writeNodes writes nodes as a table.
func writeNodes(w io.Writer, nodes []*smspb.Node, now time.Time) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "UUID\tSTATUS\tADDRESS\tPORT\tHTTP\tHEARTBEAT\tMETADATA\tHEALTH")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", n.GetUuid(), n.GetStatus(), n.GetIpAddress(),
			n.GetPort(), orDash(n.GetHttpPort()), age(n.GetLastHeartbeat(), now), pairs(n.GetMetadata()), pairs(n.GetHealthInfo()))
	}
	return tw.Flush()
}

// writeNode writes one node as "field: value" lines.
func writeNode(w io.Writer, n *smspb.Node, now time.Time) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "uuid:\t%s\n", n.GetUuid())
	fmt.Fprintf(tw, "status:\t%s\n", n.GetStatus())
	fmt.Fprintf(tw, "address:\t%s\n", n.GetIpAddress())
	fmt.Fprintf(tw, "port:\t%d\n", n.GetPort())
	fmt.Fprintf(tw, "http port:\t%s\n", orDash(n.GetHttpPort()))
	fmt.Fprintf(tw, "last heartbeat:\t%s (%s)\n", stamp(n.GetLastHeartbeat()), age(n.GetLastHeartbeat(), now))
	fmt.Fprintf(tw, "registered at:\t%s\n", stamp(n.GetRegisteredAt()))
	fmt.Fprintf(tw, "metadata:\t%s\n", pairs(n.GetMetadata()))
	fmt.Fprintf(tw, "health:\t%s\n", pairs(n.GetHealthInfo()))
	return tw.Flush()
}

// writeResources writes resource records as a table.
func writeResources(w io.Writer, rs []*smspb.NodeResource, now time.Time) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NODE\tCPU%\tMEM%\tMEM USED/TOTAL\tDISK%\tLOAD 1/5/15\tNET RX/TX B/s\tUPDATED")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%s/%s\t%.1f\t%.2f/%.2f/%.2f\t%d/%d\t%s\n", r.GetNodeUuid(),
			r.GetCpuUsagePercent(), r.GetMemoryUsagePercent(),
			bytesIEC(r.GetUsedMemoryBytes()), bytesIEC(r.GetTotalMemoryBytes()),
			r.GetDiskUsagePercent(),
			r.GetLoadAverage_1M(), r.GetLoadAverage_5M(), r.GetLoadAverage_15M(),
			r.GetNetworkRxBytesPerSec(), r.GetNetworkTxBytesPerSec(),
			age(r.GetUpdatedAt(), now))
	}
	return tw.Flush()
}

// age says how long ago the Unix time t was, in whole seconds or coarser.
func age(t int64, now time.Time) string {
	if t == 0 {
		return "never"
	}
	d := now.Sub(time.Unix(t, 0)).Round(time.Second)
	if d < 0 {
		d = 0
	}
	if d >= time.Hour {
		d = d.Round(time.Minute)
	}
	return d.String() + " ago"
}

func stamp(t int64) string {
	if t == 0 {
		return "-"
	}
	return time.Unix(t, 0).UTC().Format(time.RFC3339)
}

func orDash(port int32) string {
	if port == 0 {
		return "-"
	}
	return fmt.Sprint(port)
}

// pairs writes a map as sorted k=v pairs separated by commas.
func pairs(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + m[k])
	}
	return b.String()
}

func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ci", float64(n)/float64(div), "KMGTPE"[exp])
}
