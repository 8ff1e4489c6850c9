package gate_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/bundle/gate/gatetest"
)

func pkt(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

func (g *given) fetch(body string, v2 bool) string {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.url+"/git-upload-pack", strings.NewReader(body))
	must(g.t, err)
	req.SetBasicAuth("bottle", g.token)
	req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
	if v2 {
		req.Header.Set("Git-Protocol", "version=2")
	}
	resp, err := http.DefaultClient.Do(req)
	must(g.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(g.t, err)
	return string(b)
}

// L4: upload-pack acknowledges a have only for an object the bottle was
// given: a stored but unreachable commit gets the answer an unknown one
// gets.
func TestHaveAnswersAlikeForUnknownAndUnreachable(t *testing.T) {
	g := newGiven(t)
	uc := g.git(g.stage, "commit-tree", "-m", "unreachable", g.stageRef("refs/heads/main^{tree}"))
	rc := gatetest.Hash(gatetest.Commit, []byte("nowhere"))
	given := g.stageRef("refs/heads/main~3")
	v0 := func(have string) string {
		return g.fetch(pkt("want "+g.head+" multi_ack_detailed no-done side-band-64k ofs-delta\n")+"0000"+pkt("have "+have+"\n")+"0000", false)
	}
	v2 := func(have string) string {
		return g.fetch(pkt("command=fetch\n")+pkt("object-format=sha1\n")+"0001"+pkt("want "+g.head+"\n")+pkt("have "+have+"\n")+"0000", true)
	}
	for name, ask := range map[string]func(string) string{"v0": v0, "v2": v2} {
		au, ar := ask(uc), ask(rc)
		if strings.Contains(au, uc) {
			t.Errorf("%s: the gate acknowledges the unreachable commit: %q", name, au)
		}
		if hexName.ReplaceAllString(au, "<id>") != hexName.ReplaceAllString(ar, "<id>") {
			t.Errorf("%s: answers differ:\nunreachable %q\nunknown     %q", name, au, ar)
		}
		if ag := ask(given); !strings.Contains(ag, "ACK "+given) {
			t.Errorf("%s: a commit the bottle was given is not acknowledged: %q", name, ag)
		}
	}
}
