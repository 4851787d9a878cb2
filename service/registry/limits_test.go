package registry_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// metadataOf returns a map of n entries with keys of keyLen bytes and values
// of valueLen bytes (keys are made unique by a numeric suffix).
func metadataOf(n, keyLen, valueLen int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		suffix := fmt.Sprintf("%03d", i)
		m[strings.Repeat("k", max(keyLen-len(suffix), 0))+suffix] = strings.Repeat("v", valueLen)
	}
	return m
}

// Every free-form map a client sends (node metadata, resource metadata,
// heartbeat health_info) is accepted up to the documented limits and
// rejected as invalid one step beyond each.
func TestMetadataLimits(t *testing.T) {
	store := storetest.Open(t, "memory")
	view := registry.NewView(store)
	nodes, resources := view.Nodes(), view.Resources()
	ctx := t.Context()
	n, err := nodes.Register(ctx, registry.Node{IPAddress: "10.0.0.1", Port: 1})
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		field string
		call  func(m map[string]string) error
	}{
		{"node.metadata", func(m map[string]string) error {
			_, err := nodes.Register(ctx, registry.Node{UUID: n.UUID, IPAddress: "10.0.0.1", Port: 1, Metadata: m})
			return err
		}},
		{"node.metadata", func(m map[string]string) error {
			_, err := nodes.Update(ctx, n.UUID, registry.Node{IPAddress: "10.0.0.1", Port: 1, Metadata: m})
			return err
		}},
		{"health_info", func(m map[string]string) error {
			_, err := nodes.Heartbeat(ctx, n.UUID, m)
			return err
		}},
		{"resource.resource_metadata", func(m map[string]string) error {
			_, err := resources.Update(ctx, registry.Resource{NodeUUID: n.UUID, Metadata: m})
			return err
		}},
	}
	const (
		entries = registry.MaxMetadataEntries
		key     = registry.MaxMetadataKeyBytes
		value   = registry.MaxMetadataValueBytes
	)
	for _, c := range calls {
		t.Run(c.field, func(t *testing.T) {
			for _, ok := range []map[string]string{
				nil,
				{"": ""},
				metadataOf(entries, key, value), // every limit at once, about 270 KB
			} {
				if err := c.call(ok); err != nil {
					t.Errorf("%d entries at the limits: %v, want success", len(ok), err)
				}
			}
			for _, tc := range []struct {
				name string
				m    map[string]string
				want string
			}{
				{"too many entries", metadataOf(entries+1, 8, 1), fmt.Sprintf("at most %d entries, got %d", entries, entries+1)},
				{"key too long", metadataOf(1, key+1, 1), fmt.Sprintf("of %d bytes; at most %d", key+1, key)},
				{"value too long", metadataOf(1, 8, value+1), fmt.Sprintf("value of %d bytes; at most %d", value+1, value)},
				{"key not UTF-8", map[string]string{"k\xc2": "v"}, "not valid UTF-8"},
				{"value not UTF-8", map[string]string{"k": "v\xff"}, "not valid UTF-8"},
			} {
				err := c.call(tc.m)
				var ve *registry.ValidationError
				if !errors.As(err, &ve) || !errors.Is(err, registry.ErrInvalid) {
					t.Fatalf("%s: err = %v, want a *ValidationError", tc.name, err)
				}
				if !strings.HasPrefix(ve.Field, c.field) || !strings.Contains(ve.Reason, tc.want) {
					t.Errorf("%s: err = %q, want field %s and a reason containing %q", tc.name, err, c.field, tc.want)
				}
				if len(err.Error()) > 300 {
					t.Errorf("%s: error of %d bytes; user input must be clipped", tc.name, len(err.Error()))
				}
			}
		})
	}
}
