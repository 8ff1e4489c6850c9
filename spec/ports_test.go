package spec

import (
	"strings"
	"testing"
)

func TestParsePort(t *testing.T) {
	for in, want := range map[string]Port{"3000": {Agent: 3000}, "8080:3000": {Host: 8080, Agent: 3000}, "80/tcp": {Agent: 80}, "65535:1": {Host: 65535, Agent: 1}} {
		got, err := ParsePort(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v %v, want %+v", in, got, err, want)
		}
		if back, _ := ParsePort(got.String()); back != got {
			t.Errorf("%q does not round-trip: %q", in, got.String())
		}
	}
	for in, text := range map[string]string{
		"0": "range 1-65535", "65536": "range 1-65535", "x": "HOSTPORT:PORT", "": "range", "8080:": "range",
		"127.0.0.1:8080:3000": "127.0.0.1 only", "-1": "range",
	} {
		if _, err := ParsePort(in); err == nil || !strings.Contains(err.Error(), text) {
			t.Errorf("%q: %v, want an error saying %q", in, err, text)
		}
	}
}

func TestPortsInSpec(t *testing.T) {
	s, err := Parse("f.yaml", []byte("ports:\n  - 3000\n  - \"8080:5173\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Ports) != 2 || s.Ports[0] != (Port{Agent: 3000}) || s.Ports[1] != (Port{Host: 8080, Agent: 5173}) {
		t.Errorf("ports %+v", s.Ports)
	}
	cases := []struct{ yaml, where, text string }{
		{"ports:\n  - 70000\n", "f.yaml:2:5", "range 1-65535"},
		{"ports:\n  - 3000\n  - 9000:3000\n", "f.yaml:3:5", "published twice"},
		{"ports:\n  - 8080:3000\n  - 8080:3001\n", "f.yaml:3:5", "host port 8080 is given twice"},
		{"ports:\n  - 0.0.0.0:80:80\n", "f.yaml:2:5", "127.0.0.1 only"},
	}
	for _, c := range cases {
		_, err := Parse("f.yaml", []byte(c.yaml))
		if err == nil || !strings.HasPrefix(err.Error(), c.where+": ") || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%q: %v, want %s: ...%s", c.yaml, err, c.where, c.text)
		}
	}
}

func TestApplyPorts(t *testing.T) {
	s := Spec{Ports: []Port{{Agent: 3000}}}
	r, err := s.Apply(Overrides{Ports: []Port{{Host: 8080, Agent: 8000}}})
	if err != nil || len(r.Ports) != 2 || len(s.Ports) != 1 {
		t.Fatalf("%+v %v", r.Ports, err)
	}
	if _, err := s.Apply(Overrides{Ports: []Port{{Agent: 3000}}}); err == nil || !strings.Contains(err.Error(), "published twice") {
		t.Errorf("a flag repeating the file's port: %v", err)
	}
}

// FuzzParsePort: whatever the user types, ParsePort accepts only ports in
// range, and what it accepts round-trips through String.
func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"3000", "8080:3000", "80/tcp", "1.2.3.4:80:80", ":", "0", "99999", " 8:9 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePort(s)
		if err != nil {
			return
		}
		if p.Agent < 1 || p.Agent > 65535 || p.Host < 0 || p.Host > 65535 {
			t.Fatalf("%q accepted as %+v", s, p)
		}
		if back, err := ParsePort(p.String()); err != nil || back != p {
			t.Fatalf("%q: %+v does not round-trip: %+v %v", s, p, back, err)
		}
	})
}
