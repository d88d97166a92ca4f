package idempotency

// NamespacePrefix is the default Options.Prefix of the payworker deployment
// whose namespace (PAYWORKER_NAMESPACE, see messages.NamesFor) is
// namespace: "payworker:<namespace>:idem:", or DefaultPrefix for the
// default namespace "". Deployments sharing one Redis thus keep their
// records, card tokens and rate limit apart.
func NamespacePrefix(namespace string) string {
	if namespace == "" {
		return DefaultPrefix
	}
	return "payworker:" + namespace + ":idem:"
}
