package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/worker"
)

// tokenState is what token --json prints.
type tokenState struct {
	TokenHash string      `json:"token_hash"`
	Blocked   bool        `json:"blocked"`
	Reason    string      `json:"reason,omitempty"`
	BlockedAt *time.Time  `json:"blocked_at,omitempty"`
	Attempts  []time.Time `json:"declined_attempts"`
	Unblocked bool        `json:"unblocked,omitempty"`
}

func token(ctx context.Context, c cli, args []string) error {
	f := newFlags("payctl token", "[flags] status|unblock <provider> <token>", `
Shows what the token governor keeps of a card token (blocked, and its
declined attempts in the budget's windows), or lifts its block and clears
its attempts (unblock, with --by and --why, logged on stderr). The token is
named by the same keyed hash as payworker's (PAYWORKER_TOKEN_KEY, or
PAYWORKER_TOKEN_KEY_FILE, else the key derived from DINTERO_ACCOUNT_ID);
it is read from the arguments and never printed. Exits 3 when the token
has nothing recorded.`)
	rurl := f.String("redis", redisURL(), "Redis URL of the idempotency store (env REDIS_URL)")
	namespace := addNamespaceFlag(f)
	prefixFlag := addPrefixFlag(f)
	by := f.String("by", whoAmI(), "who lifts the block (unblock)")
	why := f.String("why", "", "why the block is lifted (unblock; required)")
	asJSON := f.Bool("json", false, "print one JSON object")
	pos, err := f.parse(c, args)
	if err != nil {
		return err
	}
	if len(pos) != 3 || (pos[0] != "status" && pos[0] != "unblock") {
		return usagef("want status|unblock <provider> <token> (see payctl token -h)")
	}
	if pos[0] == "unblock" && strings.TrimSpace(*why) == "" {
		return usagef("unblock needs --why")
	}
	prefix, err := namespace.prefix(*prefixFlag)
	if err != nil {
		return err
	}
	key, err := tokenKey()
	if err != nil {
		return err
	}
	opts, err := redis.ParseURL(*rurl)
	if err != nil {
		return usagef("--redis (REDIS_URL): %s", urlError(err, *rurl))
	}
	redis.SetLogger(redisLogger{io.Discard})
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	store, err := idempotency.New(rdb, idempotency.Options{Prefix: prefix})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	hash := worker.TokenHash(key, pos[1], pos[2])
	info, err := store.Token(ctx, hash)
	if err != nil {
		return err
	}
	st := tokenState{TokenHash: hash[:16], Blocked: info.Blocked, Reason: info.Reason, Attempts: info.Attempts}
	if !info.BlockedAt.IsZero() {
		t := info.BlockedAt.UTC()
		st.BlockedAt = &t
	}
	if pos[0] == "unblock" {
		if st.Unblocked, err = store.TokenUnblock(ctx, hash); err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "payctl: token %s (%s) unblocked by %s: %s (was blocked: %v, %s)\n",
			st.TokenHash, pos[1], *by, *why, info.Blocked, info.Reason)
	}
	if !info.Blocked && len(info.Attempts) == 0 {
		return notFoundf("nothing recorded for this %s token", pos[1])
	}
	if *asJSON {
		return printJSON(c.stdout, st)
	}
	fmt.Fprintf(c.stdout, "token hash          %s\n", st.TokenHash)
	fmt.Fprintf(c.stdout, "blocked             %v %s\n", st.Blocked, st.Reason)
	fmt.Fprintf(c.stdout, "declined attempts   %d\n", len(st.Attempts))
	if st.Unblocked {
		fmt.Fprintln(c.stdout, "unblocked           true")
	}
	return nil
}

// tokenKey is payworker's token hash key, read as payworker reads it.
func tokenKey() ([]byte, error) {
	if k := os.Getenv("PAYWORKER_TOKEN_KEY"); k != "" {
		return []byte(k), nil
	}
	if f := os.Getenv("PAYWORKER_TOKEN_KEY_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("PAYWORKER_TOKEN_KEY_FILE: %w", err)
		}
		return []byte(strings.TrimSpace(string(b))), nil
	}
	acct := os.Getenv("DINTERO_ACCOUNT_ID")
	if acct == "" {
		return nil, usagef("set PAYWORKER_TOKEN_KEY (or _FILE), or DINTERO_ACCOUNT_ID when payworker derives its key from it")
	}
	return worker.DerivedTokenKey(acct), nil
}

// whoAmI is user@host, for the log line of an operator's action.
func whoAmI() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}
