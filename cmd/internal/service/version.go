package service

import (
	"runtime"
	"runtime/debug"
)

// version is set at build time: -ldflags "-X github.com/payworker/payworker/cmd/internal/service.version=v1.2.3".
var version = ""

// Version is payworker's version: the one stamped at build time, else the
// module version, else "dev".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Revision is the VCS revision the binary was built from (go build stamps
// it), with "-dirty" for a modified tree, or "".
func Revision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}

// VersionLine is what `payworker version` prints.
func VersionLine() string {
	line := "payworker " + Version()
	if r := Revision(); r != "" {
		line += " (" + r + ")"
	}
	return line + " " + runtime.Version()
}
