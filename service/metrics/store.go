package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spear-next/sms/sqlkv"
)

// WrapStore returns s with every operation timed into
// sms_store_operation_duration_seconds{backend, operation} and its
// failures counted. The result is sqlkv.Watchable if s is (Watch itself is
// not timed: it lasts as long as its subscriber).
func (m *Metrics) WrapStore(backend string, s sqlkv.Store) sqlkv.Store {
	ts := &timedStore{next: s, ops: map[string]op{}}
	for _, name := range []string{"get", "get_many", "put", "delete", "exists", "keys", "scan", "range", "count",
		"delete_prefix", "batch_put", "batch_delete", "apply", "ping"} {
		ts.ops[name] = op{
			seconds:  m.storeSeconds.WithLabelValues(backend, name),
			failures: m.storeFailures.WithLabelValues(backend, name),
		}
	}
	if w, ok := s.(sqlkv.Watchable); ok {
		return &watchableStore{timedStore: ts, watch: w}
	}
	return ts
}

type op struct {
	seconds  prometheus.Observer
	failures prometheus.Counter
}

// timedStore is the sqlkv.Store decorator of WrapStore. Its labelled
// metrics are resolved once, so an operation costs two atomic updates.
type timedStore struct {
	next sqlkv.Store
	ops  map[string]op
}

var (
	_ sqlkv.Store       = (*timedStore)(nil)
	_ sqlkv.MultiGetter = (*timedStore)(nil)
	_ sqlkv.Watchable   = (*watchableStore)(nil)
)

// done records one operation that started at start. Not-found and a failed
// condition are answers, not failures.
func (s *timedStore) done(name string, start time.Time, err error) {
	o := s.ops[name]
	o.seconds.Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, sqlkv.ErrNotFound) && !errors.Is(err, sqlkv.ErrConflict) {
		o.failures.Inc()
	}
}

func (s *timedStore) Get(ctx context.Context, key []byte) (sqlkv.Entry, error) {
	start := time.Now()
	r, err := s.next.Get(ctx, key)
	s.done("get", start, err)
	return r, err
}

// GetMany times a multi-key read as one operation and keeps it one query
// where the wrapped store can (see sqlkv.GetMany).
func (s *timedStore) GetMany(ctx context.Context, keys ...[]byte) ([]sqlkv.Entry, error) {
	start := time.Now()
	r, err := sqlkv.GetMany(ctx, s.next, keys...)
	s.done("get_many", start, err)
	return r, err
}

func (s *timedStore) Put(ctx context.Context, key, value []byte) (int64, error) {
	start := time.Now()
	r, err := s.next.Put(ctx, key, value)
	s.done("put", start, err)
	return r, err
}

func (s *timedStore) Delete(ctx context.Context, key []byte) (bool, error) {
	start := time.Now()
	r, err := s.next.Delete(ctx, key)
	s.done("delete", start, err)
	return r, err
}

func (s *timedStore) Exists(ctx context.Context, key []byte) (bool, error) {
	start := time.Now()
	r, err := s.next.Exists(ctx, key)
	s.done("exists", start, err)
	return r, err
}

func (s *timedStore) Keys(ctx context.Context, prefix []byte) ([][]byte, error) {
	start := time.Now()
	r, err := s.next.Keys(ctx, prefix)
	s.done("keys", start, err)
	return r, err
}

func (s *timedStore) Scan(ctx context.Context, prefix []byte) ([]sqlkv.Entry, error) {
	start := time.Now()
	r, err := s.next.Scan(ctx, prefix)
	s.done("scan", start, err)
	return r, err
}

func (s *timedStore) Range(ctx context.Context, opts sqlkv.RangeOptions) ([]sqlkv.Entry, error) {
	start := time.Now()
	r, err := s.next.Range(ctx, opts)
	s.done("range", start, err)
	return r, err
}

func (s *timedStore) Count(ctx context.Context, prefix []byte) (int64, error) {
	start := time.Now()
	r, err := s.next.Count(ctx, prefix)
	s.done("count", start, err)
	return r, err
}

func (s *timedStore) DeletePrefix(ctx context.Context, prefix []byte) (int64, error) {
	start := time.Now()
	r, err := s.next.DeletePrefix(ctx, prefix)
	s.done("delete_prefix", start, err)
	return r, err
}

func (s *timedStore) BatchPut(ctx context.Context, entries []sqlkv.Entry) error {
	start := time.Now()
	err := s.next.BatchPut(ctx, entries)
	s.done("batch_put", start, err)
	return err
}

func (s *timedStore) BatchDelete(ctx context.Context, keys [][]byte) (int64, error) {
	start := time.Now()
	r, err := s.next.BatchDelete(ctx, keys)
	s.done("batch_delete", start, err)
	return r, err
}

func (s *timedStore) Apply(ctx context.Context, ops ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	start := time.Now()
	r, err := s.next.Apply(ctx, ops...)
	s.done("apply", start, err)
	return r, err
}

func (s *timedStore) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.next.Ping(ctx)
	s.done("ping", start, err)
	return err
}

// Close closes the wrapped store.
func (s *timedStore) Close() error { return s.next.Close() }

// Degraded forwards the wrapped store's; see sqlkv.Degrader.
func (s *timedStore) Degraded() error { return sqlkv.Degraded(s.next) }

// watchableStore is a timedStore over a watchable store.
type watchableStore struct {
	*timedStore
	watch sqlkv.Watchable
}

// Watch subscribes to the wrapped store's writes; see sqlkv.Watchable.
func (s *watchableStore) Watch(ctx context.Context, prefix []byte) (*sqlkv.Subscription, error) {
	return s.watch.Watch(ctx, prefix)
}
