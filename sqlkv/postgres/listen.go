package postgres

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sethvargo/go-retry"

	"github.com/spear-next/sms/internal/backoff"
	"github.com/spear-next/sms/sqlkv"
)

// listener holds one dedicated connection that LISTENs to the store's
// change channel (see migrations/postgres/00002_notify.sql) and publishes
// what it hears to an in-process feed. It starts with the first Watch and
// reconnects with back-off (backoff.Reconnect); after every (re)connection it tells subscribers
// to resync, since notifications sent while it was away are lost.
type listener struct {
	cfg  *pgx.ConnConfig
	feed sqlkv.Feed

	once   sync.Once
	cancel context.CancelFunc
	done   chan struct{}
	tried  chan struct{} // closed after the first connection attempt

	mu        sync.Mutex
	connected bool
	lastErr   error
	closed    bool // by the store's Close: Watch answers ErrClosed
}

func newListener(cfg *pgx.ConnConfig) *listener {
	return &listener{cfg: cfg, done: make(chan struct{}), tried: make(chan struct{})}
}

// Watch subscribes to the changes of keys under prefix made by any process
// using the database; see sqlkv.Watchable. The first call starts listening.
// It returns an error wrapping sqlkv.ErrUnavailable when the listening
// connection is down, and sqlkv.ErrClosed after Close.
func (s *Store) Watch(ctx context.Context, prefix []byte) (*sqlkv.Subscription, error) {
	l := s.listen
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("watch: %w", sqlkv.ErrClosed)
	}
	l.once.Do(func() {
		lctx, cancel := context.WithCancel(context.Background())
		l.cancel = cancel
		go l.run(lctx)
	})
	select {
	case <-l.tried:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l.mu.Lock()
	connected, lastErr := l.connected, l.lastErr
	l.mu.Unlock()
	if !connected {
		return nil, fmt.Errorf("watch: %w: %w", sqlkv.ErrUnavailable, redact(lastErr, l.cfg.Password))
	}
	// Subscribing while the connection just dropped is fine: the
	// reconnection sends a resync.
	return l.feed.Subscribe(prefix)
}

func (l *listener) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	if l.cancel != nil {
		l.cancel()
		<-l.done
	}
	l.feed.Close()
}

func (l *listener) setState(connected bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.connected, l.lastErr = connected, err
}

// run keeps a listening connection until ctx ends, reconnecting with
// backoff.Reconnect pauses; a connection that was made resets them, so a
// short blip costs one short pause and a long outage is polled ever less
// often, up to the policy's cap.
func (l *listener) run(ctx context.Context) {
	defer close(l.done)
	var tried sync.Once
	b := backoff.Reconnect()
	_ = retry.Do(ctx, retry.BackoffFunc(func() (time.Duration, bool) { return b.Next() }), func(ctx context.Context) error {
		if l.session(ctx, func() { tried.Do(func() { close(l.tried) }) }) {
			b = backoff.Reconnect()
		}
		return retry.RetryableError(errReconnect)
	})
}

// errReconnect keeps run's retry loop going: a session only ends with ctx or
// with the connection lost.
var errReconnect = errors.New("listening connection ended")

// session connects, LISTENs and publishes notifications until the
// connection fails or ctx ends, and reports whether it connected. attempted
// runs once the connection attempt is over and the state is set.
func (l *listener) session(ctx context.Context, attempted func()) bool {
	conn, err := l.connect(ctx)
	if err != nil {
		l.setState(false, err)
		attempted()
		return false
	}
	l.setState(true, nil)
	l.feed.Resync()
	attempted()
	err = l.receive(ctx, conn)
	l.setState(false, err)
	// Changes may be missed until the next connection, which resyncs;
	// tell subscribers now too, so they do not wait.
	l.feed.Resync()
	closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	conn.Close(closeCtx)
	cancel()
	return true
}

// connect opens the listening connection and LISTENs on the channel of the
// connection's current schema.
func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return nil, err
	}
	var channel string
	err = checkDirect(ctx, conn)
	if err == nil {
		err = conn.QueryRow(ctx, `SELECT 'sms_kv_' || left(md5(current_schema()), 16)`).Scan(&channel)
	}
	if err == nil {
		_, err = conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize())
	}
	if err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// After listenIdle without a notification the listener pings the server,
// and gives the connection up if the ping is not answered within
// listenProbeTimeout: a network that went silent with the connection open
// (which TCP keepalive cannot see when something in between still answers
// TCP) is found within listenIdle + listenProbeTimeout, and the watchers
// are told to resync. Variables for the tests.
var (
	listenIdle         = 10 * time.Second
	listenProbeTimeout = 5 * time.Second
)

// receive publishes notifications until the connection fails, stops
// answering, or ctx ends.
func (l *listener) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			// Idle; pgx keeps the connection usable after a timed-out
			// wait, and buffers notifications that arrive during the ping.
			pctx, cancel := context.WithTimeout(ctx, listenProbeTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("listening connection does not answer: %w", err)
			}
			continue
		}
		if err != nil {
			return err
		}
		if c, ok := parsePayload(n); ok {
			l.feed.Publish(c)
		}
	}
}

// parsePayload reads "<hex key>:<version>" or "<hex key>:d".
func parsePayload(n *pgconn.Notification) (sqlkv.Change, bool) {
	i := bytes.LastIndexByte([]byte(n.Payload), ':')
	if i < 0 {
		return sqlkv.Change{}, false
	}
	key, err := hex.DecodeString(n.Payload[:i])
	if err != nil {
		return sqlkv.Change{}, false
	}
	if n.Payload[i+1:] == "d" {
		return sqlkv.Change{Key: key, Deleted: true}, true
	}
	v, err := strconv.ParseInt(n.Payload[i+1:], 10, 64)
	if err != nil {
		return sqlkv.Change{}, false
	}
	return sqlkv.Change{Key: key, Version: v}, true
}
