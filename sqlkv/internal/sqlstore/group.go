package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"
)

// Group commit. Every write (Put, Delete, Apply, BatchPut, BatchDelete) is a
// request to the committer. The caller that finds no commit running takes
// every pending request (up to maxGroup), runs them in ONE transaction and
// commits once; the others wait for its answer. So under concurrency durable
// writes cost one commit (one fsync at SQLite synchronous=FULL) per group
// instead of one per call, and nobody is answered before the commit that
// holds their write returns.
//
// A request's ops may fail a condition after an earlier op of the same
// request wrote something; such a request runs inside a SAVEPOINT, and a
// failed condition rolls back only that request, which is answered
// ErrConflict once the group commits (its view included the writes of the
// requests before it in the group, so it must not be answered before them).
// Any other error rolls the whole group back, and each of its requests is
// run again on its own, exactly as without grouping: grouping never changes
// an outcome, only how many commits it takes.
//
// A group of one runs on its own (a single statement autocommits, saving
// BEGIN and COMMIT). Requests that need other transaction options (the
// dialect's CheckTx) always run on their own.

// The savepoint statements are standard SQL, the same in both dialects.
const (
	savepoint         = `SAVEPOINT sms_group`
	rollbackSavepoint = `ROLLBACK TO SAVEPOINT sms_group`
	releaseSavepoint  = `RELEASE SAVEPOINT sms_group`
)

// maxGroup bounds the requests of one group, so that one transaction stays
// short and a failing group costs a bounded number of re-runs.
const maxGroup = 128

// request is one write waiting for the committer.
type request struct {
	ctx context.Context
	// alone runs the request in its own transaction (or statement), with
	// the caller's context, and translates nothing. It must be re-runnable:
	// Store.retrying runs it again after a serialization failure.
	alone func(ctx context.Context) error
	// inGroup runs the request's statements bound by in; it must be
	// re-runnable (results reset) and return a *errConditionFailed for a
	// failed condition. Nil: the request always runs alone.
	inGroup func(ctx context.Context, in binder) error
	// savepoint: a failed condition may come after one of the request's own
	// writes, so it needs a savepoint to roll back alone.
	savepoint bool

	taken bool // a lane took it from pending; guarded by committer.mu
	err   error
	done  chan struct{}
}

// committer gathers concurrent writes into groups. lanes bounds how many
// groups commit at once: 1 for SQLite (one writer connection), more where
// the database runs transactions in parallel.
type committer struct {
	mu      sync.Mutex
	pending []*request
	lanes   chan struct{}
	off     bool // every request runs alone, at once
}

func newCommitter(lanes int) *committer {
	if lanes <= 0 {
		return &committer{off: true}
	}
	return &committer{lanes: make(chan struct{}, lanes)}
}

// write runs r through s's committer and returns its error once the
// transaction holding it has committed (or failed).
func (s *Store) write(r *request) error {
	err := s.writeOnce(r)
	s.noteWrite(err)
	return err
}

func (s *Store) writeOnce(r *request) error {
	c := s.commit
	if c.off || r.inGroup == nil {
		return s.retrying(r.ctx, r.alone)
	}
	r.done = make(chan struct{})
	c.mu.Lock()
	c.pending = append(c.pending, r)
	c.mu.Unlock()
	for {
		select {
		case <-r.done:
			return r.err
		case <-r.ctx.Done():
			// The caller gives up, as it would on a write of its own: if a
			// group already took the request its outcome is unknown to the
			// caller; if not, runGroup will skip it unwritten.
			return r.ctx.Err()
		case c.lanes <- struct{}{}:
			// This caller commits the pending requests, which include its
			// own unless another lane took it first; either way it is
			// taken now, and the caller waits for its answer.
			c.mu.Lock()
			n := min(len(c.pending), maxGroup)
			group := c.pending[:n:n]
			c.pending = append([]*request(nil), c.pending[n:]...)
			for _, g := range group {
				g.taken = true
			}
			c.mu.Unlock()
			if len(group) == 0 {
				<-c.lanes
			} else {
				// The group runs on its own goroutine, so that this
				// caller, like every other in the group, gives up at its
				// own deadline: the group runs to the latest of theirs
				// (see tryGroup), and a database that stopped answering
				// must not hold this caller past its own.
				go func() {
					defer func() { <-c.lanes }()
					s.runGroup(group)
				}()
			}
			select {
			case <-r.done:
				return r.err
			case <-r.ctx.Done():
				return r.ctx.Err()
			}
		}
	}
}

// runGroup runs group and answers every request in it.
func (s *Store) runGroup(group []*request) {
	defer func() {
		for _, r := range group {
			close(r.done)
		}
	}()
	live := group[:0:0]
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = err // never started: nothing written
			continue
		}
		live = append(live, r)
	}
	if len(live) == 1 {
		live[0].err = s.retrying(live[0].ctx, live[0].alone)
		return
	}
	if len(live) == 0 {
		return
	}
	committing, err := s.tryGroup(live)
	switch {
	case err == nil:
	case committing:
		// The commit itself failed: it may or may not have taken effect,
		// as for a write on its own; every request reports it.
		for _, r := range live {
			r.err = err
		}
	default:
		// Nothing of the group was committed: run each on its own, so that
		// each gets the outcome (and retries) it would have had anyway.
		for _, r := range live {
			r.err = s.retrying(r.ctx, r.alone)
		}
	}
}

// tryGroup runs live in one transaction and commits it, setting each
// request's err to nil or its condition failure. An error with committing
// false means the transaction was rolled back before COMMIT and no request's
// err is meaningful; with committing true, COMMIT itself failed.
func (s *Store) tryGroup(live []*request) (committing bool, err error) {
	// One caller giving up must not fail the others' writes, so the group's
	// statements ignore cancellation; but they end at the latest of the
	// callers' deadlines, so a database that stops answering cannot hold
	// the writer after every caller has given up.
	ctx, cancel := groupContext(live)
	defer cancel()
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	bound := map[*sql.Stmt]*sql.Stmt{}
	in := func(stmt *sql.Stmt) *sql.Stmt {
		b, ok := bound[stmt]
		if !ok {
			b = tx.StmtContext(ctx, stmt)
			bound[stmt] = b
		}
		return b
	}
	fail := func(err error) (bool, error) {
		_ = tx.Rollback() // err is the one to report
		return false, err
	}
	for _, r := range live {
		if r.savepoint {
			if _, err := tx.ExecContext(ctx, savepoint); err != nil {
				return fail(err)
			}
		}
		r.err = r.inGroup(ctx, in)
		var cf *errConditionFailed
		if r.err != nil && !errors.As(r.err, &cf) {
			return fail(r.err)
		}
		if r.savepoint {
			if r.err != nil {
				if _, err := tx.ExecContext(ctx, rollbackSavepoint); err != nil {
					return fail(err)
				}
			}
			if _, err := tx.ExecContext(ctx, releaseSavepoint); err != nil {
				return fail(err)
			}
		}
	}
	return true, tx.Commit()
}

// groupContext returns the context of a group's statements: the first
// request's values without its cancellation, bounded by the latest deadline
// among the requests, or unbounded if one of them has none.
func groupContext(live []*request) (context.Context, context.CancelFunc) {
	ctx := context.WithoutCancel(live[0].ctx)
	var latest time.Time
	for _, r := range live {
		d, ok := r.ctx.Deadline()
		if !ok {
			return ctx, func() {}
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(ctx, latest)
}
