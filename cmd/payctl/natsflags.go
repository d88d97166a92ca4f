package main

import (
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payworker/payworker/cmd/internal/natsconn"
	"github.com/payworker/payworker/messages"
)

// natsFlags are the NATS connection settings of a command that connects to
// NATS: the environment as payworker reads it (NATS_URL, NATS_CREDS,
// NATS_NKEY, NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_CA,
// NATS_CERT/NATS_KEY and the *_FILE forms), overridden by the nats CLI's
// flags (-s/--server, --creds, --nkey, --user, --password, --token,
// --tlsca, --tlscert, --tlskey). --nats is an alias of --server. They
// include --namespace: which deployment's subjects and streams to use.
type natsFlags struct {
	cfg       natsconn.Config
	namespace namespaceFlag
	// names are the deployment's subjects and streams, set by connect.
	names messages.Names
	// envErr is what was wrong with the environment. It is reported when
	// the command connects, not when the flags are built, so that -h
	// works whatever the environment holds.
	envErr error
}

// addNATSFlags registers the NATS connection flags on f.
func addNATSFlags(f *cmdFlags) *natsFlags {
	n := &natsFlags{namespace: addNamespaceFlag(f)}
	n.cfg, n.envErr = natsconn.FromEnv(os.Getenv)
	n.cfg.RegisterFlags(f.FlagSet)
	f.Var(f.Lookup("server").Value, "nats", "alias of --server")
	return n
}

// connect validates the settings (and sets names from --namespace) and
// opens a NATS connection and its JetStream context. Settings that cannot
// work are a usage error (exit 2);
// a server that cannot be reached is an error (exit 1). No error shows a
// password, a token or a seed.
func (n *natsFlags) connect() (*nats.Conn, jetstream.JetStream, error) {
	if n.envErr != nil {
		return nil, nil, usageError{fmt.Errorf("NATS settings in the environment: %w", n.envErr)}
	}
	if err := n.cfg.Validate(); err != nil {
		return nil, nil, usageError{fmt.Errorf("NATS settings (flags or environment): %w", err)}
	}
	names, err := n.namespace.names()
	if err != nil {
		return nil, nil, err
	}
	n.names = names
	nc, err := n.cfg.Connect(nats.Name("payctl"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
