package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/sethvargo/go-retry"
)

// Defaults of an Agent.
const (
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultReportInterval    = 5 * time.Second
	DefaultJitterPercent     = 10
	DefaultShutdownTimeout   = 5 * time.Second
)

// agentNamespace is the namespace of NodeUUID's version 5 uuids; any fixed
// uuid would do, and it must never change, or every agent's node would
// change its uuid.
var agentNamespace = uuid.MustParse("6f3a2c1e-9d4b-5e8f-a7c6-1b2d3e4f5a60")

// NodeUUID returns the stable uuid of the node a machine advertises at
// address:port: a version 5 (SHA-1, name-based) uuid of the machine id
// (/etc/machine-id) and the advertised address and port, so that an agent
// restarted on the same machine registers the same node again, and two
// agents advertising different ports on one machine are two nodes.
func NodeUUID(machineID, address string, port int) string {
	return uuid.NewSHA1(agentNamespace, []byte(machineID+"\n"+net.JoinHostPort(address, strconv.Itoa(port)))).String()
}

// MetricsSource measures the machine an Agent reports on. The Agent calls
// Collect from one goroutine, once per report.
type MetricsSource interface {
	// Collect returns the machine's resources now; NodeUUID and UpdatedAt
	// are ignored. Rates and CPU usage are over the time since the
	// previous call (or a short sample on the first).
	Collect(ctx context.Context) (Resource, error)
}

// AgentConfig is what an Agent keeps registered. Node.UUID, Node.Address
// and Node.Port are required; the rest has defaults.
type AgentConfig struct {
	// Node is the node to register. Its UUID must be stable across
	// restarts (see NodeUUID); its Status is ignored (the agent registers
	// it active).
	Node Node
	// Metrics, if not nil, is measured every ReportInterval and reported.
	Metrics MetricsSource
	// HeartbeatInterval and ReportInterval are the periods of heartbeats
	// and resource reports (default DefaultHeartbeatInterval and
	// DefaultReportInterval), each varied by ±JitterPercent percent
	// (default DefaultJitterPercent; negative for none) so that agents
	// started together do not call in step.
	HeartbeatInterval, ReportInterval time.Duration
	JitterPercent                     int
	// DeregisterOnExit makes Run delete the node when it stops, instead of
	// marking it inactive.
	DeregisterOnExit bool
	// ShutdownTimeout bounds the call that marks the node inactive (or
	// deletes it) when Run stops (default DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
}

// AgentStats counts what an Agent did, for its metrics and tests.
type AgentStats struct {
	// Registered reports whether the node is registered as far as the
	// agent knows (false before the first registration, after a not_found
	// until the next, and after Run stopped).
	Registered bool
	// Registrations, Heartbeats and Reports count successful calls.
	Registrations, Heartbeats, Reports int64
	// Failures counts failed calls of any kind.
	Failures int64
	// LastHeartbeat is the server time of the last successful heartbeat
	// or registration.
	LastHeartbeat time.Time
	// LastError is the error of the last failed call, nil before the
	// first failure.
	LastError error
}

// Agent keeps one node registered with SMS: it registers it, heartbeats
// and reports its resources periodically, registers it again when the
// server has forgotten it (not_found, after a TTL expiry or on a new
// database), backs off while the server is unavailable, and marks the node
// inactive (or deletes it) when it stops.
type Agent struct {
	client *Client
	cfg    AgentConfig
	log    *slog.Logger

	registered              atomic.Bool
	registrations, hbs, rep atomic.Int64
	failures                atomic.Int64
	lastHeartbeat           atomic.Int64 // Unix seconds
	lastError               atomic.Pointer[error]
	mu                      sync.Mutex // serialises Run and Once
}

// NewAgent returns an Agent of c for cfg, with cfg's defaults filled in;
// Run and Once report a bad cfg.
func (c *Client) NewAgent(cfg AgentConfig) *Agent {
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.ReportInterval <= 0 {
		cfg.ReportInterval = DefaultReportInterval
	}
	if cfg.JitterPercent == 0 {
		cfg.JitterPercent = DefaultJitterPercent
	}
	cfg.JitterPercent = min(max(cfg.JitterPercent, 0), 100)
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Node.Status = StatusActive
	cfg.Node.Metadata = maps.Clone(cfg.Node.Metadata)
	return &Agent{client: c, cfg: cfg, log: log.With("node", cfg.Node.UUID)}
}

// UUID returns the uuid of the agent's node.
func (a *Agent) UUID() string { return a.cfg.Node.UUID }

// Stats returns what the agent did so far. It is safe to call while Run
// runs.
func (a *Agent) Stats() AgentStats {
	s := AgentStats{
		Registered:    a.registered.Load(),
		Registrations: a.registrations.Load(),
		Heartbeats:    a.hbs.Load(),
		Reports:       a.rep.Load(),
		Failures:      a.failures.Load(),
	}
	if t := a.lastHeartbeat.Load(); t != 0 {
		s.LastHeartbeat = time.Unix(t, 0)
	}
	if err := a.lastError.Load(); err != nil {
		s.LastError = *err
	}
	return s
}

func (a *Agent) validate() error {
	n := a.cfg.Node
	u, err := uuid.Parse(n.UUID)
	if err != nil {
		return fmt.Errorf("agent: node uuid %q: %w", n.UUID, err)
	}
	a.cfg.Node.UUID = u.String()
	if n.Address == "" {
		return errors.New("agent: node address is empty")
	}
	if n.Port < 1 || n.Port > 65535 {
		return fmt.Errorf("agent: node port %d: want 1..65535", n.Port)
	}
	return nil
}

// fatal reports whether err will not go away by trying again: a
// misconfigured agent (bad node, wrong token) stops instead of retrying
// forever.
func fatal(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeInvalidArgument, connect.CodeUnauthenticated, connect.CodePermissionDenied, connect.CodeUnimplemented:
		return true
	}
	return false
}

// Once registers the node and, with a metrics source, reports its
// resources once, then returns: for scripts and cron jobs. It does not
// retry beyond the Client's own retries and leaves the node registered.
func (a *Agent) Once(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.validate(); err != nil {
		return err
	}
	if err := a.registerOnce(ctx); err != nil {
		return err
	}
	return a.report(ctx)
}

// Run keeps the node registered until ctx is done, then marks it inactive
// (or deletes it, with DeregisterOnExit) and returns nil, or the error of
// that last call. It returns early with an error only for what retrying
// cannot fix: a bad AgentConfig, or an invalid_argument, unauthenticated,
// permission_denied or unimplemented answer.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.validate(); err != nil {
		return err
	}
	a.log.Info("agent starting", "server", a.client.BaseURL(),
		"heartbeat_interval", a.cfg.HeartbeatInterval, "report_interval", a.cfg.ReportInterval)
	err := a.loop(ctx)
	if ctx.Err() == nil || !a.registered.Load() {
		a.registered.Store(false)
		return err // fatal, or stopped before the first registration
	}
	return a.shutdown(ctx)
}

// loop registers the node and heartbeats and reports until ctx is done
// or a fatal error.
func (a *Agent) loop(ctx context.Context) error {
	if err := a.register(ctx); err != nil {
		return err
	}
	heartbeat := time.NewTimer(a.jittered(a.cfg.HeartbeatInterval))
	defer heartbeat.Stop()
	report := time.NewTimer(a.jittered(a.cfg.ReportInterval))
	defer report.Stop()
	if a.cfg.Metrics == nil {
		report.Stop()
	}
	// While calls fail, the next one comes after a growing backoff instead
	// of the interval, so the agent is back soon after the server is.
	var hbBackoff, reportBackoff retry.Backoff
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-heartbeat.C:
			err := a.heartbeat(ctx)
			if err := a.handle(ctx, "heartbeat", err); err != nil {
				return err
			}
			heartbeat.Reset(a.next(&hbBackoff, a.cfg.HeartbeatInterval, failed(err)))
		case <-report.C:
			err := a.report(ctx)
			if err := a.handle(ctx, "report", err); err != nil {
				return err
			}
			report.Reset(a.next(&reportBackoff, a.cfg.ReportInterval, failed(err)))
		}
	}
}

// handle deals with the outcome of a heartbeat or report: nil and
// transient errors are nil (the next attempt will tell), not_found
// registers the node again, a fatal error is returned.
func (a *Agent) handle(ctx context.Context, what string, err error) error {
	switch {
	case err == nil, ctx.Err() != nil:
		return nil
	case connect.CodeOf(err) == connect.CodeNotFound:
		a.registered.Store(false)
		a.log.Warn("server does not know the node; registering it again", "call", what)
		if err := a.register(ctx); err != nil {
			return err
		}
		return nil
	case fatal(err):
		return err
	default:
		a.log.Warn(what+" failed; retrying with backoff", "error", err)
		return nil
	}
}

// failed reports whether a heartbeat or report failed in a way that calls
// for backing off: not_found was dealt with by registering again.
func failed(err error) bool {
	return err != nil && connect.CodeOf(err) != connect.CodeNotFound
}

// next returns the wait before the next call of a kind: the jittered
// interval after a success (which forgets the backoff), else the next step
// of the backoff.
func (a *Agent) next(b *retry.Backoff, interval time.Duration, failed bool) time.Duration {
	if !failed {
		*b = nil
		return a.jittered(interval)
	}
	if *b == nil {
		*b = newBackoff(interval)
	}
	d, _ := (*b).Next()
	return d
}

// newBackoff is the backoff between failing calls: from a tenth of the
// interval (at least 100ms), doubling, capped at the interval, with full
// jitter.
func newBackoff(interval time.Duration) retry.Backoff {
	base := max(interval/10, 100*time.Millisecond)
	return retry.WithFullJitter(retry.WithCappedDuration(max(interval, base), retry.NewExponential(base)))
}

// jittered is d varied by ±JitterPercent percent.
func (a *Agent) jittered(d time.Duration) time.Duration {
	if a.cfg.JitterPercent <= 0 {
		return d
	}
	next, _ := retry.WithJitterPercent(uint64(a.cfg.JitterPercent), retry.NewConstant(d)).Next()
	return next
}

// register registers the node, retrying with backoff until it succeeds,
// ctx is done, or a fatal error; a metrics source is reported right after.
func (a *Agent) register(ctx context.Context) error {
	b := newBackoff(a.cfg.HeartbeatInterval)
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		err := a.registerOnce(ctx)
		if err == nil || fatal(err) {
			return err
		}
		a.log.Warn("registration failed; retrying with backoff", "error", err)
		return retry.RetryableError(err)
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := a.report(ctx); err != nil && !fatal(err) {
		a.log.Warn("report failed", "error", err) // the next report will tell
	}
	return nil
}

func (a *Agent) registerOnce(ctx context.Context) error {
	if _, err := a.client.Register(ctx, a.cfg.Node); err != nil {
		a.recordFailure(err)
		return err
	}
	a.registrations.Add(1)
	a.lastHeartbeat.Store(time.Now().Unix())
	a.registered.Store(true)
	a.log.Info("node registered", "address", a.cfg.Node.Address, "port", a.cfg.Node.Port)
	return nil
}

func (a *Agent) heartbeat(ctx context.Context) error {
	at, err := a.client.Heartbeat(ctx, a.cfg.Node.UUID, nil)
	if err != nil {
		a.recordFailure(err)
		return err
	}
	a.hbs.Add(1)
	a.lastHeartbeat.Store(at.Unix())
	return nil
}

func (a *Agent) report(ctx context.Context) error {
	if a.cfg.Metrics == nil {
		return nil
	}
	r, err := a.cfg.Metrics.Collect(ctx)
	if err != nil {
		// A machine that cannot be measured is not the server's fault:
		// log it and try at the next interval.
		a.log.Error("collect metrics", "error", err)
		return nil
	}
	r.NodeUUID = a.cfg.Node.UUID
	err = a.client.ReportResource(ctx, r)
	if err != nil {
		a.recordFailure(err)
		return err
	}
	a.rep.Add(1)
	return nil
}

// recordFailure counts a failed call.
func (a *Agent) recordFailure(err error) {
	a.failures.Add(1)
	a.lastError.Store(&err)
}

// shutdown marks the node inactive, or deletes it, under a fresh deadline:
// ctx is already done.
func (a *Agent) shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	a.registered.Store(false)
	if a.cfg.DeregisterOnExit {
		err := a.client.Delete(ctx, a.cfg.Node.UUID)
		if err != nil && connect.CodeOf(err) != connect.CodeNotFound {
			return fmt.Errorf("agent stopping: %w", err)
		}
		a.log.Info("node deregistered")
		return nil
	}
	n := a.cfg.Node
	n.Status = StatusInactive
	if err := a.client.Update(ctx, n); err != nil {
		if connect.CodeOf(err) == connect.CodeNotFound {
			return nil // nothing to mark
		}
		return fmt.Errorf("agent stopping: %w", err)
	}
	a.log.Info("node marked inactive")
	return nil
}
