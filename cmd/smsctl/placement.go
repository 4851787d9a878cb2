package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	smspb "github.com/spear-next/sms/gen/sms"
)

var place = command{
	name: "place", summary: "choose nodes for an invocation (PlaceInvocation), best first",
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		requestID := fs.String("request-id", "", "the invocation's request id (default: a fresh uuid)")
		taskID := fs.String("task-id", "smsctl", "the invocation's task id")
		max := fs.Uint("max", 0, "the most candidates wanted; 0 = the server's default (3)")
		labels := pairsFlag{}
		fs.Var(labels, "label", "only nodes whose metadata has key=value (repeatable; all must match)")
		return func(ctx context.Context, c *cli, args []string) error {
			if err := exactly(args, 0, "no arguments"); err != nil {
				return err
			}
			if *max > 1<<32-1 {
				return usagef("--max %d: too large", *max)
			}
			if *requestID == "" {
				*requestID = uuid.NewString()
			}
			resp, err := c.placement.PlaceInvocation(ctx, &smspb.PlaceInvocationRequest{
				RequestId: *requestID, TaskId: *taskID, MaxCandidates: uint32(*max), Labels: labels})
			if err != nil {
				return err
			}
			if c.json {
				return writeJSON(c.stdout, resp)
			}
			return writeDecision(c.stdout, resp)
		}
	},
}

// outcomeNames are the outcome classes by their short, lower-case names.
var outcomeNames = func() map[string]smspb.InvocationOutcomeClass {
	m := map[string]smspb.InvocationOutcomeClass{}
	for v, name := range smspb.InvocationOutcomeClass_name {
		m[strings.ToLower(strings.TrimPrefix(name, "INVOCATION_OUTCOME_CLASS_"))] = smspb.InvocationOutcomeClass(v)
	}
	return m
}()

var placeReport = command{
	name: "place report", args: "NODE_UUID OUTCOME",
	summary: "report an invocation's outcome (success clears the node's penalty; overloaded, unavailable, timeout add to it)",
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		decisionID := fs.String("decision-id", "smsctl", "the decision the invocation came from")
		requestID := fs.String("request-id", "smsctl", "the invocation's request id")
		taskID := fs.String("task-id", "smsctl", "the invocation's task id")
		message := fs.String("message", "", "the invocation's error message")
		return func(ctx context.Context, c *cli, args []string) error {
			if err := exactly(args, 2, "a node UUID and an outcome"); err != nil {
				return err
			}
			outcome, ok := outcomeNames[strings.ToLower(args[1])]
			if !ok {
				return usagef("outcome %q: want success, overloaded, unavailable, timeout, rejected, bad_request, internal or unknown", args[1])
			}
			_, err := c.placement.ReportInvocationOutcome(ctx, &smspb.ReportInvocationOutcomeRequest{
				DecisionId: *decisionID, RequestId: *requestID, TaskId: *taskID, NodeUuid: args[0],
				OutcomeClass: outcome, ErrorMessage: *message})
			return err
		}
	},
}

var penalties = command{
	name: "place penalties", summary: "show the placement penalties in force (nodes with recent failures)",
	flags: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		return func(ctx context.Context, c *cli, args []string) error {
			if err := exactly(args, 0, "no arguments"); err != nil {
				return err
			}
			resp, err := c.placement.ListPlacementPenalties(ctx, &smspb.ListPlacementPenaltiesRequest{})
			if err != nil {
				return err
			}
			if c.json {
				return writeJSONArray(c.stdout, resp.GetPenalties())
			}
			return writePenalties(c.stdout, resp.GetPenalties(), time.Now())
		}
	},
}

// writeDecision writes a placement decision: its id, then the candidates.
func writeDecision(w io.Writer, d *smspb.PlaceInvocationResponse) error {
	fmt.Fprintf(w, "decision %s\n", d.GetDecisionId())
	tw := newTable(w)
	fmt.Fprintln(tw, "RANK\tNODE\tADDRESS\tPORT\tSCORE")
	for i, c := range d.GetCandidates() {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%.2f\n", i+1, c.GetNodeUuid(), c.GetIpAddress(), c.GetPort(), c.GetScore())
	}
	return tw.Flush()
}

// writePenalties writes penalties as a table.
func writePenalties(w io.Writer, ps []*smspb.NodePenalty, now time.Time) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NODE\tFAILURES\tPENALTY\tBLOCKED\tLAST FAILURE\tFORGOTTEN IN")
	for _, p := range ps {
		blocked := "no"
		if p.GetBlocked() {
			blocked = "for " + until(p.GetBlockedUntil(), now)
		}
		fmt.Fprintf(tw, "%s\t%d\t%g\t%s\t%s\t%s\n", p.GetNodeUuid(), p.GetConsecutiveFailures(), p.GetPenalty(),
			blocked, age(p.GetLastFailure(), now), until(p.GetExpiresAt(), now))
	}
	return tw.Flush()
}

// until says how long until the Unix time t, in whole seconds.
func until(t int64, now time.Time) string {
	d := max(time.Unix(t, 0).Sub(now).Round(time.Second), 0)
	return d.String()
}
