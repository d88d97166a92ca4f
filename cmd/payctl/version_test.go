package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeBuildStampsVersion builds the binaries as make build does and
// checks that payctl version and dintero-sandbox -version report the
// stamped version, and the VCS revision where the go command can record
// one (a clone; not a git worktree, whose .git is a file).
func TestMakeBuildStampsVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	bin := t.TempDir()
	build := exec.Command("make", "-C", root, "--no-print-directory", "build", "VERSION=v9.9.9-test", "BIN="+bin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}

	out, err := exec.Command(filepath.Join(bin, "payctl"), "version", "--json").Output()
	if err != nil {
		t.Fatalf("payctl version --json: %v", err)
	}
	var v struct {
		Version, Revision string
		GoVersion         string `json:"go_version"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("payctl version --json printed %q: %v", out, err)
	}
	if v.Version != "v9.9.9-test" || !strings.HasPrefix(v.GoVersion, "go1.") {
		t.Errorf("payctl version --json = %s", out)
	}
	out, err = exec.Command(filepath.Join(bin, "dintero-sandbox"), "-version").Output()
	if err != nil || !strings.HasPrefix(string(out), "dintero-sandbox v9.9.9-test ") {
		t.Errorf("dintero-sandbox -version = %q, %v", out, err)
	}

	if fi, err := os.Stat(filepath.Join(root, ".git")); err != nil || !fi.IsDir() {
		t.Logf("%s/.git is not a directory (a worktree or an export): no VCS revision to check", root)
		return
	}
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Logf("git rev-parse HEAD: %v: no VCS revision to check", err)
		return
	}
	if want := strings.TrimSpace(string(head)); v.Revision != want {
		t.Errorf("payctl version: revision %q, want HEAD %q (is the build run with -buildvcs=false?)", v.Revision, want)
	}
}
