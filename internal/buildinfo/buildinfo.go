// Package buildinfo describes the running binary for --version, from the
// build information the Go toolchain embeds (runtime/debug): the module
// version (a tag with go install ...@v1.2.3, "(devel)" in a checkout), the
// VCS revision and time, whether the tree had local changes, and the Go
// version.
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// String returns one line such as
// "sms (devel) rev 3fad82d1c0de 2026-12-01T07:00:00Z modified, go1.26.8"
// for the binary called name.
func String(name string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return name + " (no build information)"
	}
	return describe(name, info)
}

func describe(name string, info *debug.BuildInfo) string {
	var b strings.Builder
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	fmt.Fprintf(&b, "%s %s", name, version)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, " rev %s", rev[:min(12, len(rev))])
		if at := settings["vcs.time"]; at != "" {
			fmt.Fprintf(&b, " %s", at)
		}
		if settings["vcs.modified"] == "true" {
			b.WriteString(" modified")
		}
	}
	fmt.Fprintf(&b, ", %s", info.GoVersion)
	return b.String()
}
