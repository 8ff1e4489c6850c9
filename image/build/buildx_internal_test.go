package build

import (
	"strings"
	"testing"
)

func TestBuildxArgs(t *testing.T) {
	b := Buildx{Progress: "rawjson"}
	got := b.args(Options{
		ContextDir: "/ctx", Dockerfile: "sub/Dockerfile", Tag: "bottle/agent:x", Target: "agent", NoCache: true,
		BuildArgs: map[string]string{"B": "2", "A": "1"}, Labels: map[string]string{"l": "v"},
	}, "/tmp/md.json")
	want := "build --load --tag bottle/agent:x --metadata-file /tmp/md.json --progress rawjson --file /ctx/sub/Dockerfile " +
		"--build-arg A=1 --build-arg B=2 --label l=v --target agent --no-cache /ctx"
	if strings.Join(got, " ") != want {
		t.Errorf("args\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	got = Buildx{}.args(Options{ContextDir: "/ctx", Tag: "t", DockerfileContent: []byte("FROM scratch")}, "/m")
	if want := "build --load --tag t --metadata-file /m --progress plain --file - /ctx"; strings.Join(got, " ") != want {
		t.Errorf("inline args %s", strings.Join(got, " "))
	}
}

func TestBuildxProgress(t *testing.T) {
	for _, c := range []struct {
		mode     string
		terminal bool
		want     string
	}{
		{"auto", true, "auto"}, {"auto", false, "plain"}, {"", false, "plain"},
		{"tty", true, "tty"}, {"tty", false, "plain"},
		{"plain", true, "plain"}, {"quiet", true, "quiet"}, {"json", false, "rawjson"},
	} {
		if got := BuildxProgress(c.mode, c.terminal); got != c.want {
			t.Errorf("BuildxProgress(%q, %v) = %q, want %q", c.mode, c.terminal, got, c.want)
		}
	}
}
