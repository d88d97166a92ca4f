package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "-trimpath", Value: "true"},
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "78ec2a1d9f3e4b5c6d7e8f90123456789abcdef0"},
		{Key: "vcs.time", Value: "2026-11-30T18:38:07Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	for _, tc := range []struct {
		name    string
		version string
		bi      *debug.BuildInfo
		want    Info
		line    string
	}{
		{
			name:    "stamped, with VCS",
			version: "v1.2.3-4-g78ec2a1-dirty",
			bi:      &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			want: Info{Version: "v1.2.3-4-g78ec2a1-dirty", Revision: "78ec2a1d9f3e4b5c6d7e8f90123456789abcdef0",
				Time: "2026-11-30T18:38:07Z", Modified: true, GoVersion: "go1.26.8"},
			line: "payctl v1.2.3-4-g78ec2a1-dirty (revision 78ec2a1d9f3e, 2026-11-30T18:38:07Z, modified) go1.26.8",
		},
		{
			name:    "go install of a tag",
			version: "dev",
			bi:      &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}},
			want:    Info{Version: "v1.4.0", GoVersion: "go1.26.8"},
			line:    "payctl v1.4.0 go1.26.8",
		},
		{
			name: "nothing known",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			want: Info{Version: "dev", GoVersion: "go1.26.8"},
			line: "payctl dev go1.26.8",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fromBuildInfo(tc.version, tc.bi)
			if got != tc.want {
				t.Errorf("fromBuildInfo = %+v, want %+v", got, tc.want)
			}
			if s := got.String("payctl"); s != tc.line {
				t.Errorf("String = %q, want %q", s, tc.line)
			}
		})
	}
}

func TestReadInATest(t *testing.T) {
	i := Read("")
	if i.Version == "" || !strings.HasPrefix(i.GoVersion, "go") {
		t.Fatalf("Read = %+v", i)
	}
}
