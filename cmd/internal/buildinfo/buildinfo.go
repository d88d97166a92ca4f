// Package buildinfo says what a payworker binary was built from: the
// version stamped at link time (-ldflags "-X main.version=v1.2.3", which
// make build and the Dockerfile set from git describe) and what the go
// command records in every binary: the VCS revision, its time, whether the
// work tree had changes, and the Go version (see debug.ReadBuildInfo and
// go version -m).
//
// Each command keeps its own version variable in package main and passes
// it to [Read]:
//
//	var version = "dev" // set with -ldflags "-X main.version=..."
//
//	fmt.Println(buildinfo.Read(version).String("payctl"))
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Info is what a binary knows about its build.
type Info struct {
	// Version is the stamped version; when none was stamped ("" or "dev"),
	// the main module's version that the go command recorded (a tag for
	// go install ...@v1.2.3, a pseudo-version or "(devel)" for a local
	// build), and "dev" when there is neither.
	Version string `json:"version"`
	// Revision is the VCS commit (vcs.revision), empty when the binary was
	// built without VCS information (-buildvcs=false, or outside a work tree).
	Revision string `json:"revision,omitempty"`
	// Time is the commit time (vcs.time, RFC 3339), empty when unknown.
	Time string `json:"time,omitempty"`
	// Modified reports a work tree with uncommitted changes (vcs.modified).
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the Go version that built the binary, e.g. "go1.26.8".
	GoVersion string `json:"go_version"`
}

// Read returns the build information of the running binary, with version
// the value of the command's stamped version variable.
func Read(version string) Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(version, bi)
}

func fromBuildInfo(version string, bi *debug.BuildInfo) Info {
	info := Info{Version: strings.TrimSpace(version), GoVersion: runtime.Version()}
	if bi == nil {
		if info.Version == "" {
			info.Version = "dev"
		}
		return info
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	if (info.Version == "" || info.Version == "dev") && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// ShortRevision is the first 12 characters of Revision.
func (i Info) ShortRevision() string {
	if len(i.Revision) > 12 {
		return i.Revision[:12]
	}
	return i.Revision
}

// String is the one line a version command prints, e.g.
// "payctl v1.2.3 (revision 78ec2a1d9f3e, 2026-11-30T18:38:07Z) go1.26.8";
// "modified" is added when the work tree had changes, and the parentheses
// are left out when the binary has no VCS information.
func (i Info) String(command string) string {
	var b strings.Builder
	b.WriteString(command)
	b.WriteString(" ")
	b.WriteString(i.Version)
	if i.Revision != "" {
		fmt.Fprintf(&b, " (revision %s", i.ShortRevision())
		if i.Time != "" {
			b.WriteString(", " + i.Time)
		}
		if i.Modified {
			b.WriteString(", modified")
		}
		b.WriteString(")")
	}
	b.WriteString(" " + i.GoVersion)
	return b.String()
}
