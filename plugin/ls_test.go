package plugin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestLsFormat renders ls's rows with every kind of --format that `docker
// ps --format` takes.
func TestLsFormat(t *testing.T) {
	created := time.Now().Add(-3 * time.Minute)
	rows := []bottleRow{
		{Name: "fix-bug", Backend: "docker", NetworkMode: "bridge", State: "running", Status: "running (restarted 1x)",
			Provider: "claude", Branch: "bottle/fix-bug/main", Created: created, Waiting: 2},
		{Name: "evil\x1b[2J", Backend: "smolvm", NetworkMode: "loopback", State: "exited", Status: "exited",
			Provider: "codex", Branch: "b\u202e", Created: created, Waiting: -1},
	}
	for _, c := range []struct {
		name   string
		opts   lsOptions
		want   string
		unlike string // must not appear
	}{
		{name: "default table", opts: lsOptions{format: "table"}, want: "" +
			"NAME          BACKEND   NETWORK    STATUS                   WAITING   CREATED         PROVIDER   BRANCH\n" +
			"fix-bug       docker    bridge     running (restarted 1x)   2         3 minutes ago   claude     bottle/fix-bug/main\n" +
			`evil\x1b[2J   smolvm    loopback   exited                   -         3 minutes ago   codex      b\u202e` + "\n"},
		{name: "empty format is the table", opts: lsOptions{}, want: "NAME ", unlike: "\x1b"},
		{name: "table template has headers", opts: lsOptions{format: `table {{.Name}}\t{{.State}}`}, want: "" +
			"NAME          STATE\n" +
			"fix-bug       running\n" +
			`evil\x1b[2J   exited` + "\n"},
		{name: "template has no header", opts: lsOptions{format: "{{.Name}} {{.Waiting}}"},
			want: "fix-bug 2\nevil\\x1b[2J -\n"},
		{name: "template functions", opts: lsOptions{format: `{{upper .Provider}}|{{truncate .Name 3}}`},
			want: "CLAUDE|fix\nCODEX|evi\n"},
		{name: "quiet", opts: lsOptions{quiet: true, format: "table"}, want: "fix-bug\nevil\\x1b[2J\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := writeBottles(&out, c.opts, rows); err != nil {
				t.Fatal(err)
			}
			if c.unlike == "" && out.String() != c.want || c.unlike != "" && (!strings.HasPrefix(out.String(), c.want) || strings.Contains(out.String(), c.unlike)) {
				t.Fatalf("got\n%s\nwant\n%s", out.String(), c.want)
			}
		})
	}

	// json and {{json .}} print one object a line, the same, with the
	// row's values as they are (JSON escapes them itself).
	for _, format := range []string{"json", "{{json .}}"} {
		var out bytes.Buffer
		if err := writeBottles(&out, lsOptions{format: format}, rows); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != 2 || strings.Contains(out.String(), "\x1b") {
			t.Fatalf("%s: %q", format, out.String())
		}
		var got []bottleRow
		for _, l := range lines {
			var r bottleRow
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("%s: %v: %q", format, err, l)
			}
			got = append(got, r)
		}
		if got[0].Name != "fix-bug" || got[0].Waiting != 2 || !got[0].Created.Equal(created) || got[1].Name != rows[1].Name || got[1].Waiting != -1 {
			t.Fatalf("%s: %+v", format, got)
		}
	}

	// An empty list still has its header, as docker ps has.
	var out bytes.Buffer
	if err := writeBottles(&out, lsOptions{format: "table {{.Name}}"}, nil); err != nil || out.String() != "NAME\n" {
		t.Fatalf("no bottles: %q %v", out.String(), err)
	}
	if err := writeBottles(&out, lsOptions{format: "{{.Name"}, rows); err == nil || !strings.Contains(err.Error(), "template") {
		t.Fatalf("a broken template: %v", err)
	}
	if err := writeBottles(&out, lsOptions{format: "{{.Nope}}"}, rows); err == nil {
		t.Fatal("an unknown field gave no error")
	}
}

// TestLsJSONHasWhatTheDashboardShows: --format json and the templates
// show each bottle's repository, branch, activity with the exit code,
// how long it runs, the requests waiting, CPU, memory and the last line of
// output, under docker ps's kind of keys; text from the bottle is cleaned
// in templates.
func TestLsJSONHasWhatTheDashboardShows(t *testing.T) {
	code := 2
	rows := []bottleRow{
		{Name: "busy", Repository: "/src/app", Branch: "bottle/busy/x", Created: time.Now().Add(-time.Hour), Waiting: 1,
			Activity: "waiting for you", CPUPerc: "12.5%", MemUsage: "300.0M", LastOutput: "Allow this?"},
		{Name: "done", Repository: "/src/app", Branch: "bottle/done/x", Created: time.Now().Add(-time.Minute), Waiting: -1,
			Activity: "exited (2)", ExitCode: &code, CPUPerc: "-", MemUsage: "-", LastOutput: "bye\x1b[2J"},
	}
	var out bytes.Buffer
	if err := writeBottles(&out, lsOptions{format: "json"}, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%q", out.String())
	}
	var busy, done map[string]any
	if json.Unmarshal([]byte(lines[0]), &busy) != nil || json.Unmarshal([]byte(lines[1]), &done) != nil {
		t.Fatalf("not JSON: %q", out.String())
	}
	for k, want := range map[string]any{"Repository": "/src/app", "Branch": "bottle/busy/x", "Activity": "waiting for you",
		"RunningFor": "About an hour ago", "Waiting": 1.0, "CPUPerc": "12.5%", "MemUsage": "300.0M", "LastOutput": "Allow this?"} {
		if busy[k] != want {
			t.Errorf("busy: %s = %#v, want %#v", k, busy[k], want)
		}
	}
	if _, ok := busy["ExitCode"]; ok {
		t.Errorf("a running bottle has an exit code: %v", busy)
	}
	if done["ExitCode"] != 2.0 || done["Activity"] != "exited (2)" || done["LastOutput"] != "bye\x1b[2J" {
		t.Errorf("done: %v", done)
	}
	out.Reset()
	if err := writeBottles(&out, lsOptions{format: "table {{.Name}}\t{{.Activity}}\t{{.ExitCode}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.LastOutput}}"}, rows); err != nil {
		t.Fatal(err)
	}
	want := "NAME      ACTIVITY          EXIT CODE   CPU %     MEM USAGE   LAST OUTPUT\n" +
		"busy      waiting for you               12.5%     300.0M      Allow this?\n" +
		`done      exited (2)        2           -         -           bye\x1b[2J` + "\n"
	if out.String() != want {
		t.Errorf("table:\n%s\nwant\n%s", out.String(), want)
	}
	for format, want := range map[string]bool{"json": true, "{{json .}}": true, "table": false, "{{.Name}} {{.CPUPerc}}": true, "{{.Repository}}": false} {
		if showsActivity(format) != want {
			t.Errorf("showsActivity(%q) = %v", format, !want)
		}
	}
}
