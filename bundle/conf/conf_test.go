package conf

import (
	"encoding/json"
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
