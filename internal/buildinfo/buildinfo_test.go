package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestDescribe(t *testing.T) {
	for _, tt := range []struct {
		name string
		info debug.BuildInfo
		want string
	}{
		{"tagged module", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}},
			"sms v1.2.3, go1.26.8"},
		{"checkout with changes", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "3fad82d1c0de5a44d2e9b7d0a1b2c3d4e5f60718"},
				{Key: "vcs.time", Value: "2026-12-01T07:00:00Z"},
				{Key: "vcs.modified", Value: "true"},
			}},
			"sms (devel) rev 3fad82d1c0de 2026-12-01T07:00:00Z modified, go1.26.8"},
		{"no version (go run)", debug.BuildInfo{GoVersion: "go1.26.8"}, "sms (devel), go1.26.8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := describe("sms", &tt.info); got != tt.want {
				t.Errorf("describe = %q, want %q", got, tt.want)
			}
		})
	}
}
