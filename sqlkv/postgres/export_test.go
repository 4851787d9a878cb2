package postgres

import (
	"database/sql"
	"time"
)

// Dialect is the dialect, for the raw baseline benchmark.
var Dialect = dialect

// SetListenProbe sets how long the listener waits idle before pinging and
// how long the ping may take, until the test ends.
func SetListenProbe(t interface{ Cleanup(func()) }, idle, timeout time.Duration) {
	oldIdle, oldTimeout := listenIdle, listenProbeTimeout
	listenIdle, listenProbeTimeout = idle, timeout
	t.Cleanup(func() { listenIdle, listenProbeTimeout = oldIdle, oldTimeout })
}

// DB returns the store's connection pool.
func (s *Store) DB() *sql.DB { return s.db }
