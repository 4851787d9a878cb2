package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/spear-next/sms/sqlkv"
)

// Key prefixes, one namespace each (see the package doc).
const (
	nodePrefix      = "node:"
	heartbeatPrefix = "heartbeat:"
	resourcePrefix  = "resource:"
	expiredPrefix   = "expired:"
)

func nodeKey(uuid string) []byte      { return []byte(nodePrefix + uuid) }
func heartbeatKey(uuid string) []byte { return []byte(heartbeatPrefix + uuid) }
func resourceKey(uuid string) []byte  { return []byte(resourcePrefix + uuid) }
func expiredKey(uuid string) []byte   { return []byte(expiredPrefix + uuid) }

// The stored records are JSON with short field names. They are private to
// this package: decoding ignores unknown fields, so a record can grow without
// a migration. Times are Unix nanoseconds.

// nodeRecord is the value of node:<uuid>: what a client registered. Its
// Status is never unhealthy: an unhealthy node is an active one whose
// heartbeat record is expired (see effectiveStatus).
type nodeRecord struct {
	IP           string            `json:"ip"`
	Port         int32             `json:"p"`
	HTTPPort     int32             `json:"hp,omitempty"`
	Status       Status            `json:"s"`
	RegisteredAt int64             `json:"r"`
	Metadata     map[string]string `json:"m,omitempty"`
}

// heartbeatRecord is the value of heartbeat:<uuid>: the node's liveness. It
// is separate from the node record so a heartbeat is one blind write that
// cannot lose a concurrent Update. Expired is set by the sweeper, and by
// Register and Update when the client asks for status unhealthy.
type heartbeatRecord struct {
	LastHeartbeat int64             `json:"t"`
	HealthInfo    map[string]string `json:"h,omitempty"`
	Expired       bool              `json:"x,omitempty"`
}

// expiredRecord is the value of expired:<uuid>: the sweeper deleted the
// node after its TTL, at At. It lets watchers tell an expiry from a Delete
// (see NodeRegistry.Watch); a later sweep removes it.
type expiredRecord struct {
	At int64 `json:"t"`
}

// resourceRecord is the value of resource:<uuid>.
type resourceRecord struct {
	CPU          float64           `json:"cpu,omitempty"`
	Mem          float64           `json:"mem,omitempty"`
	MemTotal     int64             `json:"mt,omitempty"`
	MemUsed      int64             `json:"mu,omitempty"`
	MemAvailable int64             `json:"ma,omitempty"`
	Disk         float64           `json:"disk,omitempty"`
	DiskTotal    int64             `json:"dt,omitempty"`
	DiskUsed     int64             `json:"du,omitempty"`
	NetRx        int64             `json:"rx,omitempty"`
	NetTx        int64             `json:"tx,omitempty"`
	Load1        float64           `json:"l1,omitempty"`
	Load5        float64           `json:"l5,omitempty"`
	Load15       float64           `json:"l15,omitempty"`
	UpdatedAt    int64             `json:"u"`
	Metadata     map[string]string `json:"m,omitempty"`
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// The records hold only strings, integers and validated finite
		// floats, which always marshal.
		panic(fmt.Sprintf("registry: encode %T: %v", v, err))
	}
	return b
}

func decode[T any](key []byte, value []byte) (T, error) {
	var rec T
	if err := json.Unmarshal(value, &rec); err != nil {
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
