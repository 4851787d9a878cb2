package service_test

import (
	"testing"
	"time"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/placement"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// TestPlacementService drives sms.PlacementService through the generated
// client, once per backend and protocol: ranking, a blocked node leaving
// and coming back (on an injected clock), SUCCESS clearing the penalty,
// bad requests, and a second server on the same store placing with the
// first one's penalty.
func TestPlacementService(t *testing.T) {
	for _, backend := range storetest.Backends {
		for _, p := range protocols {
			t.Run(backend+"/"+p.Name, func(t *testing.T) {
				t.Parallel()
				store := openStore(t, backend)
				clock := testutil.NewClock(t0)
				withClock := func(c *service.Config) {
					view := registry.NewView(store, registry.WithClock(clock.Now))
					t.Cleanup(view.Close)
					_ = view.WaitLoaded(t.Context())
					c.Nodes, c.Resources = view.Nodes(), view.Resources()
					c.Placer = placement.New(store, c.Nodes, c.Resources, placement.Options{Now: clock.Now})
				}
				e := newEnv(t, store, p, withClock)
				other := newEnv(t, store, p, withClock) // a second replica
				ctx := t.Context()
				place := smspbconnect.NewPlacementServiceClient(e.http, e.rpcURL, p.Opts...)
				placeOther := smspbconnect.NewPlacementServiceClient(other.http, other.rpcURL, p.Opts...)

				register := func(ip string, cpu float64) string {
					t.Helper()
					id := must(e.client.RegisterNode(ctx, &smspb.RegisterNodeRequest{
						Node: &smspb.Node{IpAddress: ip, Port: 7000}}))(t).GetNodeUuid()
					must(e.client.UpdateNodeResource(ctx, &smspb.UpdateNodeResourceRequest{
						Resource: &smspb.NodeResource{NodeUuid: id, CpuUsagePercent: cpu}}))(t)
					return id
				}
				busy := register("10.0.0.1", 60) // 70
				idle := register("10.0.0.2", 0)  // 100
				mid := register("10.0.0.3", 20)  // 90

				candidates := func(c smspbconnect.PlacementServiceClient, n uint32) []string {
					t.Helper()
					resp := must(c.PlaceInvocation(ctx, &smspb.PlaceInvocationRequest{RequestId: "r", TaskId: "t", MaxCandidates: n}))(t)
					if len(resp.GetDecisionId()) != 36 {
						t.Fatalf("decision_id %q, want a uuid", resp.GetDecisionId())
					}
					var out []string
					for _, c := range resp.GetCandidates() {
						if c.GetPort() != 7000 || c.GetNodeUuid() == "" {
							t.Fatalf("candidate %v", c)
						}
						out = append(out, c.GetIpAddress())
					}
					return out
				}
				report := func(node string, o smspb.InvocationOutcomeClass) {
					t.Helper()
					resp := must(place.ReportInvocationOutcome(ctx, &smspb.ReportInvocationOutcomeRequest{
						DecisionId: "d", RequestId: "r", TaskId: "t", NodeUuid: node, OutcomeClass: o}))(t)
					if !resp.GetAccepted() {
						t.Fatalf("ReportInvocationOutcome: accepted false")
					}
				}

				wantOrder(t, "by load, default 3", candidates(place, 0), "10.0.0.2", "10.0.0.3", "10.0.0.1")
				wantOrder(t, "max 2", candidates(place, 2), "10.0.0.2", "10.0.0.3")

				report(idle, smspb.InvocationOutcomeClass_INVOCATION_OUTCOME_CLASS_OVERLOADED)
				wantOrder(t, "blocked", candidates(place, 0), "10.0.0.3", "10.0.0.1")
				wantOrder(t, "the other replica sees the block", candidates(placeOther, 0), "10.0.0.3", "10.0.0.1")
				pens := must(placeOther.ListPlacementPenalties(ctx, &smspb.ListPlacementPenaltiesRequest{}))(t).GetPenalties()
				if len(pens) != 1 || pens[0].GetNodeUuid() != idle || !pens[0].GetBlocked() || pens[0].GetPenalty() != 10 ||
					pens[0].GetConsecutiveFailures() != 1 || pens[0].GetBlockedUntil() != t0.Unix()+20 {
					t.Fatalf("ListPlacementPenalties = %v, want %s blocked until t0+20s after 1 failure", pens, idle)
				}
				clock.Advance(20 * time.Second)
				for _, id := range []string{busy, idle, mid} {
					must(e.client.Heartbeat(ctx, &smspb.HeartbeatRequest{Uuid: id}))(t)
				}
				// Back after 20 s with one failure: 100 - 5 = 95.
				wantOrder(t, "back after the backoff", candidates(place, 0), "10.0.0.2", "10.0.0.3", "10.0.0.1")
				resp := must(placeOther.PlaceInvocation(ctx, &smspb.PlaceInvocationRequest{RequestId: "r", TaskId: "t", MaxCandidates: 1}))(t)
				if got := resp.GetCandidates()[0].GetScore(); got != 95 {
					t.Fatalf("score after one failure = %v, want 95", got)
				}
				report(idle, smspb.InvocationOutcomeClass_INVOCATION_OUTCOME_CLASS_SUCCESS)
				resp = must(placeOther.PlaceInvocation(ctx, &smspb.PlaceInvocationRequest{RequestId: "r", TaskId: "t", MaxCandidates: 1}))(t)
				if got := resp.GetCandidates()[0].GetScore(); got != 100 {
					t.Fatalf("score after SUCCESS = %v, want 100", got)
				}

				_, err := place.PlaceInvocation(ctx, &smspb.PlaceInvocationRequest{TaskId: "t"})
				wantCode(t, err, connect.CodeInvalidArgument)
				_, err = place.PlaceInvocation(ctx, &smspb.PlaceInvocationRequest{RequestId: "r"})
				wantCode(t, err, connect.CodeInvalidArgument)
				_, err = place.ReportInvocationOutcome(ctx, &smspb.ReportInvocationOutcomeRequest{DecisionId: "d", RequestId: "r", TaskId: "t"})
				wantCode(t, err, connect.CodeInvalidArgument)
				_, err = place.ReportInvocationOutcome(ctx, &smspb.ReportInvocationOutcomeRequest{DecisionId: "d", RequestId: "r",
					TaskId: "t", NodeUuid: "nope", OutcomeClass: smspb.InvocationOutcomeClass_INVOCATION_OUTCOME_CLASS_TIMEOUT})
				wantCode(t, err, connect.CodeInvalidArgument)
			})
		}
	}
}

func TestPlacementServiceNeedsToken(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, openStore(t, "memory"), p, func(c *service.Config) { c.AuthToken = "s3cret" })
			place := smspbconnect.NewPlacementServiceClient(e.http, e.rpcURL, p.Opts...)
			_, err := place.PlaceInvocation(t.Context(), &smspb.PlaceInvocationRequest{RequestId: "r", TaskId: "t"})
			wantCode(t, err, connect.CodeUnauthenticated)
		})
	}
}

func wantOrder(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: candidates %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: candidates %v, want %v", what, got, want)
		}
	}
}
