package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// natsServerModule is the module whose main package is nats-server; its
// version comes from go.mod.
const natsServerModule = "github.com/nats-io/nats-server/v2"

// Binaries are the paths of the programs a Stack runs.
type Binaries struct {
	NATSServer string // nats-server
	Payworker  string // cmd/payworker
	Sandbox    string // cmd/dintero-sandbox
}

// BuildOptions configures BuildBinaries. The zero value builds from the
// module in the current directory into the user cache directory.
type BuildOptions struct {
	// ModuleDir is the root of the payworker module; default: the current
	// directory (`go run ./cmd/...` from the repository root).
	ModuleDir string
	// BinDir receives the binaries; default: <user cache dir>/payworker/bin.
	BinDir string
	// Go is the go command; default "go".
	Go     string
	Logger *slog.Logger // nil discards
}

// BuildBinaries builds nats-server, payworker and dintero-sandbox into
// BinDir. nats-server is built once per version (its file name carries the
// version from go.mod) and reused afterwards; payworker and dintero-sandbox
// are built every time, which the go build cache makes cheap when nothing
// changed.
func BuildBinaries(ctx context.Context, o BuildOptions) (Binaries, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Go == "" {
		o.Go = "go"
	}
	if o.BinDir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return Binaries{}, fmt.Errorf("stack: no bin dir: %w", err)
		}
		o.BinDir = filepath.Join(cache, "payworker", "bin")
	}
	binDir, err := filepath.Abs(o.BinDir)
	if err != nil {
		return Binaries{}, fmt.Errorf("stack: %w", err)
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("stack: %w", err)
	}
	goCmd := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, o.Go, args...)
		cmd.Dir = o.ModuleDir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("stack: go %s: %w\n%s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
		}
		return out, nil
	}

	out, err := goCmd("list", "-m", "-f", "{{.Version}}", natsServerModule)
	if err != nil {
		return Binaries{}, err
	}
	version := strings.TrimSpace(string(out))
	if version == "" || strings.ContainsAny(version, `/\ `) {
		return Binaries{}, fmt.Errorf("stack: odd version %q of %s", version, natsServerModule)
	}
	b := Binaries{
		NATSServer: filepath.Join(binDir, "nats-server-"+version),
		Payworker:  filepath.Join(binDir, "payworker"),
		Sandbox:    filepath.Join(binDir, "dintero-sandbox"),
	}
	if _, err := os.Stat(b.NATSServer); errors.Is(err, os.ErrNotExist) {
		t := time.Now()
		tmp := b.NATSServer + ".tmp"
		if _, err := goCmd("build", "-o", tmp, natsServerModule); err != nil {
			return Binaries{}, err
		}
		if err := os.Rename(tmp, b.NATSServer); err != nil {
			return Binaries{}, fmt.Errorf("stack: %w", err)
		}
		log.Info("built nats-server", "version", version, "path", b.NATSServer, "took", time.Since(t).Round(time.Millisecond))
	} else if err != nil {
		return Binaries{}, fmt.Errorf("stack: %w", err)
	}
	t := time.Now()
	if _, err := goCmd("build", "-o", binDir+string(filepath.Separator), "./cmd/payworker", "./cmd/dintero-sandbox"); err != nil {
		return Binaries{}, err
	}
	log.Info("built payworker and dintero-sandbox", "dir", binDir, "took", time.Since(t).Round(time.Millisecond))
	return b, nil
}
