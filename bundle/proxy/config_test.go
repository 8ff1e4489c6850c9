package proxy

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	good := `{
		"listen": ":3128", "bottle": "b1", "token_file": "/stage/proxy-token",
		"rules": [
			{"host": "api.github.com"},
			{"host": "*.npmjs.org", "ports": [443]},
			{"host": "10.0.0.5", "ports": [8080], "private": true},
			{"host": "api.github.com", "methods": ["DELETE"], "deny": true},
			{"host": "uploads.example.com", "methods": ["GET", "HEAD"], "paths": ["/v1/*", "/health"]},
			{"host": "local.test", "loopback": true, "metadata": true, "allow_no_sni": true, "websocket": true}
		],
		"secrets": [{"host": "api.anthropic.com", "header": "x-api-key", "value_file": "/stage/s1", "placeholder": "PH"}],
		"ca_cert_file": "/ca/ca.pem", "ca_key_file": "/ca/ca-key.pem",
		"approvals": true, "approval_timeout": "90s",
		"limits": {"max_tunnels": 64, "idle_timeout": 120}
	}`
	cfg, err := ParseConfig([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ApprovalTimeout.D() != 90*time.Second || cfg.Limits.IdleTimeout.D() != 120*time.Second || cfg.Limits.MaxTunnels != 64 {
		t.Errorf("durations/limits: %+v %+v", cfg.ApprovalTimeout, cfg.Limits)
	}
	if r := cfg.Rules[5]; !r.Loopback || !r.Metadata || !r.AllowNoSNI || !r.WebSocket || r.Private {
		t.Errorf("rule options: %+v", r)
	}
	if len(cfg.Rules) != 6 || cfg.Rules[2].Private != true || cfg.Secrets[0].Placeholder != "PH" {
		t.Errorf("parsed: %+v", cfg)
	}

	for name, c := range map[string]struct{ json, want string }{
		"unknown field":       {`{"token_file":"t","rulez":[]}`, `unknown field "rulez"`},
		"no token":            {`{}`, "token_file is required"},
		"trailing data":       {`{"token_file":"t"} {}`, "trailing data"},
		"double wildcard":     {`{"token_file":"t","rules":[{"host":"*.*.example.com"}]}`, "leading"},
		"inner star":          {`{"token_file":"t","rules":[{"host":"a*b.com"}]}`, "leading"},
		"wildcard IP":         {`{"token_file":"t","rules":[{"host":"*.10.0.0.1"}]}`, "cannot cover an IP"},
		"bad host":            {`{"token_file":"t","rules":[{"host":"exa mple.com"}]}`, "not a valid host name"},
		"empty host":          {`{"token_file":"t","rules":[{"host":""}]}`, "host is empty"},
		"port 0":              {`{"token_file":"t","rules":[{"host":"a.com","ports":[0]}]}`, "port 0"},
		"port too big":        {`{"token_file":"t","rules":[{"host":"a.com","ports":[70000]}]}`, "port 70000"},
		"lower-case method":   {`{"token_file":"t","rules":[{"host":"a.com","methods":["get"]}]}`, "upper-case"},
		"relative path":       {`{"token_file":"t","rules":[{"host":"a.com","paths":["v1/*"]}]}`, "must start with /"},
		"inner star in path":  {`{"token_file":"t","rules":[{"host":"a.com","paths":["/a/*/b"]}]}`, "may only end"},
		"wildcard secret":     {`{"token_file":"t","ca_cert_file":"c","ca_key_file":"k","secrets":[{"host":"*.a.com","header":"A","value_file":"v"}]}`, "not a wildcard"},
		"bad header":          {`{"token_file":"t","ca_cert_file":"c","ca_key_file":"k","secrets":[{"host":"a.com","header":"Bad Header","value_file":"v"}]}`, "not a valid HTTP header"},
		"format without slot": {`{"token_file":"t","ca_cert_file":"c","ca_key_file":"k","secrets":[{"host":"a.com","header":"A","format":"Bearer x","value_file":"v"}]}`, "lacks {value}"},
		"secret without file": {`{"token_file":"t","ca_cert_file":"c","ca_key_file":"k","secrets":[{"host":"a.com","header":"A"}]}`, "value_file is required"},
		"secret without CA":   {`{"token_file":"t","secrets":[{"host":"a.com","header":"A","value_file":"v"}]}`, "ca_cert_file and ca_key_file are required"},
		"L7 rule without CA":  {`{"token_file":"t","rules":[{"host":"a.com","methods":["GET"]}]}`, "ca_cert_file and ca_key_file are required"},
		"bad duration":        {`{"token_file":"t","approval_timeout":"soon"}`, "invalid duration"},
		"bad listen":          {`{"token_file":"t","listen":"3128"}`, "want host:port"},
		"not JSON":            {`rules: []`, "decoding"},
	} {
		_, err := ParseConfig([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestLoadConfigAndNewReportMissingFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadConfig(filepath.Join(dir, "nope.json")); err == nil {
		t.Error("LoadConfig of a missing file succeeded")
	}
	p := filepath.Join(dir, "proxy.json")
	os.WriteFile(p, []byte(`{"token_file": "`+filepath.Join(dir, "missing-token")+`"}`), 0o600)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "proxy token") {
		t.Errorf("New with a missing token file: %v", err)
	}
	cfg.TokenFile = writeFile(t, dir, "empty", "\n")
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("New with an empty token file: %v", err)
	}
	cfg.TokenFile = writeFile(t, dir, "tok", "x")
	cfg.ExtraCAFile = writeFile(t, dir, "extra.pem", "not pem")
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("New with a bad extra CA file: %v", err)
	}
}

func TestPolicy(t *testing.T) {
	pol := compilePolicy(Config{Rules: []Rule{
		{Host: "*.example.com", Ports: []int{443}},
		{Host: "exact.org"},
		{Host: "blocked.example.com", Deny: true},
		{Host: "api.example.com", Deny: true, Methods: []string{"DELETE"}},
		{Host: "paths.org", Methods: []string{"GET"}, Paths: []string{"/v1/*", "/exact"}},
		{Host: "paths.org", Deny: true, Paths: []string{"/v1/secret*"}},
		{Host: "2001:db8::1", Ports: []int{443}},
	}}, nil)
	for _, c := range []struct {
		host      string
		port      int
		allow     bool
		intercept bool
		listed    bool
	}{
		{"a.example.com", 443, true, false, true},
		{"a.b.example.com", 443, true, false, true},
		{"example.com", 443, false, false, false},
		{"a.example.com", 80, false, false, false},
		{"xexample.com", 443, false, false, false},
		{"blocked.example.com", 443, false, false, true},
		{"api.example.com", 443, true, true, true},
		{"exact.org", 80, true, false, true},
		{"sub.exact.org", 443, false, false, false},
		{"paths.org", 443, true, true, true},
		{"2001:db8::1", 443, true, false, true},
	} {
		v := pol.connect(c.host, c.port)
		if v.allow != c.allow || v.intercept != c.intercept || v.listed != c.listed {
			t.Errorf("connect %s:%d = allow %v intercept %v listed %v, want %v %v %v", c.host, c.port, v.allow, v.intercept, v.listed, c.allow, c.intercept, c.listed)
		}
	}
	for _, c := range []struct {
		method, path string
		allow        bool
	}{
		{"GET", "/v1/x", true},
		{"GET", "/exact", true},
		{"GET", "/exact/", false},
		{"POST", "/v1/x", false},
		{"GET", "/v2", false},
		{"GET", "/v1/../v2", false},
		{"GET", "/v1/./x", false},
		{"GET", "/v1//x", false},
		{"GET", "/v1/secret-stuff", false},
		{"GET", "/v1/x/../secret", false},
	} {
		if v := pol.request("paths.org", 443, c.method, &url.URL{Path: c.path}, nil); v.allow != c.allow {
			t.Errorf("request %s %s: allow=%v (%s), want %v", c.method, c.path, v.allow, v.reason, c.allow)
		}
	}
	// A deny rule's paths and methods match in any case: some servers fold
	// them.
	open := compilePolicy(Config{Rules: []Rule{
		{Host: "open.org"},
		{Host: "open.org", Deny: true, Paths: []string{"/admin*"}},
		{Host: "open.org", Deny: true, Methods: []string{"DELETE"}},
	}}, nil)
	for _, c := range []struct {
		method, path string
		allow        bool
	}{
		{"GET", "/x", true}, {"GET", "/admin", false}, {"GET", "/ADMIN/x", false}, {"GET", "/Admin", false},
		{"DELETE", "/x", false}, {"delete", "/x", false}, {"dElEtE", "/x", false}, {"POST", "/x", true},
	} {
		if v := open.request("open.org", 443, c.method, &url.URL{Path: c.path}, nil); v.allow != c.allow {
			t.Errorf("deny rules, request %s %s: allow=%v (%s), want %v", c.method, c.path, v.allow, v.reason, c.allow)
		}
	}
	for in, want := range map[string]string{
		"Example.COM.": "example.com", "[::1]": "::1", "::FFFF:10.0.0.1": "10.0.0.1", "fe80::1%eth0": "",
		"a b": "", "": "", "a..b": "", "x_y.test": "x_y.test",
	} {
		if got := normHost(in); got != want {
			t.Errorf("normHost(%q) = %q, want %q", in, got, want)
		}
	}
}
