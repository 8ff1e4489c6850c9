package bottle_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/docker-bottle/docker-bottle"

// TestBundleImportsNothingOfThePluginSide keeps the rule of STYLE.md that
// the bundle's daemons, which run in a container beside a hostile agent,
// import nothing of the plugin side: only bundle/... and the leaf packages
// listed here. The bundle's binary also carries the in-guest helper
// (provider/guest/...), and never the probe.
func TestBundleImportsNothingOfThePluginSide(t *testing.T) {
	for pattern, allowed := range map[string][]string{
		"./bundle/...":        {"bundle", "pki"},
		"./cmd/bottle-bundle": {"bundle", "pki", "cmd/bottle-bundle", "provider/guest"},
	} {
		out, err := exec.Command("go", "list", "-deps", "-json=ImportPath", pattern).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pattern, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		for {
			var p struct{ ImportPath string }
			if err := dec.Decode(&p); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			rel, ours := strings.CutPrefix(p.ImportPath, module+"/")
			if !ours {
				continue
			}
			ok := false
			for _, a := range allowed {
				ok = ok || rel == a || strings.HasPrefix(rel, a+"/")
			}
			if !ok {
				t.Errorf("%s depends on %s, which is not the bundle's to import", pattern, rel)
			}
		}
	}
}
