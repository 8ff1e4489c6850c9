//go:build e2e

package main

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
)

// TestLsFormatAsDockerPs lists a real bottle through the real docker CLI
// with each kind of --format `docker ps --format` takes, and logs `docker
// ps --format` of the bottle's containers with the same templates next to
// it.
func TestLsFormatAsDockerPs(t *testing.T) {
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	name := dockerBottle(t, cfg, "fmt", map[string]string{"bottle.yaml": "agent:\n  provider: shell\n  image: " + base + "\n" +
		"  command: [sleep, '600']\n"})

	ls := func(format string) string {
		t.Helper()
		r := docker(t, cfg, nil, "bottle", "ls", "--format", format)
		if r.code != 0 {
			t.Fatalf("ls --format %q: exit %d %s", format, r.code, r.stderr)
		}
		return r.stdout
	}
	ps := func(format string) string {
		t.Helper()
		r := docker(t, cfg, nil, "ps", "--filter", "label="+plan.LabelBottle+"="+name, "--format", format)
		if r.code != 0 {
			t.Fatalf("ps --format %q: exit %d %s", format, r.code, r.stderr)
		}
		return r.stdout
	}
	for _, c := range []struct {
		ls, ps string
		want   string // a regexp the whole output of ls must match
	}{
		{"table", "table", `^NAME +BACKEND +NETWORK +STATUS +WAITING +CREATED +PROVIDER +BRANCH\n` +
			regexp.QuoteMeta(name) + ` +docker +\S+ +running +0 +.* ago +shell +bottle/` + regexp.QuoteMeta(name) + `/\S+\n$`},
		{"table {{.Name}}", "table {{.Names}}", `^NAME\n` + regexp.QuoteMeta(name) + `\n$`},
		{`table {{.Name}}\t{{.State}}`, `table {{.Names}}\t{{.State}}`, `^NAME +STATE\n` + regexp.QuoteMeta(name) + ` +running\n$`},
		{"{{.Name}} {{.State}}", "{{.Names}} {{.State}}", `^` + regexp.QuoteMeta(name) + ` running\n$`},
		{"{{upper .State}}", "{{upper .State}}", `^RUNNING\n$`},
		{"{{json .}}", "{{json .}}", `^\{[^\n]*"Name":"` + regexp.QuoteMeta(name) + `"[^\n]*\}\n$`},
		{"json", "json", `^\{[^\n]*"Name":"` + regexp.QuoteMeta(name) + `"[^\n]*\}\n$`},
	} {
		got := ls(c.ls)
		t.Logf("$ docker bottle ls --format '%s'\n%s$ docker ps --format '%s'\n%s", c.ls, got, c.ps, ps(c.ps))
		if !regexp.MustCompile(c.want).MatchString(got) {
			t.Errorf("ls --format %q:\n%s\nwant %s", c.ls, got, c.want)
		}
	}

	// json is {{json .}}, and its values are typed. What changes from
	// one ls to the next (the age in words, CPU and memory) is left out
	// of the comparison, not out of either.
	live := func(out string) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%v: %q", err, out)
		}
		for _, k := range []string{"RunningFor", "CPUPerc", "MemUsage"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%q has no %s", out, k)
			}
			delete(m, k)
		}
		return m
	}
	if a, b := ls("json"), ls("{{json .}}"); !reflect.DeepEqual(live(a), live(b)) {
		t.Errorf("json %q and {{json .}} %q differ", a, b)
	}
	var row struct {
		Name, State, Backend string
		Waiting              int
	}
	if err := json.Unmarshal([]byte(ls("json")), &row); err != nil || row.Name != name || row.State != "running" || row.Backend != "docker" || row.Waiting != 0 {
		t.Errorf("ls --format json: %+v %v", row, err)
	}
	if r := docker(t, cfg, nil, "bottle", "ls", "--format", "{{.Nope}}"); r.code != 1 || !strings.Contains(r.stderr, "can't evaluate field Nope") {
		t.Errorf("an unknown field: exit %d %q", r.code, r.stderr)
	}
}
