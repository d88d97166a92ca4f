package natsconn

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// ErrServerTooOld is wrapped by CheckServerVersion's error when the server
// is older than required.
var ErrServerTooOld = errors.New("nats-server too old")

// CheckServerVersion returns nil when the server nc is connected to runs
// min (e.g. "2.12") or newer. Otherwise one line for a person, e.g.
//
//	nats-server 2.9.25 is too old: payworker needs 2.12 or newer (message schedules)
//
// wrapping ErrServerTooOld. who names the program, why the feature that
// needs the version. In a cluster only the connected server is checked; the
// servers of one cluster normally run one version.
func CheckServerVersion(nc *nats.Conn, min, who, why string) error {
	if nc == nil || !nc.IsConnected() {
		return errors.New("nats: not connected, cannot check the server version")
	}
	return checkVersion(nc.ConnectedServerVersion(), min, who, why)
}

func checkVersion(have, min, who, why string) error {
	want, err := parseVersion(min)
	if err != nil {
		return fmt.Errorf("natsconn: minimum version %q: %w", min, err)
	}
	got, err := parseVersion(have)
	if err != nil {
		return fmt.Errorf("nats-server reports version %q, which %s cannot compare with %s: %w", have, who, min, err)
	}
	if !versionLess(got, want) {
		return nil
	}
	msg := fmt.Sprintf("nats-server %s is too old: %s needs %s or newer", have, who, min)
	if why != "" {
		msg += " (" + why + ")"
	}
	return fmt.Errorf("%s%w", msg, quiet{ErrServerTooOld})
}

// quiet wraps an error for errors.Is without adding to the message.
type quiet struct{ error }

func (quiet) Error() string   { return "" }
func (q quiet) Unwrap() error { return q.error }

// parseVersion reads "2", "2.12", "2.12.3", "v2.12.3" or "2.12.0-beta.1"
// (a pre-release counts as its release, which is older by semver but
// carries the features the release notes promise).
func parseVersion(s string) ([3]int, error) {
	var v [3]int
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if s == "" || len(parts) > 3 {
		return v, errors.New("not a version")
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, errors.New("not a version")
		}
		v[i] = n
	}
	return v, nil
}

func versionLess(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
