package registry

import "time"

// Option configures a NodeRegistry or a NodeResourceRegistry. Options that
// do not concern a registry are ignored by it.
type Option func(*options)

type options struct {
	now         func() time.Time
	thresholds  Thresholds
	watchBuffer int
}

func newOptions(opts []Option) options {
	o := options{now: time.Now, thresholds: DefaultThresholds, watchBuffer: DefaultWatchBuffer}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithClock makes the registry read the time from now instead of time.Now,
// so tests can control last_heartbeat, registered_at, updated_at and the
// liveness sweep. A nil now keeps time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithThresholds sets the limits NodeResourceRegistry.IsHighLoad and
// ClusterStats use instead of DefaultThresholds.
func WithThresholds(t Thresholds) Option {
	return func(o *options) { o.thresholds = t }
}

// WithWatchBuffer sets how many recent events the view keeps for its
// watchers: a watcher further behind ends with ErrWatchLagged, and a
// WatchOptions.ResumeVersion older than that gets a fresh snapshot; n < 1
// keeps DefaultWatchBuffer.
func WithWatchBuffer(n int) Option {
	return func(o *options) {
		if n >= 1 {
			o.watchBuffer = n
		}
	}
}
