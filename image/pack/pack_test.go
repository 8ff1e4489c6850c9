package pack_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/docker-bottle/docker-bottle/image/pack"
)

func TestRequestValidate(t *testing.T) {
	ok := pack.Request{Image: "127.0.0.1:5000/bottle/agent@sha256:" + strings.Repeat("a", 64), Output: "/cache/x/agent"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []pack.Request{
		{Image: "localhost:5000/bottle/agent:1", Output: "/o"},
		{Image: "localhost/bottle/agent:1", Output: "/o"},
		{Image: "bottle/agent:1", Output: "/o"},
		{Image: "-", Output: "/o"},
		{Image: "./img.tar", Output: "/o"},
		{Image: "127.0.0.1:5000/a b", Output: "/o"},
		{Image: ok.Image, Output: "/cache/x/agent.smolmachine"},
		{Image: ok.Image},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func TestWriteConfig(t *testing.T) {
	dir := t.TempDir()
	cfg, err := pack.WriteConfig(dir, []pack.Credential{
		{Registry: "127.0.0.1:41234", Username: "bottle", Password: "p4ss\"word\\x"},
		{Registry: "registry.example.com", Username: "we\"ird user", Password: "second"},
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config mode %v", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(cfg.Path)); di.Mode().Perm() != 0o700 {
		t.Errorf("config dir mode %v", di.Mode().Perm())
	}
	raw, _ := os.ReadFile(cfg.Path)
	if strings.Contains(string(raw), "p4ss") || strings.Contains(string(raw), "second") {
		t.Errorf("a password is in the file:\n%s", raw)
	}
	var doc struct {
		Images struct {
			Registries map[string]map[string]string `toml:"registries"`
		} `toml:"images"`
	}
	if err := toml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("not TOML: %v\n%s", err, raw)
	}
	env := map[string]string{}
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if env["SMOLVM_CONFIG"] != cfg.Path {
		t.Errorf("env %v lacks SMOLVM_CONFIG", cfg.Env)
	}
	for reg, want := range map[string][2]string{"127.0.0.1:41234": {"bottle", "p4ss\"word\\x"}, "registry.example.com": {"we\"ird user", "second"}} {
		r := doc.Images.Registries[reg]
		if r["username"] != want[0] || r["password"] != "" || env[r["password_env"]] != want[1] {
			t.Errorf("registry %s: %v (password via %s = %q)", reg, r, r["password_env"], env[r["password_env"]])
		}
	}
	if err := cfg.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.Path); !os.IsNotExist(err) {
		t.Errorf("config still there after Remove: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left in the temp dir: %v", entries)
	}

	for _, bad := range [][]pack.Credential{
		{{Registry: "a\"]\n[x", Username: "u", Password: "p"}},
		{{Registry: "r.example", Username: "", Password: "p"}},
		{{Registry: "r.example", Username: "u", Password: ""}},
		{{Registry: "r.example", Username: "u", Password: "p"}, {Registry: "r.example", Username: "u", Password: "p"}},
	} {
		if c, err := pack.WriteConfig(dir, bad); err == nil {
			c.Remove()
			t.Errorf("accepted %+v", bad)
		}
	}
}
