package sqlstore

import "database/sql"

// Queries holds one dialect's complete statements. Each is written out in
// full by the dialect package, so there is no placeholder rewriting and no
// string building here. The comment on each field gives its parameters, in
// order, and its result columns; every key and value parameter is bound as a
// non-nil []byte.
//
// The range statements come in pairs: "From" has no upper bound, "FromTo" has
// one. A single statement with "(hi IS NULL OR key < hi)" would stop the
// planner from using the primary key as a range.
type Queries struct {
	// Get: (key) -> value, version.
	Get string
	// GetAny, if the dialect has it, reads any number of keys in one
	// statement: (keys as one array) -> key, value, version for each that
	// exists, in any order. Empty: GetMany runs Get per key.
	GetAny string
	// Version: (key) -> version; no row if the key does not exist. Used by
	// Apply for checks inside its transaction, so where the dialect can it
	// locks the row until commit.
	Version string

	// Put is an upsert: (key, value, updated_at) -> version.
	Put string
	// PutIfVersion updates the key only at that version: (key, value,
	// updated_at, version) -> new version; no row if the key is missing or at
	// another version.
	PutIfVersion string
	// PutIfExists updates the key if it exists: (key, value, updated_at) ->
	// version; no row if missing.
	PutIfExists string
	// PutIfNotExists inserts the key if it is missing: (key, value,
	// updated_at) -> version; no row if it exists.
	PutIfNotExists string

	// PutMany, if the dialect has it, upserts many keys in one statement:
	// (keys, values, updated_at) with keys and values as equally long
	// [][]byte, keys sorted and distinct. Empty: BatchPut runs Put per entry.
	PutMany string
	// DeleteMany, if the dialect has it, deletes many keys in one statement:
	// (keys) as a [][]byte; rows affected is how many existed. Empty:
	// BatchDelete runs Delete per key.
	DeleteMany string

	// Delete: (key); rows affected is 1 if it existed.
	Delete string
	// DeleteIfVersion: (key, version); rows affected is 1 if it existed at
	// that version.
	DeleteIfVersion string

	// Entries in [lo, ...) or [lo, hi), ascending or descending: (lo, [hi,]
	// limit) -> key, value, version.
	RangeFrom, RangeFromTo, RangeFromDesc, RangeFromToDesc string
	// The same without values: (lo, [hi,] limit) -> key, version.
	KeysFrom, KeysFromTo, KeysFromDesc, KeysFromToDesc string
	// Count: (lo, [hi]) -> count.
	CountFrom, CountFromTo string
	// DeleteRange: (lo, [hi]); rows affected is how many were deleted.
	DeleteFrom, DeleteFromTo string

	// Ping: () -> one row; fails unless the schema is migrated.
	Ping string
}

// Dialect is everything the shared implementation needs to know about one
// database: its statements and how to read its driver's errors.
type Dialect struct {
	// Queries are the dialect's statements.
	Queries Queries

	// NoLimit is the LIMIT parameter meaning "no limit".
	NoLimit any

	// Translate maps a driver error to the sqlkv sentinels (ErrUnavailable,
	// ErrConflict, ...), keeping the driver error in the chain, and returns
	// other errors unchanged. It must use errors.As, never string matching.
	Translate func(error) error

	// Retryable reports whether a transaction that failed with err was rolled
	// back by the database because of concurrent transactions (deadlock,
	// serialization failure) and may simply be run again. Nil means never.
	Retryable func(error) bool

	// CheckTx are the options of the transaction of an Apply that depends
	// on a key being absent without writing it (a check or delete with
	// IfNotExists); nil for the driver's default. Every other read of an
	// Apply finds a row and locks it (Version reads FOR SHARE, writes lock
	// what they write), which protects it at any isolation level.
	CheckTx *sql.TxOptions

	// GroupLanes is how many groups of concurrent writes may commit at once
	// (see group.go); 0 turns group commit off, every write then runs in
	// its own transaction.
	GroupLanes int
}
