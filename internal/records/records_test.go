package records_test

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/spear-next/sms/internal/records"
)

var (
	node = records.Node{
		IP: "10.0.0.1", Port: 8080, HTTPPort: 8081, Status: "active",
		RegisteredAt: 1764000000123456789, Metadata: map[string]string{"zone": "a", "rack": "r1", "empty": ""},
	}
	heartbeat = records.Heartbeat{LastHeartbeat: 1764000000987654321, HealthInfo: map[string]string{"disk": "ok", "agent": "1.4.2"}, Expired: true}
	resource  = records.Resource{
		CPU: 12.5, Mem: 42, MemTotal: 64 << 30, MemUsed: 27 << 30, MemAvailable: 37 << 30,
		Disk: 61, DiskTotal: 1 << 40, DiskUsed: 600 << 30, NetRx: 1 << 20, NetTx: 2 << 20,
		Load1: 1.5, Load5: 1.2, Load15: math.Copysign(0, -1), UpdatedAt: 1764000000000000001,
		Metadata: map[string]string{"gpu": "a100"},
	}
	expired = records.Expired{At: 1764000000000000002}
)

// The JSON of SMS before records v2, byte for byte what it stored.
const (
	nodeJSON      = `{"ip":"10.0.0.1","p":8080,"hp":8081,"s":"active","r":1764000000123456789,"m":{"empty":"","rack":"r1","zone":"a"}}`
	heartbeatJSON = `{"t":1764000000987654321,"h":{"agent":"1.4.2","disk":"ok"},"x":true}`
	expiredJSON   = `{"t":1764000000000000002}`
)

func TestRoundTrip(t *testing.T) {
	t.Run("node", func(t *testing.T) {
		roundTrip(t, node, (*records.Node).AppendProto, (*records.Node).AppendJSON, records.DecodeNode)
	})
	t.Run("heartbeat", func(t *testing.T) {
		roundTrip(t, heartbeat, (*records.Heartbeat).AppendProto, (*records.Heartbeat).AppendJSON, records.DecodeHeartbeat)
	})
	t.Run("resource", func(t *testing.T) {
		roundTrip(t, resource, (*records.Resource).AppendProto, (*records.Resource).AppendJSON, records.DecodeResource)
	})
	t.Run("expired", func(t *testing.T) {
		roundTrip(t, expired, (*records.Expired).AppendProto, (*records.Expired).AppendJSON, records.DecodeExpired)
	})
	t.Run("zero node", func(t *testing.T) {
		roundTrip(t, records.Node{}, (*records.Node).AppendProto, (*records.Node).AppendJSON, records.DecodeNode)
	})
}

func roundTrip[T any](t *testing.T, rec T, proto, json func(*T, []byte) []byte, decode func([]byte) (T, error)) {
	t.Helper()
	for name, enc := range map[string]func(*T, []byte) []byte{"proto": proto, "json": json} {
		b := enc(&rec, nil)
		got, err := decode(b)
		if err != nil {
			t.Fatalf("%s: decode %q: %v", name, b, err)
		}
		if !reflect.DeepEqual(got, rec) {
			t.Errorf("%s: decode(encode(rec)) = %+v, want %+v", name, got, rec)
		}
		if name == "proto" && b[0] != records.FormatProto {
			t.Errorf("proto record starts with 0x%02x, want the format byte", b[0])
		}
	}
}

// Records written by SMS before records v2 still decode.
func TestDecodesStoredJSON(t *testing.T) {
	if got, err := records.DecodeNode([]byte(nodeJSON)); err != nil || !reflect.DeepEqual(got, node) {
		t.Errorf("DecodeNode(JSON) = %+v, %v; want %+v", got, err, node)
	}
	if got, err := records.DecodeHeartbeat([]byte(heartbeatJSON)); err != nil || !reflect.DeepEqual(got, heartbeat) {
		t.Errorf("DecodeHeartbeat(JSON) = %+v, %v; want %+v", got, err, heartbeat)
	}
	if got, err := records.DecodeExpired([]byte(expiredJSON)); err != nil || got != expired {
		t.Errorf("DecodeExpired(JSON) = %+v, %v; want %+v", got, err, expired)
	}
	// The down migration writes exactly the old bytes back.
	if got := node.AppendJSON(nil); string(got) != nodeJSON {
		t.Errorf("AppendJSON = %s, want %s", got, nodeJSON)
	}
}

// Equal records encode to equal bytes, whatever the map order.
func TestProtoIsDeterministic(t *testing.T) {
	want := node.AppendProto(nil)
	for range 20 {
		n := node
		n.Metadata = map[string]string{}
		for k, v := range node.Metadata {
			n.Metadata[k] = v
		}
		if got := n.AppendProto(nil); string(got) != string(want) {
			t.Fatalf("AppendProto = %x, want %x", got, want)
		}
	}
}

// A record written by a newer SMS with fields this one does not know still
// decodes; the unknown fields are skipped.
func TestSkipsUnknownFields(t *testing.T) {
	b := node.AppendProto(nil)
	b = protowire.AppendTag(b, 99, protowire.BytesType)
	b = protowire.AppendString(b, "from the future")
	b = protowire.AppendTag(b, 100, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 7)
	got, err := records.DecodeNode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, node) {
		t.Errorf("DecodeNode = %+v, want %+v", got, node)
	}
}

func TestMalformed(t *testing.T) {
	good := node.AppendProto(nil)
	for name, v := range map[string][]byte{
		"empty":          {},
		"unknown format": {0x7f, 0x08, 0x01},
		"truncated":      good[:len(good)-3],
		"bad tag":        {records.FormatProto, 0x00},
		"bad JSON":       []byte(`{"ip":`),
		"wrong JSON":     []byte(`{"ip":5}`),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := records.DecodeNode(v); !errors.Is(err, records.ErrFormat) {
				t.Errorf("DecodeNode(%q) = %v, want ErrFormat", v, err)
			}
		})
	}
}

func TestConvert(t *testing.T) {
	cases := []struct {
		key, json string
		proto     []byte
	}{
		{"node:u1", nodeJSON, node.AppendProto(nil)},
		{"heartbeat:u1", heartbeatJSON, heartbeat.AppendProto(nil)},
		{"resource:u1", string(resource.AppendJSON(nil)), resource.AppendProto(nil)},
		{"expired:u1", expiredJSON, expired.AppendProto(nil)},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			got, changed, err := records.ToProto([]byte(c.key), []byte(c.json))
			if err != nil || !changed || string(got) != string(c.proto) {
				t.Fatalf("ToProto = %x, %v, %v; want %x, true", got, changed, err, c.proto)
			}
			if _, changed, err := records.ToProto([]byte(c.key), got); changed || err != nil {
				t.Errorf("ToProto(proto) changed = %v, %v; want unchanged", changed, err)
			}
			back, changed, err := records.ToJSON([]byte(c.key), got)
			if err != nil || !changed || string(back) != c.json {
				t.Fatalf("ToJSON = %s, %v, %v; want %s, true", back, changed, err, c.json)
			}
			if _, changed, err := records.ToJSON([]byte(c.key), back); changed || err != nil {
				t.Errorf("ToJSON(JSON) changed = %v, %v; want unchanged", changed, err)
			}
		})
	}
	t.Run("other keys", func(t *testing.T) {
		for _, f := range []func(k, v []byte) ([]byte, bool, error){records.ToProto, records.ToJSON} {
			if _, changed, err := f([]byte("nodes:x"), []byte(`{"a":1}`)); changed || err != nil {
				t.Errorf("convert(nodes:x) changed = %v, %v; want unchanged", changed, err)
			}
		}
	})
	t.Run("malformed", func(t *testing.T) {
		if _, _, err := records.ToProto([]byte("node:u1"), []byte(`{"ip":`)); !errors.Is(err, records.ErrFormat) {
			t.Errorf("ToProto(bad) = %v, want ErrFormat", err)
		}
	})
}

// FuzzDecodeNode: any bytes either fail with ErrFormat or decode to a node
// that survives a protobuf round trip unchanged.
func FuzzDecodeNode(f *testing.F) {
	f.Add(node.AppendProto(nil))
	f.Add([]byte(nodeJSON))
	f.Add([]byte{records.FormatProto, 0x32, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := records.DecodeNode(b)
		if err != nil {
			if !errors.Is(err, records.ErrFormat) {
				t.Fatalf("DecodeNode(%x) = %v, want ErrFormat", b, err)
			}
			return
		}
		back, err := records.DecodeNode(n.AppendProto(nil))
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v", n, err)
		}
		if len(n.Metadata) == 0 {
			n.Metadata = nil // an empty map encodes as no entries
		}
		if !reflect.DeepEqual(back, n) {
			t.Fatalf("round trip of %x: %+v, want %+v", b, back, n)
		}
	})
}
