package service

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// mountDir holds the placeholder files of mounted; TestMain removes it.
var mountDir = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "payworker-mounts-") })

func TestMain(m *testing.M) {
	code := m.Run()
	if dir, err := mountDir(); err == nil {
		_ = os.RemoveAll(dir)
	}
	os.Exit(code)
}

// fileVariables name a file the pod has mounted from a Secret or ConfigMap
// (the NATS credentials, passwords kept in files, TLS material): payworker
// checks at start that it can read them.
var fileVariables = map[string]bool{
	"NATS_CREDS": true, "NATS_NKEY": true, "NATS_PASSWORD_FILE": true, "NATS_TOKEN_FILE": true,
	"NATS_CA": true, "NATS_CERT": true, "NATS_KEY": true,
	"REDIS_PASSWORD_FILE": true, "REDIS_SENTINEL_PASSWORD_FILE": true, "REDIS_CA": true, "REDIS_CERT": true, "REDIS_KEY": true,
	"PAYWORKER_TOKEN_KEY_FILE": true,
}

// mounted returns env with each file variable pointing at a readable
// placeholder file instead, as a pod with its Secrets mounted would see:
// the manifests are loaded as the binary loads them, off the cluster.
func mounted(env map[string]string) map[string]string {
	dir, err := mountDir()
	if err != nil {
		panic(err)
	}
	out := make(map[string]string, len(env))
	for k, v := range env {
		if fileVariables[k] && v != "" {
			p := filepath.Join(dir, k)
			if err := os.WriteFile(p, []byte(fmt.Sprintf("placeholder-%s\n", k)), 0o600); err != nil {
				panic(err)
			}
			v = p
		}
		out[k] = v
	}
	return out
}
