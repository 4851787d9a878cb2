// Package records is the storage format of the registry's records: the
// values of the node:, heartbeat:, resource: and expired: keys that
// service/registry writes. It is its own package so that the goose migration
// that rewrites stored records (migrations) and the registry share one
// definition of the format without the storage layer importing the registry.
//
// A record is one format byte followed by the body:
//
//	0x01  protobuf (the messages in records.proto), the format written today
//	'{'   JSON with short field names, the format of SMS before records v2
//
// Readers accept both, so a store is readable before, during and after the
// migration that rewrites JSON records as protobuf (and back, on down).
//
// The protobuf encoding is written by hand with protowire, straight from and
// into the Go structs below: no generated messages, no reflection, and no
// intermediate message to copy from (see BenchmarkDecode for the comparison
// with the JSON format). Zero fields are omitted and unknown fields are
// skipped, so a record can grow without a migration.
package records

import (
	"errors"
	"fmt"
	"strings"
)

// Key prefixes of the registry's records, one namespace each.
const (
	NodePrefix      = "node:"
	HeartbeatPrefix = "heartbeat:"
	ResourcePrefix  = "resource:"
	ExpiredPrefix   = "expired:"
)

// Format bytes: the first byte of a stored record.
const (
	FormatProto byte = 0x01
	formatJSON  byte = '{'
)

// ErrFormat means a stored value is not a record of the expected kind in any
// known format. Decode functions wrap it with what was wrong.
var ErrFormat = errors.New("malformed record")

// Node is the value of node:<uuid>: what a client registered. Status is the
// stored status (the registry never stores "unhealthy"; see Heartbeat).
type Node struct {
	IP           string
	Port         int32
	HTTPPort     int32
	Status       string
	RegisteredAt int64 // Unix nanoseconds
	Metadata     map[string]string
}

// Heartbeat is the value of heartbeat:<uuid>: the node's liveness. Expired
// is set by the sweeper (and by Register/Update asked for "unhealthy").
type Heartbeat struct {
	LastHeartbeat int64 // Unix nanoseconds
	HealthInfo    map[string]string
	Expired       bool
}

// Expired is the value of expired:<uuid>: the sweeper deleted the node after
// its TTL, at At (Unix nanoseconds).
type Expired struct {
	At int64
}

// Resource is the value of resource:<uuid>: a node's last resource report.
type Resource struct {
	CPU          float64
	Mem          float64
	MemTotal     int64
	MemUsed      int64
	MemAvailable int64
	Disk         float64
	DiskTotal    int64
	DiskUsed     int64
	NetRx        int64
	NetTx        int64
	Load1        float64
	Load5        float64
	Load15       float64
	UpdatedAt    int64 // Unix nanoseconds
	Metadata     map[string]string
}

// IsJSON reports whether value is in the JSON format of SMS before records v2.
func IsJSON(value []byte) bool { return len(value) > 0 && value[0] == formatJSON }

// kind is what a key holds, from its prefix; "" for keys that are not
// registry records.
func kind(key []byte) string {
	for _, p := range []string{NodePrefix, HeartbeatPrefix, ResourcePrefix, ExpiredPrefix} {
		if strings.HasPrefix(string(key), p) {
			return p
		}
	}
	return ""
}

// ToProto returns value, the record stored at key, in the protobuf format;
// changed is false when there is nothing to rewrite: the value already is
// protobuf or key is not a registry record. It returns an error wrapping
// ErrFormat if the value does not decode.
func ToProto(key, value []byte) (out []byte, changed bool, err error) {
	if !IsJSON(value) {
		return value, false, nil
	}
	switch kind(key) {
	case NodePrefix:
		return convert(key, value, DecodeNode, (*Node).AppendProto)
	case HeartbeatPrefix:
		return convert(key, value, DecodeHeartbeat, (*Heartbeat).AppendProto)
	case ResourcePrefix:
		return convert(key, value, DecodeResource, (*Resource).AppendProto)
	case ExpiredPrefix:
		return convert(key, value, DecodeExpired, (*Expired).AppendProto)
	}
	return value, false, nil
}

// ToJSON is the inverse of ToProto: value in the JSON format of SMS before
// records v2, for the migration's down step. changed is false when the value
// already is JSON or key is not a registry record.
func ToJSON(key, value []byte) (out []byte, changed bool, err error) {
	if IsJSON(value) || kind(key) == "" {
		return value, false, nil
	}
	switch kind(key) {
	case NodePrefix:
		return convert(key, value, DecodeNode, (*Node).AppendJSON)
	case HeartbeatPrefix:
		return convert(key, value, DecodeHeartbeat, (*Heartbeat).AppendJSON)
	case ResourcePrefix:
		return convert(key, value, DecodeResource, (*Resource).AppendJSON)
	default:
		return convert(key, value, DecodeExpired, (*Expired).AppendJSON)
	}
}

func convert[T any](key, value []byte, dec func([]byte) (T, error), enc func(*T, []byte) []byte) ([]byte, bool, error) {
	rec, err := dec(value)
	if err != nil {
		return nil, false, fmt.Errorf("record %q: %w", key, err)
	}
	return enc(&rec, nil), true, nil
}
