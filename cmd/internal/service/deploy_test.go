package service

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/payworker/payworker/dintero/dinterotest"
	"github.com/payworker/payworker/messages"
)

// The TestDeploy tests read the deployment files (Dockerfile,
// docker-compose.yml, deploy/) and check them against this binary: the
// variables they set are ones payworker reads and the config loads, the
// probes and scrape targets hit PAYWORKER_HTTP_ADDR, KEDA watches the
// consumer payworker binds, and the alerts and dashboard use only metrics
// that are exported. TestDeployChecksCatchMistakes proves each check can fail.

// repoRoot is where the deployment files are, seen from this package.
var repoRoot = filepath.Join("..", "..", "..")

// deployFiles are the files TestDeployFilesExist requires.
var deployFiles = []string{
	"Dockerfile",
	"docker-compose.yml",
	"deploy/prometheus/prometheus.yml",
	"deploy/prometheus/alerts.yml",
	"deploy/grafana/payworker-dashboard.json",
	"deploy/kubernetes/kustomization.yaml",
	"deploy/kubernetes/deployment.yaml",
	"deploy/kubernetes/service.yaml",
	"deploy/kubernetes/pdb.yaml",
	"deploy/kubernetes/payworker.env",
	"deploy/kubernetes/secret.yaml",
	"deploy/kubernetes/scaledobject.yaml",
	"deploy/kubernetes/networkpolicy.yaml",
	"deploy/kubernetes/components/servicemonitor/servicemonitor.yaml",
	"deploy/kubernetes/components/podmonitor/podmonitor.yaml",
	"deploy/kubernetes/components/callback-ingress/ingress.yaml",
	"deploy/prometheus/alerts_test.yml",
}

// knownMetrics are the series alert rules and dashboards may use: what
// payworker exports, `up`, the process collector's start time, and
// prometheus-nats-exporter's consumer lag. TestDeployMetricsAreExported
// (deploy_day2_test.go) checks the payworker_ ones against the worker's
// registry; pendingMetrics lists those announced but not exported yet.
var knownMetrics = map[string]bool{
	"payworker_build_info":                              true,
	"payworker_parked_requests":                         true,
	"payworker_needs_review_total":                      true,
	"payworker_token_blocked_total":                     true,
	"payworker_dintero_rate_limited_total":              true,
	"process_start_time_seconds":                        true,
	"payworker_requests_total":                          true,
	"payworker_dead_letters_total":                      true,
	"payworker_in_flight":                               true,
	"payworker_dintero_request_duration_seconds_bucket": true,
	"payworker_dintero_request_duration_seconds_sum":    true,
	"payworker_dintero_request_duration_seconds_count":  true,
	"payworker_retries_total":                           true,
	"payworker_redeliveries_total":                      true,
	"payworker_ready":                                   true,
	"jetstream_consumer_num_pending":                    true,
	"up":                                                true,
}

// scrapeJob is the job name of the compose Prometheus's payworker scrape
// config. The alert rules and the dashboard select no job.
const scrapeJob = "payworker"

func TestDeployFilesExist(t *testing.T) {
	for _, f := range deployFiles {
		t.Run(f, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(repoRoot, f)); err != nil {
				t.Errorf("%s is missing: %v", f, err)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Environment

// envProblems reports variables payworker does not read, and loads the
// config from env as the binary would. It returns the loaded config (nil
// when it does not load).
func envProblems(where string, env map[string]string) (*Config, []string) {
	read := map[string]bool{}
	for _, s := range settings(&Config{}) {
		read[s.env] = true
	}
	for _, v := range runtimeVariables {
		read[v] = true
	}
	for _, v := range connectionVariables() {
		read[v] = true
	}
	for _, v := range pendingVariables {
		read[v] = true
	}
	var problems []string
	for _, k := range sortedKeys(env) {
		if !read[k] {
			problems = append(problems, fmt.Sprintf("%s: %s is not a variable payworker reads", where, k))
		}
	}
	files := mounted(env)
	cfg, err := LoadConfig(nil, func(k string) string { return files[k] }, io.Discard)
	if err != nil {
		problems = append(problems, fmt.Sprintf("%s: payworker would not start: %v", where, err))
		return nil, problems
	}
	return cfg, problems
}

func defaultOf(env string) string {
	for _, s := range settings(&Config{}) {
		if s.env == env {
			return s.def
		}
	}
	panic("no setting " + env)
}

func portOf(addr string) (string, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	return port, nil
}

// ---------------------------------------------------------------------------
// docker-compose.yml

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image           string        `yaml:"image"`
	Build           yaml.Node     `yaml:"build"`
	Entrypoint      stringList    `yaml:"entrypoint"`
	Command         stringList    `yaml:"command"`
	Environment     composeEnv    `yaml:"environment"`
	Ports           []yaml.Node   `yaml:"ports"`
	Volumes         []string      `yaml:"volumes"`
	ContainerName   string        `yaml:"container_name"`
	StopGracePeriod string        `yaml:"stop_grace_period"`
	DependsOn       yaml.Node     `yaml:"depends_on"`
	Deploy          composeDeploy `yaml:"deploy"`
}

type composeDeploy struct {
	Replicas *int `yaml:"replicas"`
}

// stringList is a compose command or entrypoint: a list, or one string
// split on spaces.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(n.Value)
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// composeEnv is a compose environment: a map, or a list of KEY=VALUE.
type composeEnv map[string]string

func (e *composeEnv) UnmarshalYAML(n *yaml.Node) error {
	out := composeEnv{}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			out[n.Content[i].Value] = n.Content[i+1].Value
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			k, v, _ := strings.Cut(item.Value, "=")
			out[k] = v
		}
	default:
		return fmt.Errorf("line %d: environment is neither a map nor a list", n.Line)
	}
	*e = out
	return nil
}

func (s composeService) dependsOn() []string {
	switch s.DependsOn.Kind {
	case yaml.SequenceNode:
		var l []string
		for _, n := range s.DependsOn.Content {
			l = append(l, n.Value)
		}
		return l
	case yaml.MappingNode:
		var l []string
		for i := 0; i < len(s.DependsOn.Content); i += 2 {
			l = append(l, s.DependsOn.Content[i].Value)
		}
		return l
	}
	return nil
}

// flagValue finds -name value, -name=value or the -- forms in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// composeProblems checks the compose file against what the binaries read.
func composeProblems(c composeFile) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf("docker-compose.yml: "+format, args...)) }
	for _, name := range []string{"nats", "redis", "dintero-sandbox", "payworker", "prometheus"} {
		if _, ok := c.Services[name]; !ok {
			bad("service %q is missing", name)
		}
	}
	w, ok := c.Services["payworker"]
	if !ok {
		return p
	}
	cfg, envP := envProblems("docker-compose.yml service payworker", w.Environment)
	p = append(p, envP...)
	for _, req := range []string{"DINTERO_ACCOUNT_ID", "DINTERO_CLIENT_ID", "DINTERO_CLIENT_SECRET"} {
		if w.Environment[req] == "" {
			bad("payworker: required %s is not set", req)
		}
	}
	if w.Deploy.Replicas == nil || *w.Deploy.Replicas < 2 {
		bad("payworker: deploy.replicas should run several workers")
	}
	if w.ContainerName != "" {
		bad("payworker: container_name cannot be used with replicas")
	}
	if len(w.Ports) > 0 {
		bad("payworker: ports publishes a host port, which several replicas cannot share (use expose)")
	}
	if cfg == nil {
		return p
	}
	deps := w.dependsOn()
	for _, u := range []struct{ env, raw, want string }{
		{"NATS_URL", cfg.NATSURL, "nats"},
		{"REDIS_URL", cfg.RedisURL, "redis"},
		{"DINTERO_API_URL", cfg.DinteroAPIURL, "dintero-sandbox"},
	} {
		pu, err := url.Parse(strings.Split(u.raw, ",")[0])
		if err != nil {
			bad("payworker: %s: %v", u.env, err)
			continue
		}
		if pu.Hostname() != u.want {
			bad("payworker: %s points at host %q, want the %q service", u.env, pu.Hostname(), u.want)
		}
		if !slices.Contains(deps, u.want) {
			bad("payworker: depends_on lacks %q", u.want)
		}
	}
	if sb, ok := c.Services["dintero-sandbox"]; ok {
		if len(sb.Entrypoint) == 0 || path.Base(sb.Entrypoint[0]) != "dintero-sandbox" {
			bad("dintero-sandbox: entrypoint %q does not run dintero-sandbox", sb.Entrypoint)
		}
		addr, ok := flagValue(sb.Command, "addr")
		if !ok {
			addr = sb.Environment["DINTERO_SANDBOX_ADDR"]
		}
		host, port, err := net.SplitHostPort(addr)
		switch {
		case err != nil:
			bad("dintero-sandbox: listen address %q: %v", addr, err)
		case host != "0.0.0.0" && host != "":
			bad("dintero-sandbox: listens on %q, which other containers cannot reach", addr)
		default:
			if pu, err := url.Parse(cfg.DinteroAPIURL); err == nil && pu.Port() != port {
				bad("payworker: DINTERO_API_URL port %q is not the sandbox's %q", pu.Port(), port)
			}
		}
		for _, cred := range []struct{ flag, def, got, env string }{
			{"account", dinterotest.DefaultAccountID, cfg.DinteroAccountID, "DINTERO_ACCOUNT_ID"},
			{"client-id", dinterotest.DefaultClientID, cfg.DinteroClientID, "DINTERO_CLIENT_ID"},
			{"client-secret", dinterotest.DefaultClientSecret, cfg.DinteroClientSecret, "DINTERO_CLIENT_SECRET"},
		} {
			want := cred.def
			if v := sb.Environment["DINTERO_SANDBOX_"+strings.ToUpper(strings.ReplaceAll(cred.flag, "-", "_"))]; v != "" {
				want = v
			}
			if v, ok := flagValue(sb.Command, cred.flag); ok {
				want = v
			}
			if cred.got != want {
				bad("payworker: %s does not match the sandbox's -%s", cred.env, cred.flag)
			}
		}
	}
	if w.StopGracePeriod != "" {
		d, err := time.ParseDuration(w.StopGracePeriod)
		if err != nil {
			bad("payworker: stop_grace_period: %v", err)
		} else if d <= cfg.ShutdownGrace {
			bad("payworker: stop_grace_period %s is not longer than PAYWORKER_SHUTDOWN_GRACE %s", d, cfg.ShutdownGrace)
		}
	} else if cfg.ShutdownGrace >= 10*time.Second {
		bad("payworker: compose's default 10s stop grace period cuts PAYWORKER_SHUTDOWN_GRACE %s short", cfg.ShutdownGrace)
	}
	if prom, ok := c.Services["prometheus"]; ok {
		for _, f := range []string{"prometheus.yml", "alerts.yml"} {
			found := false
			for _, v := range prom.Volumes {
				src, _, _ := strings.Cut(v, ":")
				if path.Clean(src) == path.Join("deploy/prometheus", f) {
					found = true
				}
			}
			if !found {
				bad("prometheus: deploy/prometheus/%s is not mounted", f)
			}
		}
	}
	return p
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal(readFile(t, "docker-compose.yml"), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

func TestDeployCompose(t *testing.T) {
	for _, p := range composeProblems(loadCompose(t)) {
		t.Error(p)
	}
}

// ---------------------------------------------------------------------------
// Kubernetes

type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]yaml.Node `yaml:"data"`
	StringData map[string]yaml.Node `yaml:"stringData"`
	Spec       yaml.Node            `yaml:"spec"`

	file      string
	generated bool // made by kustomization.yaml's configMapGenerator
}

type labelSelector struct {
	MatchLabels      map[string]string `yaml:"matchLabels"`
	MatchExpressions []any             `yaml:"matchExpressions"`
}

type deploymentSpec struct {
	Replicas *int          `yaml:"replicas"`
	Selector labelSelector `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
			SecurityContext               struct {
				RunAsNonRoot *bool `yaml:"runAsNonRoot"`
			} `yaml:"securityContext"`
			Containers []container `yaml:"containers"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

type container struct {
	Name  string `yaml:"name"`
	Image string `yaml:"image"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		Prefix       string   `yaml:"prefix"`
		ConfigMapRef *nameRef `yaml:"configMapRef"`
		SecretRef    *nameRef `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string    `yaml:"name"`
		Value     yaml.Node `yaml:"value"`
		ValueFrom *struct {
			ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
			SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
}

type nameRef struct {
	Name string `yaml:"name"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type probe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
}

type serviceSpec struct {
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Name       string    `yaml:"name"`
		Port       int       `yaml:"port"`
		TargetPort yaml.Node `yaml:"targetPort"`
	} `yaml:"ports"`
}

type pdbSpec struct {
	MinAvailable   yaml.Node     `yaml:"minAvailable"`
	MaxUnavailable yaml.Node     `yaml:"maxUnavailable"`
	Selector       labelSelector `yaml:"selector"`
}

type scaledObjectSpec struct {
	ScaleTargetRef struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Name       string `yaml:"name"`
	} `yaml:"scaleTargetRef"`
	MinReplicaCount *int `yaml:"minReplicaCount"`
	MaxReplicaCount *int `yaml:"maxReplicaCount"`
	Triggers        []struct {
		Type     string            `yaml:"type"`
		Metadata map[string]string `yaml:"metadata"`
	} `yaml:"triggers"`
}

type kustomization struct {
	Resources          []string `yaml:"resources"`
	Components         []string `yaml:"components"`
	ConfigMapGenerator []struct {
		Name     string   `yaml:"name"`
		Envs     []string `yaml:"envs"`
		Literals []string `yaml:"literals"`
	} `yaml:"configMapGenerator"`
}

// loadKubernetes reads kustomization.yaml, every resource it lists, and
// the ConfigMaps its configMapGenerator makes.
func loadKubernetes(t *testing.T) (kustomization, []k8sObject) {
	t.Helper()
	k, objs, err := parseKubernetes(readRepoFile)
	if err != nil {
		t.Fatal(err)
	}
	return k, objs
}

// readRepoFile reads a file of the repository, path relative to its root.
func readRepoFile(rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
}

// parseKubernetes is loadKubernetes with the files read by read (tests
// hand it edited copies).
func parseKubernetes(read func(rel string) ([]byte, error)) (kustomization, []k8sObject, error) {
	var k kustomization
	raw, err := read("deploy/kubernetes/kustomization.yaml")
	if err != nil {
		return k, nil, err
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		return k, nil, fmt.Errorf("kustomization.yaml: %w", err)
	}
	var objs []k8sObject
	for _, r := range k.Resources {
		rel := path.Join("deploy/kubernetes", r)
		raw, err := read(rel)
		if err != nil {
			return k, nil, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return k, nil, fmt.Errorf("%s: %w", rel, err)
			}
			if o.Kind == "" {
				continue // an empty document
			}
			o.file = rel
			objs = append(objs, o)
		}
	}
	for _, g := range k.ConfigMapGenerator {
		o := k8sObject{APIVersion: "v1", Kind: "ConfigMap", Data: map[string]yaml.Node{}, generated: true}
		o.Metadata.Name = g.Name
		o.file = "deploy/kubernetes/kustomization.yaml"
		lines := slices.Clone(g.Literals)
		for _, f := range g.Envs {
			rel := path.Join("deploy/kubernetes", f)
			raw, err := read(rel)
			if err != nil {
				return k, nil, err
			}
			o.file = rel
			for i, line := range strings.Split(string(raw), "\n") {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				if key, _, ok := strings.Cut(line, "="); !ok || key == "" || strings.ContainsAny(key, " \t") {
					return k, nil, fmt.Errorf("%s:%d: %q is not KEY=VALUE", rel, i+1, line)
				}
				lines = append(lines, line)
			}
		}
		for _, l := range lines {
			key, value, _ := strings.Cut(l, "=")
			if _, dup := o.Data[key]; dup {
				return k, nil, fmt.Errorf("%s: %s is set twice", o.file, key)
			}
			o.Data[key] = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
		}
		objs = append(objs, o)
	}
	return k, objs, nil
}

// stringValues decodes ConfigMap data or Secret data/stringData; values
// must be YAML strings, as the API server rejects numbers and booleans.
func stringValues(o k8sObject) (map[string]string, []string) {
	out := map[string]string{}
	var p []string
	for k, n := range o.StringData {
		if n.ShortTag() != "!!str" {
			p = append(p, fmt.Sprintf("%s: %s %s: %s is %s, quote it", o.file, o.Kind, o.Metadata.Name, k, n.ShortTag()))
		}
		out[k] = n.Value
	}
	for k, n := range o.Data {
		if n.ShortTag() != "!!str" {
			p = append(p, fmt.Sprintf("%s: %s %s: %s is %s, quote it", o.file, o.Kind, o.Metadata.Name, k, n.ShortTag()))
		}
		v := n.Value
		if o.Kind == "Secret" {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				p = append(p, fmt.Sprintf("%s: Secret %s: data %s is not base64", o.file, o.Metadata.Name, k))
			}
			v = string(b)
		}
		out[k] = v
	}
	return out, p
}

func matches(sel map[string]string, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// resolvePort turns a probe or Service port (a number or a container port
// name) into a number.
func resolvePort(n yaml.Node, c container) (int, error) {
	if n.ShortTag() == "!!int" {
		return strconv.Atoi(n.Value)
	}
	for _, p := range c.Ports {
		if p.Name == n.Value {
			return p.ContainerPort, nil
		}
	}
	return 0, fmt.Errorf("no container port named %q", n.Value)
}

// kubernetesProblems checks the manifests against each other and against
// what the binary reads.
func kubernetesProblems(objs []k8sObject) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	byKind := map[string][]k8sObject{}
	values := map[string]map[string]string{} // "ConfigMap/name" -> data
	for _, o := range objs {
		byKind[o.Kind] = append(byKind[o.Kind], o)
		if o.Metadata.Namespace != "" {
			bad("%s: %s %s sets a namespace; the manifests are namespace-less", o.file, o.Kind, o.Metadata.Name)
		}
		if o.Kind == "ConfigMap" || o.Kind == "Secret" {
			v, vp := stringValues(o)
			p = append(p, vp...)
			values[o.Kind+"/"+o.Metadata.Name] = v
		}
		if o.Kind == "Secret" {
			if len(o.Data) > 0 {
				bad("%s: Secret %s: use stringData with REPLACE_ME placeholders, never data", o.file, o.Metadata.Name)
			}
			for k, n := range o.StringData {
				if !strings.HasPrefix(n.Value, "REPLACE_ME") {
					bad("%s: Secret %s: %s must be a placeholder starting with REPLACE_ME, not a real value", o.file, o.Metadata.Name, k)
				}
			}
		}
	}
	for kind, n := range map[string]int{"Deployment": 1, "Service": 2, "PodDisruptionBudget": 1, "ConfigMap": 1,
		"Secret": 3, "ScaledObject": 1, "NetworkPolicy": 1} {
		if len(byKind[kind]) != n {
			bad("kustomization: want %d %s, have %d", n, kind, len(byKind[kind]))
		}
	}
	if len(byKind["Deployment"]) != 1 {
		return p
	}
	dep := byKind["Deployment"][0]
	var ds deploymentSpec
	if err := dep.Spec.Decode(&ds); err != nil {
		return append(p, fmt.Sprintf("%s: %v", dep.file, err))
	}
	podLabels := ds.Template.Metadata.Labels
	if !matches(ds.Selector.MatchLabels, podLabels) {
		bad("%s: selector %v does not match the pod labels %v", dep.file, ds.Selector.MatchLabels, podLabels)
	}
	if len(ds.Template.Spec.Containers) != 1 {
		return append(p, fmt.Sprintf("%s: want one container, have %d", dep.file, len(ds.Template.Spec.Containers)))
	}
	c := ds.Template.Spec.Containers[0]

	// The environment payworker starts with: envFrom in order, then env.
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		key := ""
		switch {
		case ef.ConfigMapRef != nil:
			key = "ConfigMap/" + ef.ConfigMapRef.Name
		case ef.SecretRef != nil:
			key = "Secret/" + ef.SecretRef.Name
		}
		data, ok := values[key]
		if !ok {
			bad("%s: envFrom %s is not among the manifests", dep.file, key)
			continue
		}
		for k, v := range data {
			env[ef.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil:
			r := e.ValueFrom.ConfigMapKeyRef
			v, ok := values["ConfigMap/"+r.Name][r.Key]
			if !ok {
				bad("%s: env %s: ConfigMap %s has no key %s", dep.file, e.Name, r.Name, r.Key)
			}
			env[e.Name] = v
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			v, ok := values["Secret/"+r.Name][r.Key]
			if !ok {
				bad("%s: env %s: Secret %s has no key %s", dep.file, e.Name, r.Name, r.Key)
			}
			env[e.Name] = v
		default:
			if e.Value.Kind != 0 && e.Value.ShortTag() != "!!str" {
				bad("%s: env %s: value is %s, quote it", dep.file, e.Name, e.Value.ShortTag())
			}
			env[e.Name] = e.Value.Value
		}
	}
	cfg, envP := envProblems(dep.file+" container "+c.Name, env)
	p = append(p, envP...)
	for _, req := range []string{"DINTERO_ACCOUNT_ID", "DINTERO_CLIENT_ID", "DINTERO_CLIENT_SECRET"} {
		if env[req] == "" {
			bad("%s: required %s is not provided", dep.file, req)
		}
	}
	for _, secret := range []string{"DINTERO_CLIENT_ID", "DINTERO_CLIENT_SECRET"} {
		if _, inSecret := values["Secret/payworker-dintero"][secret]; !inSecret {
			bad("%s: %s must come from the Secret payworker-dintero", dep.file, secret)
		}
		for _, o := range byKind["ConfigMap"] {
			if _, ok := o.Data[secret]; ok {
				bad("%s: %s belongs in the Secret, not ConfigMap %s", o.file, secret, o.Metadata.Name)
			}
		}
	}

	httpPort := 0
	if cfg != nil {
		ps, err := portOf(cfg.HTTPAddr)
		if err == nil {
			httpPort, err = strconv.Atoi(ps)
		}
		if err != nil {
			bad("%s: PAYWORKER_HTTP_ADDR: %v", dep.file, err)
		}
	}
	for _, pr := range []struct {
		name  string
		probe *probe
		path  string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			bad("%s: %s: want an httpGet probe of %s", dep.file, pr.name, pr.path)
			continue
		}
		if pr.probe.HTTPGet.Path != pr.path {
			bad("%s: %s: path %q, want %q", dep.file, pr.name, pr.probe.HTTPGet.Path, pr.path)
		}
		port, err := resolvePort(pr.probe.HTTPGet.Port, c)
		if err != nil {
			bad("%s: %s: %v", dep.file, pr.name, err)
		} else if httpPort != 0 && port != httpPort {
			bad("%s: %s: port %d, but PAYWORKER_HTTP_ADDR listens on %d", dep.file, pr.name, port, httpPort)
		}
	}
	if n, err := resolvePort(yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "http"}, c); err != nil || (httpPort != 0 && n != httpPort) {
		bad("%s: want a container port named http on %d", dep.file, httpPort)
	}
	if g := ds.Template.Spec.TerminationGracePeriodSeconds; cfg != nil && (g == nil || time.Duration(*g)*time.Second <= cfg.ShutdownGrace) {
		bad("%s: terminationGracePeriodSeconds must be longer than PAYWORKER_SHUTDOWN_GRACE %s", dep.file, cfg.ShutdownGrace)
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
			bad("%s: resources: want requests and limits of %s", dep.file, r)
		}
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	if !isTrue(c.SecurityContext.RunAsNonRoot) && !isTrue(ds.Template.Spec.SecurityContext.RunAsNonRoot) {
		bad("%s: want runAsNonRoot: true", dep.file)
	}
	if !isTrue(c.SecurityContext.ReadOnlyRootFilesystem) {
		bad("%s: want readOnlyRootFilesystem: true", dep.file)
	}
	if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
		bad("%s: want allowPrivilegeEscalation: false", dep.file)
	}

	for _, svc := range byKind["Service"] {
		var ss serviceSpec
		if err := svc.Spec.Decode(&ss); err != nil {
			bad("%s: %v", svc.file, err)
			continue
		}
		if !matches(ss.Selector, podLabels) {
			bad("%s: selector %v does not match the pod labels %v", svc.file, ss.Selector, podLabels)
		}
		for _, sp := range ss.Ports {
			port, err := resolvePort(sp.TargetPort, c)
			switch {
			case err != nil:
				bad("%s: Service %s port %s: %v", svc.file, svc.Metadata.Name, sp.Name, err)
			case svc.Metadata.Name == "payworker-callback":
				if cfg != nil && port == httpPort {
					bad("%s: Service payworker-callback targets the metrics port %d: it must expose the callback port only", svc.file, port)
				}
			case httpPort != 0 && port != httpPort:
				bad("%s: port %s does not target the metrics port %d", svc.file, sp.Name, httpPort)
			}
		}
	}
	for _, pdb := range byKind["PodDisruptionBudget"] {
		var ps pdbSpec
		if err := pdb.Spec.Decode(&ps); err != nil {
			bad("%s: %v", pdb.file, err)
			continue
		}
		if !matches(ps.Selector.MatchLabels, podLabels) {
			bad("%s: selector %v does not match the Deployment's pod labels %v", pdb.file, ps.Selector.MatchLabels, podLabels)
		}
		if (ps.MinAvailable.Kind == 0) == (ps.MaxUnavailable.Kind == 0) {
			bad("%s: set exactly one of minAvailable and maxUnavailable", pdb.file)
		}
	}
	for _, so := range byKind["ScaledObject"] {
		var ss scaledObjectSpec
		if err := so.Spec.Decode(&ss); err != nil {
			bad("%s: %v", so.file, err)
			continue
		}
		if ss.ScaleTargetRef.Name != dep.Metadata.Name || (ss.ScaleTargetRef.Kind != "" && ss.ScaleTargetRef.Kind != "Deployment") {
			bad("%s: scaleTargetRef %s/%s is not the Deployment %s", so.file, ss.ScaleTargetRef.Kind, ss.ScaleTargetRef.Name, dep.Metadata.Name)
		}
		if ds.Replicas != nil && ss.MinReplicaCount != nil && ss.MaxReplicaCount != nil &&
			(*ds.Replicas < *ss.MinReplicaCount || *ds.Replicas > *ss.MaxReplicaCount) {
			bad("%s: the Deployment's %d replicas are outside [minReplicaCount, maxReplicaCount]", so.file, *ds.Replicas)
		}
		found := false
		for _, tr := range ss.Triggers {
			if tr.Type != "nats-jetstream" {
				continue
			}
			found = true
			m := tr.Metadata
			if m["stream"] != messages.StreamRequests {
				bad("%s: trigger stream %q, want %q", so.file, m["stream"], messages.StreamRequests)
			}
			if want := defaultOf("PAYWORKER_CONSUMER"); m["consumer"] != want {
				bad("%s: trigger consumer %q, want payworker's default %q", so.file, m["consumer"], want)
			}
			if cfg != nil && m["consumer"] != cfg.Consumer {
				bad("%s: trigger consumer %q, but the pods use PAYWORKER_CONSUMER %q", so.file, m["consumer"], cfg.Consumer)
			}
			switch {
			case env["NATS_CREDS"] == "" && m["account"] != "$G":
				bad("%s: trigger account %q, want \"$G\" (no NATS accounts without credentials)", so.file, m["account"])
			case env["NATS_CREDS"] != "" && m["account"] == "$G":
				bad("%s: trigger account \"$G\", but with NATS_CREDS the user's account is its public key (or a REPLACE_ME placeholder)", so.file)
			case env["NATS_CREDS"] != "" && !strings.HasPrefix(m["account"], "REPLACE_ME") && !natsAccountKey.MatchString(m["account"]):
				bad("%s: trigger account %q is not an account public key (A and 55 more characters)", so.file, m["account"])
			}
			if n, err := strconv.Atoi(m["lagThreshold"]); err != nil || n <= 0 {
				bad("%s: trigger lagThreshold %q is not a positive integer", so.file, m["lagThreshold"])
			}
			mon, _, err := net.SplitHostPort(m["natsServerMonitoringEndpoint"])
			if err != nil {
				bad("%s: natsServerMonitoringEndpoint: %v", so.file, err)
			}
			// One server: the same host. A cluster: KEDA queries each node as
			// <server name>.<endpoint host>, so NATS_URL's hosts are those.
			for _, one := range strings.Split(env["NATS_URL"], ",") {
				u, perr := url.Parse(strings.TrimSpace(one))
				if err != nil || perr != nil {
					continue
				}
				if _, rest, _ := strings.Cut(u.Hostname(), "."); u.Hostname() != mon && rest != mon {
					bad("%s: natsServerMonitoringEndpoint host %q is not NATS_URL's %q (nor its domain, for a cluster)", so.file, mon, u.Hostname())
				}
			}
		}
		if !found {
			bad("%s: no nats-jetstream trigger", so.file)
		}
	}
	return p
}

func TestDeployKubernetes(t *testing.T) {
	k, objs := loadKubernetes(t)
	// Every manifest in the folder is applied by kubectl apply -k.
	entries, err := os.ReadDir(filepath.Join(repoRoot, "deploy", "kubernetes"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		n := e.Name()
		if (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) && n != "kustomization.yaml" && !slices.Contains(k.Resources, n) {
			t.Errorf("deploy/kubernetes/%s is not listed in kustomization.yaml", n)
		}
	}
	for _, p := range kubernetesProblems(objs) {
		t.Error(p)
	}
}

// ---------------------------------------------------------------------------
// Prometheus and Grafana

var (
	promStrings   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promVariables = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping  = regexp.MustCompile(`(?i)\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promTokens    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*|[0-9][0-9A-Za-z_.]*`)
	promKeywords  = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true, "atan2": true,
	}
)

// metricNames returns the metric names a PromQL expression selects. It
// drops strings, Grafana variables, label matchers, ranges, grouping label
// lists, numbers, keywords and function names (identifiers before "(").
func metricNames(expr string) []string {
	s := promStrings.ReplaceAllString(expr, `""`)
	s = promVariables.ReplaceAllString(s, " ")
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRanges.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promTokens.FindAllStringIndex(s, -1) {
		tok := s[loc[0]:loc[1]]
		if tok[0] >= '0' && tok[0] <= '9' || promKeywords[strings.ToLower(tok)] {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\r\n"); strings.HasPrefix(rest, "(") {
			continue // a function or aggregation
		}
		if !slices.Contains(names, tok) {
			names = append(names, tok)
		}
	}
	return names
}

func unknownMetrics(where, expr string) []string {
	var p []string
	names := metricNames(expr)
	if len(names) == 0 {
		p = append(p, fmt.Sprintf("%s: expression %q selects no metric", where, expr))
	}
	for _, n := range names {
		if !knownMetrics[n] {
			p = append(p, fmt.Sprintf("%s: unknown metric %q in %q", where, n, expr))
		}
	}
	return p
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func alertProblems(rf ruleFile) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf("alerts.yml: "+format, args...)) }
	seen := map[string]bool{}
	used := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				bad("group %s: a rule without an alert name", g.Name)
				continue
			}
			if seen[r.Alert] {
				bad("alert %s is defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if strings.TrimSpace(r.Expr) == "" {
				bad("%s: empty expr", r.Alert)
			}
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") {
				bad("%s: unbalanced parentheses in %q", r.Alert, r.Expr)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					bad("%s: for: %v", r.Alert, err)
				}
			}
			if r.Labels["severity"] == "" {
				bad("%s: no severity label", r.Alert)
			}
			if r.Annotations["summary"] == "" {
				bad("%s: no summary annotation", r.Alert)
			}
			p = append(p, unknownMetrics("alerts.yml "+r.Alert, r.Expr)...)
			for _, n := range metricNames(r.Expr) {
				used[n] = true
			}
			if jobMatcher.MatchString(r.Expr) {
				bad("%s: selects a scrape job (%s); select payworker's metrics instead, the job's name depends on how it is scraped", r.Alert, jobMatcher.FindString(r.Expr))
			}
		}
	}
	// Dead letters, failed outcomes, consumer lag, not ready and down.
	for _, m := range []string{"payworker_dead_letters_total", "payworker_requests_total", "jetstream_consumer_num_pending", "payworker_ready", "up", "payworker_build_info"} {
		if !used[m] {
			bad("no alert uses %s", m)
		}
	}
	return p
}

func TestDeployAlerts(t *testing.T) {
	var rf ruleFile
	if err := yaml.Unmarshal(readFile(t, "deploy/prometheus/alerts.yml"), &rf); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	for _, p := range alertProblems(rf) {
		t.Error(p)
	}
}

type promConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName      string `yaml:"job_name"`
		MetricsPath  string `yaml:"metrics_path"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func TestDeployPrometheusConfig(t *testing.T) {
	var pc promConfig
	if err := yaml.Unmarshal(readFile(t, "deploy/prometheus/prometheus.yml"), &pc); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	if !slices.Contains(pc.RuleFiles, "alerts.yml") {
		t.Errorf("prometheus.yml: rule_files %v lacks alerts.yml", pc.RuleFiles)
	}
	for _, f := range pc.RuleFiles {
		readFile(t, path.Join("deploy/prometheus", f))
	}
	c := loadCompose(t)
	httpPort, err := portOf(defaultOf("PAYWORKER_HTTP_ADDR"))
	if addr := c.Services["payworker"].Environment["PAYWORKER_HTTP_ADDR"]; addr != "" {
		httpPort, err = portOf(addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, sc := range pc.ScrapeConfigs {
		if sc.JobName != scrapeJob {
			for _, st := range sc.StaticConfigs {
				for _, target := range st.Targets {
					host, _, _ := net.SplitHostPort(target)
					if _, ok := c.Services[host]; !ok {
						t.Errorf("prometheus.yml: job %s scrapes %s, which is not a compose service", sc.JobName, target)
					}
				}
			}
			continue
		}
		found = true
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("prometheus.yml: job %s scrapes %s, payworker serves /metrics", sc.JobName, sc.MetricsPath)
		}
		if len(sc.DNSSDConfigs) != 1 {
			t.Errorf("prometheus.yml: job %s: want one dns_sd_configs entry (every replica), have %d", sc.JobName, len(sc.DNSSDConfigs))
			continue
		}
		d := sc.DNSSDConfigs[0]
		if !slices.Equal(d.Names, []string{"payworker"}) || d.Type != "A" || strconv.Itoa(d.Port) != httpPort {
			t.Errorf("prometheus.yml: job %s: dns_sd_configs %+v, want names [payworker] type A port %s", sc.JobName, d, httpPort)
		}
	}
	if !found {
		t.Errorf("prometheus.yml: no scrape job %q, which the alert rules select", scrapeJob)
	}
}

type grafanaDashboard struct {
	UID    string         `json:"uid"`
	Title  string         `json:"title"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos *struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // in collapsed rows
}

func dashboardProblems(d grafanaDashboard) []string {
	var p []string
	bad := func(format string, args ...any) {
		p = append(p, fmt.Sprintf("payworker-dashboard.json: "+format, args...))
	}
	if d.UID == "" || d.Title == "" {
		bad("uid and title are required")
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	var walk func([]grafanaPanel)
	walk = func(panels []grafanaPanel) {
		for _, pn := range panels {
			if ids[pn.ID] {
				bad("panel id %d is used twice", pn.ID)
			}
			ids[pn.ID] = true
			if pn.GridPos == nil || pn.GridPos.W <= 0 || pn.GridPos.H <= 0 || pn.GridPos.X+pn.GridPos.W > 24 {
				bad("panel %q: gridPos missing or outside the 24 columns", pn.Title)
			}
			if pn.Type != "row" && len(pn.Targets) == 0 {
				bad("panel %q has no query", pn.Title)
			}
			for _, tg := range pn.Targets {
				p = append(p, unknownMetrics(fmt.Sprintf("payworker-dashboard.json panel %q", pn.Title), tg.Expr)...)
				for _, n := range metricNames(tg.Expr) {
					used[n] = true
				}
			}
			walk(pn.Panels)
		}
	}
	walk(d.Panels)
	for _, m := range sortedKeys(knownMetrics) {
		if m != "payworker_dintero_request_duration_seconds_sum" && m != "process_start_time_seconds" && !used[m] {
			bad("no panel shows %s", m)
		}
	}
	return p
}

func TestDeployGrafana(t *testing.T) {
	var d grafanaDashboard
	if err := json.Unmarshal(readFile(t, "deploy/grafana/payworker-dashboard.json"), &d); err != nil {
		t.Fatalf("payworker-dashboard.json: %v", err)
	}
	for _, p := range dashboardProblems(d) {
		t.Error(p)
	}
}

// ---------------------------------------------------------------------------
// Dockerfile

func TestDeployDockerfile(t *testing.T) {
	df := string(readFile(t, "Dockerfile"))
	c := loadCompose(t)
	httpPort, err := portOf(defaultOf("PAYWORKER_HTTP_ADDR"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ what, re string }{
		{"a golang:1.26 build stage", `(?m)^FROM\s+(--platform=\S+\s+)?golang:1\.26\S*\s+AS\s+\w+`},
		{"a static build", `CGO_ENABLED=0`},
		{"-trimpath", `go build[^\n]*-trimpath`},
		{"the version stamped", `-X main\.version=`},
		{"a distroless nonroot final image", `(?m)^FROM\s+gcr\.io/distroless/static-debian12:nonroot\s*$`},
		{"EXPOSE of the HTTP port", `(?m)^EXPOSE\s+` + httpPort + `\s*$`},
		{"payworker as the entrypoint", `(?m)^ENTRYPOINT\s+\["/usr/local/bin/payworker"\]\s*$`},
	} {
		if !regexp.MustCompile(want.re).MatchString(df) {
			t.Errorf("Dockerfile: want %s (%s)", want.what, want.re)
		}
	}
	for _, cmd := range []string{"payworker", "payctl", "dintero-sandbox"} {
		if !strings.Contains(df, "./cmd/"+cmd) {
			t.Errorf("Dockerfile: does not build ./cmd/%s", cmd)
		}
		if _, err := os.Stat(filepath.Join(repoRoot, "cmd", cmd, "main.go")); err != nil {
			t.Errorf("Dockerfile builds ./cmd/%s: %v", cmd, err)
		}
	}
	// Entrypoints in the compose file name binaries the image has.
	for name, s := range c.Services {
		if len(s.Entrypoint) > 0 && s.Image == c.Services["payworker"].Image {
			bin := s.Entrypoint[0]
			if path.Dir(bin) != "/usr/local/bin" || !strings.Contains(df, "./cmd/"+path.Base(bin)) {
				t.Errorf("docker-compose.yml: %s: entrypoint %s is not a binary of the image", name, bin)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// The checks themselves

func TestDeployMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up{job="payworker"} == 0`, []string{"up"}},
		{`sum by (outcome) (rate(payworker_requests_total{outcome="failed"}[5m]))`, []string{"payworker_requests_total"}},
		{`histogram_quantile(0.99, sum(rate(x_bucket{instance=~"$instance"}[$__rate_interval])) by (le, endpoint))`, []string{"x_bucket"}},
		{`a / on(job) group_left(instance) b offset 5m > 1e3`, []string{"a", "b"}},
		{`max(c{s="a}b"}) > 0 and sum(rate(d[10m])) == 0`, []string{"c", "d"}},
		{`sum(increase(e[$__range]))`, []string{"e"}},
		{`vector(1)`, nil},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
				t.Errorf("metricNames = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDeployChecksCatchMistakes breaks correct inputs one way at a time and
// expects each check to say so.
func TestDeployChecksCatchMistakes(t *testing.T) {
	t.Run("env", func(t *testing.T) {
		good := map[string]string{
			"DINTERO_ACCOUNT_ID": "T12345678", "DINTERO_CLIENT_ID": "id", "DINTERO_CLIENT_SECRET": "s",
		}
		if _, p := envProblems("good", good); len(p) > 0 {
			t.Fatalf("a correct environment: %q", p)
		}
		for name, tc := range map[string]struct{ key, value, want string }{
			"typo":           {"PAYWORKER_MAX_INFLIGHT", "10", "PAYWORKER_MAX_INFLIGHT is not a variable"},
			"missing secret": {"DINTERO_CLIENT_SECRET", "", "DINTERO_CLIENT_SECRET is not set"},
			"bad duration":   {"PAYWORKER_ACK_WAIT", "30", "PAYWORKER_ACK_WAIT"},
			"bad log format": {"LOG_FORMAT", "yaml", "LOG_FORMAT"},
			"bad account":    {"DINTERO_ACCOUNT_ID", "X1", "payworker would not start"},
		} {
			t.Run(name, func(t *testing.T) {
				m := maps.Clone(good)
				m[tc.key] = tc.value
				_, p := envProblems(name, m)
				wantProblem(t, p, tc.want)
			})
		}
	})

	t.Run("compose", func(t *testing.T) {
		if p := composeProblems(loadCompose(t)); len(p) > 0 {
			t.Fatalf("the real compose file has problems: %q", p)
		}
		for name, tc := range map[string]struct {
			edit func(*composeFile)
			want string
		}{
			"env typo": {func(c *composeFile) { c.Services["payworker"].Environment["NATS_ULR"] = "nats://nats:4222" }, "NATS_ULR is not a variable"},
			"wrong sandbox secret": {func(c *composeFile) {
				c.Services["payworker"].Environment["DINTERO_CLIENT_SECRET"] = "nope"
			}, "DINTERO_CLIENT_SECRET does not match"},
			"wrong redis host": {func(c *composeFile) {
				c.Services["payworker"].Environment["REDIS_URL"] = "redis://localhost:6379/0"
			}, `REDIS_URL points at host "localhost"`},
			"bad sandbox port": {func(c *composeFile) {
				c.Services["payworker"].Environment["DINTERO_API_URL"] = "http://dintero-sandbox:8098"
			}, "is not the sandbox's"},
			"short stop grace": {func(c *composeFile) {
				w := c.Services["payworker"]
				w.StopGracePeriod = "10s"
				c.Services["payworker"] = w
			}, "stop_grace_period"},
			"one replica": {func(c *composeFile) {
				w := c.Services["payworker"]
				w.Deploy.Replicas = nil
				c.Services["payworker"] = w
			}, "deploy.replicas"},
			"no prometheus": {func(c *composeFile) { delete(c.Services, "prometheus") }, `service "prometheus" is missing`},
		} {
			t.Run(name, func(t *testing.T) {
				c := loadCompose(t) // a fresh copy to break
				tc.edit(&c)
				wantProblem(t, composeProblems(c), tc.want)
			})
		}
	})

	t.Run("kubernetes", func(t *testing.T) {
		_, objs := loadKubernetes(t)
		if p := kubernetesProblems(objs); len(p) > 0 {
			t.Fatalf("the real manifests have problems: %q", p)
		}
		// Each edit rewrites one file under deploy/kubernetes.
		for name, tc := range map[string]editCase{
			"configmap typo":      {"payworker.env", "LOG_LEVEL=", "LOG_LEVLE=", "LOG_LEVLE is not a variable"}, //nolint:misspell // the typo is the test
			"secret typo":         {"secret.yaml", "DINTERO_CLIENT_SECRET:", "DINTERO_CLIENT_SECRT:", "DINTERO_CLIENT_SECRT is not a variable"},
			"real-looking secret": {"secret.yaml", "REPLACE_ME_dintero_client_secret", "s3cr3t", "must be a placeholder"},
			"required id missing": {"secret.yaml", "  DINTERO_CLIENT_ID: REPLACE_ME_dintero_client_id\n", "", "DINTERO_CLIENT_ID"},
			"readiness path":      {"deployment.yaml", "path: /readyz", "path: /ready", `path "/ready"`},
			"probe port":          {"deployment.yaml", "port: http", "port: 9090", "port 9090"},
			"env typo":            {"deployment.yaml", "- name: GOMEMLIMIT", "- name: GOMEMLIMT", "GOMEMLIMT is not a variable"},
			"grace too long":      {"payworker.env", "PAYWORKER_SHUTDOWN_GRACE=30s", "PAYWORKER_SHUTDOWN_GRACE=50s", "terminationGracePeriodSeconds"},
			"writable root":       {"deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
			"envFrom secret gone": {"deployment.yaml", "name: payworker-dintero", "name: payworker-dintero-x", "Secret/payworker-dintero-x is not among"},
			"pdb selector":        {"pdb.yaml", "      app.kubernetes.io/name: payworker", "      app.kubernetes.io/name: payworkers", "does not match the Deployment's pod labels"},
			"scaled target":       {"scaledobject.yaml", "    name: payworker\n", "    name: worker\n", "is not the Deployment"},
			"scaled stream":       {"scaledobject.yaml", "stream: PAYMENT_REQUESTS", "stream: PAYMENT_RESULTS", "trigger stream"},
			"scaled consumer":     {"scaledobject.yaml", "consumer: payworker", "consumer: worker", "trigger consumer"},
			"nats endpoint host":  {"scaledobject.yaml", "natsServerMonitoringEndpoint: nats-headless.", "natsServerMonitoringEndpoint: other.", "is not NATS_URL's"},
			"account $G":          {"scaledobject.yaml", "account: REPLACE_ME_nats_account_public_key", `account: "$G"`, "with NATS_CREDS"},
			"env file syntax":     {"payworker.env", "LOG_LEVEL=info", "LOG_LEVEL info", "is not KEY=VALUE"},
			"env set twice":       {"payworker.env", "LOG_LEVEL=info", "LOG_LEVEL=info\nLOG_LEVEL=debug", "set twice"},
			"namespaced":          {"service.yaml", "metadata:\n", "metadata:\n  namespace: prod\n", "sets a namespace"},
			"service target":      {"service.yaml", "targetPort: http", "targetPort: 80", "does not target the metrics port"},
			"callback svc http":   {"service.yaml", "targetPort: callback", "targetPort: http", "must expose the callback port only"},
		} {
			t.Run(name, func(t *testing.T) {
				wantProblem(t, tc.problems(t, kubernetesProblems), tc.want)
			})
		}
	})

	t.Run("alerts", func(t *testing.T) {
		raw := readFile(t, "deploy/prometheus/alerts.yml")
		for name, tc := range map[string]struct{ old, new, want string }{
			"metric typo":  {"payworker_dead_letters_total", "payworker_deadletters_total", `unknown metric "payworker_deadletters_total"`},
			"no severity":  {"severity: critical", "priority: critical", "no severity label"},
			"bad for":      {"for: 10m", "for: ten minutes", "for:"},
			"a job's name": {"absent(payworker_build_info)", `absent(up{job="payworker"})`, "selects a scrape job"},
		} {
			t.Run(name, func(t *testing.T) {
				var rf ruleFile
				if err := yaml.Unmarshal(bytes.Replace(raw, []byte(tc.old), []byte(tc.new), 1), &rf); err != nil {
					t.Fatal(err)
				}
				wantProblem(t, alertProblems(rf), tc.want)
			})
		}
	})

	t.Run("grafana", func(t *testing.T) {
		raw := readFile(t, "deploy/grafana/payworker-dashboard.json")
		var d grafanaDashboard
		if err := json.Unmarshal(bytes.Replace(raw, []byte("payworker_in_flight"), []byte("payworker_inflight"), 1), &d); err != nil {
			t.Fatal(err)
		}
		wantProblem(t, dashboardProblems(d), `unknown metric "payworker_inflight"`)
	})
}

// ---------------------------------------------------------------------------

// wantProblem fails unless one of problems contains want.
func wantProblem(t *testing.T, problems []string, want string) {
	t.Helper()
	for _, p := range problems {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Errorf("no problem mentions %q; got %q", want, problems)
}

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
