package service

import (
	"context"
	"log/slog"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/service/placement"
)

// PlacementService implements sms.PlacementService over a placement.Placer:
// each method converts the request, makes one Placer call and converts the
// result; errors are mapped to Connect codes by connectError. Create it
// with NewPlacementService.
type PlacementService struct {
	placer *placement.Placer
	logger *slog.Logger
}

var (
	_ smspbconnect.PlacementServiceHandler = (*PlacementService)(nil)
	_ smspb.PlacementServiceServer         = (*PlacementService)(nil) // grpc-go's server, see NewGRPCServer
)

// NewPlacementService returns a PlacementService over placer. A nil logger
// discards logs.
func NewPlacementService(placer *placement.Placer, logger *slog.Logger) *PlacementService {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &PlacementService{placer: placer, logger: logger}
}

// PlaceInvocation ranks the eligible nodes and returns the best ones.
// Errors: invalid_argument, and the store errors of connectError.
func (s *PlacementService) PlaceInvocation(ctx context.Context, req *smspb.PlaceInvocationRequest) (*smspb.PlaceInvocationResponse, error) {
	d, err := s.placer.Place(ctx, placeRequestFromProto(req))
	if err != nil {
		return nil, connectError(ctx, s.logger, err)
	}
	return decisionToProto(d), nil
}

// ReportInvocationOutcome feeds an invocation's outcome into the node's
// penalty and answers accepted=true.
// Errors: invalid_argument, and the store errors of connectError.
func (s *PlacementService) ReportInvocationOutcome(ctx context.Context, req *smspb.ReportInvocationOutcomeRequest) (*smspb.ReportInvocationOutcomeResponse, error) {
	if err := s.placer.Report(ctx, reportFromProto(req)); err != nil {
		return nil, connectError(ctx, s.logger, err)
	}
	return &smspb.ReportInvocationOutcomeResponse{Accepted: true}, nil
}

func placeRequestFromProto(p *smspb.PlaceInvocationRequest) placement.Request {
	return placement.Request{
		RequestID:     p.GetRequestId(),
		TaskID:        p.GetTaskId(),
		MaxCandidates: int(p.GetMaxCandidates()),
		Labels:        p.GetLabels(),
	}
}

func decisionToProto(d placement.Decision) *smspb.PlaceInvocationResponse {
	out := &smspb.PlaceInvocationResponse{DecisionId: d.ID, Candidates: make([]*smspb.NodeCandidate, len(d.Candidates))}
	for i, c := range d.Candidates {
		out.Candidates[i] = &smspb.NodeCandidate{NodeUuid: c.NodeUUID, IpAddress: c.IPAddress, Port: c.Port, Score: c.Score}
	}
	return out
}

func reportFromProto(p *smspb.ReportInvocationOutcomeRequest) placement.Report {
	return placement.Report{
		DecisionID:   p.GetDecisionId(),
		RequestID:    p.GetRequestId(),
		TaskID:       p.GetTaskId(),
		NodeUUID:     p.GetNodeUuid(),
		Outcome:      placement.Outcome(p.GetOutcomeClass()),
		ErrorMessage: p.GetErrorMessage(),
	}
}

// ListPlacementPenalties returns the penalties in force.
// Errors: the store errors of connectError.
func (s *PlacementService) ListPlacementPenalties(ctx context.Context, _ *smspb.ListPlacementPenaltiesRequest) (*smspb.ListPlacementPenaltiesResponse, error) {
	ps, err := s.placer.Penalties(ctx)
	if err != nil {
		return nil, connectError(ctx, s.logger, err)
	}
	now := s.placer.Now()
	out := &smspb.ListPlacementPenaltiesResponse{Penalties: make([]*smspb.NodePenalty, len(ps))}
	for i, p := range ps {
		out.Penalties[i] = &smspb.NodePenalty{
			NodeUuid:            p.NodeUUID,
			ConsecutiveFailures: uint32(p.ConsecutiveFailures),
			Penalty:             p.Value(now),
			Blocked:             p.Blocked(now),
			BlockedUntil:        unixSeconds(p.BlockedUntil),
			LastFailure:         unixSeconds(p.LastFailure),
			ExpiresAt:           unixSeconds(p.ExpiresAt),
		}
	}
	return out, nil
}
