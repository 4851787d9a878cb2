// Package sqlkv defines SMS's key/value store: one small interface with three
// interchangeable backends (sqlkv/memory, sqlkv/sqlite, sqlkv/postgres) whose
// observable behaviour is identical and proven by one conformance suite
// (sqlkv/kvtest).
//
// Keys are byte strings of up to MaxKeySize bytes and may hold any byte,
// including NUL and invalid UTF-8. They are ordered bytewise on every backend.
// Values are byte strings of up to MaxValueSize bytes; an empty value is a
// value, distinct from a missing key.
//
// Every write gives the key a new version. Versions are positive, grow
// strictly with every write to a key (also across a delete and re-create) and
// never repeat within one store, so a version read earlier identifies exactly
// one state of a key. Writes can be made conditional on a version with Apply,
// which is how callers do compare-and-swap.
//
// # Core and fast paths
//
// Store is the core, five methods: Get, Range, Apply, Ping and Close. They
// are what a backend must provide and what a wrapper of a store (the change
// feed of sqlkv/watchstore, the metrics of service/metrics) must forward;
// nothing smaller can express a point read, an ordered snapshot read and an
// atomic conditional write. The rest are package functions over a Store:
//
//	PutValue, DeleteKey          one key (Put and Delete are the Op constructors)
//	Exists, Keys, Scan, Count    reads of a key or a prefix
//	GetMany                      several keys
//	DeletePrefix                 a prefix
//	BatchPut, BatchDelete        many keys, atomically
//	RangeFunc                    a range, entry by entry
//
// Each is derived from the core (a write is one Apply, a read one Range or
// Get), and uses the store's own fast path instead where the store has one:
// the optional interfaces Putter, Counter, PrefixDeleter, BatchPutter,
// BatchDeleter, MultiGetter and RangeStreamer, whose methods answer with the
// same outcome in fewer statements or copies (a count without reading keys,
// a bulk upsert, a many-key read, a range handed over from one cursor).
// DeleteKey, Exists, Keys and Scan have no fast path: their derived form is
// already one statement. The differences in outcome are DeletePrefix,
// atomic only as a fast path, and RangeFunc, one snapshot only as a fast
// path; their docs say what the derived forms do.
//
// So a wrapper chooses which fast paths to keep, and one it does not forward
// falls back to its own core: a write reaches its Apply, which is what lets
// watchstore publish every write without a method per write. A wrapper that
// forwards a fast path calls the package function on the store it wraps
// (sqlkv.Count(ctx, inner, prefix)), which keeps that store's fast path or
// derives it in turn. Other optional interfaces are capabilities, not
// shortcuts, and have no derived form: Watchable and Fencer (change feeds),
// Degrader (read-only while the disk is full).
//
// This package imports no database driver; the backends do.
package sqlkv

import (
	"context"
	"errors"
	"fmt"
)

// Size limits, the same on every backend.
const (
	// MaxKeySize is the largest key, in bytes.
	MaxKeySize = 2048
	// MaxValueSize is the largest value, in bytes (64 MiB).
	MaxValueSize = 64 << 20
)

// Errors returned by stores. Backends wrap them with what they were doing,
// so callers must test with errors.Is.
var (
	// ErrNotFound means the key does not exist. Returned by Get.
	ErrNotFound = errors.New("sqlkv: key not found")

	// ErrConflict means a condition of Apply did not hold; nothing was
	// written. Returned by Apply.
	ErrConflict = errors.New("sqlkv: version conflict")

	// ErrKeyTooLarge means a key is longer than MaxKeySize. Nothing was
	// written.
	ErrKeyTooLarge = errors.New("sqlkv: key too large")

	// ErrValueTooLarge means a value is longer than MaxValueSize. Nothing was
	// written.
	ErrValueTooLarge = errors.New("sqlkv: value too large")

	// ErrUnavailable means the backing database could not be reached or
	// dropped the connection. The operation may or may not have taken effect
	// if it was a write; retrying later may succeed.
	ErrUnavailable = errors.New("sqlkv: store unavailable")

	// ErrClosed means the store was used after Close.
	ErrClosed = errors.New("sqlkv: store closed")

	// ErrStorageFull means the database's disk, or the size limit it was
	// given, is full: the write was not done. Reads keep working, and
	// writes succeed again once space is freed, without reopening the
	// store. Returned by the write methods of stores that keep files
	// (SQLite).
	ErrStorageFull = errors.New("sqlkv: storage full")
)

// Entry is a key with its value and current version.
type Entry struct {
	Key     []byte
	Value   []byte
	Version int64
}

// RangeOptions selects keys for Store.Range.
type RangeOptions struct {
	// Start is the first key included; nil or empty means from the first key.
	Start []byte
	// End is the first key excluded; nil means to the last key. A Start at or
	// after End selects nothing, so a non-nil empty End selects nothing.
	// Bounds are keys: longer than MaxKeySize is ErrKeyTooLarge.
	End []byte
	// Limit is the most entries returned; 0 or less means no limit.
	Limit int
	// Reverse returns entries in descending order. With a Limit of N it
	// returns the last N keys of the range, descending.
	Reverse bool
	// KeysOnly leaves Value nil in the returned entries, so the backend does
	// not read values.
	KeysOnly bool
}

// Store is a transactional, ordered key/value store: the core every backend
// and every wrapper implements. All methods are safe for concurrent use. Keys
// and values passed in are not retained; slices returned are owned by the
// caller.
//
// The core is what cannot be derived from anything smaller: a point read,
// an ordered range read, an atomic conditional write, and the lifecycle
// (Ping, Close). Everything else (PutValue, DeleteKey, Exists, Keys, Scan,
// Count, DeletePrefix, BatchPut, BatchDelete, GetMany) is a package function
// over a Store, which uses the store's own fast path when it has one (the
// optional interfaces Putter, Counter, PrefixDeleter, BatchPutter,
// BatchDeleter and MultiGetter) and otherwise derives the operation from the
// core. So a wrapper implements five methods and forwards only the fast
// paths it chooses to keep; a write it does not forward reaches its Apply.
//
// Methods that take keys return ErrKeyTooLarge and ErrValueTooLarge for
// oversized input, ErrUnavailable when the database cannot be reached, and
// ErrClosed after Close (a second Close included), wrapped with context. A
// done context makes them return an error wrapping ctx.Err().
type Store interface {
	// Get returns the entry for key, or ErrNotFound.
	Get(ctx context.Context, key []byte) (Entry, error)

	// Range returns the entries selected by opts (see RangeOptions), from
	// one snapshot of the store. An empty or inverted range is an empty
	// result, not an error.
	Range(ctx context.Context, opts RangeOptions) ([]Entry, error)

	// Apply runs ops atomically, in order: either every condition holds and
	// every write is done, or nothing is written. Each op sees the effects of
	// the ops before it, so a condition on a key an earlier op wrote tests
	// the version that op wrote. A failed condition returns ErrConflict, and
	// only a failed condition does: contention between concurrent Applys is
	// resolved inside the store. The results are in the order of ops.
	Apply(ctx context.Context, ops ...Op) ([]OpResult, error)

	// Ping checks that the database is reachable and migrated, for readiness
	// probes. It returns ErrUnavailable or ErrClosed when it is not.
	Ping(ctx context.Context) error

	// Close releases the store's resources. Calls after Close return
	// ErrClosed.
	Close() error
}

// OpKind says what an Op does.
type OpKind uint8

// The kinds of Op.
const (
	// OpPut sets Key to Value.
	OpPut OpKind = iota + 1
	// OpDelete removes Key; deleting a missing key is not an error unless a
	// condition says so.
	OpDelete
	// OpCheck only tests the condition on Key and writes nothing.
	OpCheck
)

func (k OpKind) String() string {
	switch k {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpCheck:
		return "check"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op is one step of Store.Apply: a put, delete or check of one key, guarded by
// an optional condition on that key's current version.
type Op struct {
	Kind  OpKind
	Key   []byte
	Value []byte // for OpPut
	Cond  Cond
}

// Put returns an unconditional put of key.
func Put(key, value []byte) Op { return Op{Kind: OpPut, Key: key, Value: value} }

// Delete returns an unconditional delete of key.
func Delete(key []byte) Op { return Op{Kind: OpDelete, Key: key} }

// Check returns an op that writes nothing and fails Apply with ErrConflict
// unless cond holds for key.
func Check(key []byte, cond Cond) Op { return Op{Kind: OpCheck, Key: key, Cond: cond} }

// If returns op guarded by cond.
func (op Op) If(cond Cond) Op {
	op.Cond = cond
	return op
}

// OpResult is the outcome of one Op.
type OpResult struct {
	// Version is the key's version after the op: the new version for a put,
	// 0 for a delete, the current version (0 if missing) for a check.
	Version int64
	// Existed reports whether the key existed before the op.
	Existed bool
}

// Cond is a condition on a key's current version. The zero Cond always holds.
type Cond struct {
	kind    condKind
	version int64
}

type condKind uint8

const (
	condAlways condKind = iota
	condVersion
	condExists
)

// IfVersion holds when the key's current version is v. IfVersion(0) holds
// when the key does not exist.
func IfVersion(v int64) Cond { return Cond{kind: condVersion, version: v} }

// IfExists holds when the key exists, whatever its version.
func IfExists() Cond { return Cond{kind: condExists} }

// IfNotExists holds when the key does not exist; it is IfVersion(0).
func IfNotExists() Cond { return IfVersion(0) }

// IsAlways reports whether c is the zero Cond, which always holds.
func (c Cond) IsAlways() bool { return c.kind == condAlways }

// Version returns the version c requires and true, or 0 and false when c does
// not require a specific version.
func (c Cond) Version() (int64, bool) { return c.version, c.kind == condVersion }

// RequiresExisting reports whether c is IfExists.
func (c Cond) RequiresExisting() bool { return c.kind == condExists }

// Holds reports whether c holds for a key whose current version is current
// (0 when the key does not exist).
func (c Cond) Holds(current int64) bool {
	switch c.kind {
	case condVersion:
		return current == c.version
	case condExists:
		return current != 0
	}
	return true
}

func (c Cond) String() string {
	switch c.kind {
	case condVersion:
		if c.version == 0 {
			return "if not exists"
		}
		return fmt.Sprintf("if version %d", c.version)
	case condExists:
		return "if exists"
	}
	return "always"
}
