package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/payworker/payworker/worker"
)

// The day-two checks of issue 16 (first deploy and day two): KEDA owns the
// replica count, a settings change rolls the pods, drains do not stall,
// NetworkPolicy, zone spread, GOMEMLIMIT, the callback endpoint on its own
// port with its own Service and Ingress, the clustered NATS and Sentinel
// Redis settings of issue 13 with their secrets in Secrets, monitoring that
// does not depend on a scrape job's name, and version stamping.

// runtimeVariables are read by the Go runtime, not by payworker's config.
var runtimeVariables = []string{"GOMEMLIMIT", "GOMAXPROCS", "GOGC", "GODEBUG", "TZ"}

// pendingVariables are set by the manifests for settings the worker is
// gaining in this batch of work (issues 13 and 16) and does not read yet.
// TestDeployPendingVariables fails once one is read: then delete it here.
var pendingVariables = []string{}

// pendingMetrics are announced for this batch and used by the alerts and
// the dashboard, but not registered by worker.NewMetrics or run.go yet.
// TestDeployMetricsAreExported fails once one is: then delete it here.
var pendingMetrics = []string{}

// registeredByRun are the payworker_ metrics run.go registers itself,
// beside worker.NewMetrics.
var registeredByRun = []string{"payworker_ready", "payworker_build_info"}

var (
	// natsAccountKey is a NATS account public key (an NKey starting with A).
	natsAccountKey = regexp.MustCompile(`^A[A-Z2-7]{55}$`)
	// jobMatcher finds a label matcher on job in a PromQL expression.
	jobMatcher = regexp.MustCompile(`\bjob\s*(=|!=|=~|!~)\s*"`)
)

func TestDeployPendingVariables(t *testing.T) {
	read := map[string]bool{}
	for _, s := range settings(&Config{}) {
		read[s.env] = true
	}
	for _, v := range connectionVariables() {
		read[v] = true
	}
	for _, v := range pendingVariables {
		if read[v] {
			t.Errorf("payworker reads %s now: remove it from pendingVariables", v)
		} else {
			t.Logf("%s is set by the manifests but not read by payworker yet", v)
		}
	}
}

// recordingRegisterer keeps the names of the metrics registered with it.
type recordingRegisterer struct{ names []string }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names = append(r.names, m[1])
		}
	}
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *recordingRegisterer) Unregister(prometheus.Collector) bool { return true }

// TestDeployMetricsAreExported checks the payworker_ metrics that alerts
// and the dashboard may use against what the worker registers.
func TestDeployMetricsAreExported(t *testing.T) {
	reg := &recordingRegisterer{}
	worker.NewMetrics(reg)
	exported := map[string]bool{}
	for _, n := range append(reg.names, registeredByRun...) {
		exported[n] = true
		// A histogram's series.
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			exported[n+suffix] = true
		}
	}
	if !exported["payworker_requests_total"] {
		t.Fatalf("worker.NewMetrics registered %q: the recorder is broken", reg.names)
	}
	for _, m := range sortedKeys(knownMetrics) {
		if !strings.HasPrefix(m, "payworker_") {
			continue
		}
		pending := slices.Contains(pendingMetrics, m)
		switch {
		case exported[m] && pending:
			t.Errorf("%s is exported now: remove it from pendingMetrics", m)
		case !exported[m] && !pending:
			t.Errorf("%s is in knownMetrics but payworker does not export it", m)
		case pending:
			t.Logf("%s is used by alerts or the dashboard but not exported yet", m)
		}
	}
}

// ---------------------------------------------------------------------------
// Kubernetes

type day2Deployment struct {
	Replicas *int `yaml:"replicas"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
			TopologySpreadConstraints     []struct {
				TopologyKey       string        `yaml:"topologyKey"`
				MaxSkew           int           `yaml:"maxSkew"`
				WhenUnsatisfiable string        `yaml:"whenUnsatisfiable"`
				LabelSelector     labelSelector `yaml:"labelSelector"`
			} `yaml:"topologySpreadConstraints"`
			Containers []struct {
				container    `yaml:",inline"`
				VolumeMounts []struct {
					Name      string `yaml:"name"`
					MountPath string `yaml:"mountPath"`
				} `yaml:"volumeMounts"`
			} `yaml:"containers"`
			Volumes []struct {
				Name   string `yaml:"name"`
				Secret *struct {
					SecretName string `yaml:"secretName"`
				} `yaml:"secret"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

type networkPolicySpec struct {
	PodSelector labelSelector `yaml:"podSelector"`
	PolicyTypes []string      `yaml:"policyTypes"`
	Ingress     []struct {
		From  []yaml.Node  `yaml:"from"`
		Ports []policyPort `yaml:"ports"`
	} `yaml:"ingress"`
	Egress []struct {
		To    []yaml.Node  `yaml:"to"`
		Ports []policyPort `yaml:"ports"`
	} `yaml:"egress"`
}

type policyPort struct {
	Port     yaml.Node `yaml:"port"`
	Protocol string    `yaml:"protocol"`
}

// podEnvironment is the environment the Deployment's container starts
// with, from envFrom and env, with where each variable comes from
// ("ConfigMap/x", "Secret/y", "value", "resource").
func podEnvironment(objs []k8sObject, c container) (env, from map[string]string) {
	values := map[string]map[string]string{}
	for _, o := range objs {
		if o.Kind == "ConfigMap" || o.Kind == "Secret" {
			v, _ := stringValues(o)
			values[o.Kind+"/"+o.Metadata.Name] = v
		}
	}
	env, from = map[string]string{}, map[string]string{}
	for _, ef := range c.EnvFrom {
		key := ""
		switch {
		case ef.ConfigMapRef != nil:
			key = "ConfigMap/" + ef.ConfigMapRef.Name
		case ef.SecretRef != nil:
			key = "Secret/" + ef.SecretRef.Name
		}
		for k, v := range values[key] {
			env[ef.Prefix+k], from[ef.Prefix+k] = v, key
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil:
			r := e.ValueFrom.ConfigMapKeyRef
			env[e.Name], from[e.Name] = values["ConfigMap/"+r.Name][r.Key], "ConfigMap/"+r.Name
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			env[e.Name], from[e.Name] = values["Secret/"+r.Name][r.Key], "Secret/"+r.Name
		case e.ValueFrom != nil:
			env[e.Name], from[e.Name] = "", "resource"
		default:
			env[e.Name], from[e.Name] = e.Value.Value, "value"
		}
	}
	return env, from
}

// byteSize parses a Kubernetes quantity of memory ("256Mi", "1G") or a
// GOMEMLIMIT value ("230MiB", "241172480").
func byteSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
		{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"B", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size in bytes", s)
	}
	return n * mult, nil
}

// portNumber is the port of host:port or of a URL, with def when it has
// none.
func portNumber(hostport, def string) string {
	if _, p, err := net.SplitHostPort(hostport); err == nil && p != "" {
		return p
	}
	return def
}

// kubernetesDay2Problems checks the manifests against issue 16's day-two
// findings and issue 13's production settings.
func kubernetesDay2Problems(objs []k8sObject) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	byKind := map[string][]k8sObject{}
	byName := map[string]k8sObject{}
	for _, o := range objs {
		byKind[o.Kind] = append(byKind[o.Kind], o)
		byName[o.Kind+"/"+o.Metadata.Name] = o
	}
	if len(byKind["Deployment"]) != 1 {
		return append(p, "want one Deployment")
	}
	dep := byKind["Deployment"][0]
	var ds day2Deployment
	if err := dep.Spec.Decode(&ds); err != nil || len(ds.Template.Spec.Containers) != 1 {
		return append(p, fmt.Sprintf("%s: want one container (%v)", dep.file, err))
	}
	c := ds.Template.Spec.Containers[0]
	podLabels := ds.Template.Metadata.Labels
	env, from := podEnvironment(objs, c.container)
	cfg, envErrs := envProblems(dep.file, env)
	if cfg == nil {
		p = append(p, envErrs...) // payworker would not start with them
	}

	// KEDA owns the replica count.
	if ds.Replicas != nil {
		bad("%s: sets replicas: %d; KEDA (scaledobject.yaml) owns the count, and every apply would reset it", dep.file, *ds.Replicas)
	}

	// Settings roll the pods: the ConfigMap the container reads is generated,
	// so its name carries a hash of its content.
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		if cm, ok := byName["ConfigMap/"+ef.ConfigMapRef.Name]; !ok || !cm.generated {
			bad("%s: envFrom ConfigMap %s is not made by configMapGenerator: editing it would not roll the pods", dep.file, ef.ConfigMapRef.Name)
		}
	}

	// Spread across zones and hosts.
	for _, key := range []string{"topology.kubernetes.io/zone", "kubernetes.io/hostname"} {
		found := false
		for _, tsc := range ds.Template.Spec.TopologySpreadConstraints {
			if tsc.TopologyKey == key && matches(tsc.LabelSelector.MatchLabels, podLabels) && tsc.MaxSkew >= 1 {
				found = true
			}
		}
		if !found {
			bad("%s: no topologySpreadConstraints over %s selecting the pods", dep.file, key)
		}
	}

	// Termination: DINTERO_TIMEOUT < PAYWORKER_SHUTDOWN_GRACE, and the
	// kubelet's grace covers the shutdown grace with 10 s to spare.
	if cfg != nil {
		if cfg.DinteroTimeout >= cfg.ShutdownGrace {
			bad("%s: DINTERO_TIMEOUT %s is not shorter than PAYWORKER_SHUTDOWN_GRACE %s: an in-flight call could outlive the grace", dep.file, cfg.DinteroTimeout, cfg.ShutdownGrace)
		}
		if g := ds.Template.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second < cfg.ShutdownGrace+10*time.Second {
			bad("%s: terminationGracePeriodSeconds must be at least PAYWORKER_SHUTDOWN_GRACE %s + 10s", dep.file, cfg.ShutdownGrace)
		}
	}

	// GOMEMLIMIT at 80-95 % of the memory limit.
	if limit, err := byteSize(c.Resources.Limits["memory"]); err != nil {
		bad("%s: limits.memory: %v", dep.file, err)
	} else if from["GOMEMLIMIT"] == "" {
		bad("%s: no GOMEMLIMIT: set it to about 90%% of limits.memory %s", dep.file, c.Resources.Limits["memory"])
	} else if from["GOMEMLIMIT"] == "value" {
		soft, err := byteSize(env["GOMEMLIMIT"])
		if err != nil {
			bad("%s: GOMEMLIMIT: %v", dep.file, err)
		} else if r := float64(soft) / float64(limit); r < 0.80 || r > 0.95 {
			bad("%s: GOMEMLIMIT %s is %.0f%% of limits.memory %s, want 80-95%%", dep.file, env["GOMEMLIMIT"], 100*r, c.Resources.Limits["memory"])
		}
	}

	// The callback endpoint on its own port, with its own Service.
	callbackPort := portNumber(env["PAYWORKER_CALLBACK_ADDR"], "")
	httpPort := ""
	if cfg != nil {
		httpPort = portNumber(cfg.HTTPAddr, "")
	}
	switch {
	case callbackPort == "":
		bad("%s: PAYWORKER_CALLBACK_ADDR is not set: /dintero/callback would share the metrics port", dep.file)
	case callbackPort == httpPort:
		bad("%s: PAYWORKER_CALLBACK_ADDR and PAYWORKER_HTTP_ADDR share port %s", dep.file, callbackPort)
	default:
		n, err := resolvePort(yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "callback"}, c.container)
		if err != nil || strconv.Itoa(n) != callbackPort {
			bad("%s: want a container port named callback on %s (PAYWORKER_CALLBACK_ADDR)", dep.file, callbackPort)
		}
	}
	if svc, ok := byName["Service/payworker-callback"]; !ok {
		bad("service.yaml: no Service payworker-callback for the callback port")
	} else {
		var ss serviceSpec
		_ = svc.Spec.Decode(&ss)
		if len(ss.Ports) != 1 {
			bad("%s: Service payworker-callback: want exactly one port, the callback port", svc.file)
		}
		for _, sp := range ss.Ports {
			if n, err := resolvePort(sp.TargetPort, c.container); err != nil || strconv.Itoa(n) != callbackPort {
				bad("%s: Service payworker-callback port %s does not target the callback port %s", svc.file, sp.Name, callbackPort)
			}
		}
	}

	// Clustered NATS with a credentials file from a Secret.
	servers := strings.Split(env["NATS_URL"], ",")
	if len(servers) < 3 {
		bad("%s: NATS_URL lists %d server(s); the production settings name the three nodes of the cluster", dep.file, len(servers))
	}
	if n, err := strconv.Atoi(env["PAYWORKER_STREAM_REPLICAS"]); err != nil || n != 3 || n > len(servers) {
		bad("%s: PAYWORKER_STREAM_REPLICAS %q, want 3 for a three-node cluster", dep.file, env["PAYWORKER_STREAM_REPLICAS"])
	}
	if creds := env["NATS_CREDS"]; creds == "" {
		bad("%s: NATS_CREDS is not set", dep.file)
	} else {
		mounted := false
		for _, vm := range c.VolumeMounts {
			if rel, err := filepath.Rel(vm.MountPath, creds); err == nil && !strings.HasPrefix(rel, "..") && !strings.Contains(rel, "/") {
				for _, v := range ds.Template.Spec.Volumes {
					if v.Name != vm.Name || v.Secret == nil {
						continue
					}
					s, ok := byName["Secret/"+v.Secret.SecretName]
					if !ok {
						bad("%s: volume %s: Secret %s is not among the manifests", dep.file, v.Name, v.Secret.SecretName)
						continue
					}
					if vals, _ := stringValues(s); vals[rel] == "" {
						bad("%s: Secret %s has no key %s for NATS_CREDS %s", s.file, v.Secret.SecretName, rel, creds)
					}
					mounted = true
				}
			}
		}
		if !mounted {
			bad("%s: NATS_CREDS %s is not a file of a mounted Secret volume", dep.file, creds)
		}
	}

	// Redis behind Sentinel, its password from a Secret.
	if u, err := url.Parse(env["REDIS_URL"]); err != nil {
		bad("%s: REDIS_URL: %v", dep.file, err)
	} else {
		q := u.Query()
		if q.Get("master_name") == "" || len(q["addr"]) < 2 || portNumber(u.Host, "6379") != "26379" {
			bad("%s: REDIS_URL %q is not the Sentinel form redis://sentinel1:26379/0?master_name=...&addr=sentinel2:26379&addr=sentinel3:26379", dep.file, env["REDIS_URL"])
		}
		if _, hasPassword := u.User.Password(); hasPassword {
			bad("%s: REDIS_URL carries a password; REDIS_PASSWORD comes from a Secret", dep.file)
		}
	}
	if !strings.HasPrefix(from["REDIS_PASSWORD"], "Secret/") {
		bad("%s: REDIS_PASSWORD must come from a Secret, not %q", dep.file, from["REDIS_PASSWORD"])
	}
	// Nothing secret in a ConfigMap.
	for _, cm := range byKind["ConfigMap"] {
		vals, _ := stringValues(cm)
		for _, key := range sortedKeys(vals) {
			if strings.HasSuffix(key, "_FILE") {
				continue
			}
			for _, word := range []string{"PASSWORD", "SECRET", "TOKEN", "NKEY", "SEED"} {
				if strings.Contains(key, word) && !strings.HasSuffix(key, "_CREDS") {
					bad("%s: %s belongs in a Secret, not ConfigMap %s", cm.file, key, cm.Metadata.Name)
				}
			}
			for _, one := range strings.Split(vals[key], ",") {
				if u, err := url.Parse(strings.TrimSpace(one)); err == nil && u.User != nil {
					if _, ok := u.User.Password(); ok {
						bad("%s: %s carries a password in ConfigMap %s", cm.file, key, cm.Metadata.Name)
					}
				}
			}
		}
	}

	// Drains evict unhealthy pods.
	for _, pdb := range byKind["PodDisruptionBudget"] {
		var spec struct {
			UnhealthyPodEvictionPolicy string `yaml:"unhealthyPodEvictionPolicy"`
		}
		_ = pdb.Spec.Decode(&spec)
		if spec.UnhealthyPodEvictionPolicy != "AlwaysAllow" {
			bad("%s: unhealthyPodEvictionPolicy %q, want AlwaysAllow: a drain must not wait for a dependency to come back", pdb.file, spec.UnhealthyPodEvictionPolicy)
		}
	}

	// NetworkPolicy.
	if len(byKind["NetworkPolicy"]) == 0 {
		bad("kustomization: no NetworkPolicy")
		return p
	}
	np := byKind["NetworkPolicy"][0]
	var ns networkPolicySpec
	if err := np.Spec.Decode(&ns); err != nil {
		return append(p, fmt.Sprintf("%s: %v", np.file, err))
	}
	if !matches(ns.PodSelector.MatchLabels, podLabels) {
		bad("%s: podSelector does not select the payworker pods", np.file)
	}
	if !slices.Contains(ns.PolicyTypes, "Ingress") || !slices.Contains(ns.PolicyTypes, "Egress") {
		bad("%s: policyTypes %v, want Ingress and Egress", np.file, ns.PolicyTypes)
	}
	portOfPolicy := func(pp policyPort) string {
		if pp.Port.ShortTag() == "!!int" {
			return pp.Port.Value
		}
		if n, err := resolvePort(pp.Port, c.container); err == nil {
			return strconv.Itoa(n)
		}
		return pp.Port.Value
	}
	ingressPorts := map[string]bool{}
	for i, r := range ns.Ingress {
		if len(r.From) == 0 {
			bad("%s: ingress rule %d admits every source", np.file, i)
		}
		if len(r.Ports) == 0 {
			bad("%s: ingress rule %d opens every port", np.file, i)
		}
		for _, pp := range r.Ports {
			port := portOfPolicy(pp)
			ingressPorts[port] = true
			if port != httpPort && port != callbackPort {
				bad("%s: ingress to port %s, which is neither the metrics nor the callback port", np.file, port)
			}
		}
	}
	for what, port := range map[string]string{"metrics": httpPort, "callback": callbackPort} {
		if port != "" && !ingressPorts[port] {
			bad("%s: no ingress rule for the %s port %s", np.file, what, port)
		}
	}
	egress := map[string]bool{}
	for _, r := range ns.Egress {
		for _, pp := range r.Ports {
			proto := pp.Protocol
			if proto == "" {
				proto = "TCP"
			}
			egress[portOfPolicy(pp)+"/"+proto] = true
		}
	}
	want := map[string]string{"53/UDP": "DNS", "443/TCP": "HTTPS to Dintero"}
	for _, s := range servers {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil {
			want[portNumber(u.Host, "4222")+"/TCP"] = "NATS"
		}
	}
	if u, err := url.Parse(env["REDIS_URL"]); err == nil {
		want[portNumber(u.Host, "6379")+"/TCP"] = "Redis (REDIS_URL)"
		for _, a := range u.Query()["addr"] {
			want[portNumber(a, "6379")+"/TCP"] = "Redis Sentinel"
		}
		if u.Query().Get("master_name") != "" {
			want["6379/TCP"] = "the Redis primary Sentinel names"
		}
	}
	if cfg != nil {
		if u, err := url.Parse(cfg.DinteroAPIURL); err == nil {
			want[portNumber(u.Host, "443")+"/TCP"] = "DINTERO_API_URL"
		}
	}
	for _, k := range sortedKeys(want) {
		if !egress[k] {
			bad("%s: no egress to %s (%s)", np.file, k, want[k])
		}
	}
	return p
}

func TestDeployKubernetesDay2(t *testing.T) {
	_, objs := loadKubernetes(t)
	for _, p := range kubernetesDay2Problems(objs) {
		t.Error(p)
	}
}

// editCase edits one file under deploy/kubernetes and expects a problem.
type editCase struct{ file, old, new, want string }

// problems loads the manifests with the edit and runs check; a file that
// no longer parses is a problem too.
func (tc editCase) problems(t *testing.T, check func([]k8sObject) []string) []string {
	t.Helper()
	rel := path.Join("deploy/kubernetes", tc.file)
	edited := false
	read := func(name string) ([]byte, error) {
		b, err := readRepoFile(name)
		if err != nil || name != rel {
			return b, err
		}
		if !bytes.Contains(b, []byte(tc.old)) {
			t.Fatalf("%s does not contain %q", rel, tc.old)
		}
		edited = true
		return bytes.Replace(b, []byte(tc.old), []byte(tc.new), 1), nil
	}
	_, objs, err := parseKubernetes(read)
	if !edited {
		t.Fatalf("%s is not read by the kustomization", rel)
	}
	if err != nil {
		return []string{err.Error()}
	}
	return check(objs)
}

func TestDeployDay2CatchesMistakes(t *testing.T) {
	_, objs := loadKubernetes(t)
	if p := kubernetesDay2Problems(objs); len(p) > 0 {
		t.Fatalf("the real manifests have problems: %q", p)
	}
	for name, tc := range map[string]editCase{
		"replicas":                {"deployment.yaml", "  revisionHistoryLimit: 5", "  replicas: 3\n  revisionHistoryLimit: 5", "KEDA"},
		"no zone spread":          {"deployment.yaml", "topologyKey: topology.kubernetes.io/zone", "topologyKey: example.com/rack", "topology.kubernetes.io/zone"},
		"no host spread":          {"deployment.yaml", "topologyKey: kubernetes.io/hostname", "topologyKey: example.com/rack", "kubernetes.io/hostname"},
		"GOMEMLIMIT at the limit": {"deployment.yaml", "value: 230MiB", "value: 256MiB", "GOMEMLIMIT 256MiB is 100%"},
		"GOMEMLIMIT missing":      {"deployment.yaml", "            - name: GOMEMLIMIT\n              value: 230MiB\n", "", "no GOMEMLIMIT"},
		"grace short":             {"deployment.yaml", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 35", "+ 10s"},
		"timeout over grace":      {"payworker.env", "DINTERO_TIMEOUT=20s", "DINTERO_TIMEOUT=30s", "must be at least DINTERO_TIMEOUT (30s) + 5s"},
		"pdb policy":              {"pdb.yaml", "unhealthyPodEvictionPolicy: AlwaysAllow", "unhealthyPodEvictionPolicy: IfHealthyBudget", "AlwaysAllow"},
		"callback on metrics":     {"payworker.env", "PAYWORKER_CALLBACK_ADDR=:8081", "PAYWORKER_CALLBACK_ADDR=:8080", "share port 8080"},
		"callback port name":      {"deployment.yaml", "- name: callback\n", "- name: hooks\n", "container port named callback"},
		"one NATS server":         {"payworker.env", "NATS_URL=nats://nats-0.nats-headless.nats.svc.cluster.local:4222,", "NATS_URL=", "lists 2 server(s)"},
		"one replica":             {"payworker.env", "PAYWORKER_STREAM_REPLICAS=3", "PAYWORKER_STREAM_REPLICAS=1", "PAYWORKER_STREAM_REPLICAS"},
		"creds not mounted":       {"deployment.yaml", "mountPath: /etc/payworker/nats", "mountPath: /etc/payworker/other", "not a file of a mounted Secret"},
		"creds key missing":       {"secret.yaml", "payworker.creds: REPLACE_ME", "nats.creds: REPLACE_ME", "has no key payworker.creds"},
		"redis not sentinel":      {"payworker.env", "REDIS_URL=redis://redis-node-0.redis-headless.redis.svc.cluster.local:26379/0?master_name=payworker&", "REDIS_URL=redis://redis:6379/0?", "Sentinel form"},
		"redis password in URL":   {"payworker.env", "REDIS_URL=redis://", "REDIS_URL=redis://:hunter2@", "carries a password"},
		"redis password literal": {"deployment.yaml", "              valueFrom:\n                secretKeyRef:\n                  name: payworker-redis\n                  key: REDIS_PASSWORD\n",
			"              value: hunter2\n", "REDIS_PASSWORD must come from a Secret"},
		"secret in configmap": {"payworker.env", "LOG_LEVEL=info", "LOG_LEVEL=info\nNATS_TOKEN=abc", "NATS_TOKEN belongs in a Secret"},
		"plain configmap": {"kustomization.yaml", "configMapGenerator:\n  - name: payworker-config\n", "configMapGenerator:\n  - name: payworker-settings\n",
			"not made by configMapGenerator"},
		"netpol open ingress":  {"networkpolicy.yaml", "    - from:\n        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: monitoring", "    - from: []\n      _x:\n        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: monitoring", "admits every source"},
		"netpol no callback":   {"networkpolicy.yaml", "        - port: callback\n", "        - port: http\n", "no ingress rule for the callback port"},
		"netpol no dns":        {"networkpolicy.yaml", "        - port: 53\n          protocol: UDP\n", "", "53/UDP"},
		"netpol no sentinel":   {"networkpolicy.yaml", "        - port: 26379\n", "        - port: 26380\n", "26379/TCP"},
		"netpol no https":      {"networkpolicy.yaml", "        - port: 443\n", "        - port: 8443\n", "443/TCP"},
		"netpol wrong pods":    {"networkpolicy.yaml", "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: payworker", "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: other", "does not select the payworker pods"},
		"netpol ingress only":  {"networkpolicy.yaml", `policyTypes: ["Ingress", "Egress"]`, `policyTypes: ["Ingress"]`, "want Ingress and Egress"},
		"callback svc missing": {"service.yaml", "name: payworker-callback", "name: payworker-hooks", "no Service payworker-callback"},
	} {
		t.Run(name, func(t *testing.T) {
			wantProblem(t, tc.problems(t, kubernetesDay2Problems), tc.want)
		})
	}
}

// ---------------------------------------------------------------------------
// Optional components: ServiceMonitor, PodMonitor, the callback Ingress

type componentFile struct {
	Kind      string   `yaml:"kind"`
	Resources []string `yaml:"resources"`
}

// loadComponent reads a component's kustomization and its one resource.
func loadComponent(t *testing.T, name string) k8sObject {
	t.Helper()
	dir := path.Join("deploy/kubernetes/components", name)
	var k componentFile
	if err := yaml.Unmarshal(readFile(t, path.Join(dir, "kustomization.yaml")), &k); err != nil {
		t.Fatal(err)
	}
	if k.Kind != "Component" || len(k.Resources) != 1 {
		t.Fatalf("%s/kustomization.yaml: kind %q with %d resources, want a Component with one", dir, k.Kind, len(k.Resources))
	}
	var o k8sObject
	rel := path.Join(dir, k.Resources[0])
	if err := yaml.Unmarshal(readFile(t, rel), &o); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	o.file = rel
	return o
}

// componentProblems checks the optional components against the base.
func componentProblems(objs []k8sObject, comps map[string]k8sObject) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	var dep k8sObject
	services := map[string]k8sObject{}
	for _, o := range objs {
		switch o.Kind {
		case "Deployment":
			dep = o
		case "Service":
			services[o.Metadata.Name] = o
		}
	}
	var ds deploymentSpec
	if err := dep.Spec.Decode(&ds); err != nil || len(ds.Template.Spec.Containers) != 1 {
		return append(p, "want one Deployment with one container")
	}
	c := ds.Template.Spec.Containers[0]
	env, _ := podEnvironment(objs, c)
	serviceHasPort := func(svc k8sObject, name string) bool {
		var ss serviceSpec
		_ = svc.Spec.Decode(&ss)
		return slices.ContainsFunc(ss.Ports, func(sp struct {
			Name       string    `yaml:"name"`
			Port       int       `yaml:"port"`
			TargetPort yaml.Node `yaml:"targetPort"`
		}) bool {
			return sp.Name == name
		})
	}

	if sm, ok := comps["servicemonitor"]; ok {
		var spec struct {
			Selector  labelSelector `yaml:"selector"`
			Endpoints []struct {
				Port string `yaml:"port"`
				Path string `yaml:"path"`
			} `yaml:"endpoints"`
		}
		_ = sm.Spec.Decode(&spec)
		var selected []string
		for _, name := range sortedKeys(services) {
			if matches(spec.Selector.MatchLabels, services[name].Metadata.Labels) {
				selected = append(selected, name)
			}
		}
		if !slices.Equal(selected, []string{"payworker"}) {
			bad("%s: selects Services %q, want the metrics Service payworker only", sm.file, selected)
		}
		for _, e := range spec.Endpoints {
			if svc, ok := services["payworker"]; ok && !serviceHasPort(svc, e.Port) {
				bad("%s: endpoint port %q is not a port of Service payworker", sm.file, e.Port)
			}
			if e.Path != "" && e.Path != "/metrics" {
				bad("%s: path %q, payworker serves /metrics", sm.file, e.Path)
			}
		}
		if len(spec.Endpoints) == 0 {
			bad("%s: no endpoints", sm.file)
		}
	}
	if pm, ok := comps["podmonitor"]; ok {
		var spec struct {
			Selector  labelSelector `yaml:"selector"`
			Endpoints []struct {
				Port string `yaml:"port"`
				Path string `yaml:"path"`
			} `yaml:"podMetricsEndpoints"`
		}
		_ = pm.Spec.Decode(&spec)
		if !matches(spec.Selector.MatchLabels, ds.Template.Metadata.Labels) {
			bad("%s: selector does not match the pods", pm.file)
		}
		for _, e := range spec.Endpoints {
			if n, err := resolvePort(yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: e.Port}, c); err != nil || strconv.Itoa(n) != portNumber(env["PAYWORKER_HTTP_ADDR"], "8080") {
				bad("%s: port %q is not the metrics port", pm.file, e.Port)
			}
		}
		if len(spec.Endpoints) == 0 {
			bad("%s: no podMetricsEndpoints", pm.file)
		}
	}
	if ing, ok := comps["callback-ingress"]; ok {
		var spec struct {
			TLS []struct {
				Hosts []string `yaml:"hosts"`
			} `yaml:"tls"`
			Rules []struct {
				Host string `yaml:"host"`
				HTTP struct {
					Paths []struct {
						Path     string `yaml:"path"`
						PathType string `yaml:"pathType"`
						Backend  struct {
							Service struct {
								Name string `yaml:"name"`
								Port struct {
									Name   string `yaml:"name"`
									Number int    `yaml:"number"`
								} `yaml:"port"`
							} `yaml:"service"`
						} `yaml:"backend"`
					} `yaml:"paths"`
				} `yaml:"http"`
			} `yaml:"rules"`
			DefaultBackend *yaml.Node `yaml:"defaultBackend"`
		}
		_ = ing.Spec.Decode(&spec)
		cb, err := url.Parse(env["PAYWORKER_CALLBACK_URL"])
		if err != nil || cb.Scheme != "https" || cb.Path != worker.CallbackPath {
			bad("PAYWORKER_CALLBACK_URL %q: want https://<host>%s (Dintero only calls https)", env["PAYWORKER_CALLBACK_URL"], worker.CallbackPath)
		}
		if spec.DefaultBackend != nil {
			bad("%s: a defaultBackend exposes every other path", ing.file)
		}
		if len(spec.Rules) == 0 {
			bad("%s: no rules", ing.file)
		}
		for _, r := range spec.Rules {
			if cb != nil && r.Host != cb.Hostname() {
				bad("%s: host %q is not PAYWORKER_CALLBACK_URL's %q", ing.file, r.Host, cb.Hostname())
			}
			if !slices.ContainsFunc(spec.TLS, func(t struct {
				Hosts []string `yaml:"hosts"`
			}) bool {
				return slices.Contains(t.Hosts, r.Host)
			}) {
				bad("%s: host %q has no TLS", ing.file, r.Host)
			}
			for _, hp := range r.HTTP.Paths {
				if hp.Path != worker.CallbackPath || hp.PathType != "Exact" {
					bad("%s: path %q (%s): expose exactly %s and nothing else", ing.file, hp.Path, hp.PathType, worker.CallbackPath)
				}
				be := hp.Backend.Service
				svc, ok := services[be.Name]
				if be.Name != "payworker-callback" || !ok {
					bad("%s: backend Service %q, want payworker-callback", ing.file, be.Name)
				} else if be.Port.Name != "" && !serviceHasPort(svc, be.Port.Name) {
					bad("%s: backend port %q is not a port of Service %s", ing.file, be.Port.Name, be.Name)
				}
			}
		}
	}
	return p
}

func loadComponents(t *testing.T) map[string]k8sObject {
	t.Helper()
	comps := map[string]k8sObject{}
	entries, err := os.ReadDir(filepath.Join(repoRoot, "deploy", "kubernetes", "components"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		comps[e.Name()] = loadComponent(t, e.Name())
	}
	for _, want := range []string{"servicemonitor", "podmonitor", "callback-ingress"} {
		if _, ok := comps[want]; !ok {
			t.Errorf("deploy/kubernetes/components/%s is missing", want)
		}
	}
	return comps
}

func TestDeployComponents(t *testing.T) {
	_, objs := loadKubernetes(t)
	comps := loadComponents(t)
	for _, p := range componentProblems(objs, comps) {
		t.Error(p)
	}
	for name, tc := range map[string]struct{ comp, old, new, want string }{
		"ingress prefix":      {"callback-ingress", "pathType: Exact", "pathType: Prefix", "expose exactly"},
		"ingress root":        {"callback-ingress", "- path: /dintero/callback", "- path: /", "expose exactly"},
		"ingress metrics":     {"callback-ingress", "name: payworker-callback\n                port:\n                  name: callback", "name: payworker\n                port:\n                  name: http", "want payworker-callback"},
		"ingress host":        {"callback-ingress", "- host: payworker.example.com", "- host: other.example.com", "is not PAYWORKER_CALLBACK_URL's"},
		"servicemonitor all":  {"servicemonitor", "      app.kubernetes.io/component: metrics\n", "", "want the metrics Service payworker only"},
		"servicemonitor port": {"servicemonitor", "- port: http", "- port: metrics", "is not a port of Service payworker"},
		"podmonitor port":     {"podmonitor", "- port: http", "- port: callback", "is not the metrics port"},
	} {
		t.Run(name, func(t *testing.T) {
			broken := map[string]k8sObject{}
			for k, v := range comps {
				broken[k] = v
			}
			o := comps[tc.comp]
			raw := readFile(t, o.file)
			if !bytes.Contains(raw, []byte(tc.old)) {
				t.Fatalf("%s does not contain %q", o.file, tc.old)
			}
			var b k8sObject
			if err := yaml.Unmarshal(bytes.Replace(raw, []byte(tc.old), []byte(tc.new), 1), &b); err != nil {
				t.Fatal(err)
			}
			b.file = o.file
			broken[tc.comp] = b
			wantProblem(t, componentProblems(objs, broken), tc.want)
		})
	}
}

// TestDeployKustomizeBuild renders the base and the components with the
// real kustomize (kubectl kustomize, or kustomize) when one is installed:
// the generated ConfigMap carries a content hash the Deployment refers to,
// so a settings change rolls the pods.
func TestDeployKustomizeBuild(t *testing.T) {
	build := func(dir string) ([]byte, error) {
		if _, err := exec.LookPath("kubectl"); err == nil {
			return exec.Command("kubectl", "kustomize", dir).Output()
		}
		return exec.Command("kustomize", "build", dir).Output()
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		if _, err := exec.LookPath("kustomize"); err != nil {
			t.Skip("neither kubectl nor kustomize is installed")
		}
	}
	base, err := filepath.Abs(filepath.Join(repoRoot, "deploy", "kubernetes"))
	if err != nil {
		t.Fatal(err)
	}
	overlay := func(t *testing.T, components ...string) []k8sObject {
		t.Helper()
		dir := t.TempDir()
		rel, err := filepath.Rel(dir, base)
		if err != nil {
			t.Fatal(err)
		}
		k := "resources:\n  - " + filepath.ToSlash(rel) + "\n"
		if len(components) > 0 {
			k += "components:\n"
			for _, c := range components {
				k += "  - " + filepath.ToSlash(filepath.Join(rel, "components", c)) + "\n"
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := build(dir)
		if err != nil {
			var stderr []byte
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				stderr = ee.Stderr
			}
			t.Fatalf("kustomize %v: %v\n%s", components, err, stderr)
		}
		var objs []k8sObject
		dec := yaml.NewDecoder(bytes.NewReader(out))
		for {
			var o k8sObject
			if err := dec.Decode(&o); err != nil {
				break
			}
			objs = append(objs, o)
		}
		return objs
	}
	kinds := func(objs []k8sObject) map[string]int {
		m := map[string]int{}
		for _, o := range objs {
			m[o.Kind]++
		}
		return m
	}

	objs := overlay(t)
	var cmName string
	for _, o := range objs {
		if o.Kind == "ConfigMap" {
			cmName = o.Metadata.Name
		}
	}
	if !regexp.MustCompile(`^payworker-config-[a-z0-9]{10}$`).MatchString(cmName) {
		t.Errorf("generated ConfigMap %q has no content hash", cmName)
	}
	for _, o := range objs {
		if o.Kind != "Deployment" {
			continue
		}
		var ds deploymentSpec
		if err := o.Spec.Decode(&ds); err != nil {
			t.Fatal(err)
		}
		if ds.Replicas != nil {
			t.Errorf("the rendered Deployment has replicas: %d", *ds.Replicas)
		}
		refs := false
		for _, ef := range ds.Template.Spec.Containers[0].EnvFrom {
			refs = refs || (ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == cmName)
		}
		if !refs {
			t.Errorf("the rendered Deployment does not read ConfigMap %s", cmName)
		}
	}
	if p := append(kubernetesProblems(objs), kubernetesDay2Problems(objs)...); len(p) > 0 {
		// The rendered objects carry kustomize's names; the checks that
		// compare names with the source files do not apply, the rest must.
		for _, s := range p {
			if !strings.Contains(s, "configMapGenerator") {
				t.Errorf("rendered: %s", s)
			}
		}
	}
	if k := kinds(overlay(t, "servicemonitor", "callback-ingress")); k["ServiceMonitor"] != 1 || k["Ingress"] != 1 || k["PodMonitor"] != 0 {
		t.Errorf("base + servicemonitor + callback-ingress rendered %v", k)
	}
	if k := kinds(overlay(t, "podmonitor")); k["PodMonitor"] != 1 || k["ServiceMonitor"] != 0 {
		t.Errorf("base + podmonitor rendered %v", k)
	}
}

// ---------------------------------------------------------------------------
// Monitoring

// TestDeployDashboardSelectsNoJob: panels select payworker's metrics, not a
// scrape job (issue 16: every panel needed job="payworker").
func TestDeployDashboardSelectsNoJob(t *testing.T) {
	raw := readFile(t, "deploy/grafana/payworker-dashboard.json")
	var d struct {
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []grafanaPanel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, pn := range ps {
			for _, tg := range pn.Targets {
				exprs = append(exprs, tg.Expr)
			}
			walk(pn.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if b, err := json.Marshal(v.Query); err == nil && jobMatcher.Match(b) {
			t.Errorf("variable %s selects a job: %s", v.Name, b)
		}
	}
	for _, e := range exprs {
		if jobMatcher.MatchString(e) {
			t.Errorf("panel query selects a job: %s", e)
		}
	}
	// With promtool, every query must parse as PromQL (Grafana's variables
	// replaced by values).
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: the queries' syntax is not checked")
		return
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__range", "1h", "$__interval", "1m", "$instance", ".*")
	for i, e := range exprs {
		q, _ := json.Marshal(vars.Replace(e))
		fmt.Fprintf(&rules, "      - record: dashboard:query%d\n        expr: %s\n", i, q)
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(f, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("a dashboard query is not valid PromQL: %v\n%s", err, out)
	}
}

// ---------------------------------------------------------------------------
// Version stamping

func TestDeployVersionStamped(t *testing.T) {
	df := string(readFile(t, "Dockerfile"))
	if strings.Contains(df, "-buildvcs=false") {
		t.Error("Dockerfile: go build -buildvcs=false leaves vcs.revision out of the binaries")
	}
	for _, line := range strings.Split(string(readFile(t, ".dockerignore")), "\n") {
		if strings.TrimSpace(line) == ".git" {
			t.Error(".dockerignore excludes .git: the go command cannot record the VCS revision")
		}
	}
	mk := string(readFile(t, "Makefile"))
	for _, want := range []struct{ what, re string }{
		{"VERSION from git describe", `(?m)^VERSION \?= \$\(shell git describe --tags --always --dirty`},
		{"a build target stamping main.version", `(?m)^build:\n\t\$\(GO\) build [^\n]*-ldflags "\$\(LDFLAGS\)"`},
		{"LDFLAGS with -X main.version", `(?m)^LDFLAGS := -X main\.version=\$\(VERSION\)`},
		{"VCS stamping not turned off", `(?m)^build:\n\t[^\n]*-buildvcs=auto`},
	} {
		if !regexp.MustCompile(want.re).MatchString(mk) {
			t.Errorf("Makefile: want %s (%s)", want.what, want.re)
		}
	}
}
