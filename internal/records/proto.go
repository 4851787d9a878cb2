package records

import (
	"fmt"
	"math"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the protobuf messages (records.proto). Never reuse or
// renumber one: stored records hold them.
const (
	nodeIP           = 1
	nodePort         = 2
	nodeHTTPPort     = 3
	nodeStatus       = 4
	nodeRegisteredAt = 5
	nodeMetadata     = 6

	heartbeatLast    = 1
	heartbeatHealth  = 2
	heartbeatExpired = 3

	expiredAt = 1

	resourceCPU          = 1
	resourceMem          = 2
	resourceMemTotal     = 3
	resourceMemUsed      = 4
	resourceMemAvailable = 5
	resourceDisk         = 6
	resourceDiskTotal    = 7
	resourceDiskUsed     = 8
	resourceNetRx        = 9
	resourceNetTx        = 10
	resourceLoad1        = 11
	resourceLoad5        = 12
	resourceLoad15       = 13
	resourceUpdatedAt    = 14
	resourceMetadata     = 15

	mapKey   = 1
	mapValue = 2
)

// AppendProto appends n in the protobuf format, format byte first.
func (n *Node) AppendProto(b []byte) []byte {
	b = append(b, FormatProto)
	b = appendString(b, nodeIP, n.IP)
	b = appendVarint(b, nodePort, int64(n.Port))
	b = appendVarint(b, nodeHTTPPort, int64(n.HTTPPort))
	b = appendString(b, nodeStatus, n.Status)
	b = appendVarint(b, nodeRegisteredAt, n.RegisteredAt)
	return appendMap(b, nodeMetadata, n.Metadata)
}

// AppendProto appends h in the protobuf format, format byte first.
func (h *Heartbeat) AppendProto(b []byte) []byte {
	b = append(b, FormatProto)
	b = appendVarint(b, heartbeatLast, h.LastHeartbeat)
	b = appendMap(b, heartbeatHealth, h.HealthInfo)
	if h.Expired {
		b = appendVarint(b, heartbeatExpired, 1)
	}
	return b
}

// AppendProto appends e in the protobuf format, format byte first.
func (e *Expired) AppendProto(b []byte) []byte {
	return appendVarint(append(b, FormatProto), expiredAt, e.At)
}

// AppendProto appends r in the protobuf format, format byte first.
func (r *Resource) AppendProto(b []byte) []byte {
	b = append(b, FormatProto)
	b = appendDouble(b, resourceCPU, r.CPU)
	b = appendDouble(b, resourceMem, r.Mem)
	b = appendVarint(b, resourceMemTotal, r.MemTotal)
	b = appendVarint(b, resourceMemUsed, r.MemUsed)
	b = appendVarint(b, resourceMemAvailable, r.MemAvailable)
	b = appendDouble(b, resourceDisk, r.Disk)
	b = appendVarint(b, resourceDiskTotal, r.DiskTotal)
	b = appendVarint(b, resourceDiskUsed, r.DiskUsed)
	b = appendVarint(b, resourceNetRx, r.NetRx)
	b = appendVarint(b, resourceNetTx, r.NetTx)
	b = appendDouble(b, resourceLoad1, r.Load1)
	b = appendDouble(b, resourceLoad5, r.Load5)
	b = appendDouble(b, resourceLoad15, r.Load15)
	b = appendVarint(b, resourceUpdatedAt, r.UpdatedAt)
	return appendMap(b, resourceMetadata, r.Metadata)
}

// MapSink receives the entries of a record's map field instead of the
// map, for a reader that keeps maps in a form of its own: in key order for
// protobuf records (AppendProto writes them so), in no order for JSON ones.
// key and value are only valid during the call.
type MapSink func(key, value []byte)

// DecodeNode decodes a node record in either format. It returns an error
// wrapping ErrFormat if value is neither.
func DecodeNode(value []byte) (Node, error) { return DecodeNodeTo(value, nil) }

// DecodeNodeTo is DecodeNode handing the metadata to sink (if not nil),
// Metadata left nil.
func DecodeNodeTo(value []byte, sink MapSink) (Node, error) {
	var n Node
	if IsJSON(value) {
		err := decodeJSON(value, (*nodeJSON)(&n))
		drainMap(&n.Metadata, sink)
		return n, err
	}
	err := fields(value, func(num protowire.Number, typ protowire.Type, b []byte) int {
		switch {
		case num == nodeIP && typ == protowire.BytesType:
			return consumeString(b, &n.IP)
		case num == nodePort && typ == protowire.VarintType:
			return consumeInt32(b, &n.Port)
		case num == nodeHTTPPort && typ == protowire.VarintType:
			return consumeInt32(b, &n.HTTPPort)
		case num == nodeStatus && typ == protowire.BytesType:
			v, k := protowire.ConsumeBytes(b)
			n.Status = internStatus(v)
			return k
		case num == nodeRegisteredAt && typ == protowire.VarintType:
			return consumeInt64(b, &n.RegisteredAt)
		case num == nodeMetadata && typ == protowire.BytesType:
			return consumeMapEntry(b, &n.Metadata, sink)
		}
		return protowire.ConsumeFieldValue(num, typ, b)
	})
	return n, err
}

// DecodeHeartbeat decodes a heartbeat record in either format. It returns an
// error wrapping ErrFormat if value is neither.
func DecodeHeartbeat(value []byte) (Heartbeat, error) { return DecodeHeartbeatTo(value, nil) }

// DecodeHeartbeatTo is DecodeHeartbeat handing the health information to
// sink (if not nil), HealthInfo left nil.
func DecodeHeartbeatTo(value []byte, sink MapSink) (Heartbeat, error) {
	var h Heartbeat
	err := DecodeHeartbeatInto(value, &h, sink)
	return h, err
}

// DecodeHeartbeatInto is DecodeHeartbeatTo decoding into *h (zeroed
// first), so that a caller keeping the record on the heap allocates it
// once.
func DecodeHeartbeatInto(value []byte, h *Heartbeat, sink MapSink) error {
	*h = Heartbeat{}
	if IsJSON(value) {
		err := decodeJSON(value, (*heartbeatJSON)(h))
		drainMap(&h.HealthInfo, sink)
		return err
	}
	err := fields(value, func(num protowire.Number, typ protowire.Type, b []byte) int {
		switch {
		case num == heartbeatLast && typ == protowire.VarintType:
			return consumeInt64(b, &h.LastHeartbeat)
		case num == heartbeatHealth && typ == protowire.BytesType:
			return consumeMapEntry(b, &h.HealthInfo, sink)
		case num == heartbeatExpired && typ == protowire.VarintType:
			v, k := protowire.ConsumeVarint(b)
			h.Expired = v != 0
			return k
		}
		return protowire.ConsumeFieldValue(num, typ, b)
	})
	return err
}

// DecodeExpired decodes an expired record in either format. It returns an
// error wrapping ErrFormat if value is neither.
func DecodeExpired(value []byte) (Expired, error) {
	var e Expired
	if IsJSON(value) {
		return e, decodeJSON(value, (*expiredJSON)(&e))
	}
	err := fields(value, func(num protowire.Number, typ protowire.Type, b []byte) int {
		if num == expiredAt && typ == protowire.VarintType {
			return consumeInt64(b, &e.At)
		}
		return protowire.ConsumeFieldValue(num, typ, b)
	})
	return e, err
}

// DecodeResource decodes a resource record in either format. It returns an
// error wrapping ErrFormat if value is neither.
func DecodeResource(value []byte) (Resource, error) { return DecodeResourceTo(value, nil) }

// DecodeResourceTo is DecodeResource handing the metadata to sink (if not
// nil), Metadata left nil.
func DecodeResourceTo(value []byte, sink MapSink) (Resource, error) {
	var r Resource
	err := DecodeResourceInto(value, &r, sink)
	return r, err
}

// DecodeResourceInto is DecodeResourceTo decoding into *r (zeroed first),
// so that a caller keeping the record on the heap allocates it once.
func DecodeResourceInto(value []byte, r *Resource, sink MapSink) error {
	*r = Resource{}
	if IsJSON(value) {
		err := decodeJSON(value, (*resourceJSON)(r))
		drainMap(&r.Metadata, sink)
		return err
	}
	err := fields(value, func(num protowire.Number, typ protowire.Type, b []byte) int {
		switch typ {
		case protowire.Fixed64Type:
			switch num {
			case resourceCPU:
				return consumeDouble(b, &r.CPU)
			case resourceMem:
				return consumeDouble(b, &r.Mem)
			case resourceDisk:
				return consumeDouble(b, &r.Disk)
			case resourceLoad1:
				return consumeDouble(b, &r.Load1)
			case resourceLoad5:
				return consumeDouble(b, &r.Load5)
			case resourceLoad15:
				return consumeDouble(b, &r.Load15)
			}
		case protowire.VarintType:
			switch num {
			case resourceMemTotal:
				return consumeInt64(b, &r.MemTotal)
			case resourceMemUsed:
				return consumeInt64(b, &r.MemUsed)
			case resourceMemAvailable:
				return consumeInt64(b, &r.MemAvailable)
			case resourceDiskTotal:
				return consumeInt64(b, &r.DiskTotal)
			case resourceDiskUsed:
				return consumeInt64(b, &r.DiskUsed)
			case resourceNetRx:
				return consumeInt64(b, &r.NetRx)
			case resourceNetTx:
				return consumeInt64(b, &r.NetTx)
			case resourceUpdatedAt:
				return consumeInt64(b, &r.UpdatedAt)
			}
		case protowire.BytesType:
			if num == resourceMetadata {
				return consumeMapEntry(b, &r.Metadata, sink)
			}
		}
		return protowire.ConsumeFieldValue(num, typ, b)
	})
	return err
}

// fields checks the format byte and calls field for each field of value's
// body with the bytes after its tag; field returns how many it consumed, or
// a negative protowire error code.
func fields(value []byte, field func(num protowire.Number, typ protowire.Type, b []byte) int) error {
	if len(value) == 0 {
		return fmt.Errorf("%w: empty value", ErrFormat)
	}
	if value[0] != FormatProto {
		return fmt.Errorf("%w: unknown format byte 0x%02x", ErrFormat, value[0])
	}
	b := value[1:]
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrFormat, protowire.ParseError(n))
		}
		b = b[n:]
		n = field(num, typ, b)
		if n < 0 {
			return fmt.Errorf("%w: field %d: %v", ErrFormat, num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return nil
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// appendDouble omits 0 and -0 alike, as the JSON format did.
func appendDouble(b []byte, num protowire.Number, v float64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(v))
}

// appendMap appends m as a protobuf map field (one entry message per key),
// in key order so equal records encode to equal bytes.
func appendMap(b []byte, num protowire.Number, m map[string]string) []byte {
	if len(m) == 0 {
		return b
	}
	var buf [16]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := m[k]
		b = protowire.AppendTag(b, num, protowire.BytesType)
		size := protowire.SizeTag(mapKey) + protowire.SizeBytes(len(k))
		if v != "" {
			size += protowire.SizeTag(mapValue) + protowire.SizeBytes(len(v))
		}
		b = protowire.AppendVarint(b, uint64(size))
		b = protowire.AppendTag(b, mapKey, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = appendString(b, mapValue, v)
	}
	return b
}

func consumeString(b []byte, s *string) int {
	v, n := protowire.ConsumeBytes(b)
	if n >= 0 {
		*s = string(v)
	}
	return n
}

func consumeInt64(b []byte, v *int64) int {
	u, n := protowire.ConsumeVarint(b)
	*v = int64(u)
	return n
}

func consumeInt32(b []byte, v *int32) int {
	u, n := protowire.ConsumeVarint(b)
	*v = int32(u)
	return n
}

func consumeDouble(b []byte, v *float64) int {
	u, n := protowire.ConsumeFixed64(b)
	*v = math.Float64frombits(u)
	return n
}

// drainMap hands *m to sink, if not nil, and clears it.
func drainMap(m *map[string]string, sink MapSink) {
	if sink == nil {
		return
	}
	for k, v := range *m {
		sink([]byte(k), []byte(v))
	}
	*m = nil
}

// consumeMapEntry decodes one map entry message into *m, making the map on
// the first entry, or hands it to sink if not nil.
func consumeMapEntry(b []byte, m *map[string]string, sink MapSink) int {
	entry, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return n
	}
	var key, value []byte
	for len(entry) > 0 {
		num, typ, k := protowire.ConsumeTag(entry)
		if k < 0 {
			return k
		}
		entry = entry[k:]
		switch {
		case num == mapKey && typ == protowire.BytesType:
			key, k = protowire.ConsumeBytes(entry)
		case num == mapValue && typ == protowire.BytesType:
			value, k = protowire.ConsumeBytes(entry)
		default:
			k = protowire.ConsumeFieldValue(num, typ, entry)
		}
		if k < 0 {
			return k
		}
		entry = entry[k:]
	}
	if sink != nil {
		sink(key, value)
		return n
	}
	if *m == nil {
		*m = make(map[string]string)
	}
	(*m)[string(key)] = string(value)
	return n
}

// internStatus returns the stored status without allocating for the
// statuses the registry writes.
func internStatus(b []byte) string {
	switch string(b) {
	case "active":
		return "active"
	case "inactive":
		return "inactive"
	case "unhealthy":
		return "unhealthy"
	case "decommissioning":
		return "decommissioning"
	}
	return string(b)
}
