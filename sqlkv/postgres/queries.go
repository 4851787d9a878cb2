package postgres

import "github.com/spear-next/sms/sqlkv/internal/sqlstore"

// Versions come from the kv_version sequence inside each writing statement.
// The upsert's DO UPDATE branch takes a second nextval, evaluated after the
// row lock is held: the one in VALUES may have been taken before a
// concurrent writer's, and reusing it would move the key's version backwards.
// Plain UPDATEs evaluate SET after locking the row (and again if it changed
// meanwhile), so one nextval suffices there. Unused values are gaps, which
// versions may have.
//
// Parameters are numbered in the order sqlstore.Queries gives.
var queries = sqlstore.Queries{
	Get:    `SELECT value, version FROM kv WHERE key = $1`,
	GetAny: `SELECT key, value, version FROM kv WHERE key = ANY ($1::bytea[])`,
	// FOR SHARE keeps the row as read until Apply commits.
	Version: `SELECT version FROM kv WHERE key = $1 FOR SHARE`,

	Put: `INSERT INTO kv (key, value, version, updated_at)
		VALUES ($1, $2, nextval('kv_version'), $3)
		ON CONFLICT (key) DO UPDATE SET
			value = EXCLUDED.value, version = nextval('kv_version'), updated_at = EXCLUDED.updated_at
		RETURNING version`,
	PutIfVersion: `UPDATE kv SET value = $2, version = nextval('kv_version'), updated_at = $3
		WHERE key = $1 AND version = $4
		RETURNING version`,
	PutIfExists: `UPDATE kv SET value = $2, version = nextval('kv_version'), updated_at = $3
		WHERE key = $1
		RETURNING version`,
	PutIfNotExists: `INSERT INTO kv (key, value, version, updated_at)
		VALUES ($1, $2, nextval('kv_version'), $3)
		ON CONFLICT (key) DO NOTHING
		RETURNING version`,

	// One statement per batch instead of one round trip per entry. ORDER BY
	// takes the row locks in key order, so that concurrent batches do not
	// deadlock.
	PutMany: `INSERT INTO kv (key, value, version, updated_at)
		SELECT k, v, nextval('kv_version'), $3
		FROM unnest($1::bytea[], $2::bytea[]) AS t(k, v)
		ORDER BY k
		ON CONFLICT (key) DO UPDATE SET
			value = EXCLUDED.value, version = nextval('kv_version'), updated_at = EXCLUDED.updated_at`,
	DeleteMany: `DELETE FROM kv WHERE key = ANY ($1::bytea[])`,

	Delete:          `DELETE FROM kv WHERE key = $1`,
	DeleteIfVersion: `DELETE FROM kv WHERE key = $1 AND version = $2`,

	RangeFrom:       `SELECT key, value, version FROM kv WHERE key >= $1 ORDER BY key ASC LIMIT $2`,
	RangeFromTo:     `SELECT key, value, version FROM kv WHERE key >= $1 AND key < $2 ORDER BY key ASC LIMIT $3`,
	RangeFromDesc:   `SELECT key, value, version FROM kv WHERE key >= $1 ORDER BY key DESC LIMIT $2`,
	RangeFromToDesc: `SELECT key, value, version FROM kv WHERE key >= $1 AND key < $2 ORDER BY key DESC LIMIT $3`,

	KeysFrom:       `SELECT key, version FROM kv WHERE key >= $1 ORDER BY key ASC LIMIT $2`,
	KeysFromTo:     `SELECT key, version FROM kv WHERE key >= $1 AND key < $2 ORDER BY key ASC LIMIT $3`,
	KeysFromDesc:   `SELECT key, version FROM kv WHERE key >= $1 ORDER BY key DESC LIMIT $2`,
	KeysFromToDesc: `SELECT key, version FROM kv WHERE key >= $1 AND key < $2 ORDER BY key DESC LIMIT $3`,

	CountFrom:   `SELECT count(*) FROM kv WHERE key >= $1`,
	CountFromTo: `SELECT count(*) FROM kv WHERE key >= $1 AND key < $2`,

	DeleteFrom:   `DELETE FROM kv WHERE key >= $1`,
	DeleteFromTo: `DELETE FROM kv WHERE key >= $1 AND key < $2`,

	Ping: `SELECT EXISTS (SELECT 1 FROM kv)::int + (SELECT count(*) FROM kv_version)`,
}
