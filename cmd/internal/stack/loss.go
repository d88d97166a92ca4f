package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Faults that lose or freeze state rather than crash a process: a process
// paused and resumed, Redis losing every key, Redis failing over to a
// replica that missed the last writes.

// Signal sends sig to the running process (its process group on Linux).
// SIGSTOP and SIGCONT pause and resume it: to everything else it looks
// stalled, as in a long pause of its VM, not dead.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return fmt.Errorf("stack: signal %s: %w", p.cfg.Name, ErrNotRunning)
	}
	if err := signalGroup(p.cur.cmd, sig); err != nil {
		return fmt.Errorf("stack: signal %s: %w", p.cfg.Name, err)
	}
	return nil
}

// FlushAll deletes every key (FLUSHALL): Redis lost its data, as after an
// eviction of everything or a replica promoted empty.
func (r *Redis) FlushAll(ctx context.Context) error {
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	defer c.Close()
	if err := c.FlushAll(ctx).Err(); err != nil {
		return fmt.Errorf("stack: redis FLUSHALL: %w", err)
	}
	return nil
}

// AOFMark is a point in redis-server's append-only file: what a replica
// had received at that time.
type AOFMark struct {
	File string // the incremental AOF file written then
	Size int64  // its size then
	At   time.Time
}

// MarkAOF returns the current end of the append-only file.
func (r *Redis) MarkAOF() (AOFMark, error) {
	f, err := r.incrAOF()
	if err != nil {
		return AOFMark{}, err
	}
	fi, err := os.Stat(f)
	if err != nil {
		return AOFMark{}, fmt.Errorf("stack: redis AOF: %w", err)
	}
	return AOFMark{File: f, Size: fi.Size(), At: time.Now()}, nil
}

// Failover stops redis-server and starts it again with only what its
// append-only file held at mark: every write after mark is lost, as when a
// replica that lagged behind is promoted. If the file was rewritten since
// mark (a new incremental file), the whole new file is dropped, and
// rewritten reports it.
func (r *Redis) Failover(mark AOFMark) (rewritten bool, err error) {
	if err := r.Stop(); err != nil {
		return false, err
	}
	f, err := r.incrAOF()
	if err != nil {
		return false, err
	}
	size := mark.Size
	if f != mark.File {
		rewritten, size = true, 0
	}
	// redis-server loads a file cut inside a command (aof-load-truncated).
	if err := os.Truncate(f, size); err != nil {
		return rewritten, fmt.Errorf("stack: redis AOF: %w", err)
	}
	return rewritten, r.Start()
}

// incrAOF returns the incremental AOF file redis-server appends to: the
// last file of type i in the manifest (Redis 7's multi-part AOF).
func (r *Redis) incrAOF() (string, error) {
	dir := filepath.Join(r.srv.Dir(), "appendonlydir")
	mf, err := os.Open(filepath.Join(dir, "appendonly.aof.manifest"))
	if err != nil {
		return "", fmt.Errorf("stack: redis AOF: %w", err)
	}
	defer mf.Close()
	var last string
	sc := bufio.NewScanner(mf)
	for sc.Scan() {
		// file appendonly.aof.1.incr.aof seq 1 type i
		fields := strings.Fields(sc.Text())
		if len(fields) >= 6 && fields[0] == "file" && fields[len(fields)-2] == "type" && fields[len(fields)-1] == "i" {
			last = fields[1]
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("stack: redis AOF manifest: %w", err)
	}
	if last == "" {
		return "", errors.New("stack: redis AOF manifest names no incremental file")
	}
	return filepath.Join(dir, last), nil
}
