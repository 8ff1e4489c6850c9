package probe

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseArgsFileFlagsAndEnv(t *testing.T) {
	file := Config{
		Allowed:  []string{"https://api.example.com/"},
		Lookup:   []string{"a.example"},
		Proxy:    "http://10.0.0.2:3128",
		Branch:   "from-file",
		Secrets:  []SecretHash{{SHA256: strings.Repeat("ab", 32), Len: 40}},
		Timeout:  Duration(5 * time.Second),
		GitDepth: 3,
	}
	data, _ := json.Marshal(file)
	path := filepath.Join(t.TempDir(), "probe.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := env(map[string]string{
		"HTTPS_PROXY": "http://192.168.1.2:3128", "BOTTLE_GATE_URL": "http://10.0.0.2:8418/",
		"BOTTLE_SUPERVISE_URL": "http://10.0.0.2:8419", "BOTTLE_TOKEN_FILE": "/run/bottle/token",
		"BOTTLE_BRANCH": "bottle/x/work", "SSL_CERT_FILE": "/etc/docker-bottle/ca-bundle.pem", "NODE_EXTRA_CA_CERTS": "/run/bottle/ca.pem",
	})
	c, err := ParseArgs([]string{"--config", path, "--allowed", "http://api.example.com/", "--lookup", "b.example",
		"--secret-sha256", strings.Repeat("cd", 32), "--secret-len", "12", "--branch", "from-flag", "--timeout", "7s"}, io.Discard, getenv)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Allowed:      []string{"https://api.example.com/", "http://api.example.com/"},
		Lookup:       []string{"a.example", "b.example"},
		LookupDomain: DefaultLookupDomain,
		Secrets:      []SecretHash{{SHA256: strings.Repeat("ab", 32), Len: 40}, {SHA256: strings.Repeat("cd", 32), Len: 12}},
		ScanBudget:   DefaultScanBudget,
		Workspace:    DefaultWorkspace, Root: "/",
		Proxy:        "http://10.0.0.2:3128", // the file's, over the environment
		GateURL:      "http://10.0.0.2:8418/",
		SuperviseURL: "http://10.0.0.2:8419",
		TokenFile:    "/run/bottle/token",
		Branch:       "from-flag", // a flag overrides the file
		ProtectedRef: DefaultProtectedRef,
		GitDepth:     3,
		GitTimeout:   Duration(DefaultGitTimeout),
		CAFiles:      []string{"/etc/docker-bottle/ca-bundle.pem", "/run/bottle/ca.pem"},
		Timeout:      Duration(7 * time.Second),
		DialTimeout:  Duration(DefaultDialTimeout),
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

func TestParseArgsRefusals(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.json")
	os.WriteFile(unknown, []byte(`{"allowd": ["https://x/"]}`), 0o600)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--allowed", "https://user:pw@x/"}, "no credentials"},
		{[]string{"--unlisted", "x.example"}, "want http:// or https://"},
		{[]string{"--loopback", "127.0.0.1"}, "want HOST:PORT"},
		{[]string{"--resolver", "1.1.1.1"}, "HOST:PORT of a DNS server"},
		{[]string{"--secret-sha256", strings.Repeat("ab", 32), "--secret-len", "0"}, "between 1 and"},
		{[]string{"--secret-sha256", strings.Repeat("ab", 32), "--secret-len", "x"}, "want a number"},
		{[]string{"--protected-ref", "main"}, "full ref name"},
		{[]string{"--git-depth", "-1"}, "must not be negative"},
		{[]string{"--config", unknown}, `unknown field "allowd"`},
		{[]string{"--dial-timeout", "-3s"}, "want a duration"},
	}
	for _, c := range cases {
		_, err := ParseArgs(c.args, io.Discard, env(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error with %q", c.args, err, c.want)
		}
	}
}

func TestDecodeRefusesOtherShapes(t *testing.T) {
	if _, err := Decode([]byte(`{"version":2,"checks":[]}`)); err != nil {
		t.Errorf("a minimal report: %v", err)
	}
	for _, bad := range []string{`{"version":1,"checks":[]}`, `{"version":2,"checks":[],"extra":1}`, `not json`, `{"version":2}{}`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
	r := Report{Version: ReportVersion, Started: time.Unix(1700000000, 0).UTC(), Duration: Millis(1500 * time.Millisecond),
		Checks: []Check{{Kind: KindDirect, Target: "10.0.0.9:443", Outcome: OutcomeFailed, Evidence: Evidence{Elapsed: Millis(3 * time.Second)}}}}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"duration_ms":1500`) || !strings.Contains(string(data), `"elapsed_ms":3000`) {
		t.Errorf("durations are not milliseconds: %s", data)
	}
	back, err := Decode(data)
	if err != nil || !reflect.DeepEqual(back, r) {
		t.Errorf("round trip: %+v %v", back, err)
	}
}
