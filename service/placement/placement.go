// Package placement chooses nodes for invocations, as SPEAR's
// sms.PlacementService does: it ranks the live nodes of the registry by
// their resource load and by a penalty for recent failures that invokers
// report, and remembers both its decisions and the penalties in the
// registry's store, so that every SMS replica sharing the store places with
// the same penalties. It speaks plain Go types; the wire lives in package
// service.
//
// Key layout (namespaces of their own next to the registry's):
//
//	placement-decision:<decision uuid>  a placement answer, for ten minutes
//	placement-penalty:<node uuid>       a node's failure record, for an hour after its last failure
//
// Decision ids are version-7 UUIDs, so decision keys sort by creation time
// and the oldest are the first of the range. Every record carries its expiry
// time: a reader ignores an expired record, and Sweep deletes them.
package placement

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/sethvargo/go-retry"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

// The rules, as SPEAR has them.
const (
	// DefaultMaxCandidates is how many candidates Place returns when the
	// request asks for 0.
	DefaultMaxCandidates = 3
	// DecisionTTL is how long a decision is remembered.
	DecisionTTL = 10 * time.Minute
	// MaxDecisions is the most decisions remembered; Sweep deletes the
	// oldest beyond it.
	MaxDecisions = 10000
	// PenaltyTTL is how long a node's failures are remembered after its
	// last one.
	PenaltyTTL = time.Hour
	// MaxBlock is the longest a node is blocked after failures.
	MaxBlock = 300 * time.Second
	// MaxLabels is the most labels a placement request may carry.
	MaxLabels = registry.MaxMetadataEntries
)

// Key prefixes.
const (
	decisionPrefix = "placement-decision:"
	penaltyPrefix  = "placement-penalty:"
)

func decisionKey(id string) []byte { return []byte(decisionPrefix + id) }
func penaltyKey(id string) []byte  { return []byte(penaltyPrefix + id) }

// Outcome classifies how an invocation on a placed node ended.
type Outcome int32

// The outcome classes, with SPEAR's numbers.
const (
	OutcomeUnknown Outcome = iota
	OutcomeSuccess
	OutcomeOverloaded
	OutcomeUnavailable
	OutcomeTimeout
	OutcomeRejected
	OutcomeBadRequest
	OutcomeInternal
)

// failure reports whether o counts against the node: the node was too busy
// or unreachable, not the invocation at fault.
func (o Outcome) failure() bool {
	return o == OutcomeOverloaded || o == OutcomeUnavailable || o == OutcomeTimeout
}

// Request asks for candidate nodes for one invocation.
type Request struct {
	RequestID string // required
	TaskID    string // required
	// MaxCandidates is the most candidates wanted; 0 means
	// DefaultMaxCandidates.
	MaxCandidates int
	// Labels select nodes: every label must equal the node's metadata
	// value of the same key.
	Labels map[string]string
}

// Candidate is one node a decision offers, with its score (higher is
// better, at most 100).
type Candidate struct {
	NodeUUID  string
	IPAddress string
	Port      int32
	Score     float64
}

// Decision is Place's answer: its id and the candidates, best first.
type Decision struct {
	ID         string
	Candidates []Candidate
}

// Report tells how an invocation placed by a decision ended on one node.
type Report struct {
	DecisionID   string // required
	RequestID    string // required
	TaskID       string // required
	NodeUUID     string // required, any spelling uuid.Parse accepts
	Outcome      Outcome
	ErrorMessage string
}

// Penalty is a node's remembered failures.
type Penalty struct {
	NodeUUID            string
	ConsecutiveFailures int
	LastFailure         time.Time
	BlockedUntil        time.Time // the zero time if never blocked
	ExpiresAt           time.Time // when the record is forgotten
}

// Blocked reports whether the node is blocked at now.
func (p Penalty) Blocked(now time.Time) bool { return now.Before(p.BlockedUntil) }

// Value is the penalty's part of the score at now: 10 while blocked, else
// the consecutive failures, at most 10.
func (p Penalty) Value(now time.Time) float64 {
	if p.Blocked(now) {
		return 10
	}
	return float64(min(p.ConsecutiveFailures, 10))
}

// blockFor is how long a node is blocked after its failures-th consecutive
// failure: 10·2^min(failures, 5) seconds, at most MaxBlock (20 s after the
// first).
func blockFor(failures int) time.Duration {
	return min(10*time.Second<<min(failures, 5), MaxBlock)
}

// Score is a node's score: 100 less its load (CPU, memory and disk
// percentages and the 1-minute load average, each capped) less 5 per
// penalty point. A node without a resource report scores as if idle.
func Score(res registry.Resource, penalty float64) float64 {
	return 100 -
		0.5*math.Min(res.CPUUsagePercent, 100) -
		0.3*math.Min(res.MemoryUsagePercent, 100) -
		0.1*math.Min(res.DiskUsagePercent, 100) -
		10*math.Min(res.LoadAverage1m, 16)/16 -
		5*penalty
}

// Options configure a Placer.
type Options struct {
	// HeartbeatTimeout: only nodes heard from within it are candidates.
	// Zero means registry.DefaultHeartbeatTimeout; use the sweeper's.
	HeartbeatTimeout time.Duration
	// Now is the clock; nil means time.Now. Tests inject one, and should
	// give the registries the same.
	Now func() time.Time
}

// Placer places invocations on the nodes of a registry. It is safe for
// concurrent use, also by several processes sharing one store.
type Placer struct {
	store     sqlkv.Store
	nodes     *registry.NodeRegistry
	resources *registry.NodeResourceRegistry
	timeout   time.Duration
	now       func() time.Time
}

// New returns a Placer over the registries and their store.
func New(store sqlkv.Store, nodes *registry.NodeRegistry, resources *registry.NodeResourceRegistry, opts Options) *Placer {
	p := &Placer{store: store, nodes: nodes, resources: resources, timeout: opts.HeartbeatTimeout, now: opts.Now}
	if p.timeout <= 0 {
		p.timeout = registry.DefaultHeartbeatTimeout
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p
}

// Now is the placer's clock, by which penalties are judged.
func (p *Placer) Now() time.Time { return p.now() }

func invalid(field, reason string) error {
	return &registry.ValidationError{Field: field, Reason: reason}
}

// Place ranks the candidates for req and remembers the decision. Candidates
// are the nodes that are active, have sent a heartbeat within the heartbeat
// timeout, match req.Labels and are not blocked; they are ordered by Score,
// best first (ties by uuid), and at most MaxCandidates are returned. No
// candidate is not an error: the decision has none.
//
// It reads every node, resource report and penalty (three range reads).
//
// Errors: a *registry.ValidationError (registry.ErrInvalid) for a missing
// request_id or task_id, a negative max_candidates or bad labels; store
// errors, wrapped.
func (p *Placer) Place(ctx context.Context, req Request) (Decision, error) {
	switch {
	case req.RequestID == "":
		return Decision{}, invalid("request_id", "required")
	case req.TaskID == "":
		return Decision{}, invalid("task_id", "required")
	case req.MaxCandidates < 0:
		return Decision{}, invalid("max_candidates", fmt.Sprintf("must not be negative, got %d", req.MaxCandidates))
	case len(req.Labels) > MaxLabels:
		return Decision{}, invalid("labels", fmt.Sprintf("at most %d entries, got %d", MaxLabels, len(req.Labels)))
	}
	limit := req.MaxCandidates
	if limit == 0 {
		limit = DefaultMaxCandidates
	}
	now := p.now()
	nodes, err := p.nodes.List(ctx, registry.ListOptions{Status: string(registry.StatusActive), Metadata: req.Labels})
	if err != nil {
		return Decision{}, fmt.Errorf("place: %w", err)
	}
	resources, err := p.resources.List(ctx, nil)
	if err != nil {
		return Decision{}, fmt.Errorf("place: %w", err)
	}
	penalties, err := p.penalties(ctx, now)
	if err != nil {
		return Decision{}, fmt.Errorf("place: %w", err)
	}
	byNode := make(map[string]registry.Resource, len(resources))
	for _, r := range resources {
		byNode[r.NodeUUID] = r
	}

	fresh := now.Add(-p.timeout)
	cands := make([]Candidate, 0, len(nodes))
	for _, n := range nodes {
		if n.LastHeartbeat.Before(fresh) {
			continue
		}
		pen := penalties[n.UUID]
		if pen.Blocked(now) {
			continue
		}
		cands = append(cands, Candidate{
			NodeUUID:  n.UUID,
			IPAddress: n.IPAddress,
			Port:      n.Port,
			Score:     Score(byNode[n.UUID], pen.Value(now)),
		})
	}
	slices.SortFunc(cands, func(a, b Candidate) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.NodeUUID, b.NodeUUID)
	})
	cands = cands[:min(len(cands), limit)]

	id, err := uuid.NewV7()
	if err != nil {
		return Decision{}, fmt.Errorf("place: decision id: %w", err)
	}
	rec := decisionRecord{RequestID: req.RequestID, TaskID: req.TaskID, ExpiresAt: now.Add(DecisionTTL).UnixNano()}
	for _, c := range cands {
		rec.Nodes = append(rec.Nodes, c.NodeUUID)
	}
	if _, err := sqlkv.PutValue(ctx, p.store, decisionKey(id.String()), encode(rec)); err != nil {
		return Decision{}, fmt.Errorf("place: remember decision: %w", err)
	}
	return Decision{ID: id.String(), Candidates: cands}, nil
}

// Report records how an invocation ended: SUCCESS clears the node's
// penalty; OVERLOADED, UNAVAILABLE and TIMEOUT add a consecutive failure and
// block the node (see blockFor); other outcomes change nothing. Neither the
// decision nor the node need still exist (an invoker reports late, and
// SPEAR accepts it too).
//
// Concurrent reports for one node are each counted: the penalty record is
// written conditionally on the version read and retried on conflict.
//
// Errors: a *registry.ValidationError (registry.ErrInvalid) for a missing
// id, a malformed node uuid or an unknown outcome; store errors, wrapped.
func (p *Placer) Report(ctx context.Context, rep Report) error {
	switch {
	case rep.DecisionID == "":
		return invalid("decision_id", "required")
	case rep.RequestID == "":
		return invalid("request_id", "required")
	case rep.TaskID == "":
		return invalid("task_id", "required")
	case rep.Outcome < OutcomeUnknown || rep.Outcome > OutcomeInternal:
		return invalid("outcome_class", fmt.Sprintf("unknown outcome %d", rep.Outcome))
	}
	id, err := registry.CanonicalUUID(rep.NodeUUID)
	if err != nil {
		var ve *registry.ValidationError
		if errors.As(err, &ve) {
			return invalid("node_uuid", ve.Reason)
		}
		return err
	}
	switch {
	case rep.Outcome == OutcomeSuccess:
		if _, err := sqlkv.DeleteKey(ctx, p.store, penaltyKey(id)); err != nil {
			return fmt.Errorf("report success on %s: %w", id, err)
		}
		return nil
	case !rep.Outcome.failure():
		return nil
	}
	// Conflicts mean another replica reported on this node between our
	// read and write: re-read and count ours on top of theirs.
	backoff := retry.WithMaxRetries(15, retry.WithFullJitter(retry.WithCappedDuration(10*time.Millisecond,
		retry.NewExponential(100*time.Microsecond))))
	err = retry.Do(ctx, backoff, func(ctx context.Context) error {
		now := p.now()
		e, err := p.store.Get(ctx, penaltyKey(id))
		var rec penaltyRecord
		switch {
		case errors.Is(err, sqlkv.ErrNotFound):
		case err != nil:
			return err
		default:
			if rec, err = decode[penaltyRecord](e.Value); err != nil {
				return err
			}
			if rec.ExpiresAt <= now.UnixNano() {
				rec = penaltyRecord{}
			}
		}
		rec.Failures++
		rec.LastFailure = now.UnixNano()
		rec.BlockedUntil = now.Add(blockFor(rec.Failures)).UnixNano()
		rec.ExpiresAt = now.Add(PenaltyTTL).UnixNano()
		_, err = p.store.Apply(ctx, sqlkv.Put(penaltyKey(id), encode(rec)).If(sqlkv.IfVersion(e.Version)))
		if errors.Is(err, sqlkv.ErrConflict) {
			return retry.RetryableError(err)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("report failure on %s: %w", id, err)
	}
	return nil
}

// Penalties returns the penalties in force, in node uuid order.
//
// Errors: store errors, wrapped.
func (p *Placer) Penalties(ctx context.Context) ([]Penalty, error) {
	m, err := p.penalties(ctx, p.now())
	if err != nil {
		return nil, fmt.Errorf("penalties: %w", err)
	}
	out := make([]Penalty, 0, len(m))
	for _, pen := range m {
		out = append(out, pen)
	}
	slices.SortFunc(out, func(a, b Penalty) int { return cmp.Compare(a.NodeUUID, b.NodeUUID) })
	return out, nil
}

// penalties reads every unexpired penalty, by node uuid.
func (p *Placer) penalties(ctx context.Context, now time.Time) (map[string]Penalty, error) {
	entries, err := sqlkv.Scan(ctx, p.store, []byte(penaltyPrefix))
	if err != nil {
		return nil, err
	}
	out := make(map[string]Penalty, len(entries))
	for _, e := range entries {
		rec, err := decode[penaltyRecord](e.Value)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", e.Key, err)
		}
		if rec.ExpiresAt <= now.UnixNano() {
			continue
		}
		id := string(e.Key[len(penaltyPrefix):])
		out[id] = rec.penalty(id)
	}
	return out, nil
}

// SweepResult counts what Sweep deleted.
type SweepResult struct {
	Decisions int
	Penalties int
}

// Sweep deletes expired decisions and penalties, and the oldest decisions
// beyond MaxDecisions. Readers already ignore expired records; Sweep only
// gives their space back. Deletes are conditional on the version read, so
// a penalty renewed in between survives, and several replicas may sweep at
// once.
//
// Errors: the context's error; store errors, wrapped.
func (p *Placer) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	now := p.now().UnixNano()
	for _, prefix := range []string{decisionPrefix, penaltyPrefix} {
		entries, err := sqlkv.Scan(ctx, p.store, []byte(prefix))
		if err != nil {
			return res, fmt.Errorf("placement sweep: %w", err)
		}
		live := 0
		for i, e := range entries {
			var rec struct {
				ExpiresAt int64 `json:"e"`
			}
			if err := json.Unmarshal(e.Value, &rec); err != nil {
				return res, fmt.Errorf("placement sweep: %q: %w", e.Key, err)
			}
			// Beyond the cap, the oldest (first) decisions go too.
			surplus := prefix == decisionPrefix && len(entries)-i+live > MaxDecisions
			if rec.ExpiresAt > now && !surplus {
				live++
				continue
			}
			_, err := p.store.Apply(ctx, sqlkv.Delete(e.Key).If(sqlkv.IfVersion(e.Version)))
			switch {
			case errors.Is(err, sqlkv.ErrConflict):
				live++
				continue
			case err != nil:
				return res, fmt.Errorf("placement sweep: delete %q: %w", e.Key, err)
			}
			if prefix == decisionPrefix {
				res.Decisions++
			} else {
				res.Penalties++
			}
		}
	}
	return res, nil
}

// decisionRecord is the value of placement-decision:<id>. Times are Unix
// nanoseconds.
type decisionRecord struct {
	RequestID string   `json:"r"`
	TaskID    string   `json:"t"`
	Nodes     []string `json:"n,omitempty"`
	ExpiresAt int64    `json:"e"`
}

// penaltyRecord is the value of placement-penalty:<node uuid>.
type penaltyRecord struct {
	Failures     int   `json:"f"`
	LastFailure  int64 `json:"l"`
	BlockedUntil int64 `json:"b"`
	ExpiresAt    int64 `json:"e"`
}

func (r penaltyRecord) penalty(id string) Penalty {
	return Penalty{
		NodeUUID:            id,
		ConsecutiveFailures: r.Failures,
		LastFailure:         time.Unix(0, r.LastFailure).UTC(),
		BlockedUntil:        time.Unix(0, r.BlockedUntil).UTC(),
		ExpiresAt:           time.Unix(0, r.ExpiresAt).UTC(),
	}
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("placement: encode %T: %v", v, err)) // strings and integers only
	}
	return b
}

func decode[T any](value []byte) (T, error) {
	var rec T
	err := json.Unmarshal(value, &rec)
	return rec, err
}
