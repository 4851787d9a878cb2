package postgres

import (
	"context"
	"fmt"
	"time"
)

// Now returns the database server's clock (clock_timestamp(), not the
// transaction's start). Every replica sharing the database reads the same
// clock here, which is what liveness decisions need (see
// registry.DatabaseClock). It returns an error wrapping
// sqlkv.ErrUnavailable when the database cannot be reached.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := s.db.QueryRowContext(ctx, `SELECT clock_timestamp()`).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("postgres: read the database clock: %w", translate(err))
	}
	return t, nil
}
