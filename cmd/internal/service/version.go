package service

import "github.com/payworker/payworker/cmd/internal/buildinfo"

// build is what this binary was built from; Main sets its stamped version.
var build = buildinfo.Read("")

// Version is payworker's version (see buildinfo.Info.Version).
func Version() string { return build.Version }

// Revision is the VCS revision the binary was built from, or "".
func Revision() string { return build.Revision }
