package service

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/service/placement"
)

// The placement routes of the SPEAR HTTP gateway: the two requests and
// answers of sms.PlacementService as snake_case JSON.

type placeBody struct {
	RequestID     string            `json:"request_id"`
	TaskID        string            `json:"task_id"`
	MaxCandidates uint32            `json:"max_candidates"`
	Labels        map[string]string `json:"labels"`
}

type candidateJSON struct {
	NodeUUID  string  `json:"node_uuid"`
	IPAddress string  `json:"ip_address"`
	Port      int32   `json:"port"`
	Score     float64 `json:"score"`
}

type decisionJSON struct {
	DecisionID string          `json:"decision_id"`
	Candidates []candidateJSON `json:"candidates"`
}

func (g *gateway) place(r *http.Request) (int, any, error) {
	if _, err := query(r); err != nil {
		return 0, nil, err
	}
	var b placeBody
	if err := g.decodeBody(r, &b); err != nil {
		return 0, nil, err
	}
	d, err := g.placer.Place(r.Context(), placement.Request{
		RequestID:     b.RequestID,
		TaskID:        b.TaskID,
		MaxCandidates: int(b.MaxCandidates),
		Labels:        b.Labels,
	})
	if err != nil {
		return 0, nil, err
	}
	out := decisionJSON{DecisionID: d.ID, Candidates: make([]candidateJSON, len(d.Candidates))}
	for i, c := range d.Candidates {
		out.Candidates[i] = candidateJSON(c)
	}
	return http.StatusOK, out, nil
}

// outcomeJSON reads an outcome class as its enum name
// ("INVOCATION_OUTCOME_CLASS_TIMEOUT"), its short name ("TIMEOUT", any
// case) or its number.
type outcomeJSON placement.Outcome

func (o *outcomeJSON) UnmarshalJSON(data []byte) error {
	var n int32
	if err := json.Unmarshal(data, &n); err == nil {
		*o = outcomeJSON(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("outcome_class: want an outcome name or number, got %s", clip(string(data)))
	}
	name := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(name, "INVOCATION_OUTCOME_CLASS_") {
		name = "INVOCATION_OUTCOME_CLASS_" + name
	}
	v, ok := smspb.InvocationOutcomeClass_value[name]
	if !ok {
		return fmt.Errorf("outcome_class: unknown outcome %q; want SUCCESS, OVERLOADED, UNAVAILABLE, TIMEOUT, REJECTED, BAD_REQUEST, INTERNAL or UNKNOWN", clip(s))
	}
	*o = outcomeJSON(v)
	return nil
}

type reportBody struct {
	DecisionID   string      `json:"decision_id"`
	RequestID    string      `json:"request_id"`
	TaskID       string      `json:"task_id"`
	NodeUUID     string      `json:"node_uuid"`
	OutcomeClass outcomeJSON `json:"outcome_class"`
	ErrorMessage string      `json:"error_message"`
}

func (g *gateway) reportOutcome(r *http.Request) (int, any, error) {
	if _, err := query(r); err != nil {
		return 0, nil, err
	}
	var b reportBody
	if err := g.decodeBody(r, &b); err != nil {
		return 0, nil, err
	}
	err := g.placer.Report(r.Context(), placement.Report{
		DecisionID:   b.DecisionID,
		RequestID:    b.RequestID,
		TaskID:       b.TaskID,
		NodeUUID:     b.NodeUUID,
		Outcome:      placement.Outcome(b.OutcomeClass),
		ErrorMessage: b.ErrorMessage,
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, struct {
		Accepted bool `json:"accepted"`
	}{true}, nil
}
