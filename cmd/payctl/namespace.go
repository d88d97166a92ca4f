package main

import (
	"os"

	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/messages"
)

// namespaceFlag is --namespace: the namespace of the payworker deployment
// a command talks to (PAYWORKER_NAMESPACE, as payworker reads it). Every
// command that connects to NATS or Redis takes it.
type namespaceFlag struct{ ns *string }

func addNamespaceFlag(f *cmdFlags) namespaceFlag {
	return namespaceFlag{f.String("namespace", os.Getenv("PAYWORKER_NAMESPACE"),
		"namespace of the payworker deployment: its subjects, streams and Redis prefix (env PAYWORKER_NAMESPACE; default none)")}
}

// names returns the deployment's subjects and streams; a namespace
// payworker would refuse is a usage error.
func (n namespaceFlag) names() (messages.Names, error) {
	if err := messages.ValidateNamespace(*n.ns); err != nil {
		return messages.Names{}, usagef("--namespace (PAYWORKER_NAMESPACE): %v", err)
	}
	return messages.NamesFor(*n.ns), nil
}

// addPrefixFlag registers --prefix, the idempotency store's key prefix.
func addPrefixFlag(f *cmdFlags) *string {
	return f.String("prefix", os.Getenv("PAYWORKER_IDEMPOTENCY_PREFIX"),
		"Redis key prefix (env PAYWORKER_IDEMPOTENCY_PREFIX; default "+idempotency.DefaultPrefix+", or payworker:<namespace>:idem: with --namespace, as payworker's)")
}

// prefix is --prefix, or the namespace's default prefix as payworker
// derives it.
func (n namespaceFlag) prefix(flagged string) (string, error) {
	if _, err := n.names(); err != nil {
		return "", err
	}
	if flagged != "" {
		return flagged, nil
	}
	return idempotency.NamespacePrefix(*n.ns), nil
}
