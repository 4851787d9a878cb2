package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spear-next/sms/sqlkv"
)

// fencePrefix starts the payload of a fence notification,
// "fence:<instance>:<n>"; the kv trigger's payloads start with a hex key and
// never contain "fence:".
const fencePrefix = "fence:"

// fenceTimeout bounds the NOTIFY of one fence, for a caller whose context
// has no deadline.
const fenceTimeout = 5 * time.Second

var _ sqlkv.Fencer = (*Store)(nil)

// Fence returns once every write committed before it was called, by any
// process using the database, has been published to this store's Watch
// subscriptions; see sqlkv.Fencer.
//
// It sends a NOTIFY on the change channel in a transaction of its own and
// waits until the listening connection receives it: Postgres delivers
// notifications in commit order, so every earlier commit's notification has
// arrived (and been published) by then. Sequence-assigned versions are not
// commit-ordered, so "the highest version seen" would not do. Callers that
// arrive while a fence is being sent wait for the next one, which is sent
// after they arrived; concurrent callers share it, so the cost is one
// round trip to the database per batch of readers.
//
// Errors: an error wrapping sqlkv.ErrUnavailable when the listening
// connection is down or the NOTIFY fails, sqlkv.ErrClosed after Close, the
// context's error. Fence needs a Watch subscription (the listener); without
// one it returns ErrUnavailable.
func (s *Store) Fence(ctx context.Context) error {
	l := s.listen
	l.mu.Lock()
	connected, channel := l.connected, l.channel
	l.mu.Unlock()
	if !connected {
		return fmt.Errorf("fence: not listening: %w", sqlkv.ErrUnavailable)
	}
	f, send := l.fences.join()
	if send {
		go l.fences.send(s, channel)
	}
	// A fence sent just as the connection dropped may never arrive.
	lost := time.NewTimer(2 * fenceTimeout)
	defer lost.Stop()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return fmt.Errorf("fence: %w", ctx.Err())
	case <-lost.C:
		return fmt.Errorf("fence: not received within %v: %w", 2*fenceTimeout, sqlkv.ErrUnavailable)
	}
}

// fences are the Fence calls of one listener.
type fences struct {
	instance string // tells this store's fences from other replicas'

	mu       sync.Mutex
	next     *fence // the fence the next NOTIFY carries; callers join it
	sending  bool   // a goroutine is sending fences
	seq      uint64
	inflight map[uint64]*fence // sent, not yet received
}

type fence struct {
	done chan struct{}
	err  error
}

// join returns the fence the caller waits for, and whether the caller must
// start the sender.
func (fs *fences) join() (*fence, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.next == nil {
		fs.next = &fence{done: make(chan struct{})}
	}
	start := !fs.sending
	fs.sending = true
	return fs.next, start
}

// send sends the pending fence, and the next while callers keep joining,
// one NOTIFY at a time.
func (fs *fences) send(s *Store, channel string) {
	for {
		fs.mu.Lock()
		f := fs.next
		if f == nil {
			fs.sending = false
			fs.mu.Unlock()
			return
		}
		fs.next = nil
		fs.seq++
		id := fs.seq
		fs.inflight[id] = f
		fs.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), fenceTimeout)
		payload := fencePrefix + fs.instance + ":" + strconv.FormatUint(id, 10)
		_, err := s.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, channel, payload)
		cancel()
		if err != nil {
			fs.finish(id, fmt.Errorf("fence: %w", translate(err)))
		}
	}
}

// arrived is called with the part of a fence payload after fencePrefix.
func (fs *fences) arrived(rest string) {
	instance, n, ok := strings.Cut(rest, ":")
	if !ok || instance != fs.instance {
		return // another replica's fence
	}
	id, err := strconv.ParseUint(n, 10, 64)
	if err != nil {
		return
	}
	fs.finish(id, nil)
}

func (fs *fences) finish(id uint64, err error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.inflight[id]; ok {
		delete(fs.inflight, id)
		f.err = err
		close(f.done)
	}
}

// failAll ends every fence sent and not received with err.
func (fs *fences) failAll(err error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for id, f := range fs.inflight {
		delete(fs.inflight, id)
		f.err = err
		close(f.done)
	}
}
