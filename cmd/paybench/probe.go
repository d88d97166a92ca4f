package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// cpuTime returns the user+system CPU time of process pid so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name (field 2) may contain spaces and
// parentheses, so fields are counted after its closing parenthesis.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields", len(f)+2)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat: bad utime/stime %q %q", f[11], f[12])
	}
	return time.Duration(ut+st) * clockTick, nil
}

// peakRSS returns the VmHWM of process pid in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusKB(b, "VmHWM")
}

// parseStatusKB returns a "Key:   123 kB" line of /proc/<pid>/status in bytes.
func parseStatusKB(b []byte, key string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc status: odd %s line %q", key, sc.Text())
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc status: %s: %w", key, err)
		}
		return n << 10, nil
	}
	return 0, fmt.Errorf("/proc status: no %s", key)
}

// loadAvg returns the 1-minute load average, or -1.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// redisCounts are the counters of redis INFO the benchmark reads.
type redisCounts struct {
	Commands   int64 // total_commands_processed (Redis 7 counts the commands scripts run, too)
	Scripts    int64 // calls of evalsha, eval, fcall
	RoundTrips int64 // commands clients sent: see scriptInner
}

// scriptInner are the commands the idempotency and token scripts run inside Redis,
// which Redis 7 counts in total_commands_processed and commandstats like
// any other. No client of the benchmark sends them itself (the naive worker
// uses SET and DEL), so every other command counts as one round trip; INFO
// is the benchmark's own.
var scriptInner = map[string]bool{
	"time": true, "hmget": true, "hincrby": true, "hset": true, "hdel": true, "pexpire": true, "hget": true,
	"zremrangebyscore": true, "zcount": true, "zrangebyscore": true, "zadd": true,
	"info": true,
}

func readRedis(ctx context.Context, rdb *redis.Client) (redisCounts, error) {
	s, err := rdb.Info(ctx, "stats", "commandstats").Result()
	if err != nil {
		return redisCounts{}, fmt.Errorf("redis INFO: %w", err)
	}
	return parseRedisInfo(s)
}

// parseRedisInfo reads total_commands_processed and the script calls from
// the text of INFO stats and INFO commandstats.
func parseRedisInfo(s string) (redisCounts, error) {
	var c redisCounts
	found := false
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "total_commands_processed":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return c, fmt.Errorf("redis INFO: %s: %w", k, err)
			}
			c.Commands, found = n, true
		default:
			cmd, ok := strings.CutPrefix(k, "cmdstat_")
			if !ok {
				continue
			}
			calls, err := cmdCalls(v)
			if err != nil {
				return c, fmt.Errorf("redis INFO: %s: %w", k, err)
			}
			switch cmd {
			case "evalsha", "eval", "fcall", "evalsha_ro", "eval_ro", "fcall_ro":
				c.Scripts += calls
			}
			if !scriptInner[cmd] {
				c.RoundTrips += calls
			}
		}
	}
	if !found {
		return c, fmt.Errorf("redis INFO: no total_commands_processed")
	}
	return c, nil
}

// cmdCalls reads calls= of a commandstats value
// ("calls=3,usec=10,usec_per_call=3.33,...").
func cmdCalls(v string) (int64, error) {
	for _, kv := range strings.Split(v, ",") {
		if n, ok := strings.CutPrefix(kv, "calls="); ok {
			return strconv.ParseInt(n, 10, 64)
		}
	}
	return 0, fmt.Errorf("no calls= in %q", v)
}
