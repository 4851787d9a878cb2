package sqlite

import "github.com/spear-next/sms/sqlkv/internal/sqlstore"

// next is the version a write takes: one above the highest ever written. The
// triggers of the schema store it back into kv_version, so a single-key write
// stays one statement. Only one write transaction runs at a time in SQLite,
// so no other writer can read the same value in between.
//
// Parameters are numbered (?1, ?2, ...) in the order sqlstore.Queries gives.
var queries = sqlstore.Queries{
	Get: `SELECT value, version FROM kv WHERE key = ?1`,
	// No GetAny: in-process, two point reads measured ~15 % faster than
	// one IN (?1, ?2) (BENCHMARKS.md); a many-key statement pays only over a
	// network.
	Version: `SELECT version FROM kv WHERE key = ?1`,

	Put: `INSERT INTO kv (key, value, version, updated_at)
		VALUES (?1, ?2, (SELECT version + 1 FROM kv_version), ?3)
		ON CONFLICT (key) DO UPDATE SET
			value = excluded.value, version = excluded.version, updated_at = excluded.updated_at
		RETURNING version`,
	PutIfVersion: `UPDATE kv SET value = ?2, version = (SELECT version + 1 FROM kv_version), updated_at = ?3
		WHERE key = ?1 AND version = ?4
		RETURNING version`,
	PutIfExists: `UPDATE kv SET value = ?2, version = (SELECT version + 1 FROM kv_version), updated_at = ?3
		WHERE key = ?1
		RETURNING version`,
	PutIfNotExists: `INSERT INTO kv (key, value, version, updated_at)
		VALUES (?1, ?2, (SELECT version + 1 FROM kv_version), ?3)
		ON CONFLICT (key) DO NOTHING
		RETURNING version`,

	Delete:          `DELETE FROM kv WHERE key = ?1`,
	DeleteIfVersion: `DELETE FROM kv WHERE key = ?1 AND version = ?2`,

	RangeFrom:       `SELECT key, value, version FROM kv WHERE key >= ?1 ORDER BY key ASC LIMIT ?2`,
	RangeFromTo:     `SELECT key, value, version FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key ASC LIMIT ?3`,
	RangeFromDesc:   `SELECT key, value, version FROM kv WHERE key >= ?1 ORDER BY key DESC LIMIT ?2`,
	RangeFromToDesc: `SELECT key, value, version FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key DESC LIMIT ?3`,

	KeysFrom:       `SELECT key, version FROM kv WHERE key >= ?1 ORDER BY key ASC LIMIT ?2`,
	KeysFromTo:     `SELECT key, version FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key ASC LIMIT ?3`,
	KeysFromDesc:   `SELECT key, version FROM kv WHERE key >= ?1 ORDER BY key DESC LIMIT ?2`,
	KeysFromToDesc: `SELECT key, version FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key DESC LIMIT ?3`,

	CountFrom:   `SELECT count(*) FROM kv WHERE key >= ?1`,
	CountFromTo: `SELECT count(*) FROM kv WHERE key >= ?1 AND key < ?2`,

	DeleteFrom:   `DELETE FROM kv WHERE key >= ?1`,
	DeleteFromTo: `DELETE FROM kv WHERE key >= ?1 AND key < ?2`,

	Ping: `SELECT EXISTS (SELECT 1 FROM kv) + (SELECT count(*) FROM kv_version)`,
}

// noLimit is SQLite's "LIMIT -1": no limit.
const noLimit int64 = -1
