package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/spear-next/sms/internal/records"
	"github.com/spear-next/sms/sqlkv"
)

// Key prefixes, one namespace each (see the package doc).
const (
	nodePrefix      = records.NodePrefix
	heartbeatPrefix = records.HeartbeatPrefix
	resourcePrefix  = records.ResourcePrefix
	expiredPrefix   = records.ExpiredPrefix
)

func nodeKey(uuid string) []byte      { return []byte(nodePrefix + uuid) }
func heartbeatKey(uuid string) []byte { return []byte(heartbeatPrefix + uuid) }
func resourceKey(uuid string) []byte  { return []byte(resourcePrefix + uuid) }
func expiredKey(uuid string) []byte   { return []byte(expiredPrefix + uuid) }

// The stored records are private to this package; their format (protobuf
// behind a format byte, and the JSON of SMS before records v2, which
// readers still accept) is internal/records. Times are Unix nanoseconds.

// nodeRecord is the value of node:<uuid>: what a client registered. Its
// Status is never unhealthy: an unhealthy node is an active one whose
// heartbeat record is expired (see effectiveStatus).
type nodeRecord struct {
	IP           string
	Port         int32
	HTTPPort     int32
	Status       Status
	RegisteredAt int64
	Metadata     map[string]string
}

// heartbeatRecord is the value of heartbeat:<uuid>: the node's liveness. It
// is separate from the node record so a heartbeat is one blind write that
// cannot lose a concurrent Update. Expired is set by the sweeper, and by
// Register and Update when the client asks for status unhealthy.
type heartbeatRecord records.Heartbeat

// expiredRecord is the value of expired:<uuid>: the sweeper deleted the
// node after its TTL, at At. It lets watchers tell an expiry from a Delete
// (see NodeRegistry.Watch); a later sweep removes it.
type expiredRecord records.Expired

// resourceRecord is the value of resource:<uuid>.
type resourceRecord records.Resource

// encode returns the stored form of a record (one of the four types above).
func encode(v any) []byte {
	switch r := v.(type) {
	case nodeRecord:
		n := records.Node{IP: r.IP, Port: r.Port, HTTPPort: r.HTTPPort, Status: string(r.Status), RegisteredAt: r.RegisteredAt, Metadata: r.Metadata}
		return n.AppendProto(make([]byte, 0, 96))
	case heartbeatRecord:
		return (*records.Heartbeat)(&r).AppendProto(make([]byte, 0, 48))
	case resourceRecord:
		return (*records.Resource)(&r).AppendProto(make([]byte, 0, 128))
	case expiredRecord:
		return (*records.Expired)(&r).AppendProto(make([]byte, 0, 12))
	}
	panic(fmt.Sprintf("registry: encode %T: not a record", v))
}

// decode decodes the record stored at key, in either format. It returns an
// error wrapping records.ErrFormat for a value that is not such a record.
func decode[T any](key []byte, value []byte) (T, error) {
	var rec T
	var err error
	switch p := any(&rec).(type) {
	case *nodeRecord:
		var n records.Node
		n, err = records.DecodeNode(value)
		*p = nodeRecord{IP: n.IP, Port: n.Port, HTTPPort: n.HTTPPort, Status: Status(n.Status), RegisteredAt: n.RegisteredAt, Metadata: n.Metadata}
	case *heartbeatRecord:
		var h records.Heartbeat
		h, err = records.DecodeHeartbeat(value)
		*p = heartbeatRecord(h)
	case *resourceRecord:
		var r records.Resource
		r, err = records.DecodeResource(value)
		*p = resourceRecord(r)
	case *expiredRecord:
		var e records.Expired
		e, err = records.DecodeExpired(value)
		*p = expiredRecord(e)
	default:
		panic(fmt.Sprintf("registry: decode %T: not a record", rec))
	}
	if err != nil {
		return rec, fmt.Errorf("decode %q: %w", key, err)
	}
	return rec, nil
}

// unixNano converts t for storage; stored times have nanosecond precision.
func unixNano(t time.Time) int64 { return t.UnixNano() }

// fromUnixNano is the inverse of unixNano, in UTC and without a monotonic
// clock reading, so values compare equal across a store round trip.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// effectiveStatus is the status a reader sees: an active node whose heartbeat
// expired is unhealthy; any other stored status is shown as is.
func effectiveStatus(stored Status, hb heartbeatRecord) Status {
	if stored == StatusActive && hb.Expired {
		return StatusUnhealthy
	}
	return stored
}

// assembleNode builds the Node a reader sees. hb is nil when the node has no
// heartbeat record (which the registry never leaves behind, but a reader must
// not fail on); liveness then counts from registered_at.
func assembleNode(uuid string, nr nodeRecord, hb *heartbeatRecord) Node {
	var h heartbeatRecord
	if hb != nil {
		h = *hb
	} else {
		h.LastHeartbeat = nr.RegisteredAt
	}
	return Node{
		UUID:          uuid,
		IPAddress:     nr.IP,
		Port:          nr.Port,
		HTTPPort:      nr.HTTPPort,
		Status:        effectiveStatus(nr.Status, h),
		LastHeartbeat: fromUnixNano(h.LastHeartbeat),
		RegisteredAt:  fromUnixNano(nr.RegisteredAt),
		Metadata:      cloneMap(nr.Metadata),
		HealthInfo:    cloneMap(h.HealthInfo),
	}
}

// storedStatus maps a requested status to what the node record holds and
// whether the heartbeat record must be expired: asking for unhealthy stores
// an active node with an expired heartbeat, exactly what the sweeper would
// leave, so the next heartbeat turns it active with one blind write.
func storedStatus(s Status) (Status, bool) {
	if s == StatusUnhealthy {
		return StatusActive, true
	}
	return s, false
}

func resourceToRecord(res Resource) resourceRecord {
	return resourceRecord{
		CPU:          res.CPUUsagePercent,
		Mem:          res.MemoryUsagePercent,
		MemTotal:     res.TotalMemoryBytes,
		MemUsed:      res.UsedMemoryBytes,
		MemAvailable: res.AvailableMemoryBytes,
		Disk:         res.DiskUsagePercent,
		DiskTotal:    res.TotalDiskBytes,
		DiskUsed:     res.UsedDiskBytes,
		NetRx:        res.NetworkRxBytesPerSec,
		NetTx:        res.NetworkTxBytesPerSec,
		Load1:        res.LoadAverage1m,
		Load5:        res.LoadAverage5m,
		Load15:       res.LoadAverage15m,
		UpdatedAt:    unixNano(res.UpdatedAt),
		Metadata:     res.Metadata,
	}
}

func (rr resourceRecord) resource(uuid string) Resource {
	return Resource{
		NodeUUID:             uuid,
		CPUUsagePercent:      rr.CPU,
		MemoryUsagePercent:   rr.Mem,
		TotalMemoryBytes:     rr.MemTotal,
		UsedMemoryBytes:      rr.MemUsed,
		AvailableMemoryBytes: rr.MemAvailable,
		DiskUsagePercent:     rr.Disk,
		TotalDiskBytes:       rr.DiskTotal,
		UsedDiskBytes:        rr.DiskUsed,
		NetworkRxBytesPerSec: rr.NetRx,
		NetworkTxBytesPerSec: rr.NetTx,
		LoadAverage1m:        rr.Load1,
		LoadAverage5m:        rr.Load5,
		LoadAverage15m:       rr.Load15,
		UpdatedAt:            fromUnixNano(rr.UpdatedAt),
		Metadata:             cloneMap(rr.Metadata),
	}
}

// cloneMap returns a copy of m that is never nil, so callers can always
// write to the maps they are given.
func cloneMap(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	maps.Copy(c, m)
	return c
}

// uuidOf returns the uuid part of a key under prefix.
func uuidOf(key []byte, prefix string) string { return string(key[len(prefix):]) }

// versioned is a decoded record with the version it was read at.
type versioned[T any] struct {
	rec     T
	version int64
}

// scanRecords reads every record under prefix with one range read, keyed by
// uuid.
func scanRecords[T any](ctx context.Context, store sqlkv.Store, prefix string) (map[string]versioned[T], []string, error) {
	entries, err := store.Scan(ctx, []byte(prefix))
	if err != nil {
		return nil, nil, fmt.Errorf("scan %s: %w", prefix, err)
	}
	out := make(map[string]versioned[T], len(entries))
	order := make([]string, 0, len(entries))
	for _, e := range entries {
		rec, err := decode[T](e.Key, e.Value)
		if err != nil {
			return nil, nil, err
		}
		id := uuidOf(e.Key, prefix)
		out[id] = versioned[T]{rec: rec, version: e.Version}
		order = append(order, id)
	}
	return out, order, nil
}

// getRecord reads one record; found is false when the key is missing.
func getRecord[T any](ctx context.Context, store sqlkv.Store, key []byte) (rec T, version int64, found bool, err error) {
	e, err := store.Get(ctx, key)
	if errors.Is(err, sqlkv.ErrNotFound) {
		return rec, 0, false, nil
	}
	if err != nil {
		return rec, 0, false, err
	}
	rec, err = decode[T](key, e.Value)
	if err != nil {
		return rec, 0, false, err
	}
	return rec, e.Version, true, nil
}
