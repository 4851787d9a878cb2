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
// not timed: it lasts as long as its subscriber), and sqlkv.Fencer if s is
// both.
func (m *Metrics) WrapStore(backend string, s sqlkv.Store) sqlkv.Store {
	ts := &timedStore{next: s, ops: map[string]op{}}
	for _, name := range []string{"get", "range", "apply", "ping",
		"get_many", "put", "count", "delete_prefix", "batch_put", "batch_delete", "range_func"} {
		ts.ops[name] = op{
			seconds:  m.storeSeconds.WithLabelValues(backend, name),
			failures: m.storeFailures.WithLabelValues(backend, name),
		}
	}
	if w, ok := s.(sqlkv.Watchable); ok {
		if f, ok := s.(sqlkv.Fencer); ok {
			return &fencedStore{watchableStore: &watchableStore{timedStore: ts, watch: w}, fence: f}
		}
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
	_ sqlkv.Store         = (*timedStore)(nil)
	_ sqlkv.Degrader      = (*timedStore)(nil)
	_ sqlkv.MultiGetter   = (*timedStore)(nil)
	_ sqlkv.Putter        = (*timedStore)(nil)
	_ sqlkv.Counter       = (*timedStore)(nil)
	_ sqlkv.PrefixDeleter = (*timedStore)(nil)
	_ sqlkv.BatchPutter   = (*timedStore)(nil)
	_ sqlkv.BatchDeleter  = (*timedStore)(nil)
	_ sqlkv.RangeStreamer = (*timedStore)(nil)
	_ sqlkv.Watchable     = (*watchableStore)(nil)
	_ sqlkv.Fencer        = (*fencedStore)(nil)
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

// timed runs one operation of the wrapped store and records it as name.
func timed[T any](s *timedStore, name string, op func() (T, error)) (T, error) {
	start := time.Now()
	r, err := op()
	s.done(name, start, err)
	return r, err
}

// The core of sqlkv.Store, each timed under its name.

func (s *timedStore) Get(ctx context.Context, key []byte) (sqlkv.Entry, error) {
	return timed(s, "get", func() (sqlkv.Entry, error) { return s.next.Get(ctx, key) })
}

func (s *timedStore) Range(ctx context.Context, opts sqlkv.RangeOptions) ([]sqlkv.Entry, error) {
	return timed(s, "range", func() ([]sqlkv.Entry, error) { return s.next.Range(ctx, opts) })
}

func (s *timedStore) Apply(ctx context.Context, ops ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	return timed(s, "apply", func() ([]sqlkv.OpResult, error) { return s.next.Apply(ctx, ops...) })
}

func (s *timedStore) Ping(ctx context.Context) error {
	_, err := timed(s, "ping", func() (struct{}, error) { return struct{}{}, s.next.Ping(ctx) })
	return err
}

// The fast paths of package sqlkv, each the wrapped store's own where it has
// one (else derived from its core, as without the wrapper), timed as one
// operation: a wrapper in front of every store must not turn one statement
// into many, nor an atomic DeletePrefix into a Range and an Apply. Exists,
// Keys, Scan, DeleteKey have no fast path: they are timed as the range or
// apply they are.

func (s *timedStore) GetMany(ctx context.Context, keys ...[]byte) ([]sqlkv.Entry, error) {
	return timed(s, "get_many", func() ([]sqlkv.Entry, error) { return sqlkv.GetMany(ctx, s.next, keys...) })
}

func (s *timedStore) Put(ctx context.Context, key, value []byte) (int64, error) {
	return timed(s, "put", func() (int64, error) { return sqlkv.PutValue(ctx, s.next, key, value) })
}

func (s *timedStore) Count(ctx context.Context, prefix []byte) (int64, error) {
	return timed(s, "count", func() (int64, error) { return sqlkv.Count(ctx, s.next, prefix) })
}

func (s *timedStore) DeletePrefix(ctx context.Context, prefix []byte) (int64, error) {
	return timed(s, "delete_prefix", func() (int64, error) { return sqlkv.DeletePrefix(ctx, s.next, prefix) })
}

func (s *timedStore) BatchPut(ctx context.Context, entries []sqlkv.Entry) error {
	_, err := timed(s, "batch_put", func() (struct{}, error) { return struct{}{}, sqlkv.BatchPut(ctx, s.next, entries) })
	return err
}

func (s *timedStore) BatchDelete(ctx context.Context, keys [][]byte) (int64, error) {
	return timed(s, "batch_delete", func() (int64, error) { return sqlkv.BatchDelete(ctx, s.next, keys) })
}

// RangeFunc is timed from the query to the last entry handed to fn, fn's
// time included.
func (s *timedStore) RangeFunc(ctx context.Context, opts sqlkv.RangeOptions, fn func(sqlkv.Entry) error) error {
	_, err := timed(s, "range_func", func() (struct{}, error) { return struct{}{}, sqlkv.RangeFunc(ctx, s.next, opts, fn) })
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

// fencedStore is a watchableStore over a store that is also a sqlkv.Fencer.
type fencedStore struct {
	*watchableStore
	fence sqlkv.Fencer
}

// Fence is the wrapped store's; see sqlkv.Fencer.
func (s *fencedStore) Fence(ctx context.Context) error { return s.fence.Fence(ctx) }
