package sqlite

import (
	"database/sql/driver"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/spear-next/sms/sqlkv"
)

// translate maps SQLite errors to the sqlkv sentinels, keeping the driver's
// error in the chain.
func translate(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			// Another process held the database for longer than
			// busy_timeout. In-process writers never get here: they queue
			// on the one writer connection.
			return fmt.Errorf("%w: %w", sqlkv.ErrUnavailable, err)
		case sqlite3.SQLITE_FULL:
			// The disk or max_page_count is full. SQLite rolled the
			// statement or transaction back; the file is intact.
			return fmt.Errorf("%w: the disk holding the database is full: %w", sqlkv.ErrStorageFull, err)
		case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_READONLY:
			return fmt.Errorf("%w: %w", sqlkv.ErrUnavailable, err)
		case sqlite3.SQLITE_CONSTRAINT:
			if se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
				return fmt.Errorf("%w: %w", sqlkv.ErrConflict, err)
			}
		case sqlite3.SQLITE_TOOBIG:
			return fmt.Errorf("%w: %w", sqlkv.ErrValueTooLarge, err)
		}
		return err
	}
	if errors.Is(err, driver.ErrBadConn) {
		return fmt.Errorf("%w: %w", sqlkv.ErrUnavailable, err)
	}
	return err
}
