package registry_test

import (
	"context"
	"errors"
	"maps"
	"math"
	"testing"

	"github.com/google/uuid"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/memory"
)

// FuzzRegister feeds arbitrary node fields to Register: it must either
// reject them with a *ValidationError or store a node that reads back
// canonical (lower-case hyphenated uuid, canonical status, ports in range,
// metadata unchanged and within the limits). Seeds: testdata/fuzz/FuzzRegister.
func FuzzRegister(f *testing.F) {
	f.Add("", "10.0.0.1", int32(8080), int32(0), "online", "zone", "a", uint8(1))
	nodes := registry.NewView(memory.New()).Nodes()
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, id, ip string, port, httpPort int32, status, key, value string, entries uint8) {
		meta := map[string]string{}
		for i := range int(entries) {
			meta[key+string(rune('a'+i%26))+string(rune('a'+i/26))] = value
		}
		n, err := nodes.Register(ctx, registry.Node{UUID: id, IPAddress: ip, Port: port, HTTPPort: httpPort,
			Status: registry.Status(status), Metadata: meta})
		if err != nil {
			var ve *registry.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, registry.ErrInvalid) {
				t.Fatalf("Register: %v, want nil or a *ValidationError", err)
			}
			return
		}
		u, perr := uuid.Parse(n.UUID)
		if perr != nil || u.String() != n.UUID {
			t.Fatalf("Register stored uuid %q, not canonical", n.UUID)
		}
		if id != "" {
			if want, _ := uuid.Parse(id); want.String() != n.UUID {
				t.Fatalf("Register(%q) stored uuid %q", id, n.UUID)
			}
		}
		if _, err := registry.ParseStatus(string(n.Status)); err != nil || string(n.Status) != string(mustStatus(t, status)) {
			t.Fatalf("Register(status %q) stored status %q", status, n.Status)
		}
		if port < 1 || port > 65535 || httpPort < 0 || httpPort > 65535 {
			t.Fatalf("Register accepted port %d, http_port %d", port, httpPort)
		}
		if len(meta) > registry.MaxMetadataEntries || len(value) > registry.MaxMetadataValueBytes {
			t.Fatalf("Register accepted %d entries with values of %d bytes", len(meta), len(value))
		}
		got, err := nodes.Get(ctx, n.UUID)
		if err != nil {
			t.Fatalf("Get after Register: %v", err)
		}
		if got.IPAddress != ip || got.Port != port || got.HTTPPort != httpPort || len(meta) > 0 && !maps.Equal(got.Metadata, meta) {
			t.Fatalf("Get = %+v, want what was registered", got)
		}
	})
}

func mustStatus(t *testing.T, s string) registry.Status {
	t.Helper()
	st, err := registry.ParseStatus(s)
	if err != nil {
		t.Fatalf("ParseStatus(%q): %v", s, err)
	}
	return st
}

// FuzzResource feeds arbitrary numbers to a resource report: it is stored
// only when every percentage is in [0, 100], every load finite and >= 0 and
// every counter >= 0, and rejected with a *ValidationError otherwise.
// Seeds: testdata/fuzz/FuzzResource.
func FuzzResource(f *testing.F) {
	f.Add(50.0, 60.0, 70.0, 1.5, int64(1<<30), int64(-1))
	store := memory.New()
	view := registry.NewView(store)
	nodes, resources := view.Nodes(), view.Resources()
	ctx := context.Background()
	n, err := nodes.Register(ctx, registry.Node{IPAddress: "10.0.0.1", Port: 1})
	if err != nil {
		f.Fatal(err)
	}
	inRange := func(v, lo, hi float64) bool { return !math.IsNaN(v) && v >= lo && v <= hi }
	f.Fuzz(func(t *testing.T, cpu, mem, disk, load float64, total, used int64) {
		_, err := resources.Update(ctx, registry.Resource{NodeUUID: n.UUID, CPUUsagePercent: cpu,
			MemoryUsagePercent: mem, DiskUsagePercent: disk, LoadAverage1m: load,
			TotalMemoryBytes: total, UsedMemoryBytes: used})
		valid := inRange(cpu, 0, 100) && inRange(mem, 0, 100) && inRange(disk, 0, 100) &&
			inRange(load, 0, math.MaxFloat64) && total >= 0 && used >= 0
		switch {
		case valid && err != nil:
			t.Fatalf("Update of a valid report: %v", err)
		case !valid && !errors.Is(err, registry.ErrInvalid):
			t.Fatalf("Update of an invalid report: %v, want a *ValidationError", err)
		}
	})
}
