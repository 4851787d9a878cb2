package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseMemoryLimit(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		want memorySetting
	}{
		{"auto", memorySetting{auto: true}},
		{"AUTO", memorySetting{auto: true}},
		{"0", memorySetting{}},
		{"off", memorySetting{}},
		{"1073741824", memorySetting{limit: 1 << 30}},
		{"1GiB", memorySetting{limit: 1 << 30}},
		{"1.5GiB", memorySetting{limit: 3 << 29}},
		{"1536MiB", memorySetting{limit: 1536 << 20}},
		{"64KiB", memorySetting{limit: 64 << 10}},
		{"2TiB", memorySetting{limit: 2 << 40}},
		{"100B", memorySetting{limit: 100}},
	} {
		got, err := parseMemoryLimit(tt.raw)
		if err != nil || got != tt.want {
			t.Errorf("parseMemoryLimit(%q) = %+v, %v; want %+v", tt.raw, got, err, tt.want)
		}
	}
	for _, raw := range []string{"", "-1", "1GB", "lots", "GiB", "1e30TiB", "NaN"} {
		if got, err := parseMemoryLimit(raw); err == nil {
			t.Errorf("parseMemoryLimit(%q) = %+v, want an error", raw, got)
		}
	}
}

// auto yields to GOMEMLIMIT, then takes 90% of the cgroup's limit, then
// 896 MiB; a given size or 0 is taken as is.
func TestMemoryLimitResolves(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	noCgroup := func() int64 { return 0 }
	cgroup4G := func() int64 { return 4 << 30 }
	auto := memorySetting{auto: true}
	for _, tt := range []struct {
		name    string
		setting memorySetting
		getenv  func(string) string
		cgroup  func() int64
		want    int64
		from    string
	}{
		{"auto, nothing else", auto, env(nil), noCgroup, 896 << 20, "default"},
		{"auto in a cgroup", auto, env(nil), cgroup4G, int64(float64(cgroup4G()) * cgroupShare), "cgroup memory limit"},
		{"given", memorySetting{limit: 3 << 30}, env(map[string]string{"GOMEMLIMIT": "1GiB"}), cgroup4G, 3 << 30, "--memory-limit"},
		{"none", memorySetting{}, env(nil), cgroup4G, 0, "--memory-limit 0"},
	} {
		got, from := tt.setting.resolve(tt.getenv, tt.cgroup)
		if got != tt.want || from != tt.from {
			t.Errorf("%s: resolve = %d from %q, want %d from %q", tt.name, got, from, tt.want, tt.from)
		}
	}
	if _, from := auto.resolve(env(map[string]string{"GOMEMLIMIT": "2GiB"}), cgroup4G); from != "GOMEMLIMIT" {
		t.Errorf("auto with GOMEMLIMIT set: from %q, want GOMEMLIMIT (the runtime's setting)", from)
	}
}

func TestReadCgroupLimit(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		content string
		want    int64
	}{
		{"max\n", 0},                 // v2, no limit
		{"9223372036854771712\n", 0}, // v1, no limit
		{"2147483648\n", 2 << 30},
		{"garbage", 0},
	} {
		file := filepath.Join(dir, "memory.max")
		if err := os.WriteFile(file, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := readLimit(file); got != tt.want {
			t.Errorf("readLimit(%q) = %d, want %d", tt.content, got, tt.want)
		}
	}
	if got := readLimit(filepath.Join(dir, "missing")); got != 0 {
		t.Errorf("readLimit of a missing file = %d, want 0", got)
	}
}
