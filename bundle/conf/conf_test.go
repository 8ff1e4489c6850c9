package conf

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{`"90s"`: 90 * time.Second, `"5m"`: 5 * time.Minute, `2.5`: 2500 * time.Millisecond, `0`: 0} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || d.D() != want {
			t.Errorf("%s: %v %v", in, d.D(), err)
		}
	}
	for _, bad := range []string{`"soon"`, `true`, `{}`} {
		var d Duration
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	out, _ := json.Marshal(Duration(90 * time.Second))
	if string(out) != `"1m30s"` {
		t.Errorf("marshal %s", out)
	}
}

func TestDecodeIsStrict(t *testing.T) {
	type C struct {
		A int `json:"a"`
	}
	if c, err := Decode[C]([]byte(`{"a": 1}`)); err != nil || c.A != 1 {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []string{`{"a": 1, "b": 2}`, `{"a": 1} {"a": 2}`, `{"a": "x"}`, ``} {
		if _, err := Decode[C]([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

type checked struct {
	N int `json:"n"`
}

func (c checked) Validate() error {
	if c.N < 0 {
		return errors.New("n must not be negative")
	}
	return nil
}

func TestLoadAndParse(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if c, err := Load(write("ok.json", `{"n":3}`), "test config", Parse[checked]); err != nil || c.N != 3 {
		t.Errorf("good file: %+v %v", c, err)
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.json"), "reading test config: "},
		{write("typo.json", `{"m":3}`), "test config " + filepath.Join(dir, "typo.json") + `: decoding: json: unknown field "m"`},
		{write("bad.json", `{"n":-1}`), "test config " + filepath.Join(dir, "bad.json") + ": n must not be negative"},
	} {
		if _, err := Load(tc.path, "test config", Parse[checked]); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.path, err, tc.want)
		}
	}
}
