package bringup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
	"github.com/docker-bottle/docker-bottle/stage"
)

// TestLocalConfigHoldsNoSecret: the configuration of a bundle on the local
// engine names its secrets, the CA key and the operator token in the
// bundle's tmpfs; no value is written into the stage dir, only the CA's
// certificate is mounted, and the stage dir is mounted read-only but for
// the gate's repository and the audit dir.
func TestLocalConfigHoldsNoSecret(t *testing.T) {
	dir := stage.At(t.TempDir())
	for _, d := range []string{stage.GateRepo, stage.GuestDir} {
		if err := os.MkdirAll(dir.File(d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	p := plan.Plan{Slug: "c", StageDir: dir.Path(), Egress: plan.EgressPlan{
		Secrets: []spec.Secret{{Host: "api.example.com", Header: "X-Key", FromEnv: "KEY"}}}}
	const value = "the-secret-value-of-the-test"
	ca := filepath.Join(t.TempDir(), "ca")
	mounts, err := WriteConfig(p, ConfigOptions{CADir: ca, RootsFile: os.DevNull, Getenv: func(string) string { return value }})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if strings.HasPrefix(m.Source, ca) && m.Source != filepath.Join(ca, pki.CertFile) {
			t.Errorf("the bundle mounts %s of the CA dir", m.Source)
		}
	}
	if err := filepath.WalkDir(dir.Path(), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if strings.Contains(string(data), value) {
			t.Errorf("the secret's value is in %s", path)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(dir.File(ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"value_file": "/secrets/0"`, `"ca_key_file": "/secrets/ca-key.pem"`,
		`"operator_token_file": "/secrets/operator.token"`, `"audit_file": "/stage/audit/audit-proxy.jsonl"`} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("the configuration lacks %s:\n%s", want, cfg)
		}
	}

	rw := map[string]bool{}
	for _, m := range stageMounts(p, nil) {
		rw[m.Target] = !m.ReadOnly
	}
	want := map[string]bool{StageMount: false, StageMount + "/gate.git": true, StageMount + "/audit": true,
		StageMount + "/gate.git/config": false, StageMount + "/gate.git/hooks": false}
	if len(rw) != len(want) {
		t.Errorf("stage mounts %v, want %v", rw, want)
	}
	for target, w := range want {
		if got, ok := rw[target]; !ok || got != w {
			t.Errorf("stage mount %s: writable %v (mounted %v), want writable %v", target, got, ok, w)
		}
	}
	for _, d := range []string{"audit", stage.GateRepo + "/hooks"} {
		if st, err := os.Stat(dir.File(d)); err != nil || !st.IsDir() {
			t.Errorf("the mount point %s was not made: %v", d, err)
		}
	}
}
