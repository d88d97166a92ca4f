package main

import (
	"context"

	"github.com/payworker/payworker/cmd/internal/buildinfo"
)

func versionCmd(_ context.Context, c cli, args []string) error {
	f := newFlags("payctl version", "[--json]", `
Prints payctl's version (stamped by make build and the Dockerfile), the VCS
revision and commit time the go command recorded, and the Go version.`)
	asJSON := f.Bool("json", false, "print one JSON object: version, revision, time, modified, go_version")
	pos, err := f.parse(c, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("payctl version takes no arguments, got %q", pos)
	}
	info := buildinfo.Read(version)
	if *asJSON {
		return printJSON(c.stdout, info)
	}
	_, err = c.stdout.Write([]byte(info.String("payctl") + "\n"))
	return err
}
