package migrations

import (
	"context"
	"errors"
	"fmt"

	"github.com/pressly/goose/v3"
)

// ErrPending means the database schema lacks migrations this binary knows:
// a store opened without migrating refuses such a database.
var ErrPending = errors.New("schema not migrated")

// CheckCurrent returns nil if every migration of p is applied to its
// database, and an error wrapping ErrPending that gives the database's and
// the latest version otherwise. A database with migrations newer than p's
// (a newer SMS migrated it) is current. Like every goose call, it creates
// goose's version table if it is missing; it never takes the migration lock.
func CheckCurrent(ctx context.Context, p *goose.Provider) error {
	pending, err := p.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("check migrations: %w", err)
	}
	if !pending {
		return nil
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return fmt.Errorf("check migrations: %w", err)
	}
	return fmt.Errorf("%w: database at version %d, latest is %d", ErrPending, current, target)
}
