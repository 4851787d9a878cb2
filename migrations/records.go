package migrations

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pressly/goose/v3"

	"github.com/spear-next/sms/internal/records"
)

// RecordsVersion is the version of the Go migration that rewrites the
// registry's records from JSON to protobuf (internal/records) on up, and
// back on down. It is the same in both dialects; it leaves a gap after the
// SQL files so that schema migrations added later by other work keep
// their natural numbers below it.
const RecordsVersion = 10

// recordQueries are the statements of the records migration in one
// dialect. The rewrite changes no record's meaning, so it keeps each row's
// version and updated_at: conditional writes and watchers' positions stay
// valid across it.
type recordQueries struct {
	// page reads up to $3 rows with lo < key < hi ($1, $2), in key order.
	page string
	// update sets the value of key $2 to $1.
	update string
	// before and after run around the rewrite, if not empty.
	before, after string
}

var sqliteRecordQueries = recordQueries{
	page:   `SELECT key, value FROM kv WHERE key > ?1 AND key < ?2 ORDER BY key LIMIT ?3`,
	update: `UPDATE kv SET value = ?1 WHERE key = ?2`,
}

var postgresRecordQueries = recordQueries{
	page:   `SELECT key, value FROM kv WHERE key > $1 AND key < $2 ORDER BY key LIMIT $3`,
	update: `UPDATE kv SET value = $1 WHERE key = $2`,
	// Watchers need no notification of a rewrite (same content, same
	// version), and a million NOTIFYs in one transaction would fill
	// Postgres's notification queue for nothing.
	before: `ALTER TABLE kv DISABLE TRIGGER kv_notify`,
	after:  `ALTER TABLE kv ENABLE TRIGGER kv_notify`,
}

// recordsMigration returns the Go migration that rewrites every record with
// records.ToProto on up and records.ToJSON on down, in the migration's
// transaction.
func recordsMigration(q recordQueries) *goose.Migration {
	return goose.NewGoMigration(RecordsVersion,
		&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error { return rewriteRecords(ctx, tx, q, records.ToProto) }},
		&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error { return rewriteRecords(ctx, tx, q, records.ToJSON) }},
	)
}

// recordPage is how many rows the migration reads at a time, so that its
// memory stays bounded whatever the number of nodes.
const recordPage = 1000

func rewriteRecords(ctx context.Context, tx *sql.Tx, q recordQueries, convert func(key, value []byte) ([]byte, bool, error)) error {
	if q.before != "" {
		if _, err := tx.ExecContext(ctx, q.before); err != nil {
			return fmt.Errorf("records migration: %w", err)
		}
	}
	update, err := tx.PrepareContext(ctx, q.update)
	if err != nil {
		return fmt.Errorf("records migration: %w", err)
	}
	defer update.Close()
	rewritten := 0
	for _, prefix := range []string{records.NodePrefix, records.HeartbeatPrefix, records.ResourcePrefix, records.ExpiredPrefix} {
		// Keys below the prefix's first key and above its last: the
		// prefix itself is never a key, and ';' follows ':'.
		lo := []byte(prefix)
		hi := append([]byte(prefix[:len(prefix)-1]), ':'+1)
		for {
			keys, values, err := readPage(ctx, tx, q.page, lo, hi)
			if err != nil {
				return fmt.Errorf("records migration: read %s: %w", prefix, err)
			}
			for i, key := range keys {
				out, changed, err := convert(key, values[i])
				if err != nil {
					return fmt.Errorf("records migration: %w", err)
				}
				if !changed {
					continue
				}
				if _, err := update.ExecContext(ctx, out, key); err != nil {
					return fmt.Errorf("records migration: rewrite %q: %w", key, err)
				}
				rewritten++
			}
			if len(keys) < recordPage {
				break
			}
			lo = keys[len(keys)-1]
		}
	}
	if q.after != "" {
		if _, err := tx.ExecContext(ctx, q.after); err != nil {
			return fmt.Errorf("records migration: %w", err)
		}
	}
	return nil
}

func readPage(ctx context.Context, tx *sql.Tx, query string, lo, hi []byte) (keys, values [][]byte, err error) {
	rows, err := tx.QueryContext(ctx, query, lo, hi, recordPage)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, nil, err
		}
		keys, values = append(keys, k), append(values, v)
	}
	return keys, values, rows.Err()
}

// Name returns how to call migration s in messages: its file, or for the Go
// migration (which has none) "00010_records.go".
func Name(s *goose.Source) string {
	if s.Path != "" {
		return s.Path
	}
	return fmt.Sprintf("%05d_records.go", s.Version)
}
