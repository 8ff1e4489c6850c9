package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/probe"
)

func hashOf(s string) probe.SecretHash {
	sum := sha256.Sum256([]byte(s))
	return probe.SecretHash{SHA256: hex.EncodeToString(sum[:]), Len: len(s)}
}

func TestMatcherFindsEveryWindow(t *testing.T) {
	m, err := newMatcher([]probe.SecretHash{hashOf("s3cr3t-value"), hashOf("xyz")})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		data string
		want int
	}{
		{"s3cr3t-value", 0},
		{"prefix s3cr3t-value", 7},
		{"ends with s3cr3t-value", 10},
		{"s3cr3t-valu", -1},              // one byte short
		{"3cr3t-value s3cr3t-vaLue", -1}, // near misses
		{"---xyz", 3},                    // the shorter secret
		{"", -1},
	}
	for _, c := range cases {
		if got := m.find([]byte(c.data)); got != c.want {
			t.Errorf("find(%q) = %d, want %d", c.data, got, c.want)
		}
	}
	if _, err := newMatcher([]probe.SecretHash{{SHA256: "zz", Len: 3}}); err == nil {
		t.Error("a bad hash was accepted")
	}
}

func TestSecretsCheckFilesAndLimits(t *testing.T) {
	const secret = "ghp_0123456789abcdefABCDEF"
	root := t.TempDir()
	write := func(rel string, data []byte) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("home/.cache/clean", []byte("nothing here\n"))
	hidden := write("outside/deep/creds.json", []byte(`{"token":"`+secret+`"}`))
	// A link to a file is followed; a link to a directory is not (it
	// loops here).
	if err := os.Symlink(hidden, filepath.Join(root, "home", "link-to-creds")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "home"), filepath.Join(root, "home", "loop")); err != nil {
		t.Fatal(err)
	}
	// Larger than maxFileBytes: not read, counted as skipped.
	write("home/big.bin", append(bytes.Repeat([]byte{'a'}, maxFileBytes), []byte(secret)...))

	cfg := probe.Config{Secrets: []probe.SecretHash{hashOf(secret)}, ScanBudget: probe.DefaultScanBudget}
	getenv := func(k string) string {
		if k == "HOME" {
			return filepath.Join(root, "home")
		}
		return ""
	}
	c := secretsCheck(cfg, []string{"A=1", "B=two"}, getenv)
	if c.Outcome != probe.OutcomeFound || len(c.Evidence.Found) != 1 ||
		c.Evidence.Found[0] != "file "+filepath.Join(root, "home", "link-to-creds")+" (at byte 10)" {
		t.Fatalf("link to a secret file: %+v", c)
	}
	if s := c.Evidence.Scanned; s.Skipped != 1 || s.EnvValues != 2 || s.Truncated {
		t.Errorf("counts: %+v", s)
	}

	// The secret in the environment, named by its variable only.
	c = secretsCheck(cfg, []string{"A=1", "TOKEN=" + secret}, func(string) string { return "" })
	if c.Outcome != probe.OutcomeFound || c.Evidence.Found[0] != "env TOKEN" || strings.Contains(c.Result, secret) {
		t.Errorf("env: %+v", c)
	}

	// A budget smaller than the files: the search says it stopped short.
	cfg.ScanBudget = 8
	c = secretsCheck(cfg, nil, getenv)
	if c.Outcome != probe.OutcomeClean || !c.Evidence.Scanned.Truncated || !strings.Contains(c.Result, "budget") {
		t.Errorf("budget: %+v", c)
	}
	if v, ev := probe.Judge(probe.Report{Checks: []probe.Check{c}}, probe.Expect{}).Verdict(3), c.Result; v != probe.Warn {
		t.Errorf("a truncated search is judged %s (%s), want WARN", v, ev)
	}

	// A root that is a link is searched where it points.
	if err := os.Symlink(filepath.Join(root, "outside"), filepath.Join(root, "ws-link")); err != nil {
		t.Fatal(err)
	}
	cfg.ScanBudget = probe.DefaultScanBudget
	cfg.Workspace = filepath.Join(root, "ws-link")
	c = secretsCheck(cfg, nil, func(string) string { return "" })
	if c.Outcome != probe.OutcomeFound || c.Evidence.Found[0] != "file "+hidden+" (at byte 10)" {
		t.Errorf("workspace behind a link: %+v", c)
	}

	// Nothing to look for.
	c = secretsCheck(probe.Config{}, nil, getenv)
	if c.Outcome != probe.OutcomeSkipped {
		t.Errorf("no secrets: %+v", c)
	}
}
