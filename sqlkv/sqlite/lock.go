package sqlite

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/gofrs/flock"

	"github.com/spear-next/sms/sqlkv"
)

// ErrInUse is returned (wrapped) by Open and Migrations when another process
// holds the database file: one process per SQLite file, because a store's
// change feed only sees the writes made through it.
var ErrInUse = errors.New("database file in use by another process")

// fileLock is the OS lock (flock on Unix, LockFileEx on Windows) on the
// sidecar file <database>.lock, which holds the holder's pid for the error
// the next process gets. The kernel drops the lock when the process exits,
// crashes included, so a stale lock file never blocks a start.
type fileLock struct {
	lock *flock.Flock
}

// lockPath is the lock file of the database at abs.
func lockPath(abs string) string { return abs + ".lock" }

// lockFile takes the lock of the database at abs without waiting. It
// returns an error wrapping ErrInUse, naming the file and the holder's pid,
// when another process holds it.
func lockFile(abs string) (*fileLock, error) {
	path := lockPath(abs)
	l := flock.New(path, flock.SetPermissions(0o644))
	ok, err := l.TryLock()
	if err != nil {
		return nil, fmt.Errorf("sqlite: lock %s: %w: %w", path, sqlkv.ErrUnavailable, err)
	}
	if !ok {
		holder := "another process"
		if b, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				holder = "process " + strconv.Itoa(pid)
			}
		}
		return nil, fmt.Errorf("sqlite: %s is in use by %s (lock file %s): %w; stop it or use another file", abs, holder, path, ErrInUse)
	}
	// The pid is information for the next process's error, not the lock:
	// failing to write it costs a less precise message only.
	_ = os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	return &fileLock{lock: l}, nil
}

// release drops the lock. The lock file stays: removing it would let a
// process that opened it just before lock a file nobody else sees.
func (l *fileLock) release() error {
	if l == nil {
		return nil
	}
	if err := l.lock.Unlock(); err != nil {
		return fmt.Errorf("sqlite: unlock %s: %w", l.lock.Path(), err)
	}
	return nil
}
