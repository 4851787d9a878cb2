package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

func TestParseStatus(t *testing.T) {
	valid := []struct {
		in   string
		want registry.Status
	}{
		{"", registry.StatusActive},
		{"active", registry.StatusActive},
		{"ACTIVE", registry.StatusActive},
		{"  Active\t", registry.StatusActive},
		{"online", registry.StatusActive},
		{"Online", registry.StatusActive},
		{"inactive", registry.StatusInactive},
		{"offline", registry.StatusInactive},
		{"OFFLINE", registry.StatusInactive},
		{"unhealthy", registry.StatusUnhealthy},
		{"UnHealthy", registry.StatusUnhealthy},
		{"decommissioning", registry.StatusDecommissioning},
		{" DECOMMISSIONING ", registry.StatusDecommissioning},
	}
	for _, tc := range valid {
		got, err := registry.ParseStatus(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseStatus(%q) = %q, %v; want %q, nil", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"up", "running", "active!", "in active", "decommissioned", "-"} {
		_, err := registry.ParseStatus(in)
		var ve *registry.ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("ParseStatus(%q) error = %v, want a *ValidationError", in, err)
			continue
		}
		if ve.Field != "status" || !strings.Contains(ve.Reason, in) {
			t.Errorf("ParseStatus(%q) error = %q, want field status and the input named", in, err)
		}
	}
}

func TestCanonicalUUID(t *testing.T) {
	const want = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	for _, in := range []string{
		want,
		"6BA7B810-9DAD-11D1-80B4-00C04FD430C8",
		"{6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
		"urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
		"6ba7b8109dad11d180b400c04fd430c8",
		"6BA7B8109DAD11D180B400C04FD430C8",
	} {
		got, err := registry.CanonicalUUID(in)
		if err != nil || got != want {
			t.Errorf("CanonicalUUID(%q) = %q, %v; want %q, nil", in, got, err, want)
		}
	}
	for _, in := range []string{
		"",
		"not-a-uuid",
		"6ba7b810-9dad-11d1-80b4-00c04fd430c",   // one digit short
		"6ba7b810-9dad-11d1-80b4-00c04fd430c8a", // one digit long
		"6ba7b810-9dad-11d1-80b4-00c04fd430cg",  // not hex
		" 6ba7b810-9dad-11d1-80b4-00c04fd430c8",
		"6ba7b810_9dad_11d1_80b4_00c04fd430c8",
	} {
		got, err := registry.CanonicalUUID(in)
		var ve *registry.ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("CanonicalUUID(%q) = %q, %v; want a *ValidationError", in, got, err)
			continue
		}
		if ve.Field != "uuid" {
			t.Errorf("CanonicalUUID(%q) error field = %q, want uuid", in, ve.Field)
		}
	}
}

func TestRegisterValidation(t *testing.T) {
	valid := registry.Node{IPAddress: "10.0.0.1", Port: 8080}
	tests := []struct {
		name string
		edit func(*registry.Node)
		want string // the whole error message
	}{
		{"missing address", func(n *registry.Node) { n.IPAddress = "" }, "node.ip_address: required"},
		{"address with space", func(n *registry.Node) { n.IPAddress = "my host" },
			`node.ip_address: must be an IP address or a host name, got "my host"`},
		{"address label starts with hyphen", func(n *registry.Node) { n.IPAddress = "-a.example" },
			`node.ip_address: must be an IP address or a host name, got "-a.example"`},
		{"bad IPv4", func(n *registry.Node) { n.IPAddress = "256.1.1.1" },
			`node.ip_address: must be an IP address or a host name, got "256.1.1.1"`},
		{"empty label", func(n *registry.Node) { n.IPAddress = "a..b" },
			`node.ip_address: must be an IP address or a host name, got "a..b"`},
		{"label too long", func(n *registry.Node) { n.IPAddress = strings.Repeat("a", 64) + ".example" },
			`node.ip_address: must be an IP address or a host name, got "` + strings.Repeat("a", 64) + `..."`},
		{"name too long", func(n *registry.Node) { n.IPAddress = strings.Repeat("abcdefghi.", 26) + "com" },
			"node.ip_address: must be an IP address or a host name of at most 253 characters, got 263"},
		{"port zero", func(n *registry.Node) { n.Port = 0 }, "node.port: must be 1..65535, got 0"},
		{"port too large", func(n *registry.Node) { n.Port = 65536 }, "node.port: must be 1..65535, got 65536"},
		{"negative http port", func(n *registry.Node) { n.HTTPPort = -1 }, "node.http_port: must be 0..65535, got -1"},
		{"http port too large", func(n *registry.Node) { n.HTTPPort = 70000 }, "node.http_port: must be 0..65535, got 70000"},
		{"unknown status", func(n *registry.Node) { n.Status = "running" },
			`node.status: unknown status "running"; want active, inactive, unhealthy, decommissioning, online or offline`},
		{"bad uuid", func(n *registry.Node) { n.UUID = "xyz" }, `node.uuid: not a UUID: "xyz"`},
	}
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				n := valid
				tc.edit(&n)
				_, err := e.nodes.Register(t.Context(), n)
				if !errors.Is(err, registry.ErrInvalid) {
					t.Fatalf("Register error = %v, want ErrInvalid", err)
				}
				if got := err.Error(); got != tc.want {
					t.Errorf("Register error = %q, want %q", got, tc.want)
				}
			})
		}
		if got, err := sqlkv.Count(t.Context(), store, nil); err != nil || got != 0 {
			t.Errorf("store holds %d keys (err %v) after invalid registrations, want 0", got, err)
		}
	})
}

func TestAcceptedAddresses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		for _, addr := range []string{
			"10.0.0.1", "::1", "2001:db8::8a2e:370:7334", "fe80::1%eth0",
			"localhost", "node-1", "node-1.cluster.local", "a.b.c", "1node.example", "XN--BCHER-KVA.example",
			strings.Repeat("abcdefghi.", 25) + "com", // 253 characters
		} {
			if _, err := e.nodes.Register(t.Context(), registry.Node{IPAddress: addr, Port: 1}); err != nil {
				t.Errorf("Register with address %q: %v", addr, err)
			}
		}
	})
}
